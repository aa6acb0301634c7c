"""SLURM job arrays (localperf/slurm.py) against a real single-node cluster.

`scripts/slurm_one_node.sh` starts the cluster if none answers (installing
Debian's packages if missing; .ci/run starts it before the suites), and
stops it after this file if it started it. Where it cannot run (not root,
no apt-get, daemons that do not start) the tests that need it skip with the
script's reason. The experiment folders are under $HOME: the backend
refuses node-local ones such as /tmp, which tasks on other nodes could not
see.
"""

import contextlib
import csv
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import jax
import numpy as np
import pytest
from flax import serialization

from localperf import jobs
from localperf import slurm
from scripts import run_algoperf
from scripts import run_local
from tests import test_algoperf_resume as resume

REPO = pathlib.Path(__file__).resolve().parent.parent
CLUSTER = REPO / 'scripts' / 'slurm_one_node.sh'
TIMING = {'score', 'total_duration', 'accumulated_submission_time',
          'accumulated_eval_time', 'accumulated_logging_time',
          'preemption_count'}


@pytest.fixture(scope='module')
def cluster():
  """A SLURM cluster answering `sinfo`: the one running, or one started."""
  if subprocess.run([str(CLUSTER), 'status'], capture_output=True,
                    check=False).returncode == 0:
    yield
    return
  started = subprocess.run([str(CLUSTER), 'start'], capture_output=True,
                           text=True, check=False)
  if started.returncode:
    pytest.skip((started.stderr.strip().splitlines() or ['no reason'])[-1])
  yield
  subprocess.run([str(CLUSTER), 'stop'], capture_output=True, check=False)


@pytest.fixture
def shared(tmp_path):
  """A folder the tasks can see (not node-local like tmp_path)."""
  base = pathlib.Path.home() / '.cache' / 'localperf-tests'
  base.mkdir(parents=True, exist_ok=True)
  path = pathlib.Path(tempfile.mkdtemp(dir=base))
  yield path
  shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
  """SLURM's client commands on PATH as stand-ins that record their calls
  (sinfo lists partitions debug and high): what would be submitted."""
  bin_dir, calls = tmp_path / 'bin', tmp_path / 'calls.txt'
  bin_dir.mkdir()
  calls.write_text('')
  for name in ('sbatch', 'squeue', 'scontrol', 'scancel', 'sinfo'):
    out = 'printf "debug\\nhigh\\n"' if name == 'sinfo' else 'true'
    (bin_dir / name).write_text(
        f'#!/bin/sh\necho "{name} $*" >> {calls}\n{out}\n')
    (bin_dir / name).chmod(0o755)
  monkeypatch.setenv('PATH', f'{bin_dir}{os.pathsep}{os.environ["PATH"]}')
  return calls


def _error(main, argv, capsys):
  """A command's one-line error (exit status 2)."""
  with pytest.raises(SystemExit) as e:
    main(argv)
  assert e.value.code == 2
  err = capsys.readouterr().err.strip().splitlines()
  return err[-1].split(': error: ', 1)[1]


def _run_local_flags(root, name, *flags):
  return [f'--experiment_dir={root}', f'--experiment_name={name}',
          '--workload=mnist1d', '--submissions=nadamw,nadamw_ema',
          '--num_studies=2', '--max_global_steps=24',
          '--eval_every_n_steps=8', *flags]


@pytest.fixture
def grid_runner(monkeypatch, tmp_path):
  """run_algoperf's checks of AlgoPerf passed, for a runner path of ours."""
  runner = tmp_path / 'submission_runner.py'
  runner.write_text('')
  monkeypatch.setattr(run_algoperf, 'find_runner', lambda *_: str(runner))
  monkeypatch.setattr(run_algoperf, 'check_package_installed', lambda _: None)
  monkeypatch.setattr(run_algoperf, 'check_resume', lambda *_: None)
  monkeypatch.setattr(run_algoperf, 'check_orbax', lambda _: None)
  return runner


