"""`submissions.optim` against independent NumPy re-statements of its formulas."""

import os
import subprocess
import sys
import textwrap

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from submissions import optim

NUM_STEPS = 240
SHAPES = {'w': (5, 3), 'b': (3,)}


def _gradients(seed=0, num_steps=NUM_STEPS):
  """A fixed sequence of random gradients, one tree per step."""
  rng = np.random.default_rng(seed)
  return [{k: rng.normal(size=s).astype(np.float32) for k, s in SHAPES.items()}
          for _ in range(num_steps)]


def _init_params(seed=1):
  rng = np.random.default_rng(seed)
  return {k: rng.normal(size=s).astype(np.float32) for k, s in SHAPES.items()}


def _run(optimizer, params, grads, on_step=None):
  """Jitted optimizer steps; returns params after each update and the state."""
  state = optimizer.init(params)
  step = jax.jit(optimizer.update)
  trajectory = []
  for t, g in enumerate(grads):
    updates, state = step(g, state, params)
    params = optax.apply_updates(params, updates)
    trajectory.append(params)
    if on_step is not None:
      on_step(t, state, params)
  return trajectory, state


def _relative_error(actual, expected):
  actual, expected = np.asarray(actual, np.float64), np.asarray(expected)
  return np.max(np.abs(actual - expected)) / np.max(np.abs(expected))


# ---------------------------------------------------------------------------
# NumPy re-statements (float64), written from the formulas, not the code.


def numpy_schedule(t, peak, step_hint, warmup_factor, decay_end_fraction=1.0,
                   end_fraction=0.0):
  warmup = int(warmup_factor * step_hint)
  if t < warmup:
    return peak * t / warmup
  decay = max(int(decay_end_fraction * step_hint) - warmup, 1)
  progress = min(t - warmup, decay) / decay
  cosine = 0.5 * (1 + np.cos(np.pi * progress))
  return peak * (end_fraction + (1 - end_fraction) * cosine)


def numpy_wsd(t, peak, step_hint, warmup_factor, decay_start_fraction,
              decay_end_fraction):
  """Warmup-stable-decay: linear up, constant, linear down to 0."""
  warmup = int(warmup_factor * step_hint)
  start = int(decay_start_fraction * step_hint)
  end = int(decay_end_fraction * step_hint)
  if t < warmup:
    return peak * t / warmup
  if t < start:
    return peak
  return peak * max(0.0, 1 - (t - start) / max(end - start, 1))


def numpy_lr_following_decay(lr, peak, max_window, min_window, every_k):
  """decay_t = max(0, 1 - k / max(w_min, w_max * lr_t / peak))."""
  return max(0.0, 1 - every_k / max(min_window, max_window * lr / peak))


def numpy_nadamw(params, grads, lr_fn, b1, b2, eps, weight_decay):
  """AlgoPerf's NadamW step (init2winit variant), in float64."""
  p = {k: v.astype(np.float64) for k, v in params.items()}
  m = {k: np.zeros_like(v) for k, v in p.items()}
  v = {k: np.zeros_like(x) for k, x in p.items()}
  out = []
  for i, g in enumerate(grads):
    t = i + 1
    for k in p:
      m[k] = b1 * m[k] + (1 - b1) * g[k]
      v[k] = b2 * v[k] + (1 - b2) * g[k]**2
      m_hat = (b1 * m[k] + (1 - b1) * g[k]) / (1 - b1**t)
      v_hat = v[k] / (1 - b2**t)
      direction = m_hat / (np.sqrt(v_hat) + eps) + weight_decay * p[k]
      p[k] = p[k] - lr_fn(i) * direction
    out.append({k: x.copy() for k, x in p.items()})
  return out


def snapshot_steps(num_steps, every_k, start_step):
  return [t for t in range(num_steps) if t >= start_step and t % every_k == 0]


