"""AlgoPerf's submission functions, shared by every submission here.

The optimizer state handed to AlgoPerf is `(TrainState, Static)`. AlgoPerf
checkpoints only the first element (flax serialization), so it holds arrays
only; the second holds the compiled train step and the eval-params rule.
`TrainState.params` are the raw weights: `update_params` always trains from
them, whatever params the runner hands it, and `prepare_for_eval` returns
whichever weights the submission wants evaluated (raw, averaged, or
schedule-free's `x`), which the runner then keeps until the next update.
"""

from typing import (Any, Callable, Dict, Iterator, List, Mapping, NamedTuple,
                    Optional, Tuple)

import jax
import jax.numpy as jnp
import optax

from submissions import optim
from submissions.common.eval_params import track_loss_gap
from submissions.common.eval_params import raw_params
from submissions.common.eval_params import Select
from submissions.common.eval_params import selected_params
from submissions.common.host_lawa import host_lawa_step
from submissions.common.host_lawa import joined
from submissions.common.host_lawa import HostLawa
from submissions.common.train_step import make_train_step
from submissions.common.train_step import shardings
from submissions.common.train_step import make_batch_loss
from submissions.common.train_step import spec
from submissions.common.train_step import TrainState

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


class Static(NamedTuple):
  """The half of the optimizer state AlgoPerf neither saves nor restores."""
  train_step: Callable  # (model_state, TrainState, batch, rng) -> outputs.
  eval_params: Callable[[TrainState], optax.Params]
  host_lawa: Optional[HostLawa] = None
  select: Optional[Select] = None


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
  replicated, _ = shardings()
  opt_state = jax.jit(optimizer.init, out_shardings=replicated)(model_params)
  select, loss_gap = None, None
  if select_every_steps is not None:
    select = Select(select_every_steps, make_batch_loss(workload))
    eval_params = selected_params
    loss_gap = jax.device_put(jnp.zeros([], jnp.float32), replicated)
  static = Static(
      train_step=make_train_step(workload, optimizer, hparams),
      eval_params=eval_params,
      host_lawa=host_lawa,
      select=select)
  host = (None if host_lawa is None else
          optim.lawa_host_init(model_params, host_lawa.queue_length))
  return TrainState(model_params, opt_state, host, loss_gap), static


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
    state = track_loss_gap(state, static.select, model_state, batch, rng)
  on_device, model_state, loss, grad_norm = static.train_step(
      model_state, TrainState(state.params, state.opt_state), batch, rng)
  state = state._replace(params=on_device.params,
                         opt_state=on_device.opt_state)
  if static.host_lawa is not None:
    state = host_lawa_step(state, static.host_lawa)
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
  state = joined(state)
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
