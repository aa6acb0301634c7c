"""What every localperf workload shares: data pipeline, evaluation, params.

A workload here is AlgoPerf's `spec.Workload` with its data generated on the
machine and held in memory. A subclass supplies three things, in the order a
reader needs them:

  * data:   `_generate_splits()` returns numpy arrays for 'train',
            'validation' and 'test' (each a dict with 'inputs' and 'targets',
            batch dimension first). It runs once per process, on first use.
  * model:  `_build_model()` returns a flax.linen module called as
            `module(inputs, train=..., dropout_rate=...)` returning logits.
  * metric: `loss_fn`, and `_eval_metric_sums(logits, batch)` for any metric
            besides the loss (summed over the batch, weighted by
            `batch['weights']`).

and its constants as class attributes (targets, budget, eval period,
`step_hint`, split sizes, `input_shape`). Everything else (input queues that
yield global arrays sharded along the batch axis, `init_model_fn`,
`model_fn`, the eval loop, target checks, parameter types) lives here.
"""

import abc
from typing import Any, Dict, Iterator, Optional, Tuple

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from localperf import spec

Arrays = Dict[str, np.ndarray]
Splits = Dict[str, Arrays]

# One generated data set per workload class and process (generation is the
# slow part; several trials in one process share it).
_SPLITS_CACHE: Dict[type, Splits] = {}


def batch_sharding() -> NamedSharding:
  """Shards the leading (batch) axis over all devices, as AlgoPerf does."""
  return NamedSharding(Mesh(jax.devices(), ('batch',)), PartitionSpec('batch'))


def replicated_sharding() -> NamedSharding:
  """Replicates an array on all devices (params, model and optimizer state)."""
  return NamedSharding(Mesh(jax.devices(), ('batch',)), PartitionSpec())


def numpy_seed(rng: spec.RandomState) -> np.ndarray:
  """The words of a JAX key (raw uint32 or typed) as a numpy seed."""
  if jnp.issubdtype(rng.dtype, jax.dtypes.prng_key):
    rng = jax.random.key_data(rng)
  return np.asarray(rng, dtype=np.uint32).ravel()


def param_types_from_shapes(param_shapes: Dict[str, Any],
                            parent: str = '') -> Dict[str, Any]:
  """Names each parameter's `spec.ParameterType` from its path.

  The rule AlgoPerf applies to flax names: a leaf called 'embedding' (or
  anything under an 'embed' module) is EMBEDDING; leaves of norm layers are
  *_NORM_SCALE / *_NORM_BIAS; a 'kernel' under a 'Conv' module is
  CONV_WEIGHT; other 'bias' leaves are BIAS and everything else is WEIGHT.
  """
  types = {}
  for name, value in param_shapes.items():
    path = f'{parent}/{name}'.lower()
    if isinstance(value, (dict, flax.core.FrozenDict)):
      types[name] = param_types_from_shapes(value, path)
      continue
    is_bias = name == 'bias'
    if 'batchnorm' in parent.lower():
      kind = 'BATCH_NORM_BIAS' if is_bias else 'BATCH_NORM_SCALE'
    elif 'layernorm' in parent.lower():
      kind = 'LAYER_NORM_BIAS' if is_bias else 'LAYER_NORM_SCALE'
    elif 'embed' in path:
      kind = 'EMBEDDING'
    elif is_bias:
      kind = 'BIAS'
    elif 'conv' in parent.lower():
      kind = 'CONV_WEIGHT'
    else:
      kind = 'WEIGHT'
    types[name] = spec.ParameterType[kind]
  return types


def train_batches(arrays: Arrays, global_batch_size: int,
                  seed: np.ndarray) -> Iterator[Arrays]:
  """Endless shuffled batches: a fresh permutation per epoch, full batches."""
  num_examples = len(next(iter(arrays.values())))
  if global_batch_size > num_examples:
    raise ValueError(f'global_batch_size {global_batch_size} exceeds the '
                     f'{num_examples} training examples.')
  shuffler = np.random.default_rng(seed)
  while True:
    order = shuffler.permutation(num_examples)
    for start in range(0, num_examples - global_batch_size + 1,
                       global_batch_size):
      index = order[start:start + global_batch_size]
      yield {k: v[index] for k, v in arrays.items()}


