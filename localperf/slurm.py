"""SLURM job arrays: AlgoPerf's grid, and localperf's runs as one-core tasks.

Plain `sbatch`, not submitit: the job script is a short bash file written
beside the logs (`job_script`), which a person can read, edit and submit
again with `sbatch FILE`; nothing else is installed, and job states come
from `squeue` and files the tasks write, not from `sacct` (submitit reads
`sacct`, so it needs SLURM's accounting database). Every script asks SLURM
to requeue its tasks on preemption or node failure (`--requeue`), and
requeues a task itself when `--signal` warns it that its time limit is near
(`REQUEUE_SIGNAL`, `GRACE_SEC` before the limit); a requeued task runs the
same command again, which continues from the run's last checkpoint.

Two uses, one script shape:
- `scripts.run_algoperf --scheduler=slurm`: one task per AlgoPerf run
  (`config.json`, AlgoPerf's convention: task index -> run), each a command
  line of `scripts.algoperf_runner --resume_last_run`.
- `Backend.map`, the `--jobs_backend=slurm` of the local commands
  (`localperf.jobs.run`): each `fn(**call)` pickled, run by
  `python -m localperf.slurm CALLS INDEX` on one core of its own, its result
  pickled beside it and read back here, in the order of the calls.

Folders the tasks write must be visible from every node: a path on this
machine's own disk (/tmp, /var/tmp, /dev/shm, /run, a tmpfs) is refused.
"""

import importlib
import os
import pickle
import shlex
import shutil
import subprocess
import sys
import time
import traceback
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional
from typing import Sequence

from absl import flags
from absl import logging

REQUEUE_SIGNAL = 'USR1'
GRACE_SEC = 300  # The signal comes this long before the time limit.
NODE_LOCAL = ('/tmp', '/var/tmp', '/dev/shm', '/run')
LOCAL_FILESYSTEMS = ('tmpfs', 'ramfs')
POLL_SEC = 2.0


def define_flags(flag_values: flags.FlagValues) -> None:
  """`--slurm_partition`, `--slurm_account`, `--slurm_time`."""
  flags.DEFINE_string('slurm_partition', None, 'SLURM partition (default: '
                      "the cluster's default).", flag_values=flag_values)
  flags.DEFINE_string('slurm_account', None, 'SLURM account to charge.',
                      flag_values=flag_values)
  flags.DEFINE_string('slurm_time', None, "Each task's time limit, as sbatch "
                      "takes it ('4:00:00', '2-00:00:00'; default: the "
                      "partition's); a task near it requeues itself.",
                      flag_values=flag_values)


# ----------------------------------------------------------------------------
# Checks, before anything is written or submitted.


def check_sbatch() -> None:
  """ValueError unless SLURM's client commands are on PATH."""
  missing = [c for c in ('sbatch', 'squeue', 'scontrol', 'scancel')
             if shutil.which(c) is None]
  if missing:
    raise ValueError(f'no {", ".join(missing)} on PATH: SLURM\'s client '
                     'commands are needed to submit (install slurm-client, '
                     'or run on the cluster\'s login node).')


def _run(argv: Sequence[str]) -> subprocess.CompletedProcess:
  return subprocess.run(list(argv), capture_output=True, text=True,
                        check=False)


def partitions() -> List[str]:
  """The cluster's partitions; ValueError if SLURM cannot be reached."""
  done = _run(['sinfo', '-h', '-o', '%R'])
  if done.returncode:
    last = (done.stderr.strip().splitlines() or ['no answer'])[-1]
    raise ValueError(f'cannot reach SLURM (sinfo: {last}).')
  return sorted(set(done.stdout.split()))


def check_partition(partition: Optional[str]) -> None:
  """ValueError naming the valid partitions if `partition` is not one."""
  valid = partitions()
  if partition is not None and partition not in valid:
    raise ValueError(f'--slurm_partition: no partition {partition!r}; this '
                     f'cluster has {", ".join(valid)}.')


