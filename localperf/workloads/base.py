"""What every localperf workload shares: data pipeline, evaluation, params.

A workload here is AlgoPerf's `spec.Workload` with its data generated on the
machine and held in memory. A subclass supplies three things, in the order a
reader needs them:

  * data:   `_generate_splits()` returns, for 'train', 'validation' and
            'test', a dict with 'inputs' and 'targets' (and optionally
            per-token 'weights'). Each value is a numpy array or a pytree of
            them (e.g. `(frames, paddings)` as AlgoPerf's speech workloads),
            batch dimension first. It runs once per process, on first use.
  * model:  `_build_model()` returns a flax.linen module called as
            `module(inputs, train=..., dropout_rate=...)` returning logits (or
            any pytree `loss_fn` takes). A module with `nn.BatchNorm` layers
            gets its 'batch_stats' collection as the model state.
  * metric: `loss_fn`, and for any metric besides the loss either
            `_eval_metric_sums(logits, batch)` (sums over the batch, weighted
            by `batch['weights']`) or, for metrics that do not decompose into
            sums (average precision, WER, BLEU), `_eval_predictions` gathered
            on the host and scored by `_metrics_from_predictions`.

and its constants as class attributes (targets, budget, eval period,
`step_hint`, split sizes, `input_shape`, or `_init_inputs()` for pytree
inputs). Everything else (input queues that yield global arrays sharded
along the batch axis, `init_model_fn`, `model_fn`, the eval loop, target
checks, parameter types) lives here.
"""

import abc
import functools
from typing import Any, Dict, Iterator, Optional, Tuple

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from localperf import spec

Arrays = Dict[str, Any]  # Values: numpy arrays or pytrees of them.
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

  The rule AlgoPerf applies to flax names, tried in this order on the
  lower-cased module path `parent` and leaf `name`: under a 'batchnorm' or
  'layernorm' module, *_NORM_SCALE / *_NORM_BIAS; under a 'conv' module,
  BIAS or CONV_WEIGHT; a leaf called 'embedding' (or a kernel under an
  'embedding' module) is EMBEDDING; under an 'attention' module, a bias is
  ATTENTION_BIAS and the kernels of its 'query', 'key', 'value' and 'out'
  projections ATTENTION_Q/K/V/OUT; other 'bias' leaves are BIAS and
  everything else is WEIGHT.
  """
  types = {}
  for name, value in param_shapes.items():
    path = f'{parent}/{name.lower()}'
    if isinstance(value, (dict, flax.core.FrozenDict)):
      types[name] = param_types_from_shapes(value, path)
    else:
      types[name] = spec.ParameterType[_param_type(parent, name.lower())]
  return types


def _param_type(parent: str, name: str) -> str:
  """The ParameterType's name for leaf `name` under module path `parent`."""
  is_bias = name == 'bias'
  if 'batchnorm' in parent:
    return 'BATCH_NORM_BIAS' if is_bias else 'BATCH_NORM_SCALE'
  if 'layernorm' in parent:
    return 'LAYER_NORM_BIAS' if is_bias else 'LAYER_NORM_SCALE'
  if 'conv' in parent:
    return 'BIAS' if is_bias else 'CONV_WEIGHT'
  if 'embedding' in name or ('embedding' in parent and name == 'kernel'):
    return 'EMBEDDING'
  if 'attention' in parent:
    if is_bias:
      return 'ATTENTION_BIAS'
    projection = parent.rsplit('/', 1)[-1]
    kinds = {'query': 'ATTENTION_Q', 'key': 'ATTENTION_K',
             'value': 'ATTENTION_V', 'out': 'ATTENTION_OUT'}
    if name == 'kernel' and projection in kinds:
      return kinds[projection]
  return 'BIAS' if is_bias else 'WEIGHT'


def train_batches(arrays: Arrays, global_batch_size: int,
                  seed: np.ndarray) -> Iterator[Arrays]:
  """Endless shuffled batches: a fresh permutation per epoch, full batches."""
  num_examples = num_examples_in(arrays)
  if global_batch_size > num_examples:
    raise ValueError(f'global_batch_size {global_batch_size} exceeds the '
                     f'{num_examples} training examples.')
  shuffler = np.random.default_rng(seed)
  while True:
    order = shuffler.permutation(num_examples)
    for start in range(0, num_examples - global_batch_size + 1,
                       global_batch_size):
      index = order[start:start + global_batch_size]
      yield jax.tree.map(functools.partial(_take_rows, index=index), arrays)