def _grid_flags(experiment, data, *flags):
  return [f'--experiment_dir={experiment}', f'--data_dir={data}',
          '--workloads=ogbg', '--submissions=nadamw,nadamw_ema',
          '--num_studies=2', '--scheduler=slurm', '--slurm_gpus_per_node=0',
          '--noslurm_exclusive', *flags]


# ----------------------------------------------------------------------------
# Bad input: one line, exit status 2, nothing submitted.


def test_no_sbatch_on_path(tmp_path, shared, grid_runner, monkeypatch,
                           capsys):
  monkeypatch.setenv('PATH', str(tmp_path))
  message = _error(run_local.main, _run_local_flags(
      shared, 'x', '--jobs_backend=slurm'), capsys)
  assert message.startswith('--jobs_backend=slurm: no sbatch, squeue, '
                            'scontrol, scancel on PATH')
  assert not (shared / 'x' / 'slurm').exists()
  (shared / 'data' / 'ogbg').mkdir(parents=True)
  message = _error(run_algoperf.main, _grid_flags(
      shared / 'grid', shared / 'data'), capsys)
  assert message.startswith('--scheduler=slurm: no sbatch')
  assert not (shared / 'grid' / 'slurm').exists()


def test_node_local_experiment_folder(tmp_path, fake_slurm, grid_runner,
                                      capsys):
  message = _error(run_local.main, _run_local_flags(
      tmp_path, 'x', '--jobs_backend=slurm'), capsys)
  assert message == (
      f'--jobs_backend=slurm: folder of the runs: {tmp_path / "x"} is under '
      "/tmp, on this machine's own disk, which SLURM tasks on other nodes "
      'cannot see; give a folder on a shared filesystem (under $HOME, '
      '/scratch, ...).')
  (tmp_path / 'data' / 'ogbg').mkdir(parents=True)
  message = _error(run_algoperf.main, _grid_flags(
      tmp_path / 'grid', tmp_path / 'data'), capsys)
  assert message.startswith(f'--scheduler=slurm: --experiment_dir: '
                            f'{tmp_path / "grid"} is under /tmp')
  assert 'sbatch' not in fake_slurm.read_text()


@pytest.mark.slow  # Starts the one-node cluster (about 20 s).
def test_unknown_partition(cluster, shared, grid_runner, capsys):
  del cluster
  message = _error(run_local.main, _run_local_flags(
      shared, 'x', '--jobs_backend=slurm', '--slurm_partition=gpu'), capsys)
  assert message == ("--jobs_backend=slurm: --slurm_partition: no partition "
                     "'gpu'; this cluster has debug, high.")
  (shared / 'data' / 'ogbg').mkdir(parents=True)
  message = _error(run_algoperf.main, _grid_flags(
      shared / 'grid', shared / 'data', '--slurm_partition=gpu'), capsys)
  assert message.startswith("--scheduler=slurm: --slurm_partition: no "
                            "partition 'gpu'")
  assert not (shared / 'x' / 'slurm').exists()
  assert not (shared / 'grid' / 'slurm').exists()


def test_overwrite_is_refused_on_slurm(shared, grid_runner, capsys):
  message = _error(run_algoperf.main, _grid_flags(
      shared, shared, '--overwrite'), capsys)
  assert message.startswith('--overwrite with --scheduler=slurm')


# ----------------------------------------------------------------------------
# The job script.