def numpy_ema(trajectory, decay, every_k, start_step, upto):
  """EMA of the weights produced by updates 0..upto-1, or None if none yet."""
  ema = None
  for t in snapshot_steps(upto, every_k, start_step):
    x = jax.tree_util.tree_map(lambda v: np.asarray(v, np.float64),
                               trajectory[t])
    ema = x if ema is None else jax.tree_util.tree_map(
        lambda e, y: decay * e + (1 - decay) * y, ema, x)
  return ema


def numpy_scheduled_ema(trajectory, decays, every_k, start_step, upto):
  """`numpy_ema` with decay `decays[t]` at snapshot step t."""
  ema = None
  for t in snapshot_steps(upto, every_k, start_step):
    x = jax.tree_util.tree_map(lambda v: np.asarray(v, np.float64),
                               trajectory[t])
    ema = x if ema is None else jax.tree_util.tree_map(
        lambda e, y, d=decays[t]: d * e + (1 - d) * y, ema, x)
  return ema


def numpy_lawa(trajectory, queue_length, every_k, start_step, upto):
  steps = snapshot_steps(upto, every_k, start_step)
  if len(steps) < queue_length:
    return None
  last = [trajectory[t] for t in steps[-queue_length:]]
  return jax.tree_util.tree_map(
      lambda *xs: np.mean(np.asarray(xs, np.float64), axis=0), *last)


# ---------------------------------------------------------------------------
# NadamW and schedules.


@pytest.mark.parametrize('schedule_kwargs', [
    {},
    {'decay_end_fraction': 0.5},
    {'end_fraction': 0.1},
])
def test_warmup_cosine_decay_matches_numpy(schedule_kwargs):
  schedule = optim.warmup_cosine_decay(
      peak_value=0.01, step_hint=200, warmup_factor=0.05, **schedule_kwargs)
  for t in [0, 1, 5, 9, 10, 11, 57, 100, 150, 199, 200, 260]:
    expected = numpy_schedule(t, 0.01, 200, 0.05, **schedule_kwargs)
    np.testing.assert_allclose(schedule(t), expected, rtol=1e-5, atol=1e-9)


def test_warmup_constant_matches_numpy():
  schedule = optim.warmup_constant(peak_value=0.02, step_hint=100,
                                   warmup_factor=0.1)
  for t, expected in [(0, 0.0), (5, 0.01), (10, 0.02), (99, 0.02), (500, 0.02)]:
    np.testing.assert_allclose(schedule(t), expected, rtol=1e-6)


@pytest.mark.parametrize('bad', [
    {'warmup_factor': -0.1}, {'warmup_factor': 1.5},
    {'decay_end_fraction': 0.0}, {'end_fraction': 2.0}, {'step_hint': 0},
])
def test_schedule_rejects_bad_arguments(bad):
  kwargs = {'peak_value': 0.1, 'step_hint': 100, 'warmup_factor': 0.1, **bad}
  with pytest.raises(ValueError, match=list(bad)[0]):
    optim.warmup_cosine_decay(**kwargs)


def test_nadamw_matches_numpy_restatement():
  hp = dict(b1=0.93, b2=0.996, eps=1e-8, weight_decay=0.08)
  schedule = optim.warmup_cosine_decay(0.003, step_hint=NUM_STEPS,
                                       warmup_factor=0.05)
  lr = lambda t: numpy_schedule(t, 0.003, NUM_STEPS, 0.05)
  grads = _gradients()
  params = _init_params()
  trajectory, _ = _run(optim.nadamw(schedule, **hp), params, grads)
  expected = numpy_nadamw(params, grads, lr, **hp)
  for t in [0, 1, 50, 199, NUM_STEPS - 1]:
    for k in SHAPES:
      assert _relative_error(trajectory[t][k], expected[t][k]) < 1e-6, (t, k)