def eval_batches(arrays: Arrays, global_batch_size: int,
                 num_examples: int) -> Iterator[Arrays]:
  """The first `num_examples` in order, in full batches, with 'weights'.

  The last batch is padded with zeros up to `global_batch_size` (so every
  batch splits evenly over devices) and its padding has weight 0. 'weights'
  is one per example unless the split brings its own (say, per token).
  """
  for start in range(0, num_examples, global_batch_size):
    rows = functools.partial(_padded_rows, start=start,
                             stop=min(start + global_batch_size, num_examples),
                             size=global_batch_size)
    batch = jax.tree.map(rows, arrays)
    if 'weights' not in batch:
      batch['weights'] = rows(np.ones(num_examples, np.float32))
    yield batch


def _take_rows(x: np.ndarray, index: np.ndarray) -> np.ndarray:
  return x[index]


def _padded_rows(x: np.ndarray, start: int, stop: int,
                 size: int) -> np.ndarray:
  """Rows start:stop of x, zero-padded to `size` rows."""
  return np.pad(x[start:stop], [(0, size - (stop - start))]
                + [(0, 0)] * (x.ndim - 1))


def num_examples_in(arrays: Arrays) -> int:
  """The batch dimension shared by every array of a split."""
  return len(jax.tree.leaves(arrays)[0])


def shard_batch(batch: Arrays) -> Dict[str, jax.Array]:
  """Puts a host batch on the devices as global arrays split along axis 0."""
  return jax.device_put(batch, batch_sharding())


def masked_loss(per_example: jax.Array,
                mask: Optional[jax.Array] = None) -> Dict[str, jax.Array]:
  """AlgoPerf's loss dict from unmasked losses and an optional 0/1 mask.

  'per_example' = l * m, 'summed' = sum(l * m), 'n_valid_examples' = sum(m)
  (every entry of `per_example` counts when there is no mask).
  """
  if mask is None:
    return {'summed': per_example.sum(), 'n_valid_examples': per_example.size,
            'per_example': per_example}
  per_example = per_example * mask
  return {'summed': per_example.sum(), 'n_valid_examples': mask.sum(),
          'per_example': per_example}


def softmax_cross_entropy(labels: jax.Array, logits: jax.Array,
                          mask: Optional[jax.Array] = None,
                          label_smoothing: float = 0.0
                          ) -> Dict[str, jax.Array]:
  """-sum_c y_c log softmax(z)_c, y the one-hot labels smoothed as optax."""
  targets = optax.smooth_labels(
      jax.nn.one_hot(labels, logits.shape[-1]), label_smoothing)
  return masked_loss(-jnp.sum(targets * jax.nn.log_softmax(logits), -1), mask)


def accuracy_sums(logits: jax.Array,
                  batch: Dict[str, Any]) -> Dict[str, jax.Array]:
  """{'accuracy': number of correct argmax predictions, weighted}."""
  correct = jnp.argmax(logits, -1) == batch['targets']
  return {'accuracy': jnp.sum(correct * batch['weights'])}


