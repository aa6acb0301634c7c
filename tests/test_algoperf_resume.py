"""Resume in AlgoPerf's own runner, through scripts.run_algoperf, bit for bit.

Each case trains AlgoPerf's `mnist` workload (JAX, mock data) for 20 steps
three ways through `python -m scripts.run_algoperf`: uninterrupted; killed
(SIGKILL) right after the checkpoint of step 6, while the LAWA queue is still
filling, then resumed with `--resume_last_run`; and the same killed after
step 14, once `prepare_for_eval` has handed the runner the full average.
The eval rows after the kill and the final checkpoint (raw weights,
optimizer state, the average and its queue) must equal the uninterrupted
run's bit for bit. Every step is evaluated and checkpointed, so both kills
fall right after a `prepare_for_eval`.

AlgoPerf is not on the package index: set ALGOPERF_PYTHON to the python of
an environment holding an AlgoPerf checkout installed with its `jax_cpu`
and `pytorch_cpu` extras, and this package (`pip install -e .`). Where it is
unset, every case is skipped with that reason. The first case runs in the
default suite, the rest in the slow one.
"""

import csv
import json
import os
import pathlib
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
FIXTURE = REPO / 'tests' / 'fixtures' / 'algoperf_mnist'
ALGOPERF_PYTHON = os.environ.get('ALGOPERF_PYTHON')
NUM_STEPS = 20
KILLS = (6, 14)

pytestmark = pytest.mark.skipif(
    not ALGOPERF_PYTHON,
    reason='needs AlgoPerf: set ALGOPERF_PYTHON to the python of an '
    'environment with an AlgoPerf checkout and this package installed.')

_NADAMW = {'dropout_rate': 0.0, 'label_smoothing': 0.0,
           'learning_rate': 0.002, 'one_minus_beta1': 0.1, 'beta2': 0.999,
           'weight_decay': 0.01, 'warmup_factor': 0.1}
_AVERAGING = {'averaging_start_fraction': 0.1,
              'averaging_window_fraction': 0.4}
POINTS = {
    'nadamw_lawa_host': ('nadamw_lawa', dict(
        _NADAMW, **_AVERAGING, lawa_queue_length=4,
        lawa_queue_location='host')),
    'nadamw': ('nadamw', _NADAMW),
    'nadamw_ema': ('nadamw_ema', dict(_NADAMW, **_AVERAGING, ema_decay=0.9)),
    'nadamw_lawa_device': ('nadamw_lawa', dict(
        _NADAMW, **_AVERAGING, lawa_queue_length=4,
        lawa_queue_location='device')),
    'nadamw_codesign': ('nadamw_codesign', dict(
        _NADAMW, averaging_start_fraction=0.1, ema_max_window_fraction=0.4,
        ema_min_window_fraction=0.05)),
    'schedule_free_adamw': ('schedule_free_adamw', dict(
        _NADAMW, weight_lr_power=2.0)),
}
CASES = [pytest.param(name, devices, marks=() if (name, devices) == (
    'nadamw_lawa_host', 1) else pytest.mark.slow)
         for devices in (1, 4) for name in POINTS]

# Run by ALGOPERF_PYTHON: {leaf path: [dtype, shape, bytes as hex digest]}
# of a trial's newest checkpoint, without the wall-clock parts.
_DIGESTS = """
import hashlib, json, sys
import jax, numpy as np
from flax.training import checkpoints
saved = checkpoints.restore_checkpoint(sys.argv[1], target=None)
out = {}
for key in ('model_params', 'optimizer_state', 'model_state', 'global_step'):
  for path, leaf in jax.tree_util.tree_leaves_with_path(saved[key]):
    leaf = np.asarray(leaf)
    out[key + jax.tree_util.keystr(path)] = [
        str(leaf.dtype), list(leaf.shape),
        hashlib.sha256(leaf.tobytes()).hexdigest()]
print(json.dumps(out))
"""


