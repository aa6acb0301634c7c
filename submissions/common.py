"""AlgoPerf plumbing shared by every submission in this package.

The optimizer state handed to AlgoPerf is `(TrainState, static)`. AlgoPerf
checkpoints only the first element (flax serialization), so it holds arrays
only; the second holds the compiled train step and the eval-params rule.
`TrainState.params` are the raw weights: `update_params` always trains from
them, whatever params the runner hands it, and `prepare_for_eval` returns
whichever weights the submission wants evaluated (raw, averaged, or
schedule-free's `x`), which the runner then keeps until the next update.

With a `Select` rule, `TrainState.loss_gap` sums, every `every_steps`
updates, the loss of the averaged weights minus that of the raw weights on
the batch about to be trained on; `prepare_for_eval` hands over the average
only if the sum since the previous eval is < 0, then zeroes it.

`TrainState.host` holds what lives in host memory: LAWA's queue when it is
kept there (`HostLawa`). Only `params` and `opt_state` enter the jitted step;
on a snapshot step the new weights are copied on the device, sent to the host
asynchronously and pushed onto the queue by a worker thread, which the next
snapshot step or `prepare_for_eval` waits for. So every state
`prepare_for_eval` returns, which is what both runners checkpoint, holds the
whole queue.
"""

import concurrent.futures
import functools
import numbers
from typing import Any, Callable, Dict, Iterator, List, Mapping, NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

try:
  from algoperf import spec
except ImportError:
  from localperf import spec

from submissions import optim

_GRAD_CLIP_EPS = 1e-6
_LOG_EVERY_STEPS = 100

# Global batch sizes: AlgoPerf's NadamW baseline for its workloads, and ours
# for the CPU workloads of `localperf`.
BATCH_SIZES = {
    'criteo1tb': 262_144,
    'fastmri': 32,
    'imagenet_resnet': 1024,
    'imagenet_resnet_silu': 512,
    'imagenet_resnet_gelu': 512,
    'imagenet_vit': 1024,
    'librispeech_conformer': 256,
    'librispeech_deepspeech': 256,
    'ogbg': 512,
    'wmt': 128,
    'finewebedu_lm': 64,
    'mnist': 16,
    'cifar': 16384,
    # localperf's CPU workloads.
    'mnist1d': 128,
    'ctr_dlrm': 256,
    'kspace_unet': 8,
    'shapes_vit': 64,
    'ctc_conformer': 32,
    'ctc_lstm': 32,
    'molgraph_gnn': 32,
    'seq2seq_transformer': 32,
}


class TrainState(NamedTuple):
  """The checkpointed half of the optimizer state."""
  params: optax.Params  # The raw weights training continues from.
  opt_state: optax.OptState
  host: Optional[optim.LawaHostState] = None  # NumPy, never on a device.
  # float32 scalar: sum of loss(average) - loss(raw) since the last eval.
  loss_gap: Optional[jax.Array] = None
  # A `Future` of `host` with the last snapshot pushed; None in every state
  # `prepare_for_eval` returns.
  host_pending: Optional[concurrent.futures.Future] = None


class HostLawa(NamedTuple):
  """A LAWA queue kept in host memory: its length and snapshot rule."""
  queue_length: int
  every_k: int
  start_step: int


class Select(NamedTuple):
  """Raw or averaged weights at each eval, by their training-batch loss."""
  every_steps: int
  batch_loss: Callable  # (params, model_state, batch, rng) -> mean loss.


class Static(NamedTuple):
  """The half of the optimizer state AlgoPerf neither saves nor restores."""
  train_step: Callable  # (model_state, TrainState, batch, rng) -> outputs.
  eval_params: Callable[[TrainState], optax.Params]
  host_lawa: Optional[HostLawa] = None
  select: Optional[Select] = None


# ----------------------------------------------------------------------------
# Hyperparameters.


def _is_fraction(v, closed_high=False, open_low=False):
  low_ok = v > 0 if open_low else v >= 0
  return low_ok and (v <= 1 if closed_high else v < 1)


def _is_positive_int(v):
  return float(v).is_integer() and v >= 1


