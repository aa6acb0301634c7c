"""The jitted train step of AlgoPerf's baseline and what it runs on.

`TrainState` (the checkpointed half of the optimizer state), the shardings
over all devices, and `make_batch_loss`, the eval-mode loss of a batch.
"""

import concurrent.futures
from typing import Callable, Mapping, NamedTuple, Optional, Tuple

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


def shardings() -> Tuple[NamedSharding, NamedSharding]:
  """(replicated, batch-sharded) over all devices, as AlgoPerf lays them out."""
  mesh = Mesh(jax.devices(), ('batch',))
  return NamedSharding(mesh, PartitionSpec()), NamedSharding(
      mesh, PartitionSpec('batch'))


def make_train_step(workload: spec.Workload,
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

  replicated, batch_sharded = shardings()
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

  replicated, batch_sharded = shardings()
  return jax.jit(batch_loss,
                 in_shardings=(replicated, replicated, batch_sharded,
                               replicated),
                 out_shardings=replicated)
