"""The eval-params rules: which weights `prepare_for_eval` hands over.

With a `Select` rule, `TrainState.loss_gap` sums, every `every_steps`
updates, the loss of the averaged weights minus that of the raw weights on
the batch about to be trained on; `prepare_for_eval` hands over the average
only if the sum since the previous eval is < 0, then zeroes it.
"""

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from submissions import optim
from submissions.common.train_step import TrainState


class Select(NamedTuple):
  """Raw or averaged weights at each eval, by their training-batch loss."""
  every_steps: int
  batch_loss: Callable  # (params, model_state, batch, rng) -> mean loss.


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


def track_loss_gap(state: TrainState, select: Select, model_state,
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