def test_grid_dry_run_writes_config_and_a_readable_script(
    shared, grid_runner, fake_slurm, capsys):
  (shared / 'data' / 'ogbg').mkdir(parents=True)
  assert run_algoperf.main(_grid_flags(
      shared / 'exp', shared / 'data', '--dry_run', '--slurm_time=4:00:00',
      '--slurm_partition=debug', '--slurm_gpus_per_node=8',
      '--slurm_exclusive')) == 0
  folder = shared / 'exp' / 'slurm'
  script = (folder / 'grid.sh').read_text()
  for line in ('#SBATCH --array=0-3', '#SBATCH --partition=debug',
               '#SBATCH --time=4:00:00', '#SBATCH --nodes=1',
               '#SBATCH --gpus-per-node=8', '#SBATCH --exclusive',
               '#SBATCH --requeue', '#SBATCH --signal=B:USR1@300',
               f'#SBATCH --output={folder}/%A_%a.out'):
    assert line in script.splitlines()
  config = json.loads((folder / 'config.json').read_text())
  assert sorted(config) == ['0', '1', '2', '3']
  assert [(e['experiment_dir'], e['experiment_name'], e['rng_seed'])
          for e in config.values()] == [
              (f'{shared}/exp/nadamw', 'study_0', 1),
              (f'{shared}/exp/nadamw_ema', 'study_0', 1),
              (f'{shared}/exp/nadamw', 'study_1', 2),
              (f'{shared}/exp/nadamw_ema', 'study_1', 2)]
  assert all(e['command'][-1] == '--resume_last_run'
             for e in config.values())
  assert 'sbatch' not in fake_slurm.read_text()
  assert f'submit with: sbatch {folder}/grid.sh' in capsys.readouterr().out


# ----------------------------------------------------------------------------
# Through the cluster.


@pytest.mark.slow  # Starts the one-node cluster (about 20 s).
def test_calls_run_as_one_core_tasks_in_call_order(cluster, shared):
  del cluster
  backend = slurm.Backend(str(shared), partition='debug')
  results = list(jobs.run(slurm.node_local, [
      dict(path='/tmp/x'), dict(path=str(shared)), dict(path='/dev/shm')],
                          jobs=2, cores=[0], backend=backend))
  assert results == ['under /tmp', None, 'under /dev/shm']
  cores = list(jobs.run(jobs.allowed_cores, [{}, {}], jobs=2, cores=[0],
                        backend=backend))
  assert [len(c) for c in cores] == [1, 1]  # Each task pinned to one core.
  with pytest.raises(RuntimeError, match=r'slurm task \d+_1 failed: '
                     r"TypeError: .*unexpected keyword argument 'nope'"):
    list(jobs.run(slurm.node_local, [dict(path='/'), dict(nope=1)],
                  jobs=2, cores=[0], backend=backend))


def _squeue(job):
  return subprocess.run(['squeue', '-h', '-r', '-j', job, '-o', '%i'],
                        capture_output=True, text=True,
                        check=False).stdout.split()


def _slurm(command, timeout=60):
  """Runs a SLURM command, again while it says "try again later" (a job of
  the array between states); CalledProcessError if it fails otherwise."""
  end = time.monotonic() + timeout
  while True:
    done = subprocess.run(command, capture_output=True, text=True,
                          check=False)
    if not done.returncode:
      return
    if 'try again later' not in done.stderr or time.monotonic() > end:
      raise subprocess.CalledProcessError(done.returncode, command,
                                          done.stdout, done.stderr)
    time.sleep(1)


@contextlib.contextmanager
def _one_core():
  """This thread, and the processes it starts meanwhile, on one core: as a
  task of one CPU runs (task/affinity), XLA's CPU pool then has one thread
  and its reductions the same order (localperf/jobs.py)."""
  cores = os.sched_getaffinity(0)
  os.sched_setaffinity(0, {min(cores)})
  try:
    yield
  finally:
    os.sched_setaffinity(0, cores)


def _wait_until(condition, timeout, what):
  end = time.monotonic() + timeout
  while not condition():
    assert time.monotonic() < end, f'timed out waiting for {what}'
    time.sleep(0.5)