def node_local(path: str) -> Optional[str]:
  """Why `path` is on this machine's own disk, or None."""
  path = os.path.realpath(path)
  for root in NODE_LOCAL:
    if path == root or path.startswith(root + os.sep):
      return f'under {root}'
  existing = path
  while not os.path.exists(existing):
    existing = os.path.dirname(existing)
  done = _run(['stat', '-f', '-c', '%T', existing])
  if done.returncode == 0 and done.stdout.strip() in LOCAL_FILESYSTEMS:
    return f'on a {done.stdout.strip()}'
  return None


def check_shared(flag: str, path: str) -> None:
  """ValueError if the tasks, on other nodes, could not see `path`."""
  why = node_local(path)
  if why:
    raise ValueError(
        f'{flag}: {os.path.abspath(path)} is {why}, on this machine\'s own '
        'disk, which SLURM tasks on other nodes cannot see; give a folder '
        'on a shared filesystem (under $HOME, /scratch, ...).')


def check(partition: Optional[str], folders: Mapping[str, str]) -> None:
  """Every check above; ValueError with one line on the first that fails."""
  check_sbatch()
  for flag, path in folders.items():
    check_shared(flag, path)
  check_partition(partition)


# ----------------------------------------------------------------------------
# The job script.


def job_script(*, name: str, num_tasks: int, directives: Sequence[str],
               output: str, commands: Sequence[str], on_success: str = '',
               comment: str = '') -> str:
  """A bash job-array script: `#SBATCH` lines, then the task's commands.

  `commands` (bash lines) set `ARGV`, the task's command line, which runs in
  the background so that the shell can take REQUEUE_SIGNAL: the task then
  requeues itself (killing the command; its next start resumes from the
  last checkpoint). `on_success` runs after the command exits with 0.
  """
  lines = ['#!/bin/bash']
  lines += [f'# {line}' for line in comment.splitlines()]
  lines += [f'#SBATCH --job-name={name}',
            f'#SBATCH --array=0-{num_tasks - 1}',
            *(f'#SBATCH {d}' for d in directives),
            f'#SBATCH --output={output}',
            '#SBATCH --open-mode=append',
            '#SBATCH --requeue',
            f'#SBATCH --signal=B:{REQUEUE_SIGNAL}@{GRACE_SEC}',
            '',
            'TASK="${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"',
            'echo "task ${TASK} on $(hostname), start ${SLURM_RESTART_COUNT'
            ':-0} ($(date -Is))"',
            *commands,
            '',
            '# Near the time limit: requeue this task; it resumes from its',
            '# last checkpoint when it starts again.',
            f'trap \'echo "time limit near: requeue ${{TASK}}"; '
            f'scontrol requeue "${{TASK}}"\' {REQUEUE_SIGNAL}',
            '"${ARGV[@]}" &',
            'PID=$!',
            'wait "${PID}"; STATUS=$?',
            'while kill -0 "${PID}" 2>/dev/null; do',
            '  wait "${PID}"; STATUS=$?',
            'done']
  if on_success:
    lines += ['if [[ ${STATUS} == 0 ]]; then', f'  {on_success}', 'fi']
  lines += ['exit "${STATUS}"', '']
  return '\n'.join(lines)


def directives(partition: Optional[str], account: Optional[str],
               time_limit: Optional[str]) -> List[str]:
  """The `#SBATCH` options of the flags given."""
  out = []
  for option, value in (('partition', partition), ('account', account),
                        ('time', time_limit)):
    if value:
      out.append(f'--{option}={value}')
  return out


def submit(script_path: str) -> str:
  """`sbatch script_path`; its job id. RuntimeError with sbatch's words."""
  done = _run(['sbatch', '--parsable', script_path])
  if done.returncode:
    last = (done.stderr.strip().splitlines() or ['failed'])[-1]
    raise RuntimeError(f'sbatch {script_path}: {last}')
  return done.stdout.strip().split(';')[0]