_RULES: Dict[str, Tuple[Callable[[float], bool], str]] = {
    'learning_rate': (lambda v: v > 0, 'a number > 0'),
    'one_minus_beta1': (lambda v: 0 < v < 1, 'a number in (0, 1)'),
    'beta2': (lambda v: 0 < v < 1, 'a number in (0, 1)'),
    'weight_decay': (lambda v: v >= 0, 'a number >= 0'),
    'warmup_factor': (lambda v: _is_fraction(v, closed_high=True),
                      'a number in [0, 1]'),
    'dropout_rate': (_is_fraction, 'a number in [0, 1)'),
    'label_smoothing': (_is_fraction, 'a number in [0, 1)'),
    'grad_clip': (lambda v: v > 0, 'a number > 0'),
    'averaging_start_fraction': (_is_fraction, 'a number in [0, 1)'),
    'averaging_window_fraction': (
        lambda v: _is_fraction(v, closed_high=True, open_low=True),
        'a number in (0, 1]'),
    'ema_decay': (_is_fraction, 'a number in [0, 1)'),
    'lawa_queue_length': (_is_positive_int, 'an integer >= 1'),
    'lawa_queue_location': (lambda v: v in LAWA_QUEUE_LOCATIONS,
                            "'host' or 'device'"),
    'averaging_every_steps': (_is_positive_int, 'an integer >= 1'),
    'weight_lr_power': (lambda v: v >= 0, 'a number >= 0'),
    'decay_start_fraction': (_is_fraction, 'a number in [0, 1)'),
    'decay_end_fraction': (
        lambda v: _is_fraction(v, closed_high=True, open_low=True),
        'a number in (0, 1]'),
    'ema_max_window_fraction': (
        lambda v: _is_fraction(v, closed_high=True, open_low=True),
        'a number in (0, 1]'),
    'ema_min_window_fraction': (
        lambda v: _is_fraction(v, closed_high=True, open_low=True),
        'a number in (0, 1]'),
    'select_every_steps': (_is_positive_int, 'an integer >= 1'),
}


# Where LAWA keeps its snapshots: host memory (a running sum, no copy on the
# device between snapshots), or the device (L param copies in the state).
LAWA_QUEUE_LOCATIONS = ('host', 'device')
_CHOICES = ('lawa_queue_location',)  # Hyperparameters that are strings.

# Hyperparameters a trial may leave out, and their value when it does.
OPTIONAL_HYPERPARAMETERS = {
    'label_smoothing': 0.0,
    'grad_clip': None,
    'averaging_every_steps': None,
    'lawa_queue_location': 'host',
    'weight_lr_power': 2.0,
    'decay_start_fraction': None,
    'decay_end_fraction': 1.0,
    'select_every_steps': None,
}


def read_hyperparameters(
    hyperparameters: Any,
    self_tuning: Mapping[str, Optional[float]],
) -> Dict[str, Optional[float]]:
  """Checks the hyperparameters a submission reads and returns them as a dict.

  Args:
    hyperparameters: AlgoPerf's namedtuple (or a mapping) of one trial, or
      `None` under the self-tuning ruleset, which selects `self_tuning`.
    self_tuning: every hyperparameter the submission reads, with its
      self-tuning value. Names in `OPTIONAL_HYPERPARAMETERS` may be absent
      from a trial; all others are required.

  Returns:
    `{name: value}` for every name of `self_tuning`.

  Raises:
    ValueError: naming the hyperparameter that is missing or out of range.
  """
  if hyperparameters is None:
    given = dict(self_tuning)
  elif isinstance(hyperparameters, Mapping):
    given = dict(hyperparameters)
  else:
    given = {k: getattr(hyperparameters, k) for k in self_tuning
             if hasattr(hyperparameters, k)}
  values = {}
  for name in self_tuning:
    if name not in given and name not in OPTIONAL_HYPERPARAMETERS:
      raise ValueError(
          f'Missing hyperparameter `{name}`; this submission reads '
          f'{sorted(self_tuning)}.')
    value = given.get(name, OPTIONAL_HYPERPARAMETERS.get(name))
    check, accepted = _RULES[name]
    is_number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if value is not None and (
        not (is_number or name in _CHOICES) or not check(value)):
      raise ValueError(
          f'Hyperparameter `{name}` must be {accepted}, got {value!r}.')
    values[name] = value
  return values