STAND_IN = """#!/bin/bash
# Python for run_algoperf's tasks: the runner's command is recorded (with
# the task's start count and its job script's pid); the first start of
# tasks 0 and 1 runs while HOLD exists (at most 5 min), so it is still
# running when the test interrupts it, however loaded the machine; anything
# else is the real python.
if [[ $1 == -m && $2 == scripts.algoperf_runner ]]; then
  echo "${SLURM_ARRAY_TASK_ID} ${SLURM_RESTART_COUNT:-0} ${PPID} $*" >> RECORD
  while [[ -e HOLD && ${SLURM_ARRAY_TASK_ID} -lt 2 \\
           && ${SLURM_RESTART_COUNT:-0} == 0 ]] && (( SECONDS < 300 )); do
    sleep 0.2
  done
  exit 0
fi
exec PYTHON "$@"
"""


@pytest.mark.slow
def test_grid_tasks_resume_after_requeue_and_time_limit_skip_done_runs(
    cluster, shared, grid_runner, monkeypatch, capsys):
  del cluster
  record, hold = shared / 'calls.txt', shared / 'hold'
  hold.touch()
  python = shared / 'python'
  python.write_text(STAND_IN.replace('RECORD', str(record)).replace(
      'PYTHON', sys.executable).replace('HOLD', str(hold)))
  python.chmod(0o755)
  monkeypatch.setattr(run_algoperf.sys, 'executable', str(python))
  (shared / 'data' / 'ogbg').mkdir(parents=True)
  flags = _grid_flags(shared / 'exp', shared / 'data',
                      '--slurm_partition=debug', '--max_global_steps=9')
  assert run_algoperf.main(flags) == 0
  out = capsys.readouterr().out
  job = out.split('submitted job ', 1)[1].split(':', 1)[0]
  assert f'squeue -j {job}' in out
  assert f'--submission_directory={shared / "exp"}' in out
  started = lambda: {line[:3] for line in record.read_text().splitlines()}
  _wait_until(lambda: record.exists() and {'0 0', '1 0'} <= started(), 60,
              'tasks 0 and 1 to start')
  # What SLURM sends to the job script before the time limit (--signal=B:):
  # it requeues itself. (Not `scancel --batch --signal`: SLURM 22.05's
  # retries it while the task is requeued, and the task's next start gets
  # it too.)
  [script] = [int(line.split()[2]) for line in record.read_text().splitlines()
              if line.startswith('0 0 ')]
  os.kill(script, signal.SIGUSR1)
  _wait_until(lambda: '0 1' in started(), 120, 'task 0 to start again')
  _slurm(['scontrol', 'requeue', f'{job}_1'])
  _wait_until(lambda: '1 1' in started(), 120, 'task 1 to start again')
  hold.unlink()
  _wait_until(lambda: not _squeue(job), 120, f'job {job} to end')

  calls = [line.split(' ', 3) for line in record.read_text().splitlines()]
  starts = {task: sorted(int(c) for t, c, _, _ in calls if t == task)
            for task in '0123'}
  assert starts['0'] == starts['1'] == [0, 1]
  assert starts['2'] == starts['3'] == [0]
  assert 'time limit near: requeue' in (
      shared / 'exp' / 'slurm' / f'{job}_0.out').read_text()
  for task, _, _, argv in calls:
    argv = argv.split()
    assert argv[:3] == ['-m', 'scripts.algoperf_runner',
                        str(grid_runner)]
    submission = ('nadamw', 'nadamw_ema')[int(task) % 2]
    study = int(task) // 2
    assert argv[3:] == [
        '--framework=jax', '--workload=ogbg',
        f'--submission_path=submissions/{submission}/submission.py',
        '--tuning_ruleset=external',
        f'--tuning_search_space=workloads_config/external_tuning/'
        f'{submission}.json', '--num_tuning_trials=5',
        f'--data_dir={shared}/data/ogbg',
        f'--experiment_dir={shared}/exp/{submission}',
        f'--experiment_name=study_{study}', f'--rng_seed={study + 1}',
        '--resume_last_run', '--max_global_steps=9']
  assert len(list((shared / 'exp' / 'slurm').glob('done.*'))) == 4
  assert 'start 1' in (shared / 'exp' / 'slurm' /
                       f'{job}_1.out').read_text()  # SLURM_RESTART_COUNT.

  assert run_algoperf.main(flags) == 0  # Again: every run is done.
  assert '4 of 4 runs are done' in capsys.readouterr().out
  assert len(record.read_text().splitlines()) == len(calls)