def sinusoids(length: int, width: int) -> np.ndarray:
  """(length, width) fixed position encodings, the sines then the cosines of
  t / 10000^(2i / width) for positions t < length and i < width / 2."""
  rates = 1.0 / 10_000 ** (np.arange(0, width, 2) / width)
  angles = np.arange(length)[:, None] * rates[None, :]
  return np.concatenate([np.sin(angles), np.cos(angles)], 1).astype(
      np.float32)


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
      size = {'eval_train': self.num_eval_train_examples,
              'validation': self.num_validation_examples,
              'test': self.num_test_examples}[split]
      host = _repeat(lambda: eval_batches(self._eval_source(split),
                                          global_batch_size, size),
                     bool(repeat_final_dataset))
    queue = map(shard_batch, host)
    return queue if num_batches is None else _take(queue, num_batches)

  def _eval_source(self, split: str) -> Arrays:
    """The arrays an eval split reads ('eval_train' reads 'train')."""
    return self.splits['train' if split == 'eval_train' else split]

  # --- Model ----------------------------------------------------------------

  @abc.abstractmethod
  def _build_model(self) -> nn.Module:
    """The flax module: `module(inputs, train=, dropout_rate=) -> logits`."""

  def _init_inputs(self) -> Any:
    """A batch of one example's 'inputs' to trace the model with."""
    return jnp.zeros((1,) + tuple(self.input_shape), jnp.float32)

  def init_model_fn(self, rng: spec.RandomState) -> spec.ModelInitState:
    """Replicated initial params and batch-norm statistics (None if none)."""
    self._model = self._build_model()
    dummy = self._init_inputs()
    variables = jax.jit(lambda r: self._model.init(
        {'params': r}, dummy, train=False))(rng)
    variables = flax.core.unfreeze(variables)
    params = variables['params']
    model_state = variables.get('batch_stats')
    self._param_shapes = jax.tree.map(lambda x: spec.ShapeTuple(x.shape),
                                      params)
    self._param_types = param_types_from_shapes(self._param_shapes)
    self._eval_step = jax.jit(
        self._eval_step_fn,
        in_shardings=(replicated_sharding(), replicated_sharding(),
                      batch_sharding()),
        out_shardings=(replicated_sharding(), batch_sharding()))
    return jax.device_put((params, model_state), replicated_sharding())

  def model_fn(self, params: spec.ParameterContainer,
               augmented_and_preprocessed_input_batch: Dict[str, spec.Tensor],
               model_state: spec.ModelAuxiliaryState,
               mode: spec.ForwardPassMode, rng: spec.RandomState,
               update_batch_norm: bool, dropout_rate: float = 0.0
               ) -> Tuple[spec.Tensor, spec.ModelAuxiliaryState]:
    """Logits; in TRAIN mode with `update_batch_norm`, new batch statistics.

    Batch norm normalises by the batch's statistics in TRAIN mode and by the
    running ones in EVAL mode, as AlgoPerf's workloads do.
    """
    train = mode == spec.ForwardPassMode.TRAIN
    inputs = augmented_and_preprocessed_input_batch['inputs']
    rngs = {'dropout': rng} if train else {}
    if model_state is None:
      logits = self._model.apply({'params': params}, inputs, train=train,
                                 dropout_rate=dropout_rate, rngs=rngs)
      return logits, None
    variables = {'params': params, 'batch_stats': model_state}
    if not train:
      return self._model.apply(variables, inputs, train=False), model_state
    logits, updated = self._model.apply(
        variables, inputs, train=True, dropout_rate=dropout_rate, rngs=rngs,
        mutable=['batch_stats'])
    return logits, (updated['batch_stats'] if update_batch_norm
                    else model_state)

  # --- Metrics and evaluation ----------------------------------------------

  def _eval_metric_sums(self, logits: Any,
                        batch: Dict[str, Any]) -> Dict[str, jax.Array]:
    """Weighted sums of metrics other than the loss (none by default)."""
    del logits, batch
    return {}

  def _eval_predictions(self, params: spec.ParameterContainer,
                        model_state: spec.ModelAuxiliaryState,
                        batch: Dict[str, Any],
                        logits: Any) -> Dict[str, jax.Array]:
    """Per-example outputs gathered on the host (none by default).

    Runs inside the jitted eval step, e.g. greedy decoding or probabilities;
    every array has the batch dimension first.
    """
    del params, model_state, batch, logits
    return {}

  def _metrics_from_predictions(self, predictions: Dict[str, np.ndarray],
                                arrays: Arrays) -> Dict[str, float]:
    """Metrics from a whole split's `predictions` and its host `arrays`."""
    del predictions, arrays
    return {}

  def _metrics_from_sums(self, totals: Dict[str, float],
                         num_examples: int) -> Dict[str, float]:
    """Means per example of the summed metrics (override for per token)."""
    return {name: total / num_examples for name, total in totals.items()}

  def _eval_step_fn(self, params, model_state, batch):
    logits, _ = self.model_fn(params, batch, model_state,
                              spec.ForwardPassMode.EVAL, None, False)
    sums = self._eval_metric_sums(logits, batch)
    sums['loss'] = self.loss_fn(batch['targets'], logits,
                                batch['weights'])['summed']
    return sums, self._eval_predictions(params, model_state, batch, logits)

  def _eval_model_on_split(self, split: str, num_examples: int,
                           global_batch_size: int,
                           params: spec.ParameterContainer,
                           model_state: spec.ModelAuxiliaryState,
                           rng: spec.RandomState, data_dir: str,
                           global_step: int = 0) -> Dict[str, float]:
    """Each metric over the first `num_examples` of `split`."""
    del rng, data_dir, global_step
    totals, gathered = {}, []
    source = self._eval_source(split)
    for batch in map(shard_batch, eval_batches(source, global_batch_size,
                                               num_examples)):
      sums, predictions = self._eval_step(params, model_state, batch)
      for name, value in sums.items():
        totals[name] = totals.get(name, 0.0) + np.float64(value)
      gathered.append(jax.device_get(predictions))
    metrics = self._metrics_from_sums(totals, num_examples)
    if gathered[0]:
      predictions = jax.tree.map(
          lambda *parts: np.concatenate(parts)[:num_examples], *gathered)
      arrays = jax.tree.map(lambda v: v[:num_examples], source)
      metrics.update(self._metrics_from_predictions(predictions, arrays))
    return {name: float(value) for name, value in metrics.items()}

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