def check_hyperparameters(hyperparameters: Any,
                          self_tuning: Mapping[str, Optional[float]]) -> None:
  """`read_hyperparameters`, also rejecting names the submission never reads.

  localperf's runner calls a submission's `check_hyperparameters` on every
  trial's point before training, so a typo in a search space fails at once.
  """
  given = (hyperparameters._asdict() if hasattr(hyperparameters, '_asdict')
           else dict(hyperparameters or {}))
  unknown = sorted(set(given) - set(self_tuning))
  if unknown:
    raise ValueError(
        f'Unknown hyperparameter(s) {unknown}; this submission reads '
        f'{sorted(self_tuning)}.')
  read_hyperparameters(hyperparameters, self_tuning)


# ----------------------------------------------------------------------------
# Shardings and the train step.


def _shardings() -> Tuple[NamedSharding, NamedSharding]:
  """(replicated, batch-sharded) over all devices, as AlgoPerf lays them out."""
  mesh = Mesh(jax.devices(), ('batch',))
  return NamedSharding(mesh, PartitionSpec()), NamedSharding(
      mesh, PartitionSpec('batch'))


def _make_train_step(workload: spec.Workload,
                     optimizer: optax.GradientTransformation,
                     hparams: Mapping[str, Optional[float]]) -> Callable:
  """One jitted step of AlgoPerf's baseline, training `TrainState.params`.

  As in the baseline, `grad_clip`, `label_smoothing` and `dropout_rate` enter
  the compiled step as traced arguments: baked in as Python constants, XLA
  folds them differently (e.g. `label_smoothing / num_classes` in float64)
  and the trajectory drifts from the baseline's by rounding. With `g` the
  mean gradient, clipping scales it by `clamp(grad_clip / (|g| + 1e-6), 0, 1)`.
  """
  step_hparams = (hparams['grad_clip'], hparams['label_smoothing'],
                  hparams['dropout_rate'])

  def train_step(model_state, state, batch, rng, grad_clip, label_smoothing,
                 dropout_rate):

    def loss_fn(params):
      logits, new_model_state = workload.model_fn(
          params, batch, model_state, spec.ForwardPassMode.TRAIN, rng,
          update_batch_norm=True, dropout_rate=dropout_rate)
      losses = workload.loss_fn(
          label_batch=batch['targets'], logits_batch=logits,
          mask_batch=batch.get('weights'), label_smoothing=label_smoothing)
      return losses['summed'], (losses['n_valid_examples'], new_model_state)

    (summed, (n_valid, new_model_state)), grad = jax.value_and_grad(
        loss_fn, has_aux=True)(state.params)
    loss = summed / n_valid
    grad = jax.tree_util.tree_map(lambda g: g / n_valid, grad)
    grad_norm = jnp.sqrt(
        sum(jnp.sum(g**2) for g in jax.tree_util.tree_leaves(grad)))
    if grad_clip is not None:  # None stays None: an empty pytree.
      scale = jax.lax.clamp(
          0.0, grad_clip / (grad_norm + _GRAD_CLIP_EPS), 1.0)
      grad = jax.tree_util.tree_map(lambda g: g * scale, grad)
    updates, opt_state = optimizer.update(grad, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    return TrainState(params, opt_state), new_model_state, loss, grad_norm

  replicated, batch_sharded = _shardings()
  jitted = jax.jit(
      train_step,
      in_shardings=(replicated, replicated, batch_sharded, replicated,
                    replicated, replicated, replicated),
      out_shardings=replicated,
      donate_argnums=(0, 1))

  def step(model_state, state, batch, rng):
    return jitted(model_state, state, batch, rng, *step_hparams)

  return step


def make_batch_loss(workload: spec.Workload) -> Callable:
  """`(params, model_state, batch, rng) -> mean loss`, jitted, in eval mode.

  No dropout, no batch-norm update, no label smoothing: the loss the model
  `params` has on a training batch, `summed / n_valid`.
  """

  def batch_loss(params, model_state, batch, rng):
    logits, _ = workload.model_fn(
        params, batch, model_state, spec.ForwardPassMode.EVAL, rng,
        update_batch_norm=False)
    losses = workload.loss_fn(
        label_batch=batch['targets'], logits_batch=logits,
        mask_batch=batch.get('weights'), label_smoothing=0.0)
    return losses['summed'] / losses['n_valid_examples']

  replicated, batch_sharded = _shardings()
  return jax.jit(batch_loss,
                 in_shardings=(replicated, replicated, batch_sharded,
                               replicated),
                 out_shardings=replicated)


def raw_params(state: TrainState) -> optax.Params:
  """Evaluate the raw weights (AlgoPerf's baseline behaviour)."""
  return state.params


def averaged_params(state: TrainState) -> optax.Params:
  """Evaluate the EMA/LAWA average once ready, the raw weights before.

  One host sync per eval, none per step. An EMA of float32 params is handed
  over as it is (no copy); a LAWA mean is computed here, once per eval: on
  the device, or in host memory and then copied to the params' devices.
  """
  averaging = state.opt_state if state.host is None else state.host
  if not bool(optim.is_average_ready(averaging)):
    return state.params
  if state.host is not None:
    return jax.tree_util.tree_map(
        lambda a, p: jax.device_put(a.astype(p.dtype), p.sharding),
        optim.average_of(averaging), state.params)
  return jax.tree_util.tree_map(
      lambda a, p: a if a.dtype == p.dtype else a.astype(p.dtype),
      optim.average_of(averaging), state.params)


def selected_params(state: TrainState) -> optax.Params:
  """`averaged_params` if the average had the lower training-batch loss
  since the previous eval (`loss_gap < 0`), else the raw weights."""
  if not bool(state.loss_gap < 0):
    return state.params
  return averaged_params(state)


def _track_loss_gap(state: TrainState, select: Select, model_state,
                    batch, rng) -> TrainState:
  """`loss_gap += loss(average) - loss(raw)` on `batch`, on the device.

  Adds 0 before the average is ready. The float32 average is scored as it
  is (no copy, no host sync).
  """
  averaging = optim.find_averaging_state(state.opt_state)
  gap = (select.batch_loss(optim.average_of(averaging), model_state, batch,
                           rng)
         - select.batch_loss(state.params, model_state, batch, rng))
  ready = optim.is_average_ready(averaging)
  return state._replace(loss_gap=state.loss_gap + jnp.where(ready, gap, 0.0))


@functools.lru_cache(maxsize=None)
def _host_worker() -> concurrent.futures.ThreadPoolExecutor:
  """One thread that moves snapshots into host queues, in submission order."""
  return concurrent.futures.ThreadPoolExecutor(
      max_workers=1, thread_name_prefix='lawa_host')


def _joined(state: TrainState) -> TrainState:
  """`state` once its snapshot in flight, if any, is on the host queue."""
  if state.host_pending is None:
    return state
  pushed = state.host_pending.result()
  return state._replace(host=pushed._replace(count=state.host.count),
                        host_pending=None)


def _host_lawa_step(state: TrainState, rule: HostLawa) -> TrainState:
  """Counts a finished update; on a snapshot step, queues its weights.

  The weights are copied on their devices (the next step donates them) and
  the copy starts for the host at once; the worker thread pushes it onto the
  queue while training goes on, dropping the device copy when done.
  """
  if not optim.lawa_host_takes_snapshot(state.host, rule.every_k,
                                        rule.start_step):
    return state._replace(host=optim.lawa_host_count(state.host))
  state = _joined(state)
  snapshot = jax.tree_util.tree_map(
      lambda p: jax.device_put(p, p.sharding, may_alias=False), state.params)
  for leaf in jax.tree_util.tree_leaves(snapshot):
    leaf.copy_to_host_async()
  pending = _host_worker().submit(optim.lawa_host_push, state.host, snapshot)
  return state._replace(host=optim.lawa_host_count(state.host),
                        host_pending=pending)


def averaging_start_step(hparams: Mapping[str, Any], step_hint: int) -> int:
  """`round(averaging_start_fraction * step_hint)`: the first snapshot step."""
  return round(hparams['averaging_start_fraction'] * step_hint)


def init_optimizer_state(
    workload: spec.Workload,
    model_params: spec.ParameterContainer,
    optimizer: optax.GradientTransformation,
    hparams: Mapping[str, Optional[float]],
    eval_params: Callable[[TrainState], optax.Params] = raw_params,
    host_lawa: Optional[HostLawa] = None,
    select_every_steps: Optional[int] = None,
) -> Tuple[TrainState, Static]:
  """`(TrainState, Static)` for `optimizer`, owning `model_params`.

  The raw weights are the runner's own arrays (no copy); the optimizer state
  is built under `jit` so it comes out replicated like them. With
  `host_lawa`, an empty LAWA queue in host memory goes with them. With
  `select_every_steps`, the eval weights follow the training-batch loss
  rule (`selected_params`; the optimizer's average must be on the device).
  """
  replicated, _ = _shardings()
  opt_state = jax.jit(optimizer.init, out_shardings=replicated)(model_params)
  select, loss_gap = None, None
  if select_every_steps is not None:
    select = Select(select_every_steps, make_batch_loss(workload))
    eval_params = selected_params
    loss_gap = jax.device_put(jnp.zeros([], jnp.float32), replicated)
  static = Static(
      train_step=_make_train_step(workload, optimizer, hparams),
      eval_params=eval_params,
      host_lawa=host_lawa,
      select=select)
  host = (None if host_lawa is None else
          optim.lawa_host_init(model_params, host_lawa.queue_length))
  return TrainState(model_params, opt_state, host, loss_gap), static


# ----------------------------------------------------------------------------
# AlgoPerf's submission functions, shared by every submission here.


def update_params(
    workload: spec.Workload,
    current_param_container: spec.ParameterContainer,
    current_params_types: spec.ParameterTypeTree,
    model_state: spec.ModelAuxiliaryState,
    hyperparameters: spec.Hyperparameters,
    batch: Dict[str, spec.Tensor],
    loss_type: spec.LossType,
    optimizer_state: spec.OptimizerState,
    eval_results: List[Tuple[int, float]],
    global_step: int,
    rng: spec.RandomState,
    train_state: Optional[Dict[str, Any]] = None,
) -> spec.UpdateReturn:
  """One step from the raw weights; returns them as the new params."""
  del current_param_container  # Maybe averaged: training uses the raw ones.
  del current_params_types, hyperparameters, loss_type, eval_results
  del train_state
  state, static = optimizer_state
  if static.select is not None and global_step % static.select.every_steps == 0:
    state = _track_loss_gap(state, static.select, model_state, batch, rng)
  on_device, model_state, loss, grad_norm = static.train_step(
      model_state, TrainState(state.params, state.opt_state), batch, rng)
  state = state._replace(params=on_device.params,
                         opt_state=on_device.opt_state)
  if static.host_lawa is not None:
    state = _host_lawa_step(state, static.host_lawa)
  if global_step % _LOG_EVERY_STEPS == 0 and workload.metrics_logger is not None:
    workload.metrics_logger.append_scalar_metrics(
        {'loss': loss.item(), 'grad_norm': grad_norm.item()}, global_step)
  return (state, static), state.params, model_state


def prepare_for_eval(
    workload: spec.Workload,
    current_param_container: spec.ParameterContainer,
    current_params_types: spec.ParameterTypeTree,
    model_state: spec.ModelAuxiliaryState,
    hyperparameters: spec.Hyperparameters,
    loss_type: spec.LossType,
    optimizer_state: spec.OptimizerState,
    eval_results: List[Tuple[int, float]],
    global_step: int,
    rng: spec.RandomState,
) -> spec.UpdateReturn:
  """Hands the runner the weights to evaluate; the state keeps the raw ones.

  A snapshot still on its way to the host queue is waited for first; the
  loss gap of a `Select` rule starts again from 0.
  """
  del workload, current_param_container, current_params_types
  del hyperparameters, loss_type, eval_results, global_step, rng
  state, static = optimizer_state
  state = _joined(state)
  params = static.eval_params(state)
  if state.loss_gap is not None:
    state = state._replace(loss_gap=jax.device_put(
        jnp.zeros([], jnp.float32), state.loss_gap.sharding))
  return (state, static), params, model_state


def data_selection(
    workload: spec.Workload,
    input_queue: Iterator[Dict[str, spec.Tensor]],
    optimizer_state: spec.OptimizerState,
    current_param_container: spec.ParameterContainer,
    model_state: spec.ModelAuxiliaryState,
    hyperparameters: spec.Hyperparameters,
    global_step: int,
    rng: spec.RandomState,
) -> Dict[str, spec.Tensor]:
  """The next batch of the pre-shuffled input queue."""
  del workload, optimizer_state, current_param_container, model_state
  del hyperparameters, global_step, rng
  return next(input_queue)


def get_batch_size(workload_name: str) -> int:
  """The global batch size for `workload_name`."""
  if workload_name not in BATCH_SIZES:
    raise ValueError(
        f'Unsupported workload name: {workload_name!r}; supported: '
        f'{sorted(BATCH_SIZES)}.')
  return BATCH_SIZES[workload_name]