def _summary_without_times(root):
  """summary.txt's tables, the time columns of the first left out."""
  lines = (root / 'summary.txt').read_text().splitlines()
  return [' '.join(w for i, w in enumerate(line.split()) if i not in (3, 6))
          if line.startswith('mnist1d ') and len(line.split()) == 7 else line
          for line in lines]


def _eval_rows(trial):
  with open(trial / 'eval_measurements.csv', encoding='utf-8') as f:
    return [{k: v for k, v in row.items() if k not in TIMING}
            for row in csv.DictReader(f)]


def _trials(root):
  return sorted(p.relative_to(root) for p in root.glob('*/study_*/*/trial_*'))


@pytest.mark.slow
def test_run_local_through_slurm_gives_the_local_rows_and_tables(
    cluster, shared):
  del cluster
  for name, backend in (('local', 'local'), ('slurm', 'slurm')):
    done = subprocess.run(
        [sys.executable, '-m', 'scripts.run_local',
         *_run_local_flags(shared, name, f'--jobs_backend={backend}')],
        cwd=REPO, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
  local, via_slurm = shared / 'local', shared / 'slurm'
  assert _trials(local) == _trials(via_slurm) and len(_trials(local)) == 4
  for trial in _trials(local):
    assert _eval_rows(local / trial) == _eval_rows(via_slurm / trial)
    assert len(_eval_rows(local / trial)) == 3
  assert _summary_without_times(local) == _summary_without_times(via_slurm)
  assert len(list((via_slurm / 'slurm').glob('*.result.pkl'))) == 4


EVERY, STEPS = 30, 300


def _one_run(root, name, *flags):
  return subprocess.Popen(
      [sys.executable, '-m', 'scripts.run_local',
       f'--experiment_dir={root}', f'--experiment_name={name}',
       '--workload=mnist1d', '--submissions=nadamw_ema', '--num_studies=1',
       f'--max_global_steps={STEPS}', f'--eval_every_n_steps={EVERY}',
       *flags], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      text=True)


def _final_arrays(trial):
  [path] = trial.glob(f'checkpoint_{STEPS}')
  saved = serialization.msgpack_restore(path.read_bytes())
  return {k: saved[k] for k in ('model_params', 'optimizer_state',
                                'model_state')}


def _interrupt_after_first_checkpoint(root, name, interrupt):
  """run_local through SLURM, `interrupt(job)` once the task checkpointed."""
  process = _one_run(root, name, '--jobs_backend=slurm')
  trial = root / name / 'nadamw_ema' / 'study_0' / 'mnist1d_jax' / 'trial_1'
  _wait_until(lambda: list(trial.glob('checkpoint_*[0-9]')), 300,
              'the first checkpoint')
  [out] = (root / name / 'slurm').glob('*_0.out')
  job = out.read_text().split('task ', 1)[1].split('_', 1)[0]
  interrupt(job)
  _, err = process.communicate(timeout=600)
  assert process.returncode == 0, err[-3000:]
  assert 'start 1' in out.read_text()  # SLURM_RESTART_COUNT=1.
  return trial


@pytest.mark.slow
def test_requeued_and_preempted_tasks_end_as_an_uninterrupted_run(
    cluster, shared):
  del cluster
  reference = _one_run(shared, 'whole', '--jobs=1')
  requeued = _interrupt_after_first_checkpoint(
      shared, 'requeued', lambda job: subprocess.run(
          ['scontrol', 'requeue', f'{job}_0'], check=True))
  assert reference.wait(timeout=600) == 0, reference.stderr.read()[-3000:]
  preempted = _interrupt_after_first_checkpoint(
      shared, 'preempted', lambda job: subprocess.run(
          ['sbatch', '--partition=high', '--cpus-per-task=2',
           f'--output={shared}/high.out', '--wrap=sleep 2'], check=True))
  whole = shared / 'whole' / 'nadamw_ema' / 'study_0' / 'mnist1d_jax'
  whole = whole / 'trial_1'
  expected = _eval_rows(whole)
  assert len(expected) == STEPS // EVERY
  for trial in (requeued, preempted):
    assert _eval_rows(trial) == expected
    rows = list(csv.DictReader(open(trial / 'eval_measurements.csv',
                                    encoding='utf-8')))
    assert rows[-1]['preemption_count'] == '1'  # It resumed, not restarted.
    a, b = _final_arrays(trial), _final_arrays(whole)
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
      np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_runner_flags_and_done_marker():
  argv = ['python', '-m', 'scripts.algoperf_runner', 'r.py',
          '--workload=wmt', '--experiment_dir=/e/nadamw',
          '--experiment_name=study_2', '--rng_seed=3', '--resume_last_run']
  assert slurm.runner_flags(argv) == {
      'workload': 'wmt', 'experiment_dir': '/e/nadamw',
      'experiment_name': 'study_2', 'rng_seed': 3}
  assert slurm.done_marker('/e/slurm', argv) == (
      '/e/slurm/done.nadamw.study_2.wmt')


@pytest.mark.slow
@pytest.mark.skipif(not resume.ALGOPERF_PYTHON, reason='needs AlgoPerf: '
                    'set ALGOPERF_PYTHON (as for test_algoperf_resume.py).')
def test_algoperf_mnist_grid_through_slurm_with_a_requeue(cluster, shared):
  """AlgoPerf's mocked MNIST, 2 studies as tasks; task 0 is requeued right
  after its checkpoint of step 6 and must end as the uninterrupted run."""
  del cluster
  submission, point = resume.POINTS['nadamw_lawa_host']
  space = shared / 'space.json'
  space.write_text(json.dumps([point]))
  with _one_core():  # As each task runs: a sum's last bit depends on it.
    whole = resume._run(shared / 'whole', submission, space, 1)
  env = dict(resume._env(1), ALGOPERF_MNIST_REQUEUE_AT='0:6')
  (shared / 'data' / 'mnist').mkdir(parents=True, exist_ok=True)
  experiment = shared / 'grid'
  done = subprocess.run(
      [resume.ALGOPERF_PYTHON, '-m', 'scripts.run_algoperf',
       f'--experiment_dir={experiment}', f'--data_dir={shared / "data"}',
       f'--submissions={submission}', '--workloads=mnist',
       '--num_studies=2', '--num_tuning_trials=1',
       f'--max_global_steps={resume.NUM_STEPS}',
       f'--tuning_search_space={space}', '--scheduler=slurm',
       '--slurm_partition=debug', '--slurm_gpus_per_node=0',
       '--noslurm_exclusive'], cwd=REPO, env=env, capture_output=True,
      text=True, check=False)
  assert done.returncode == 0, done.stderr[-3000:]
  job = done.stdout.split('submitted job ', 1)[1].split(':', 1)[0]
  _wait_until(lambda: not _squeue(job), 900, f'job {job} to end')
  trial = experiment / submission / 'study_0' / 'mnist_jax' / 'trial_1'
  assert 'start 1' in (experiment / 'slurm' / f'{job}_0.out').read_text()
  assert (trial / 'meta_data_1.json').is_file()  # It resumed.
  assert resume._eval_rows(trial) == resume._eval_rows(whole)
  assert resume._digests(trial, 1) == resume._digests(whole, 1)
  assert len(list((experiment / 'slurm').glob('done.*'))) == 2