def test_nadamw_differs_from_optax_nadamw():
  """optax.nadamw bias-corrects the look-ahead differently: not a substitute."""
  grads = _gradients(num_steps=20)
  params = _init_params()
  ours, _ = _run(optim.nadamw(1e-2, weight_decay=0.1), params, grads)
  theirs, _ = _run(optax.nadamw(1e-2, weight_decay=0.1), params, grads)
  gap = _relative_error(ours[-1]['w'], np.asarray(theirs[-1]['w']))
  assert gap > 1e-4


# ---------------------------------------------------------------------------
# EMA and LAWA.

AVERAGING_CASES = [
    # (every_k, start_step): every step, sparse, late start off the grid.
    (1, 0), (7, 0), (5, 33), (16, 200),
]


def _averaged_along(optimizer, params, grads, checkpoints):
  """`averaged_params` at chosen steps of a run, and the raw trajectory."""
  seen = {}

  def on_step(t, state, p):
    if t + 1 in checkpoints:
      seen[t + 1] = (optim.averaged_params(state, p), p)

  trajectory, state = _run(optimizer, params, grads, on_step)
  return trajectory, seen, state


@pytest.mark.parametrize('every_k,start_step', AVERAGING_CASES)
@pytest.mark.parametrize('decay', [0.0, 0.9, 0.99])
def test_ema_matches_numpy(every_k, start_step, decay):
  checkpoints = {1, 2, 17, 100, 201, NUM_STEPS}
  optimizer = optax.chain(
      optim.nadamw(3e-3, weight_decay=0.01),
      optim.ema_params(decay=decay, every_k=every_k, start_step=start_step))
  trajectory, seen, _ = _averaged_along(
      optimizer, _init_params(), _gradients(), checkpoints)
  for upto, (averaged, raw) in seen.items():
    expected = numpy_ema(trajectory, decay, every_k, start_step, upto)
    for k in SHAPES:
      if expected is None:  # Not ready: the raw weights come back.
        np.testing.assert_array_equal(averaged[k], raw[k])
      else:
        assert _relative_error(averaged[k], expected[k]) < 1e-6, (upto, k)


@pytest.mark.parametrize('every_k,start_step', AVERAGING_CASES)
def test_lr_following_ema_matches_numpy(every_k, start_step):
  """The scheduled decay, on a warmup-stable-decay run, against NumPy."""
  checkpoints = {1, 2, 17, 100, 201, NUM_STEPS}
  peak, max_window, min_window = 3e-3, 40.0, 4.0
  lr = optim.warmup_stable_decay(peak, NUM_STEPS, 0.1, 0.4, 0.8)
  decay = optim.lr_following_ema_decay(lr, peak, max_window, min_window,
                                       every_k)
  optimizer = optax.chain(
      optim.nadamw(lr, weight_decay=0.01),
      optim.ema_params(decay=decay, every_k=every_k, start_step=start_step))
  trajectory, seen, _ = _averaged_along(
      optimizer, _init_params(), _gradients(), checkpoints)
  decays = [numpy_lr_following_decay(
      numpy_wsd(t, peak, NUM_STEPS, 0.1, 0.4, 0.8), peak, max_window,
      min_window, every_k) for t in range(NUM_STEPS)]
  assert max(decays) == pytest.approx(1 - every_k / max_window)
  assert min(decays) == pytest.approx(max(0, 1 - every_k / min_window))
  for upto, (averaged, raw) in seen.items():
    expected = numpy_scheduled_ema(trajectory, decays, every_k, start_step,
                                   upto)
    for k in SHAPES:
      if expected is None:
        np.testing.assert_array_equal(averaged[k], raw[k])
      else:
        assert _relative_error(averaged[k], expected[k]) < 1e-6, (upto, k)


@pytest.mark.parametrize('kwargs', [
    {'decay_start_fraction': 0.5, 'decay_end_fraction': 1.0},
    {'decay_start_fraction': 0.6, 'decay_end_fraction': 0.9},
    {'decay_start_fraction': 0.05, 'decay_end_fraction': 0.3},
])
def test_warmup_stable_decay_matches_numpy(kwargs):
  schedule = optim.warmup_stable_decay(0.01, step_hint=250,
                                       warmup_factor=0.05, **kwargs)
  for t in range(300):
    assert float(schedule(t)) == pytest.approx(
        numpy_wsd(t, 0.01, 250, 0.05, **kwargs), rel=1e-6, abs=1e-9), t