def _has_schedule_free() -> bool:
  code = 'import optax.contrib as c; print(hasattr(c, "schedule_free_adamw"))'
  out = subprocess.run([ALGOPERF_PYTHON, '-c', code], capture_output=True,
                       text=True, check=False).stdout
  return out.strip().endswith('True')


def _env(devices):
  """`devices` CPU devices (the runner drops XLA_FLAGS), the fixture on."""
  env = dict(os.environ, PYTHONPATH=str(FIXTURE),
             ALGOPERF_MNIST_STEP_HINT=str(NUM_STEPS),
             JAX_NUM_CPU_DEVICES=str(devices))
  env.pop('XLA_FLAGS', None)
  return env


def _run(experiment_dir, submission, space, devices, *flags, kill_at=None):
  env = _env(devices)
  if kill_at is not None:
    env['ALGOPERF_MNIST_KILL_AT_STEP'] = str(kill_at)
  data = experiment_dir.parent / 'data'
  (data / 'mnist').mkdir(parents=True, exist_ok=True)
  done = subprocess.run(
      [ALGOPERF_PYTHON, '-m', 'scripts.run_algoperf',
       f'--experiment_dir={experiment_dir}', f'--data_dir={data}',
       f'--submissions={submission}', '--workloads=mnist',
       '--num_studies=1', '--num_tuning_trials=1',
       f'--max_global_steps={NUM_STEPS}', f'--tuning_search_space={space}',
       *flags], cwd=REPO, env=env, capture_output=True, text=True,
      check=False)
  killed = kill_at is not None and 'exit code -9' in done.stderr
  assert done.returncode == 0 or killed, done.stdout + done.stderr[-4000:]
  return experiment_dir / submission / 'study_0' / 'mnist_jax' / 'trial_1'


def _eval_rows(trial):
  with open(trial / 'eval_measurements.csv', encoding='utf-8') as f:
    return {int(r['global_step']): {
        k: v for k, v in r.items()
        if k.split('/')[0] in ('train', 'validation', 'test')}
            for r in csv.DictReader(f)}


def _digests(trial, devices):
  """Restored on as many devices as saved it (orbax's saved shardings)."""
  out = subprocess.run([ALGOPERF_PYTHON, '-c', _DIGESTS, str(trial)],
                       env=_env(devices), cwd=os.path.sep,
                       capture_output=True, text=True, check=True).stdout
  return json.loads(out.splitlines()[-1])


@pytest.mark.parametrize('name, devices', CASES)
def test_killed_run_resumes_bit_for_bit(name, devices, tmp_path):
  submission, point = POINTS[name]
  if submission == 'schedule_free_adamw' and not _has_schedule_free():
    pytest.skip('optax.contrib.schedule_free_adamw is absent from '
                "ALGOPERF_PYTHON's optax (AlgoPerf v0.6 pins optax 0.2.2).")
  space = tmp_path / 'space.json'
  space.write_text(json.dumps([point]))
  whole = _run(tmp_path / 'whole', submission, space, devices)
  expected_rows, expected_state = (_eval_rows(whole),
                                   _digests(whole, devices))
  assert sorted(expected_rows) == list(range(1, NUM_STEPS + 1))
  for kill_at in KILLS:
    experiment = tmp_path / f'killed_at_{kill_at}'
    trial = _run(experiment, submission, space, devices, kill_at=kill_at)
    assert max(_eval_rows(trial)) == kill_at
    _run(experiment, submission, space, devices, '--resume_last_run')
    rows = _eval_rows(trial)
    assert sorted(rows) == sorted(expected_rows)
    for step in range(kill_at + 1, NUM_STEPS + 1):
      assert rows[step] == expected_rows[step], (kill_at, step)
    state = _digests(trial, devices)
    assert state == expected_state, sorted(
        k for k in expected_state if state.get(k) != expected_state[k])
    assert (trial / 'meta_data_1.json').is_file()  # A second preemption.
