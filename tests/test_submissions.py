"""The submissions driven exactly as AlgoPerf's `submission_runner` calls them."""

import collections
import importlib
import json
import os
import subprocess
import sys

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from localperf import toy_workload
from tests.test_optim import numpy_ema
from tests.test_optim import numpy_lawa
from tests.test_optim import numpy_lr_following_decay
from tests.test_optim import numpy_schedule
from tests.test_optim import numpy_scheduled_ema
from tests.test_optim import numpy_wsd

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUBMISSIONS = ['nadamw', 'nadamw_ema', 'nadamw_lawa', 'schedule_free_adamw',
               'nadamw_codesign']
STEP_HINT = 100
HAS_SCHEDULE_FREE = hasattr(optax.contrib, 'schedule_free_adamw')

BASE_POINT = {
    'learning_rate': 0.01, 'one_minus_beta1': 0.1, 'beta2': 0.99,
    'weight_decay': 0.05, 'warmup_factor': 0.05, 'dropout_rate': 0.1,
}
POINTS = {
    'nadamw': {**BASE_POINT, 'grad_clip': 0.5, 'label_smoothing': 0.1},
    'nadamw_ema': {**BASE_POINT, 'averaging_start_fraction': 0.1,
                   'averaging_window_fraction': 0.3, 'ema_decay': 0.9},
    'nadamw_lawa': {**BASE_POINT, 'averaging_start_fraction': 0.05,
                    'averaging_window_fraction': 0.12,
                    'lawa_queue_length': 4},
    'schedule_free_adamw': {**BASE_POINT, 'weight_lr_power': 2.0},
    # Warmup-stable-decay; the EMA every step (round(0.1 * 5) = 0 -> 1), the
    # average chosen by the batch loss every 2 steps.
    'nadamw_codesign': {**BASE_POINT, 'decay_start_fraction': 0.3,
                        'decay_end_fraction': 0.9,
                        'ema_max_window_fraction': 0.3,
                        'ema_min_window_fraction': 0.05,
                        'averaging_start_fraction': 0.05,
                        'select_every_steps': 2},
}


def load(name):
  if name == 'schedule_free_adamw' and not HAS_SCHEDULE_FREE:
    pytest.skip('optax.contrib.schedule_free_adamw needs optax >= 0.2.3')
  return importlib.import_module(f'submissions.{name}.submission')


def as_hyperparameters(point):
  """A trial's point as AlgoPerf hands it over: a namedtuple."""
  if point is None:
    return None
  return collections.namedtuple('Hyperparameters', sorted(point))(**point)