@pytest.mark.parametrize('kwargs,name', [
    ({'decay_start_fraction': 0.9, 'decay_end_fraction': 0.5},
     'decay_start_fraction'),
    ({'decay_start_fraction': 0.01, 'decay_end_fraction': 0.5},
     'warmup_factor'),
    ({'decay_start_fraction': 0.5, 'decay_end_fraction': 1.5},
     'decay_end_fraction'),
])
def test_warmup_stable_decay_bad_arguments_are_named(kwargs, name):
  with pytest.raises(ValueError, match=name):
    optim.warmup_stable_decay(0.01, 100, 0.05, **kwargs)


@pytest.mark.parametrize('kwargs,name', [
    ({'peak_value': 0.0}, 'peak_value'),
    ({'min_window_steps': 0.0}, 'min_window_steps'),
    ({'min_window_steps': 50.0, 'max_window_steps': 10.0},
     'max_window_steps'),
])
def test_lr_following_decay_bad_arguments_are_named(kwargs, name):
  args = {'learning_rate': optax.constant_schedule(1.0), 'peak_value': 1.0,
          'max_window_steps': 10.0, 'min_window_steps': 1.0, **kwargs}
  with pytest.raises(ValueError, match=name):
    optim.lr_following_ema_decay(**args)


@pytest.mark.parametrize('every_k,start_step', AVERAGING_CASES)
@pytest.mark.parametrize('queue_length', [1, 3, 20])
def test_lawa_matches_numpy(every_k, start_step, queue_length):
  checkpoints = {1, 2, 3, 17, 100, 201, NUM_STEPS}
  optimizer = optax.chain(
      optim.nadamw(3e-3),
      optim.lawa_params(queue_length=queue_length, every_k=every_k,
                        start_step=start_step))
  trajectory, seen, _ = _averaged_along(
      optimizer, _init_params(), _gradients(), checkpoints)
  for upto, (averaged, raw) in seen.items():
    expected = numpy_lawa(trajectory, queue_length, every_k, start_step, upto)
    for k in SHAPES:
      if expected is None:
        np.testing.assert_array_equal(averaged[k], raw[k])
      else:
        assert _relative_error(averaged[k], expected[k]) < 1e-6, (upto, k)


def _host_lawa_along(trajectory, queue_length, every_k, start_step,
                     checkpoints):
  """A host queue fed as a train loop feeds it; its average at checkpoints."""
  state = optim.lawa_host_init(trajectory[0], queue_length)
  seen = {}
  for t, params in enumerate(trajectory):
    if optim.lawa_host_takes_snapshot(state, every_k, start_step):
      state = optim.lawa_host_push(state, params)
    state = optim.lawa_host_count(state)
    if t + 1 in checkpoints:
      seen[t + 1] = (optim.averaged_params(state, params), params)
  return seen


@pytest.mark.parametrize('every_k,start_step', AVERAGING_CASES)
@pytest.mark.parametrize('queue_length', [1, 3, 20])
def test_lawa_host_queue_matches_numpy(every_k, start_step, queue_length):
  checkpoints = {1, 2, 3, 17, 100, 201, NUM_STEPS}
  trajectory, _ = _run(optim.nadamw(3e-3), _init_params(), _gradients())
  seen = _host_lawa_along(trajectory, queue_length, every_k, start_step,
                          checkpoints)
  for upto, (averaged, raw) in seen.items():
    expected = numpy_lawa(trajectory, queue_length, every_k, start_step, upto)
    for k in SHAPES:
      if expected is None:
        np.testing.assert_array_equal(averaged[k], raw[k])
      else:  # Within one float32 rounding of the exact mean.
        np.testing.assert_allclose(averaged[k], expected[k], rtol=1.2e-7,
                                   atol=0, err_msg=f'{upto} {k}')


