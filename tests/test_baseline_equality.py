"""nadamw against AlgoPerf's JAX NadamW baseline, bit for bit.

The reference restates AlgoPerf v0.6's `jax_nadamw_full_budget.py` (external
and self-tuning): its NadamW (moments, Nesterov look-ahead, bias correction,
`+ eps_root` inside the square root, decoupled weight decay, learning rate
from `join_schedules(linear warmup, cosine)`), and its train step, one
`jax.jit` with the workload and update function static, model state,
optimizer state and params donated, and `grad_clip`, `label_smoothing`,
`dropout_rate` passed as traced arguments; the gradient is scaled by
`lax.clamp(0, grad_clip / (|g| + 1e-6), 1)`. Baked into the step as Python
constants instead, label smoothing alone moves the step-0 gradient by
rounding and the trajectories part.
"""

import collections
import json
import os
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from localperf import spec
from localperf import toy_workload
from submissions.nadamw import submission as nadamw

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEP_HINT = 40
NUM_STEPS = 12
GRAD_CLIP_EPS = 1e-6

with open(os.path.join(REPO, 'submissions', 'nadamw',
                       'tuning_search_space.json'), encoding='utf-8') as f:
  SEARCH_SPACE = json.load(f)
# The search space has no grad_clip; AlgoPerf's baseline reads it if given.
EXTRA_POINTS = [
    {**SEARCH_SPACE[0], 'grad_clip': 0.05},  # Clips (|g| ~ 1 here).
    {**SEARCH_SPACE[4], 'label_smoothing': 0.1, 'grad_clip': 1e3},
]


# ----------------------------------------------------------------------------
# The baseline, restated.


class BaselineNadamState(NamedTuple):
  count: jax.Array
  mu: optax.Updates
  nu: optax.Updates


def baseline_scale_by_nadam(b1, b2, eps, eps_root=0.0):
  ema = lambda decay, order: lambda g, t: (1 - decay) * (g**order) + decay * t

  def init(params):
    return BaselineNadamState(jnp.zeros([], jnp.int32),
                              jax.tree.map(jnp.zeros_like, params),
                              jax.tree.map(jnp.zeros_like, params))

  def update(grads, state, params=None):
    del params
    mu = jax.tree.map(ema(b1, 1), grads, state.mu)
    nu = jax.tree.map(ema(b2, 2), grads, state.nu)
    count = state.count + jnp.array(1, dtype=jnp.int32)
    mu_hat = jax.tree.map(ema(b1, 1), grads, mu)
    mu_hat = jax.tree.map(lambda t: t / (1 - b1**count).astype(t.dtype),
                          mu_hat)
    nu_hat = jax.tree.map(lambda t: t / (1 - b2**count).astype(t.dtype), nu)
    updates = jax.tree.map(lambda m, v: m / (jnp.sqrt(v + eps_root) + eps),
                           mu_hat, nu_hat)
    return updates, BaselineNadamState(count, mu, nu)

  return optax.GradientTransformation(init, update)


def baseline_optimizer(hp, step_hint):
  warmup_steps = int(hp['warmup_factor'] * step_hint)
  schedule = optax.join_schedules(
      [optax.linear_schedule(0.0, hp['learning_rate'], warmup_steps),
       optax.cosine_decay_schedule(hp['learning_rate'],
                                   max(step_hint - warmup_steps, 1))],
      boundaries=[warmup_steps])
  return optax.chain(
      baseline_scale_by_nadam(1.0 - hp['one_minus_beta1'], hp['beta2'], 1e-8),
      optax.add_decayed_weights(hp['weight_decay']),
      optax.scale_by_schedule(lambda count: -1 * schedule(count)))


def baseline_train_step(workload, update_fn, model_state, opt_state, params,
                        batch, rng, grad_clip, label_smoothing, dropout_rate):

  def loss_fn(p):
    logits, new_model_state = workload.model_fn(
        p, batch, model_state, spec.ForwardPassMode.TRAIN, rng,
        update_batch_norm=True, dropout_rate=dropout_rate)
    losses = workload.loss_fn(
        label_batch=batch['targets'], logits_batch=logits,
        mask_batch=batch.get('weights'), label_smoothing=label_smoothing)
    return losses['summed'], (losses['n_valid_examples'], new_model_state)

  (summed, (n_valid, new_model_state)), grad = jax.value_and_grad(
      loss_fn, has_aux=True)(params)
  loss = summed / n_valid
  grad = jax.tree.map(lambda g: g / n_valid, grad)
  grad_norm = jnp.sqrt(sum(jnp.sum(g**2) for g in jax.tree.leaves(grad)))
  if grad_clip is not None:
    factor = jax.lax.clamp(min=0.0, x=grad_clip / (grad_norm + GRAD_CLIP_EPS),
                           max=1.0)
    grad = jax.tree.map(lambda g: g * factor, grad)
  updates, opt_state = update_fn(grad, opt_state, params)
  params = optax.apply_updates(params, updates)
  return opt_state, params, new_model_state, loss, grad_norm


def _baseline_jit(train_step):
  mesh = Mesh(jax.devices(), ('batch',))
  replicated = NamedSharding(mesh, PartitionSpec())
  sharded = NamedSharding(mesh, PartitionSpec('batch'))
  return jax.jit(
      train_step, static_argnums=(0, 1), donate_argnums=(2, 3, 4),
      in_shardings=(replicated, replicated, replicated, sharded, replicated,
                    replicated, replicated, replicated),
      out_shardings=(replicated,) * 5)