def write(path: str, text: str, mode: int = 0o644) -> str:
  """Writes `text` to `path` (its folder made); returns `path`."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'w', encoding='utf-8') as f:
    f.write(text)
  os.chmod(path, mode)
  return path


# ----------------------------------------------------------------------------
# AlgoPerf's grid: one task per run of scripts.algoperf_runner.


def runner_flags(argv: Sequence[str]) -> Dict[str, Any]:
  """{flag: value} of the `--flag=value` arguments of a runner command."""
  pairs = (a[2:].split('=', 1) for a in argv
           if a.startswith('--') and '=' in a)
  return {k: int(v) if v.lstrip('-').isdigit() else v for k, v in pairs}


def done_marker(folder: str, argv: Sequence[str]) -> str:
  """The file a grid task writes when its run ends: named by the run's log
  folder (`<submission>.<study>.<workload>`), as re-submitting checks it."""
  f = runner_flags(argv)
  return os.path.join(folder, 'done.' + '.'.join((
      os.path.basename(f['experiment_dir']), f['experiment_name'],
      f['workload'])))


def grid_config(folder: str, argvs: Sequence[Sequence[str]]
                ) -> Dict[str, Dict[str, Any]]:
  """AlgoPerf's `config.json`: {"<task>": the run's runner flags, plus its
  `command` (argv, run from the repository) and `done` (its marker)}."""
  return {str(i): dict(runner_flags(argv), command=list(argv),
                       done=done_marker(folder, argv))
          for i, argv in enumerate(argvs)}


def grid_script(*, name: str, config: str, num_tasks: int, repo_dir: str,
                output: str, options: Sequence[str], python: str,
                container: Optional[str], binds: Sequence[str] = ()) -> str:
  """The job-array script of an AlgoPerf grid: task i runs `command` of
  entry "i" of `config` from `repo_dir`, then writes the entry's `done`."""
  read = (f'{shlex.quote(python)} -c \'import json, sys; '
          'e = json.load(open(sys.argv[1]))[sys.argv[2]]; '
          'print("\\0".join(e["command"] + [e["done"]]), end="")\' '
          f'"${{CONFIG}}" "${{SLURM_ARRAY_TASK_ID}}"')
  commands = [
      f'CONFIG={shlex.quote(config)}',
      f'cd {shlex.quote(repo_dir)}',
      '# Entry ${SLURM_ARRAY_TASK_ID} of config.json: its command, then the',
      '# file that marks its run done (re-submitting skips done runs).',
      f'mapfile -d \'\' -t ENTRY < <({read})',
      'DONE=${ENTRY[-1]}',
      'ARGV=("${ENTRY[@]:0:${#ENTRY[@]}-1}")']
  if container:
    bind = ','.join([repo_dir, *binds])
    commands.append(f'ARGV=(apptainer exec --nv --bind {shlex.quote(bind)} '
                    f'{shlex.quote(container)} "${{ARGV[@]}}")')
  commands.append('echo "${ARGV[*]}"')
  return job_script(
      name=name, num_tasks=num_tasks, directives=options, output=output,
      commands=commands, on_success='touch "${DONE}"',
      comment='AlgoPerf runs of config.json, one per array task (written '
      'by\nscripts.run_algoperf --scheduler=slurm). Edit it and submit it '
      'again with\nsbatch '
      f'{os.path.join(os.path.dirname(config), "grid.sh")}')


def queued_by_name(name: str) -> List[str]:
  """Ids of this user's jobs named `name` still queued or running."""
  done = _run(['squeue', '-h', '--me', '-n', name, '-o', '%i'])
  return done.stdout.split() if done.returncode == 0 else []


# ----------------------------------------------------------------------------
# localperf's runs as one-core tasks.