def eval_batches(arrays: Arrays, global_batch_size: int,
                 num_examples: int) -> Iterator[Arrays]:
  """The first `num_examples` in order, in full batches, with 'weights'.

  The last batch is padded with zeros up to `global_batch_size` (so every
  batch splits evenly over devices) and its padding has weight 0.
  """
  for start in range(0, num_examples, global_batch_size):
    stop = min(start + global_batch_size, num_examples)
    pad = global_batch_size - (stop - start)
    batch = {k: _pad(v[start:stop], pad) for k, v in arrays.items()}
    batch['weights'] = _pad(np.ones(stop - start, np.float32), pad)
    yield batch


def _pad(x: np.ndarray, pad: int) -> np.ndarray:
  return np.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1))


def shard_batch(batch: Arrays) -> Dict[str, jax.Array]:
  """Puts a host batch on the devices as global arrays split along axis 0."""
  return jax.device_put(batch, batch_sharding())


class Dropout(nn.Module):
  """Inverted dropout whose rate may be a traced value (set per call)."""

  @nn.compact
  def __call__(self, x: jax.Array, rate: float, train: bool) -> jax.Array:
    if not train or (isinstance(rate, (int, float)) and rate == 0.0):
      return x
    keep = jax.random.bernoulli(self.make_rng('dropout'), 1.0 - rate, x.shape)
    return jnp.where(keep, x / jnp.maximum(1.0 - rate, 1e-6), 0.0)