def baseline_trajectory(point, num_steps, train_step=baseline_train_step):
  """Params after each step, the baseline's `update_params` restated."""
  workload = _workload()
  rng, params, model_state, queue = _start(workload)
  hp = nadamw.SELF_TUNING_HYPERPARAMETERS if point is None else point
  optimizer = baseline_optimizer(hp, STEP_HINT)
  opt_state = optimizer.init(
      jax.tree.map(lambda p: jnp.zeros(p.shape), params))
  step = _baseline_jit(train_step)
  trajectory = []
  for global_step in range(num_steps):
    # A dict's hasattr is False: the self-tuning baseline reads neither key.
    label_smoothing = (hp.get('label_smoothing', 0.0) if point is not None
                       else 0.0)
    grad_clip = hp.get('grad_clip') if point is not None else None
    opt_state, params, model_state, _, _ = step(
        workload, optimizer.update, model_state, opt_state, params,
        next(queue), _update_rng(rng, global_step), grad_clip,
        label_smoothing, hp['dropout_rate'])
    trajectory.append(jax.tree.map(np.asarray, params))
  return trajectory


# ----------------------------------------------------------------------------
# The submission, called as AlgoPerf's runner calls it.


def _workload():
  # Ten classes, as AlgoPerf's mnist: label_smoothing / 10 is inexact in
  # float32, so a constant folded in float64 rounds differently.
  return toy_workload.ToyWorkload(step_hint=STEP_HINT, num_features=12,
                                  num_classes=10)


def _start(workload):
  rng = jax.random.PRNGKey(3)
  data_rng, _, model_init_rng, rng = jax.random.split(rng, 4)
  params, model_state = workload.init_model_fn(model_init_rng)
  # pylint: disable-next=protected-access
  queue = workload._build_input_queue(data_rng, 'train', None, 32)
  return rng, params, model_state, queue


def _update_rng(rng, global_step):
  return jax.random.split(jax.random.fold_in(rng, global_step), 4)[1]


def submission_trajectory(point, num_steps):
  workload = _workload()
  rng, params, model_state, queue = _start(workload)
  hyperparameters = (None if point is None else
                     collections.namedtuple('Hyperparameters', point)(**point))
  optimizer_state = nadamw.init_optimizer_state(
      workload, params, model_state, hyperparameters, jax.random.PRNGKey(0))
  trajectory = []
  for global_step in range(num_steps):
    optimizer_state, params, model_state = nadamw.update_params(
        workload=workload, current_param_container=params,
        current_params_types=None, model_state=model_state,
        hyperparameters=hyperparameters, batch=next(queue),
        loss_type=workload.loss_type, optimizer_state=optimizer_state,
        eval_results=[], global_step=global_step,
        rng=_update_rng(rng, global_step))
    trajectory.append(jax.tree.map(np.asarray, params))
  return trajectory


def _assert_bitwise_equal(actual, expected):
  for step, (a, e) in enumerate(zip(actual, expected)):
    for path, x in jax.tree_util.tree_leaves_with_path(a):
      y = e
      for key in path:
        y = y[key.key]
      np.testing.assert_array_equal(
          x, y, err_msg=f'step {step}, {jax.tree_util.keystr(path)}')


CHEAP_POINTS = {
    'search_space_0': SEARCH_SPACE[0],  # label_smoothing 0.1.
    'grad_clip_active': EXTRA_POINTS[0],
    'smoothing_dropout_clip_inactive': EXTRA_POINTS[1],
    'self_tuning': None,
}
_SLOW_POINTS = ('smoothing_dropout_clip_inactive', 'self_tuning')


@pytest.mark.parametrize('point', [
    pytest.param(point, id=name,
                 marks=[pytest.mark.slow] if name in _SLOW_POINTS else [])
    for name, point in CHEAP_POINTS.items()])
def test_nadamw_equals_the_baseline_bit_for_bit(point):
  _assert_bitwise_equal(submission_trajectory(point, NUM_STEPS),
                        baseline_trajectory(point, NUM_STEPS))


@pytest.mark.slow
@pytest.mark.parametrize('index', range(1, len(SEARCH_SPACE)))
def test_nadamw_equals_the_baseline_on_the_whole_search_space(index):
  point = SEARCH_SPACE[index]
  _assert_bitwise_equal(submission_trajectory(point, NUM_STEPS),
                        baseline_trajectory(point, NUM_STEPS))


def test_constants_in_the_step_would_be_caught():
  """The reference tells a step with label smoothing baked in apart."""
  point = SEARCH_SPACE[0]
  assert point['label_smoothing'] > 0

  def constant_step(workload, update_fn, model_state, opt_state, params, batch,
                    rng, grad_clip, label_smoothing, dropout_rate):
    del label_smoothing
    return baseline_train_step(workload, update_fn, model_state, opt_state,
                               params, batch, rng, grad_clip,
                               point['label_smoothing'], dropout_rate)

  with pytest.raises(AssertionError):
    _assert_bitwise_equal(
        baseline_trajectory(point, NUM_STEPS, train_step=constant_step),
        baseline_trajectory(point, NUM_STEPS))
