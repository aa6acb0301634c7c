"""Preemption, device count and bad input, through `scripts.run_local`.

Runs are on mnist1d in `eval_every_n_steps` mode (evals and checkpoints
every 10 steps, 50 steps). The submission under test is
tests/fixtures/instrumented, which wraps nadamw_lawa or nadamw_ema and kills
its process at a chosen point. LAWA snapshots every 5 steps from step 20 into
a queue of 4, so the queue fills during steps 20-35: a kill at step 27
resumes from a checkpoint holding a part-filled queue.
"""

import json
import os
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest
from flax import serialization

from localperf import logs
from scripts import run_local

REPO = pathlib.Path(__file__).resolve().parent.parent
FIXTURE = 'tests/fixtures/instrumented/submission.py'
STEPS, EVERY = 50, 10
BASE_POINT = {'learning_rate': 0.003, 'one_minus_beta1': 0.1, 'beta2': 0.99,
              'weight_decay': 0.05, 'warmup_factor': 0.02,
              'dropout_rate': 0.1, 'averaging_start_fraction': 0.01,
              'averaging_window_fraction': 0.01, 'averaging_every_steps': 5}
POINTS = {'nadamw_lawa': {**BASE_POINT, 'lawa_queue_length': 4},
          'nadamw_ema': {**BASE_POINT, 'ema_decay': 0.9}}
# Columns that are wall times or the preemption count, not metrics.
TIMING = {'score', 'total_duration', 'accumulated_submission_time',
          'accumulated_eval_time', 'accumulated_logging_time',
          'preemption_count'}


def _space(tmp_path, base, **overrides):
  path = tmp_path / f'{base}_space.json'
  path.write_text(json.dumps([{**POINTS[base], **overrides}]))
  return str(path)


def _flags(tmp_path, name, base, *extra):
  return ['--workload=mnist1d', f'--submission_path={FIXTURE}',
          f'--tuning_search_space={_space(tmp_path, base)}',
          f'--eval_every_n_steps={EVERY}', f'--max_global_steps={STEPS}',
          f'--experiment_dir={tmp_path}', f'--experiment_name={name}',
          '--rng_seed=0', '--num_studies=1', '--jobs=1', *extra]


def _trial(tmp_path, name):
  return (tmp_path / name / 'instrumented' / 'study_0' / 'mnist1d_jax' /
          'trial_1')


def _run_in_process(monkeypatch, tmp_path, name, base, kill=None,
                    resume=False):
  """run_local in this process; a kill raises SystemExit(137)."""
  monkeypatch.setenv('LOCALPERF_TEST_BASE', base)
  monkeypatch.setenv('LOCALPERF_TEST_IN_PROCESS', '1')
  monkeypatch.setenv('LOCALPERF_TEST_KILL', kill or ':')
  flags = _flags(tmp_path, name, base,
                 *(['--resume_last_run'] if resume else []))
  if kill:
    with pytest.raises(SystemExit, match='137'):
      run_local.main(flags)
  else:
    assert run_local.main(flags) == 0


def _run_subprocess(tmp_path, name, base, kill=None, resume=False,
                    devices=1, shards=None):
  env = dict(os.environ, LOCALPERF_TEST_BASE=base,
             LOCALPERF_TEST_KILL=kill or ':',
             XLA_FLAGS=f'--xla_force_host_platform_device_count={devices}')
  env.pop('LOCALPERF_TEST_IN_PROCESS', None)
  if shards:
    env['LOCALPERF_TEST_SHARDS'] = str(shards)
  flags = _flags(tmp_path, name, base,
                 *(['--resume_last_run'] if resume else []))
  return subprocess.run([sys.executable, '-m', 'scripts.run_local', *flags],
                        env=env, cwd=REPO, capture_output=True, text=True,
                        check=False)


def _eval_metrics(trial):
  """(global_step, {metric: value}) per eval row, timings left out."""
  rows = logs.read_csv(str(trial / 'eval_measurements.csv'))
  return [{k: v for k, v in row.items() if k not in TIMING} for row in rows]


def _final_arrays(trial):
  """Raw weights and optimizer state (with the average) and eval params."""
  [path] = trial.glob(f'checkpoint_{STEPS}')
  saved = serialization.msgpack_restore(path.read_bytes())
  return {k: saved[k] for k in ('model_params', 'optimizer_state',
                                'model_state')}


def _assert_bitwise_equal(a, b):
  leaves_a, tree_a = jax.tree.flatten(a)
  leaves_b, tree_b = jax.tree.flatten(b)
  assert tree_a == tree_b
  for x, y in zip(leaves_a, leaves_b):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
  """Uninterrupted runs of both bases: their trial directories."""
  tmp_path = tmp_path_factory.mktemp('reference')
  with pytest.MonkeyPatch.context() as monkeypatch:
    for base in POINTS:
      _run_in_process(monkeypatch, tmp_path, base, base)
  return {base: _trial(tmp_path, base) for base in POINTS}