class LocalWorkload(spec.Workload):
  """A CPU-sized AlgoPerf workload with generated, in-memory data."""

  # Constants every subclass sets (class attributes override the spec's
  # abstract properties).
  target_metric_name: str
  minimize_target_metric: bool
  validation_target_value: float
  test_target_value: float
  loss_type: spec.LossType
  step_hint: int
  max_allowed_runtime_sec: int
  eval_period_time_sec: int
  eval_batch_size: int
  num_train_examples: int
  num_validation_examples: int
  num_test_examples: int
  input_shape: Tuple[int, ...]  # One example's 'inputs' shape.
  train_mean = 0.0
  train_stddev = 1.0

  @property
  def num_eval_train_examples(self) -> int:
    return self.num_validation_examples

  # --- Data -----------------------------------------------------------------

  @abc.abstractmethod
  def _generate_splits(self) -> Splits:
    """{'train'|'validation'|'test': {'inputs', 'targets'}} as numpy."""

  @property
  def splits(self) -> Splits:
    """The generated data, made on first use and kept for the process."""
    cls = type(self)
    if cls not in _SPLITS_CACHE:
      _SPLITS_CACHE[cls] = self._generate_splits()
    return _SPLITS_CACHE[cls]

  def _build_input_queue(self, data_rng: spec.RandomState, split: str,
                         data_dir: str, global_batch_size: int,
                         cache: Optional[bool] = None,
                         repeat_final_dataset: Optional[bool] = None,
                         num_batches: Optional[int] = None
                         ) -> Iterator[Dict[str, jax.Array]]:
    """Batches of `split` as global arrays sharded along the batch axis.

    'train' is endless and shuffled from `data_rng`; 'eval_train' (the first
    training examples), 'validation' and 'test' are one ordered pass with a
    'weights' mask (repeated when `repeat_final_dataset`).
    """
    del data_dir, cache
    if split == 'train':
      host = train_batches(self.splits['train'], global_batch_size,
                           numpy_seed(data_rng))
    else:
      source, size = {
          'eval_train': ('train', self.num_eval_train_examples),
          'validation': ('validation', self.num_validation_examples),
          'test': ('test', self.num_test_examples),
      }[split]
      host = _repeat(lambda: eval_batches(self.splits[source],
                                          global_batch_size, size),
                     bool(repeat_final_dataset))
    queue = map(shard_batch, host)
    return queue if num_batches is None else _take(queue, num_batches)

  # --- Model ----------------------------------------------------------------

  @abc.abstractmethod
  def _build_model(self) -> nn.Module:
    """The flax module: `module(inputs, train=, dropout_rate=) -> logits`."""

  def init_model_fn(self, rng: spec.RandomState) -> spec.ModelInitState:
    """Replicated initial params; no model state (no batch norm here)."""
    self._model = self._build_model()
    dummy = jnp.zeros((1,) + tuple(self.input_shape), jnp.float32)
    params = jax.jit(lambda r: self._model.init(
        {'params': r}, dummy, train=False)['params'])(rng)
    params = flax.core.unfreeze(params)
    self._param_shapes = jax.tree.map(lambda x: spec.ShapeTuple(x.shape),
                                      params)
    self._param_types = param_types_from_shapes(self._param_shapes)
    self._eval_step = jax.jit(
        self._eval_sums,
        in_shardings=(replicated_sharding(), replicated_sharding(),
                      batch_sharding()),
        out_shardings=replicated_sharding())
    return jax.device_put(params, replicated_sharding()), None

  def model_fn(self, params: spec.ParameterContainer,
               augmented_and_preprocessed_input_batch: Dict[str, spec.Tensor],
               model_state: spec.ModelAuxiliaryState,
               mode: spec.ForwardPassMode, rng: spec.RandomState,
               update_batch_norm: bool, dropout_rate: float = 0.0
               ) -> Tuple[spec.Tensor, spec.ModelAuxiliaryState]:
    del update_batch_norm
    train = mode == spec.ForwardPassMode.TRAIN
    logits = self._model.apply(
        {'params': params}, augmented_and_preprocessed_input_batch['inputs'],
        train=train, dropout_rate=dropout_rate,
        rngs={'dropout': rng} if train else {})
    return logits, model_state

  # --- Metrics and evaluation ----------------------------------------------

  def _eval_metric_sums(self, logits: jax.Array,
                        batch: Dict[str, jax.Array]) -> Dict[str, jax.Array]:
    """Weighted sums of metrics other than the loss (none by default)."""
    del logits, batch
    return {}

  def _eval_sums(self, params, model_state, batch) -> Dict[str, jax.Array]:
    logits, _ = self.model_fn(params, batch, model_state,
                              spec.ForwardPassMode.EVAL, None, False)
    sums = self._eval_metric_sums(logits, batch)
    sums['loss'] = self.loss_fn(batch['targets'], logits,
                                batch['weights'])['summed']
    return sums

  def _eval_model_on_split(self, split: str, num_examples: int,
                           global_batch_size: int,
                           params: spec.ParameterContainer,
                           model_state: spec.ModelAuxiliaryState,
                           rng: spec.RandomState, data_dir: str,
                           global_step: int = 0) -> Dict[str, float]:
    """Mean of each metric over the first `num_examples` of `split`."""
    del global_step
    totals = {}
    for batch in self._build_input_queue(rng, split, data_dir,
                                         global_batch_size):
      sums = self._eval_step(params, model_state, batch)
      for name, value in sums.items():
        totals[name] = totals.get(name, 0.0) + np.float64(value)
    return {name: float(total / num_examples)
            for name, total in totals.items()}

  def has_reached_validation_target(self, eval_result: Dict[str, float]
                                    ) -> bool:
    return self._beats(eval_result[f'validation/{self.target_metric_name}'],
                       self.validation_target_value)

  def has_reached_test_target(self, eval_result: Dict[str, float]) -> bool:
    return self._beats(eval_result[f'test/{self.target_metric_name}'],
                       self.test_target_value)

  def _beats(self, value: float, target: float) -> bool:
    """AlgoPerf's strict comparison: `<` when minimised, else `>`."""
    return value < target if self.minimize_target_metric else value > target


def _repeat(make: Any, forever: bool) -> Iterator[Arrays]:
  while True:
    yield from make()
    if not forever:
      return


def _take(iterator: Iterator, n: int) -> Iterator:
  for _, item in zip(range(n), iterator):
    yield item