def test_lawa_host_sum_does_not_drift_over_many_evictions():
  """5,000 snapshots of mixed magnitudes: the mean of the last L stays exact.

  A float32 running sum (add the new, subtract the evicted) drifts by about
  sqrt(n) roundings of the largest snapshot; this one must not.
  """
  rng = np.random.default_rng(0)
  scale = np.float32(10.0) ** rng.integers(-3, 4, size=(5000, 1))
  snapshots = (rng.normal(size=(5000, 64)) * scale + 1.0).astype(np.float32)
  state = optim.lawa_host_init({'w': snapshots[0]}, queue_length=7)
  for x in snapshots:
    state = optim.lawa_host_push(state, {'w': x})
  expected = np.mean(snapshots[-7:].astype(np.float64), axis=0)
  np.testing.assert_allclose(optim.average_of(state)['w'], expected,
                             rtol=1.2e-7, atol=0)
  drifting = np.zeros(64, np.float32)
  for i, x in enumerate(snapshots):
    drifting += x - (snapshots[i - 7] if i >= 7 else 0)
  assert np.max(np.abs(drifting / 7 - expected) / np.abs(expected)) > 1e-6


def test_lawa_host_push_shares_slots_and_changes_nothing():
  params = {'w': np.ones(3, np.float32)}
  state = optim.lawa_host_init(params, queue_length=3)
  before = flax.serialization.to_bytes(state)
  pushed = optim.lawa_host_push(state, {'w': jnp.full(3, 2.0)})
  assert flax.serialization.to_bytes(state) == before
  assert pushed.queue[1] is state.queue[1]  # No copy of untouched slots.
  assert pushed.queue[0]['w'].dtype == np.float32
  assert pushed.total['w'].dtype == np.float64
  assert int(pushed.num_snapshots) == 1 and int(pushed.count) == 0


def test_lawa_host_state_survives_flax_serialization():
  """Bytes and back into a fresh state: the pushes that follow agree bitwise."""
  trajectory, _ = _run(optim.nadamw(1e-2), _init_params(),
                       _gradients(num_steps=12))
  state = optim.lawa_host_init(trajectory[0], queue_length=3)
  for p in trajectory[:5]:
    state = optim.lawa_host_count(optim.lawa_host_push(state, p))
  restored = flax.serialization.from_bytes(
      optim.lawa_host_init(trajectory[0], queue_length=3),
      flax.serialization.to_bytes(state))
  finals = []
  for s in (state, restored):
    for p in trajectory[5:]:
      s = optim.lawa_host_push(s, p)
    finals.append(optim.average_of(s))
  for k in SHAPES:
    np.testing.assert_array_equal(finals[0][k], finals[1][k])


def test_lawa_host_rejects_bad_arguments():
  with pytest.raises(ValueError, match='queue_length'):
    optim.lawa_host_init({'w': np.ones(2)}, queue_length=0)
  state = optim.lawa_host_init({'w': np.ones(2)}, queue_length=2)
  with pytest.raises(ValueError, match='every_k'):
    optim.lawa_host_takes_snapshot(state, every_k=0, start_step=0)
  with pytest.raises(ValueError, match='snapshot'):
    optim.lawa_host_push(state, {'v': np.ones(2)})


@pytest.mark.parametrize('averaging', [
    optim.ema_params(decay=0.9, every_k=3),
    optim.lawa_params(queue_length=4, every_k=3),
])
def test_averaging_passes_updates_through(averaging):
  grads = _gradients(num_steps=30)
  plain, _ = _run(optim.nadamw(1e-2), _init_params(), grads)
  chained, _ = _run(optax.chain(optim.nadamw(1e-2), averaging),
                    _init_params(), grads)
  for a, b in zip(plain, chained):
    for k in SHAPES:
      np.testing.assert_array_equal(a[k], b[k])