def drive(name, point, num_steps, eval_every=None, restore_at=None,
          after_step=None, batches=None):
  """A runner's loop over the toy workload; records what a test needs.

  Returns the raw weights after each update and the params
  `prepare_for_eval` returned at each eval (as NumPy); appends each step's
  batch and model state (before the update) to `batches` if given.
  """
  submission = importlib.import_module(f'submissions.{name}.submission')
  workload = toy_workload.ToyWorkload(step_hint=STEP_HINT)
  rng = jax.random.PRNGKey(0)
  data_rng, opt_init_rng, model_init_rng, rng = jax.random.split(rng, 4)
  params, model_state = workload.init_model_fn(model_init_rng)
  hyperparameters = as_hyperparameters(point)
  optimizer_state = submission.init_optimizer_state(
      workload, params, model_state, hyperparameters, opt_init_rng)
  queue = workload._build_input_queue(
      data_rng, 'train', None, submission.get_batch_size('mnist1d') // 8)
  raw, evaluated = [], {}
  for step in range(num_steps):
    step_rng = jax.random.fold_in(rng, step)
    data_rng_s, update_rng, eval_rng = jax.random.split(step_rng, 3)
    batch = submission.data_selection(
        workload, queue, optimizer_state, params, model_state,
        hyperparameters, step, data_rng_s)
    if batches is not None:
      batches.append((batch, jax.tree_util.tree_map(np.asarray, model_state)))
    optimizer_state, params, model_state = submission.update_params(
        workload=workload, current_param_container=params,
        current_params_types=workload.model_params_types,
        model_state=model_state, hyperparameters=hyperparameters,
        batch=batch, loss_type=workload.loss_type,
        optimizer_state=optimizer_state, eval_results=[],
        global_step=step, rng=update_rng)
    raw.append(jax.tree_util.tree_map(np.asarray, optimizer_state[0].params))
    if eval_every and (step + 1) % eval_every == 0:
      optimizer_state, params, model_state = submission.prepare_for_eval(
          workload=workload, current_param_container=params,
          current_params_types=workload.model_params_types,
          model_state=model_state, hyperparameters=hyperparameters,
          loss_type=workload.loss_type, optimizer_state=optimizer_state,
          eval_results=[], global_step=step + 1, rng=eval_rng)
      evaluated[step + 1] = jax.tree_util.tree_map(np.asarray, params)
      workload.eval_model(64, params, model_state, eval_rng, None, None,
                          step + 1)
      if restore_at == step + 1:
        optimizer_state = _save_and_restore(
            submission, workload, optimizer_state, params, model_state,
            hyperparameters)
    if after_step is not None:
      after_step(step)
  return raw, evaluated


def _save_and_restore(submission, workload, optimizer_state, params,
                      model_state, hyperparameters):
  """AlgoPerf's checkpoint: the state's first element, into a fresh state."""
  blob = flax.serialization.msgpack_serialize(
      flax.serialization.to_state_dict(
          jax.tree_util.tree_map(np.asarray, optimizer_state[0])))
  fresh = submission.init_optimizer_state(
      workload, jax.tree_util.tree_map(jnp.zeros_like, params), model_state,
      hyperparameters, jax.random.PRNGKey(42))
  restored = flax.serialization.from_state_dict(
      fresh[0], flax.serialization.msgpack_restore(blob))
  return restored, fresh[1]


@pytest.mark.parametrize('name', SUBMISSIONS)
@pytest.mark.parametrize(
    'self_tuning', [False, pytest.param(True, marks=pytest.mark.slow)])
def test_runs_as_the_runner_calls_it(name, self_tuning):
  load(name)
  point = None if self_tuning else POINTS[name]
  raw, evaluated = drive(name, point, num_steps=12, eval_every=4)
  assert len(raw) == 12 and sorted(evaluated) == [4, 8, 12]
  first, last = raw[0]['out']['w'], raw[-1]['out']['w']
  assert np.all(np.isfinite(last)) and not np.allclose(first, last)


@pytest.mark.parametrize('name', SUBMISSIONS)
def test_evals_do_not_change_the_raw_trajectory(name):
  load(name)
  with_evals, _ = drive(name, POINTS[name], num_steps=30, eval_every=3)
  without, _ = drive(name, POINTS[name], num_steps=30)
  for a, b in zip(with_evals, without):
    jax.tree_util.tree_map(np.testing.assert_array_equal, a, b)


@pytest.mark.parametrize('name', [
    pytest.param('nadamw', marks=pytest.mark.slow), 'nadamw_ema',
    'nadamw_lawa', pytest.param('schedule_free_adamw', marks=pytest.mark.slow),
    'nadamw_codesign'])
def test_restore_after_prepare_for_eval_resumes_the_same_trajectory(name):
  load(name)
  straight, evals = drive(name, POINTS[name], num_steps=24, eval_every=6)
  resumed, resumed_evals = drive(name, POINTS[name], num_steps=24,
                                 eval_every=6, restore_at=12)
  for a, b in zip(straight, resumed):
    jax.tree_util.tree_map(np.testing.assert_array_equal, a, b)
  for step in evals:
    jax.tree_util.tree_map(np.testing.assert_array_equal, evals[step],
                           resumed_evals[step])


def _flat(tree):
  return {'/'.join(str(k.key) for k in path): np.asarray(leaf)
          for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


def _assert_close(actual, expected, rtol=1e-6):
  actual, expected = _flat(actual), _flat(expected)
  for k in expected:
    scale = max(np.max(np.abs(expected[k])), 1e-12)  # Zero at lr = 0.
    error = np.max(np.abs(actual[k] - expected[k])) / scale
    assert error < rtol, (k, error)


def test_ema_submission_evaluates_numpy_ema_of_raw_trajectory():
  point = POINTS['nadamw_ema']
  # every_k = round(0.3 * 100 * (1 - 0.9)) = 3, start = round(0.1 * 100) = 10.
  raw, evaluated = drive('nadamw_ema', point, num_steps=40, eval_every=4)
  for upto, params in evaluated.items():
    expected = numpy_ema(raw, 0.9, every_k=3, start_step=10, upto=upto)
    _assert_close(params, raw[upto - 1] if expected is None else expected)
  assert numpy_ema(raw, 0.9, 3, 10, 8) is None  # Raw weights before step 10.


def test_lawa_submission_evaluates_numpy_lawa_of_raw_trajectory():
  point = POINTS['nadamw_lawa']
  # every_k = round(0.12 * 100 / 4) = 3, start = round(0.05 * 100) = 5.
  raw, evaluated = drive('nadamw_lawa', point, num_steps=40, eval_every=4)
  for upto, params in evaluated.items():
    expected = numpy_lawa(raw, 4, every_k=3, start_step=5, upto=upto)
    _assert_close(params, raw[upto - 1] if expected is None else expected)
  assert numpy_lawa(raw, 4, 3, 5, 12) is None  # Queue fills at step 15.


def _codesign_ema(raw, point, upto):
  """NumPy: the LR-following EMA of the raw trajectory after `upto` updates."""
  peak = point['learning_rate']
  decays = [numpy_lr_following_decay(
      numpy_wsd(t, peak, STEP_HINT, point['warmup_factor'],
                point['decay_start_fraction'], point['decay_end_fraction']),
      peak, point['ema_max_window_fraction'] * STEP_HINT,
      point['ema_min_window_fraction'] * STEP_HINT, every_k=1)
            for t in range(upto)]
  start = round(point['averaging_start_fraction'] * STEP_HINT)
  return numpy_scheduled_ema(raw, decays, 1, start, upto)


def test_codesign_evaluates_the_lr_following_ema_when_its_batch_loss_wins():
  """Eval params: the NumPy EMA if, summed over the select steps since the
  last eval, its loss on the step's batch beat the raw weights', else raw."""
  # A large learning rate, so the average beats the raw weights at times.
  point = {**POINTS['nadamw_codesign'], 'learning_rate': 0.2,
           'ema_max_window_fraction': 0.1}
  batches = []
  raw, evaluated = drive('nadamw_codesign', point, num_steps=40,
                         eval_every=4, batches=batches)
  workload = toy_workload.ToyWorkload(step_hint=STEP_HINT)
  init, _ = workload.init_model_fn(
      jax.random.split(jax.random.PRNGKey(0), 4)[2])

  def loss(params, batch_and_state):
    batch, model_state = batch_and_state
    logits, _ = workload.model_fn(
        jax.tree_util.tree_map(jnp.asarray, params), batch, model_state,
        'eval', None, False)
    out = workload.loss_fn(batch['targets'], logits, batch.get('weights'))
    return float(out['summed'] / out['n_valid_examples'])

  picked = set()
  for upto, params in evaluated.items():
    gap = 0.0
    for s in range(upto - 4, upto, 2):  # Select steps, before update s.
      before = raw[s - 1] if s else jax.tree_util.tree_map(np.asarray, init)
      ema = _codesign_ema(raw, point, s)
      gap += loss(before if ema is None else ema, batches[s]) - loss(
          before, batches[s])
    ema = _codesign_ema(raw, point, upto)
    use_ema = ema is not None and gap < 0
    picked.add(use_ema)
    _assert_close(params, ema if use_ema else raw[upto - 1], rtol=1e-5)
  assert picked == {True, False}  # Both branches are exercised.


def test_lawa_queue_on_device_and_in_host_memory_agree():
  """Same raw trajectory bit for bit; means within one float32 rounding."""
  host_raw, host_evals = drive('nadamw_lawa', POINTS['nadamw_lawa'],
                               num_steps=30, eval_every=5)
  device_point = {**POINTS['nadamw_lawa'], 'lawa_queue_location': 'device'}
  device_raw, device_evals = drive('nadamw_lawa', device_point, num_steps=30,
                                   eval_every=5)
  for a, b in zip(host_raw, device_raw):
    jax.tree_util.tree_map(np.testing.assert_array_equal, a, b)
  for step in host_evals:
    expected = numpy_lawa(host_raw, 4, every_k=3, start_step=5, upto=step)
    if expected is not None:
      _assert_close(host_evals[step], expected, rtol=1.2e-7)
    _assert_close(host_evals[step], device_evals[step], rtol=1e-6)


def test_host_queue_is_in_the_checkpointed_state_and_off_the_device():
  submission = load('nadamw_lawa')
  workload = toy_workload.ToyWorkload(step_hint=STEP_HINT)
  params, model_state = workload.init_model_fn(jax.random.PRNGKey(0))
  state, static = submission.init_optimizer_state(
      workload, params, model_state,
      as_hyperparameters(POINTS['nadamw_lawa']), None)
  leaves = jax.tree_util.tree_leaves(state.host)
  assert leaves and all(isinstance(x, np.ndarray) for x in leaves)
  assert not any(isinstance(x, np.ndarray)
                 for x in jax.tree_util.tree_leaves(state.opt_state))
  restored = flax.serialization.from_state_dict(
      state, flax.serialization.to_state_dict(state))
  assert len(restored.host.queue) == 4 and static.host_lawa.every_k == 3


def test_averaging_every_steps_overrides_the_window():
  point = {**POINTS['nadamw_lawa'], 'averaging_every_steps': 2}
  raw, evaluated = drive('nadamw_lawa', point, num_steps=20, eval_every=20)
  _assert_close(evaluated[20], numpy_lawa(raw, 4, 2, 5, 20))


def test_nadamw_matches_numpy_restatement_of_the_baseline_step():
  """Gradients from JAX at the NumPy trajectory; the step itself in NumPy."""
  point = POINTS['nadamw']
  num_steps = 40
  raw, _ = drive('nadamw', point, num_steps=num_steps)

  workload = toy_workload.ToyWorkload(step_hint=STEP_HINT)
  rng = jax.random.PRNGKey(0)
  data_rng, _, model_init_rng, rng = jax.random.split(rng, 4)
  params, model_state = workload.init_model_fn(model_init_rng)
  queue = workload._build_input_queue(data_rng, 'train', None, 16)

  def loss(p, ms, batch, r):
    logits, ms = workload.model_fn(p, batch, ms, toy_workload.spec.ForwardPassMode.TRAIN, r, True,
                                   point['dropout_rate'])
    out = workload.loss_fn(batch['targets'], logits, None,
                           point['label_smoothing'])
    return out['summed'] / out['n_valid_examples'], ms

  grad_fn = jax.jit(jax.grad(loss, has_aux=True))
  b1, b2 = 1 - point['one_minus_beta1'], point['beta2']
  p = jax.tree_util.tree_map(lambda x: np.asarray(x, np.float64), params)
  m = jax.tree_util.tree_map(np.zeros_like, p)
  v = jax.tree_util.tree_map(np.zeros_like, p)
  for step in range(num_steps):
    _, update_rng, _ = jax.random.split(jax.random.fold_in(rng, step), 3)
    g, model_state = grad_fn(jax.tree_util.tree_map(jnp.float32, p),
                             model_state, next(queue), update_rng)
    g = jax.tree_util.tree_map(lambda x: np.asarray(x, np.float64), g)
    norm = np.sqrt(sum(np.sum(x**2) for x in jax.tree_util.tree_leaves(g)))
    clip = min(1.0, point['grad_clip'] / (norm + 1e-6))
    lr = numpy_schedule(step, point['learning_rate'], STEP_HINT,
                        point['warmup_factor'])
    t = step + 1

    def nadamw_step(p_, g_, m_, v_):
      g_ = g_ * clip
      m_[...] = b1 * m_ + (1 - b1) * g_
      v_[...] = b2 * v_ + (1 - b2) * g_**2
      m_hat = (b1 * m_ + (1 - b1) * g_) / (1 - b1**t)
      v_hat = v_ / (1 - b2**t)
      return p_ - lr * (m_hat / (np.sqrt(v_hat) + 1e-8)
                        + point['weight_decay'] * p_)

    p = jax.tree_util.tree_map(nadamw_step, p, g, m, v)
    _assert_close(raw[step], p, rtol=1e-5)


_COMPILED_AT_STEP = []  # Step index of each XLA compilation while recording.
_RECORDING = {'step': None}


def _record_compilation(event, *args, **kwargs):
  if 'backend_compile' in event and _RECORDING['step'] is not None:
    _COMPILED_AT_STEP.append(_RECORDING['step'])


jax.monitoring.register_event_duration_secs_listener(_record_compilation)


@pytest.mark.parametrize('name', SUBMISSIONS)
def test_no_compilation_after_the_first_step_and_eval(name):
  load(name)
  _COMPILED_AT_STEP.clear()
  _RECORDING['step'] = 0

  def after_step(step):
    _RECORDING['step'] = step + 1

  try:
    drive(name, POINTS[name], num_steps=12, eval_every=2,
          after_step=after_step)
  finally:
    _RECORDING['step'] = None
  assert _COMPILED_AT_STEP, 'the listener saw no compilation at all'
  # Steps 0 and 1 compile the train step and the eval path; nothing after.
  assert max(_COMPILED_AT_STEP) <= 1, _COMPILED_AT_STEP


@pytest.mark.parametrize('bad,field', [
    ({'learning_rate': -1.0}, 'learning_rate'),
    ({'one_minus_beta1': 1.5}, 'one_minus_beta1'),
    ({'ema_decay': 1.0}, 'ema_decay'),
    ({'averaging_window_fraction': 0.0}, 'averaging_window_fraction'),
    ({'averaging_every_steps': 2.5}, 'averaging_every_steps'),
    ({'dropout_rate': 'high'}, 'dropout_rate'),
])
def test_bad_hyperparameters_name_the_field(bad, field):
  submission = load('nadamw_ema')
  workload = toy_workload.ToyWorkload()
  params, model_state = workload.init_model_fn(jax.random.PRNGKey(0))
  with pytest.raises(ValueError, match=field):
    submission.init_optimizer_state(
        workload, params, model_state,
        as_hyperparameters({**POINTS['nadamw_ema'], **bad}), None)


@pytest.mark.parametrize('bad,message', [
    ({'ema_min_window_fraction': 0.5}, '`ema_min_window_fraction` must be <='),
    ({'ema_max_window_fraction': 0.0}, '`ema_max_window_fraction` must be'),
    ({'decay_start_fraction': 0.95}, r'`decay_start_fraction` must lie in'),
    ({'decay_start_fraction': 0.01}, r'`decay_start_fraction` must lie in'),
    ({'decay_start_fraction': None, 'decay_end_fraction': 0.04},
     '`decay_end_fraction` must exceed `warmup_factor`'),
    ({'select_every_steps': 0}, '`select_every_steps` must be an integer'),
])
def test_codesign_bad_hyperparameters_are_named_before_training(bad,
                                                                message):
  submission = load('nadamw_codesign')
  point = as_hyperparameters({**POINTS['nadamw_codesign'], **bad})
  with pytest.raises(ValueError, match=message):
    submission.check_hyperparameters(point)
  workload = toy_workload.ToyWorkload()
  params, model_state = workload.init_model_fn(jax.random.PRNGKey(0))
  with pytest.raises(ValueError, match=message):
    submission.init_optimizer_state(workload, params, model_state, point,
                                    None)


@pytest.mark.parametrize('location', ['gpu', 1, None, True])
def test_bad_lawa_queue_location_is_named(location):
  submission = load('nadamw_lawa')
  point = {**POINTS['nadamw_lawa'], 'lawa_queue_location': location}
  if location is None:  # null, as optional hyperparameters may be: host.
    submission.check_hyperparameters(point)
    return
  with pytest.raises(ValueError,
                     match="`lawa_queue_location` must be 'host' or 'device'"):
    submission.check_hyperparameters(as_hyperparameters(point))


def test_missing_hyperparameter_is_named():
  submission = load('nadamw_lawa')
  workload = toy_workload.ToyWorkload()
  params, model_state = workload.init_model_fn(jax.random.PRNGKey(0))
  point = dict(POINTS['nadamw_lawa'])
  del point['lawa_queue_length']
  with pytest.raises(ValueError, match='lawa_queue_length'):
    submission.init_optimizer_state(workload, params, model_state,
                                    as_hyperparameters(point), None)


def test_get_batch_size_rejects_unknown_workloads():
  submission = load('nadamw')
  assert submission.get_batch_size('criteo1tb') == 262_144
  assert submission.get_batch_size('wmt') == 128
  with pytest.raises(ValueError, match='imagenet_vit'):
    submission.get_batch_size('not_a_workload')


_FOUR_DEVICES = '''
import json, sys
import jax, numpy as np
from tests import test_submissions as t
assert jax.device_count() == 4
out = {}
for name in sys.argv[1:]:
  raw, evaluated = t.drive(name, t.POINTS[name], num_steps=10, eval_every=5)
  out[name] = [float(np.sum(evaluated[10]['out']['w'])),
               float(np.sum(raw[-1]['hidden']['w']))]
print(json.dumps(out))
'''


def test_four_devices_with_batch_sharded_inputs_match_one_device():
  names = [n for n in SUBMISSIONS
           if n != 'schedule_free_adamw' or HAS_SCHEDULE_FREE]
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=4',
             JAX_PLATFORMS='cpu', PYTHONPATH=REPO)
  result = subprocess.run([sys.executable, '-c', _FOUR_DEVICES, *names],
                          env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  four = json.loads(result.stdout.strip().splitlines()[-1])
  for name in names:
    raw, evaluated = drive(name, POINTS[name], num_steps=10, eval_every=5)
    one = [float(np.sum(evaluated[10]['out']['w'])),
           float(np.sum(raw[-1]['hidden']['w']))]
    np.testing.assert_allclose(four[name], one, rtol=1e-4, err_msg=name)


def test_schedule_free_loads_or_says_which_optax_it_needs():
  name = 'submissions.schedule_free_adamw.submission'
  if HAS_SCHEDULE_FREE:
    assert callable(importlib.import_module(name).init_optimizer_state)
  else:
    with pytest.raises(ImportError, match=r'optax >= 0\.2\.3'):
      importlib.import_module(name)