def test_reference_run_averages_and_checkpoints(reference):
  for trial in reference.values():
    steps = [int(r['global_step']) for r in
             logs.read_csv(str(trial / 'eval_measurements.csv'))]
    assert steps == list(range(EVERY, STEPS + 1, EVERY))
    assert [p.name for p in trial.glob('checkpoint_*')] == [
        f'checkpoint_{STEPS}']
  # The evaluated (averaged) params differ from the raw ones at the end.
  final = _final_arrays(reference['nadamw_lawa'])
  raw = final['optimizer_state']['params']
  assert not np.array_equal(
      jax.tree.leaves(final['model_params'])[0], jax.tree.leaves(raw)[0])


# The default suite keeps one kill (mid LAWA fill); the rest are slow.
@pytest.mark.parametrize('base, kill', [
    # After prepare_for_eval, before eval.
    pytest.param('nadamw_lawa', 'prepare:30', marks=pytest.mark.slow),
    # After eval + checkpoint, before update.
    pytest.param('nadamw_lawa', 'update:30', marks=pytest.mark.slow),
    ('nadamw_lawa', 'update:27'),      # Mid LAWA fill: resumes from step 20.
    # During the checkpoint write.
    pytest.param('nadamw_lawa', 'checkpoint:40', marks=pytest.mark.slow),
    pytest.param('nadamw_ema', 'prepare:20', marks=pytest.mark.slow),
])
def test_killed_and_resumed_run_matches_uninterrupted(monkeypatch, tmp_path,
                                                      reference, base, kill):
  _run_in_process(monkeypatch, tmp_path, 'run', base, kill=kill)
  trial = _trial(tmp_path, 'run')
  kill_step = int(kill.split(':')[1])
  restart_step = EVERY * ((kill_step - 1) // EVERY)
  if kill.startswith('update'):
    restart_step = EVERY * (kill_step // EVERY)
  assert [p.name for p in trial.glob('checkpoint_*[0-9]')] == [
      f'checkpoint_{restart_step}']
  _run_in_process(monkeypatch, tmp_path, 'run', base, resume=True)

  assert _eval_metrics(trial) == _eval_metrics(reference[base])
  _assert_bitwise_equal(_final_arrays(trial), _final_arrays(reference[base]))
  rows = logs.read_csv(str(trial / 'eval_measurements.csv'))
  assert [r['preemption_count'] for r in rows] == [
      '0' if int(r['global_step']) <= restart_step else '1' for r in rows]
  steps = [r['global_step'] for r in
           logs.read_csv(str(trial / 'measurements.csv'))
           if r.get('accumulated_eval_time')]
  assert len(steps) == len(set(steps)) == STEPS // EVERY
  assert not list(trial.glob('*.tmp'))
  assert (trial / 'meta_data_1.json').exists()


@pytest.mark.slow
def test_sigkill_during_checkpoint_write_then_cli_resume(tmp_path):
  """A real SIGKILL between writing checkpoint_40.tmp and renaming it.

  The reference is an uninterrupted run of the command too: a command pins
  itself to one core (one XLA thread, `localperf.jobs`), this test process
  does not, and the thread count changes the last bits of a run.
  """
  plain = _run_subprocess(tmp_path, 'plain', 'nadamw_lawa')
  assert plain.returncode == 0, plain.stderr
  reference = _trial(tmp_path, 'plain')
  killed = _run_subprocess(tmp_path, 'run', 'nadamw_lawa',
                           kill='checkpoint:40')
  assert killed.returncode == -9, killed.stderr
  trial = _trial(tmp_path, 'run')
  assert sorted(p.name for p in trial.glob('checkpoint_*')) == [
      'checkpoint_30', 'checkpoint_40.tmp']
  resumed = _run_subprocess(tmp_path, 'run', 'nadamw_lawa', resume=True)
  assert resumed.returncode == 0, resumed.stderr
  assert _eval_metrics(trial) == _eval_metrics(reference)
  _assert_bitwise_equal(_final_arrays(trial), _final_arrays(reference))


# Relative tolerance between 1 and 4 devices: the batch mean and the
# gradient all-reduce sum in a different order, so float32 rounding differs.
# Measured: at most 1.2e-7 over these 50 steps (jax 0.10.2, CPU).
DEVICE_RTOL = 1e-5


@pytest.mark.slow
def test_four_devices_match_one_device(tmp_path, reference):
  shards = tmp_path / 'shards.json'
  run = _run_subprocess(tmp_path, 'four', 'nadamw_lawa', devices=4,
                        shards=shards)
  assert run.returncode == 0, run.stderr
  assert json.loads(shards.read_text()) == [[32, 40]] * 4
  four = _eval_metrics(_trial(tmp_path, 'four'))
  one = _eval_metrics(reference['nadamw_lawa'])
  assert [r['global_step'] for r in four] == [r['global_step'] for r in one]
  for row_four, row_one in zip(four, one):
    for key in row_one:
      if key.startswith(('train/', 'validation/', 'test/')):
        np.testing.assert_allclose(float(row_four[key]), float(row_one[key]),
                                   rtol=DEVICE_RTOL, err_msg=key)
