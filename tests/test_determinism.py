"""One seed, one trajectory: a local run's metrics do not depend on the load
or on the cores the process may use (`localperf/jobs.py`).

Each workload trains nadamw briefly three ways through `scripts.run_local`:
plainly; then, beside CPU-bound processes (one per core) and each other, as
is and restricted by `taskset` to a core other than the one a plain run
pins itself to. Every column of
eval_measurements.csv but the times must be equal, character for character.
With the pin removed from `jobs.pin_to_core` (XLA's thread pool over both
cores of a 2-core machine), the one-core run's molgraph_gnn metrics differ
from the plain run's within these 60 steps, so this can fail.
"""

import contextlib
import csv
import pathlib
import subprocess
import sys

import pytest

from localperf import jobs
from localperf import workloads as registry

REPO = pathlib.Path(__file__).resolve().parent.parent
# Wall-time columns, which differ from run to run by nature.
TIME_COLUMNS = {'score', 'total_duration', 'accumulated_submission_time',
                'accumulated_eval_time', 'accumulated_logging_time',
                'preemption_count'}
STEPS, EVERY = 60, 30


@contextlib.contextmanager
def _busy_cores():
  """A CPU-bound process per core, for the duration."""
  hogs = [subprocess.Popen([sys.executable, '-c', 'while True: pass'])
          for _ in jobs.allowed_cores()]
  try:
    yield
  finally:
    for hog in hogs:
      hog.kill()
      hog.wait()


def _start(tmp_path, name, workload, core=None) -> subprocess.Popen:
  """run_local of nadamw on `workload`, restricted to `core` if given."""
  command = [sys.executable, '-m', 'scripts.run_local',
             f'--workload={workload}', '--submissions=nadamw',
             f'--max_global_steps={STEPS}', f'--eval_every_n_steps={EVERY}',
             '--nosave_checkpoints', '--num_studies=1',
             f'--experiment_dir={tmp_path}',
             f'--experiment_name={name}']
  if core is not None:
    command = ['taskset', '--cpu-list', str(core)] + command
  return subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)


def _measurements(tmp_path, name, workload, run: subprocess.Popen):
  """The non-time columns of the finished run's eval_measurements.csv."""
  _, err = run.communicate()
  assert run.returncode == 0, err[-3000:]
  path = (tmp_path / name / 'nadamw' / 'study_0' / f'{workload}_jax' /
          'trial_1' / 'eval_measurements.csv')
  with open(path, newline='', encoding='utf-8') as f:
    rows = [{k: v for k, v in row.items() if k not in TIME_COLUMNS}
            for row in csv.DictReader(f)]
  assert [int(r['global_step']) for r in rows] == list(
      range(EVERY, STEPS + 1, EVERY))
  return rows


def _check_three_ways(tmp_path, workload):
  """Plainly; then, beside busy cores, both as is and on the last core."""
  plain = _measurements(tmp_path, 'plain', workload,
                        _start(tmp_path, 'plain', workload))
  with _busy_cores():
    loaded = _start(tmp_path, 'loaded', workload)
    one_core = _start(tmp_path, 'one_core', workload,
                      core=jobs.allowed_cores()[-1])
    assert _measurements(tmp_path, 'loaded', workload, loaded) == plain
    assert _measurements(tmp_path, 'one_core', workload, one_core) == plain


def test_molgraph_gnn_is_bit_identical_under_load_and_on_one_core(tmp_path):
  _check_three_ways(tmp_path, 'molgraph_gnn')


@pytest.mark.slow
@pytest.mark.parametrize('workload', registry.WORKLOAD_NAMES)
def test_every_workload_is_bit_identical_under_load_and_on_one_core(
    tmp_path, workload):
  _check_three_ways(tmp_path, workload)