def test_ema_with_bfloat16_params_keeps_float32_average():
  params = {k: jnp.asarray(v, jnp.bfloat16) for k, v in _init_params().items()}
  grads = [{k: jnp.asarray(v, jnp.bfloat16) for k, v in g.items()}
           for g in _gradients(num_steps=60)]
  optimizer = optax.chain(optax.sgd(0.05), optim.ema_params(decay=0.8))
  trajectory, state = _run(optimizer, params, grads)
  ema = optim.find_averaging_state(state).ema
  assert all(x.dtype == jnp.float32 for x in jax.tree_util.tree_leaves(ema))
  averaged = optim.averaged_params(state, trajectory[-1])
  assert all(x.dtype == jnp.bfloat16
             for x in jax.tree_util.tree_leaves(averaged))
  # Snapshots are params + updates in float32, before rounding to bfloat16;
  # SGD computes its updates in bfloat16, the learning rate included.
  to_bf16 = lambda x: np.asarray(jnp.asarray(x, jnp.bfloat16), np.float32)
  expected = None
  p = {k: np.asarray(v, np.float32) for k, v in params.items()}
  for g in grads:
    x = {k: p[k] + to_bf16(to_bf16(-0.05) * np.asarray(g[k], np.float32))
         for k in p}
    expected = x if expected is None else {
        k: 0.8 * expected[k] + 0.2 * x[k] for k in x}
    p = {k: to_bf16(x[k]) for k in x}
  # Within a fraction of one bfloat16 ulp of the params (2**-8 near 1): the
  # average accumulates in float32, far finer than the params themselves.
  for k in SHAPES:
    np.testing.assert_allclose(ema[k], expected[k], rtol=0, atol=2e-4)