class Backend:
  """`map(fn, calls)` as SLURM array tasks of one core each.

  Files go to `<folder>/slurm/<tag>.*`: the script (`.sh`), the pickled
  `(fn, calls)` (`.calls.pkl`), each task's output (`_<i>.out`) and result
  (`_<i>.result.pkl`). The folder holds files only, so scoring, which reads
  every subfolder of an experiment as a submission, passes it by.
  """

  def __init__(self, folder: str, partition: Optional[str] = None,
               account: Optional[str] = None,
               time_limit: Optional[str] = None):
    self.folder = os.path.join(os.path.abspath(folder), 'slurm')
    self.partition, self.account = partition, account
    self.time_limit = time_limit

  def map(self, fn: Callable[..., Any], calls: Sequence[Mapping[str, Any]]
          ) -> Iterator[Any]:
    """`fn(**call)` for each call, as tasks; yields results in call order."""
    if not calls:
      return
    tag = f'{fn.__name__}-{time.strftime("%Y%m%d-%H%M%S")}-{os.getpid()}'
    prefix = os.path.join(self.folder, tag)
    os.makedirs(self.folder, exist_ok=True)
    with open(prefix + '.calls.pkl', 'wb') as f:
      pickle.dump(_main_module(), f)  # What `__main__` is, loaded first.
      pickle.dump((fn, [dict(c) for c in calls]), f)
    module = _main_module() if fn.__module__ == '__main__' else fn.__module__
    command = [sys.executable, '-m', 'localperf.slurm', prefix + '.calls.pkl']
    script = job_script(
        name=f'localperf-{fn.__name__}', num_tasks=len(calls),
        directives=['--ntasks=1', '--cpus-per-task=1',
                    f'--chdir={os.getcwd()}',
                    *directives(self.partition, self.account,
                                self.time_limit)],
        output=prefix + '_%a.out',
        commands=[f'ARGV=({" ".join(map(shlex.quote, command))} '
                  '"${SLURM_ARRAY_TASK_ID}")'],
        comment=f'{len(calls)} runs of {module}.{fn.__name__}, one core '
        'each (localperf.slurm).')
    job = submit(write(prefix + '.sh', script))
    logging.info('slurm job %s: %d tasks of one core (squeue -j %s; output '
                 'in %s_<task>.out)', job, len(calls), job, prefix)
    try:
      for i in range(len(calls)):
        yield self._result(job, prefix, i)
    except BaseException:
      _run(['scancel', job])
      raise

  def _result(self, job: str, prefix: str, index: int) -> Any:
    """Task `index`'s result, once it has one; raises the task's error."""
    path = f'{prefix}_{index}.result.pkl'
    while True:
      queued = _queued(job)  # Before the file: a task writes, then ends.
      if os.path.exists(path):
        break
      if queued is not None and f'{job}_{index}' not in queued:
        raise RuntimeError(f'slurm task {job}_{index} ended without a '
                           f'result; see {prefix}_{index}.out')
      time.sleep(POLL_SEC)
    with open(path, 'rb') as f:
      ok, value = pickle.load(f)
    logging.info('slurm job %s: task %d ended%s', job, index,
                 '' if ok else ' with an error')
    if not ok:
      raise RuntimeError(f'slurm task {job}_{index} failed: {value} '
                         f'(log: {prefix}_{index}.out)')
    return value


def _main_module() -> Optional[str]:
  """The module name `python -m` ran as `__main__`, if any."""
  spec = getattr(sys.modules.get('__main__'), '__spec__', None)
  return spec.name if spec is not None else None


def _queued(job: str) -> Optional[List[str]]:
  """The job's tasks still queued or running (`<job>_<i>`); None if squeue
  did not answer. A pending array shows as `<job>_[2-7]`: expanded here."""
  done = _run(['squeue', '-h', '-r', '-j', job, '-o', '%i'])
  if done.returncode:
    if 'Invalid job id' in done.stderr:
      return []
    return None
  return done.stdout.split()


def run_task(calls_path: str, index: int) -> int:
  """One task: pins to its core, runs its call, pickles (ok, result)."""
  from localperf import jobs  # pylint: disable=g-import-not-at-top
  jobs.pin_this_process()
  flags.FLAGS.mark_as_parsed()
  logging.use_absl_handler()
  logging.set_verbosity(logging.INFO)
  with open(calls_path, 'rb') as f:
    main = pickle.load(f)
    if main:  # Functions and classes of `python -m X` pickle as __main__.*.
      sys.modules['__main__'] = importlib.import_module(main)
    fn, calls = pickle.load(f)
  try:
    result = (True, fn(**calls[index]))
  except Exception as e:  # pylint: disable=broad-except
    traceback.print_exc()
    result = (False, f'{type(e).__name__}: {e}')
  path = f'{calls_path[:-len(".calls.pkl")]}_{index}.result.pkl'
  with open(path + '.part', 'wb') as f:
    pickle.dump(result, f)
  os.replace(path + '.part', path)
  return 0 if result[0] else 1


if __name__ == '__main__':
  sys.exit(run_task(sys.argv[1], int(sys.argv[2])))