def test_lawa_with_bfloat16_params():
  params = {k: jnp.asarray(v, jnp.bfloat16) for k, v in _init_params().items()}
  grads = [{k: jnp.asarray(v, jnp.bfloat16) for k, v in g.items()}
           for g in _gradients(num_steps=12)]
  optimizer = optax.chain(optax.sgd(0.05), optim.lawa_params(queue_length=4))
  trajectory, state = _run(optimizer, params, grads)
  queue = optim.find_averaging_state(state).queue
  assert queue['w'].dtype == jnp.float32 and queue['w'].shape == (4, 5, 3)
  averaged = optim.averaged_params(state, trajectory[-1])
  expected = np.mean([np.asarray(p['w'], np.float32) for p in trajectory[-4:]],
                     axis=0)
  assert averaged['w'].dtype == jnp.bfloat16
  np.testing.assert_allclose(np.asarray(averaged['w'], np.float32), expected,
                             rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize('make', [
    lambda: optim.ema_params(decay=0.9, every_k=2, start_step=3),
    lambda: optim.lawa_params(queue_length=3, every_k=2, start_step=3),
])
def test_state_survives_flax_serialization(make):
  """Restore mid-run into a fresh state, then both runs continue identically."""
  optimizer = optax.chain(optim.nadamw(1e-2), make())
  grads = _gradients(num_steps=20)
  trajectory, state = _run(optimizer, _init_params(), grads[:9])
  restored = flax.serialization.from_state_dict(
      optimizer.init(_init_params()),
      flax.serialization.to_state_dict(state))
  raw = flax.serialization.msgpack_restore(
      flax.serialization.msgpack_serialize(
          flax.serialization.to_state_dict(state)))
  restored_bytes = flax.serialization.from_state_dict(
      optimizer.init(_init_params()), raw)
  step = jax.jit(optimizer.update)
  finals = []
  for s in (state, restored, restored_bytes):
    p = trajectory[-1]
    for g in grads[9:]:
      u, s = step(g, s, p)
      p = optax.apply_updates(p, u)
    finals.append(optim.averaged_params(s, p))
  for other in finals[1:]:
    for k in SHAPES:
      np.testing.assert_array_equal(finals[0][k], other[k])


def test_no_recompilation_from_step_to_step():
  traces = []
  optimizer = optax.chain(optim.nadamw(1e-2),
                          optim.lawa_params(queue_length=3, every_k=2))

  @jax.jit
  def step(grads, state, params):
    traces.append(1)
    updates, state = optimizer.update(grads, state, params)
    return optax.apply_updates(params, updates), state

  params = _init_params()
  state = optimizer.init(params)
  for g in _gradients(num_steps=15):
    params, state = step(g, state, params)
  assert len(traces) == 1


@pytest.mark.parametrize('factory,kwargs,name', [
    (optim.ema_params, {'decay': 1.0}, 'decay'),
    (optim.ema_params, {'decay': -0.1}, 'decay'),
    (optim.ema_params, {'every_k': 0}, 'every_k'),
    (optim.ema_params, {'start_step': -1}, 'start_step'),
    (optim.lawa_params, {'queue_length': 0}, 'queue_length'),
    (optim.lawa_params, {'every_k': 1.5}, 'every_k'),
    (optim.lawa_params, {'start_step': -3}, 'start_step'),
])
def test_bad_arguments_name_the_argument(factory, kwargs, name):
  with pytest.raises(ValueError, match=name):
    factory(**kwargs)


@pytest.mark.parametrize('averaging', [optim.ema_params(),
                                       optim.lawa_params(queue_length=2)])
def test_mismatched_trees_are_rejected(averaging):
  params = _init_params()
  state = averaging.init(params)
  with pytest.raises(ValueError, match='updates'):
    averaging.update({'w': params['w']}, state, params)
  with pytest.raises(ValueError, match='params'):
    averaging.update({'w': params['w']}, state, {'w': params['w']})
  with pytest.raises(ValueError, match='params'):
    averaging.update(params, state, None)
  with pytest.raises(ValueError, match='params'):
    optim.averaged_params(state, {'w': params['w']})


def test_averaged_params_needs_exactly_one_averaging_state():
  params = _init_params()
  with pytest.raises(ValueError, match='exactly one'):
    optim.averaged_params(optim.nadamw(1e-3).init(params), params)


_SHARDING_SCRIPT = textwrap.dedent('''
    import jax, jax.numpy as jnp, optax
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    from submissions import optim
    assert jax.device_count() == 4
    mesh = Mesh(jax.devices(), ('x',))
    params = {
        'w': jax.device_put(jnp.ones((8, 6)), NamedSharding(mesh, P('x'))),
        'b': jax.device_put(jnp.ones((6,)), NamedSharding(mesh, P())),
    }
    for averaging, field, lead in [
        (optim.ema_params(decay=0.9), 'ema', ()),
        (optim.lawa_params(queue_length=3), 'queue', (None,))]:
      optimizer = optax.chain(optim.nadamw(1e-2), averaging)
      state = optimizer.init(params)
      step = jax.jit(optimizer.update)
      p = params
      for _ in range(4):
        u, state = step(p, state, p)
        p = optax.apply_updates(p, u)
      avg = getattr(optim.find_averaging_state(state), field)
      assert avg['w'].sharding.spec == P(*lead, 'x'), avg['w'].sharding
      assert len(avg['w'].sharding.device_set) == 4
      out = jax.jit(optim.averaged_params)(state, p)
      assert out['w'].sharding.is_equivalent_to(params['w'].sharding, 2)
      assert p['w'].sharding.is_equivalent_to(params['w'].sharding, 2)
    print('ok')
''')


def test_sharded_params_stay_sharded_on_four_devices():
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=4',
             JAX_PLATFORMS='cpu')
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env['PYTHONPATH'] = repo + os.pathsep + env.get('PYTHONPATH', '')
  result = subprocess.run([sys.executable, '-c', _SHARDING_SCRIPT], env=env,
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.strip().endswith('ok')
