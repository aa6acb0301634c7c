"""Launches AlgoPerf's own runner for submissions x workloads x studies.

  python -m scripts.run_algoperf --experiment_dir=EXP [--data_dir=~/data]
      [--submissions=nadamw,nadamw_ema,nadamw_lawa] [--workloads=paper_seven]
      [--tuning_ruleset=external|self] [--num_studies=3]
      [--num_tuning_trials=5] [--rng_seed=1] [--max_global_steps=N]
      [--overwrite | --resume_last_run] [--paper_settings]
      [--tuning_search_space=FILE] [--algoperf_dir=DIR] [--dry_run]
      [--scheduler=slurm [--slurm_partition=P] [--slurm_account=A]
       [--slurm_time=T] [--slurm_gpus_per_node=8] [--slurm_container=IMG]]

Runs `submission_runner.py` (framework jax) once per study, workload and
submission, one after another, through `scripts.algoperf_runner`, with this
checkout as the working directory (AlgoPerf imports
`submissions/x/submission.py` as `submissions.x.submission`, so this package
must be installed: `pip install -e .`). Logs land in
`EXP/<submission>/study_<i>/<workload>_jax/trial_<k>/`, the layout
`python -m scripts.score --submission_directory=EXP` reads. Study i runs with
`--rng_seed=rng_seed + i` for every submission, so submissions are compared
on the same seeds. With --dry_run, prints one shell command per run instead
(for a cluster scheduler) and needs neither AlgoPerf nor the data (the
runner's path is --algoperf_dir, else $ALGOPERF_DIR, else a placeholder).
With --scheduler=slurm, the runs become the tasks of one SLURM job array
(EXPERIMENT_DIR/slurm/config.json and grid.sh; localperf/slurm.py), each
with --resume_last_run and requeued on preemption or near its time limit;
runs already done are skipped when the grid is submitted again
(docs/cluster.md).

Everything is checked before the first launch: names, search spaces, data
folders, AlgoPerf and this package being importable, existing logs, and the
runner's own pitfalls (AlgoPerf v0.6):
- `--rng_seed=0` makes the runner draw a random seed: seeds here are >= 1.
- `--submission_path` must be relative to the working directory: always
  `submissions/<name>/submission.py`, run from this checkout.
- importing `submission_runner.py` overwrites `XLA_FLAGS`, so
  `--xla_force_host_platform_device_count` there is lost; JAX_NUM_CPU_DEVICES
  sets the number of host devices instead (a warning says so).
- orbax-checkpoint 0.11.40 and 0.12.x cannot save a multi-device checkpoint
  with jax 0.7.x (0.11.20 can): refused before launch on more than one
  device.
- AlgoPerf v0.6's own `--resume_last_run` crashes for every JAX submission
  (see `scripts/algoperf_runner.py`): every run goes through that module,
  which corrects its resume on the AlgoPerf versions it knows, so
  `--resume_last_run` resumes each run from its last checkpoint, bit for bit;
  on other versions it is refused before the first launch, with the reason.
--paper_settings uses the per-workload settings of the paper
(workloads_config/paper_runs/): research only, they break the external-tuning
rules.
"""

import json
import os
import pathlib
import re
import shlex
import subprocess
import sys
import types
from typing import Any, Dict, List, Optional, Sequence, Tuple

from absl import flags
from absl import logging

from localperf import cli
from localperf import slurm

REPO_DIR = pathlib.Path(__file__).resolve().parent.parent
CONFIG_DIR = 'workloads_config'
WORKLOADS_FILE = f'{CONFIG_DIR}/algoperf_workloads_v06.json'
PAPER_SETTINGS_FILE = f'{CONFIG_DIR}/paper_runs/paper_settings.json'
PAPER_SUBMISSIONS = ('nadamw', 'nadamw_ema', 'nadamw_lawa')
RULESETS = ('external', 'self')
FRAMEWORK = 'jax'
NUM_STUDIES = 3  # AlgoPerf v0.6 scores the median over 3 studies.
NUM_TUNING_TRIALS = 5  # AlgoPerf v0.6's external-tuning trials per study.
ALGOPERF_PLACEHOLDER = '${ALGOPERF_DIR}/submission_runner.py'
INSTALL_ALGOPERF = (
    'git clone https://github.com/mlcommons/algorithmic-efficiency && '
    "pip install -e 'algorithmic-efficiency[pytorch_cpu,jax_gpu,full]' "
    '--extra-index-url https://download.pytorch.org/whl/cpu')


def submission_names(repo_dir: pathlib.Path = REPO_DIR) -> List[str]:
  """Every `submissions/<name>/submission.py` of this checkout."""
  return sorted(p.parent.name
                for p in (repo_dir / 'submissions').glob('*/submission.py'))


def load_workloads(repo_dir: pathlib.Path = REPO_DIR) -> Dict[str, Any]:
  """The workload facts: {'paper_seven': [...], 'workloads': {name: {...}}}."""
  with open(repo_dir / WORKLOADS_FILE, encoding='utf-8') as f:
    return json.load(f)


FLAGS = flags.FlagValues()
flags.DEFINE_string(
    'submissions', ','.join(PAPER_SUBMISSIONS),
    'Comma-separated submission names (folders of submissions/).',
    flag_values=FLAGS)
flags.DEFINE_string(
    'workloads', 'paper_seven',
    "Comma-separated AlgoPerf workload names, or 'paper_seven' (the paper's "
    'seven workloads).', flag_values=FLAGS)
flags.DEFINE_enum(
    'tuning_ruleset', 'external', RULESETS,
    'external: search space per submission; self: its defaults.',
    flag_values=FLAGS)
flags.DEFINE_integer(
    'num_studies', NUM_STUDIES,
    'Studies (independent repetitions, one seed each).', flag_values=FLAGS)
flags.DEFINE_integer(
    'num_tuning_trials', None,
    f'Trials per study (external only; default {NUM_TUNING_TRIALS}, or every '
    'point of the paper settings).', flag_values=FLAGS)
flags.DEFINE_integer(
    'rng_seed', 1,
    'Study i runs with --rng_seed=rng_seed + i; >= 1, as AlgoPerf draws a '
    'random seed for 0.', flag_values=FLAGS)
flags.DEFINE_alias('seed', 'rng_seed', flag_values=FLAGS)
flags.DEFINE_string(
    'data_dir', '~/data',
    "Root of AlgoPerf's datasets as datasets/dataset_setup.py lays them out "
    '(criteo1tb/, fastmri/, imagenet/jax/, librispeech/, ogbg/, wmt/).',
    flag_values=FLAGS)
flags.DEFINE_string(
    'experiment_dir', None,
    'Logs go to EXPERIMENT_DIR/<submission>/study_<i>/ (required).',
    flag_values=FLAGS)
flags.DEFINE_string(
    'algoperf_dir', None,
    'AlgoPerf checkout holding submission_runner.py (default: the checkout '
    'of the installed algoperf package).', flag_values=FLAGS)
flags.DEFINE_integer(
    'max_global_steps', None,
    'Stop every run after this many steps (smoke tests).', flag_values=FLAGS)
flags.DEFINE_boolean(
    'overwrite', False, 'Delete existing logs of the same runs first.',
    flag_values=FLAGS)
flags.DEFINE_boolean(
    'resume_last_run', False,
    'Resume every run from its last checkpoint (AlgoPerf v0.6 corrected by '
    'scripts.algoperf_runner; refused on versions it does not know).',
    flag_values=FLAGS)
flags.DEFINE_string(
    'tuning_search_space', None,
    'Search space (AlgoPerf JSON) for the one submission given, instead of '
    'workloads_config/external_tuning/<submission>.json.', flag_values=FLAGS)
flags.DEFINE_boolean(
    'paper_settings', False,
    "Research mode: each workload's settings from the paper "
    '(workloads_config/paper_runs/); breaks the external-tuning rules.',
    flag_values=FLAGS)
flags.DEFINE_boolean(
    'dry_run', False, 'Print one shell command per run; launch nothing '
    '(with --scheduler=slurm: write the job script, submit nothing).',
    flag_values=FLAGS)
flags.DEFINE_enum(
    'scheduler', 'local', ('local', 'slurm'),
    'local: run one after another here; slurm: one SLURM array task per run '
    '(EXPERIMENT_DIR/slurm/config.json and grid.sh, submitted with sbatch), '
    'each resuming from its last checkpoint when requeued; finished runs '
    'are skipped when the grid is submitted again.', flag_values=FLAGS)
slurm.define_flags(FLAGS)
flags.DEFINE_integer('slurm_nodes', 1, 'Nodes per run.', lower_bound=1,
                     flag_values=FLAGS)
flags.DEFINE_integer('slurm_gpus_per_node', 8, 'GPUs per node (AlgoPerf: 8).',
                     lower_bound=0, flag_values=FLAGS)
flags.DEFINE_boolean('slurm_exclusive', True, 'Whole nodes per run '
                     '(--exclusive), as AlgoPerf times them.',
                     flag_values=FLAGS)
flags.DEFINE_string(
    'slurm_container', None, 'An Apptainer image to run each task in '
    '(apptainer exec --nv); this python must be valid inside it.',
    flag_values=FLAGS)
flags.DEFINE_string(
    'slurm_output_dir', None, 'Where the job script, config.json, the tasks\' '
    'output and done markers go (default: EXPERIMENT_DIR/slurm).',
    flag_values=FLAGS)

def parse_flags(argv: Optional[Sequence[str]] = None) -> types.SimpleNamespace:
  """The flags' values; exits with status 2 naming a bad one."""
  cli.parse(FLAGS, argv, __doc__)
  if FLAGS.experiment_dir is None:
    cli.usage_error('--experiment_dir is required.')
  if FLAGS.scheduler == 'slurm' and FLAGS.overwrite:
    cli.usage_error('--overwrite with --scheduler=slurm would delete the logs '
                    'at every requeue: delete them yourself first.')
  if FLAGS.resume_last_run and FLAGS.overwrite:
    cli.usage_error('--resume_last_run and --overwrite exclude each other: '
                    'resume the logs, or delete them and start again.')
  return types.SimpleNamespace(**FLAGS.flag_values_dict())


# ----------------------------------------------------------------------------
# Checks of the flags and the configuration.


def resolve_names(flag: str, value: str, valid: Sequence[str],
                  groups: Optional[Dict[str, List[str]]] = None) -> List[str]:
  """The comma-separated names of `value`, with `groups` expanded.

  Raises ValueError listing the valid names (and groups) if one is unknown.
  """
  groups = groups or {}
  names = [m for n in value.split(',') if n for m in groups.get(n, [n])]
  unknown = [n for n in names if n not in valid]
  if not names or unknown:
    raise ValueError(f'--{flag}: unknown {unknown or value!r}; valid: '
                     f'{", ".join([*groups, *valid])}.')
  return names


def check_options(args: types.SimpleNamespace,
                  submissions: Sequence[str]) -> None:
  """ValueError naming the flag whose value (or combination) is invalid."""
  if args.rng_seed < 1:
    raise ValueError(f'--rng_seed must be an integer >= 1 (AlgoPerf\'s runner '
                     f'draws a random seed for 0), got {args.rng_seed}.')
  for flag in ('num_studies', 'num_tuning_trials', 'max_global_steps'):
    value = getattr(args, flag)
    if value is not None and value < 1:
      raise ValueError(f'--{flag} must be an integer >= 1, got {value}.')
  if args.tuning_ruleset == 'self':
    if args.num_tuning_trials is not None:
      raise ValueError('--num_tuning_trials applies to --tuning_ruleset '
                       'external only (self-tuning runs one trial).')
    if args.paper_settings:
      raise ValueError('--paper_settings needs --tuning_ruleset external '
                       '(the paper settings are search spaces).')
  if args.tuning_search_space is not None:
    if args.tuning_ruleset == 'self' or args.paper_settings:
      raise ValueError('--tuning_search_space applies to --tuning_ruleset '
                       'external without --paper_settings only.')
    if len(submissions) != 1:
      raise ValueError('--tuning_search_space needs exactly one submission, '
                       f'got {", ".join(submissions)}.')
    if not os.path.isfile(args.tuning_search_space):
      raise ValueError('--tuning_search_space: no such file: '
                       f'{args.tuning_search_space}.')
  if args.paper_settings:
    others = [s for s in submissions if s not in PAPER_SUBMISSIONS]
    if others:
      raise ValueError(f'--paper_settings: no paper settings for {others}; '
                       f'the paper ran {", ".join(PAPER_SUBMISSIONS)}.')


def search_space_file(submission: str, workload: str,
                      paper_settings: bool) -> str:
  """The search space's path relative to the repository."""
  if paper_settings:
    return f'{CONFIG_DIR}/paper_runs/{submission}/{workload}.json'
  return f'{CONFIG_DIR}/external_tuning/{submission}.json'


def missing_search_spaces(submissions: Sequence[str], workloads: Sequence[str],
                          paper_settings: bool) -> List[str]:
  """Search-space files the runs need that this checkout lacks."""
  files = {search_space_file(s, w, paper_settings)
           for s in submissions for w in workloads}
  return sorted(f for f in files if not (REPO_DIR / f).is_file())


def data_paths(facts: Dict[str, Any], data_dir: str) -> Dict[str, str]:
  """{runner flag: path} of one workload's data under `data_dir`."""
  paths = {'data_dir': os.path.join(data_dir, facts['data_subdir'])}
  for flag, relative in facts['data_flags'].items():
    paths[flag] = os.path.join(data_dir, relative)
  return paths


def missing_data(workloads: Sequence[str], facts: Dict[str, Any],
                 data_dir: str) -> List[str]:
  """Data folders and files of `workloads` that do not exist."""
  paths = {p for w in workloads
           for p in data_paths(facts[w], data_dir).values()}
  return sorted(p for p in paths if not os.path.exists(p))


def _module_origin(python: str, module: str) -> Optional[pathlib.Path]:
  """Where `python` imports `module` from outside this checkout, or None."""
  code = ('import importlib.util, sys; '
          's = importlib.util.find_spec(sys.argv[1]); '
          'print(s.origin if s and s.origin else "")')
  out = subprocess.run([python, '-c', code, module], cwd=os.path.sep,
                       capture_output=True, text=True, check=False).stdout
  return pathlib.Path(out.strip()) if out.strip() else None


def find_runner(algoperf_dir: Optional[str], python: str) -> str:
  """AlgoPerf's submission_runner.py; ValueError saying how to install it."""
  origin = _module_origin(python, 'algoperf')
  if origin is None:
    raise ValueError(f'AlgoPerf is not importable by {python}; install it '
                     f'beside this package: {INSTALL_ALGOPERF}')
  checkout = (pathlib.Path(algoperf_dir).expanduser() if algoperf_dir
              else origin.parent.parent)
  runner = checkout / 'submission_runner.py'
  if not runner.is_file():
    raise ValueError(
        f'--algoperf_dir: no submission_runner.py in {checkout}; pass the '
        'AlgoPerf checkout (installed editable: pip install -e '
        "'algorithmic-efficiency[...]').")
  return str(runner.resolve())


def check_package_installed(python: str) -> None:
  """ValueError unless `python` imports `submissions` from this checkout."""
  origin = _module_origin(python, 'submissions')
  if origin is None or REPO_DIR not in origin.parents:
    raise ValueError(
        f'AlgoPerf imports submissions.* by module name, but {python} '
        f'imports submissions from {origin}; install this checkout: '
        f'pip install -e {REPO_DIR}')


def check_resume(python: str, runner: str) -> None:
  """ValueError, with the reason, unless algoperf_runner corrects `runner`."""
  done = subprocess.run(
      [python, '-m', 'scripts.algoperf_runner', '--check', runner],
      cwd=os.path.sep, capture_output=True, text=True, check=False)
  if done.returncode:
    lines = (done.stdout or done.stderr).strip().splitlines()
    raise ValueError(lines[-1] if lines else
                     f'--resume_last_run: the check of {runner} failed.')


def _python_output(python: str, code: str) -> str:
  return subprocess.run([python, '-c', code], cwd=os.path.sep,
                        capture_output=True, text=True,
                        check=False).stdout.strip()


def package_versions(python: str) -> Dict[str, Optional[str]]:
  """{'jax': version, 'orbax-checkpoint': version} where `python` runs."""
  code = ('import importlib.metadata as m, json\n'
          'def v(n):\n'
          '  try: return m.version(n)\n'
          '  except m.PackageNotFoundError: return None\n'
          'print(json.dumps({n: v(n) for n in ("jax", "orbax-checkpoint")}))')
  return json.loads(_python_output(python, code) or '{}')


def device_count(python: str) -> int:
  """`jax.device_count()` where `python` runs (0 if jax fails to start)."""
  out = _python_output(python, 'import jax; print(jax.device_count())')
  return int(out.splitlines()[-1]) if out else 0


# Seen with jax 0.7.0 on 4 CPU devices: orbax-checkpoint 0.11.20 saves the
# runner's checkpoints; 0.11.40 and 0.12.x fail (`jax.sharding.set_mesh`).
ORBAX_KNOWN_GOOD = '0.11.20'
ORBAX_FIRST_KNOWN_BAD = (0, 11, 40)


def _version_tuple(version: str) -> Tuple[int, ...]:
  return tuple(int(p) for p in re.findall(r'\d+', version)[:3])


def check_orbax(python: str) -> None:
  """ValueError if orbax-checkpoint >= 0.11.40, jax 0.7.x and several devices.

  Those orbax releases cannot save a multi-device checkpoint with that jax
  (0.11.20 can), and AlgoPerf's runner checkpoints at every eval.
  """
  versions = package_versions(python)
  orbax, jax_version = versions.get('orbax-checkpoint'), versions.get('jax')
  if not (orbax and _version_tuple(orbax) >= ORBAX_FIRST_KNOWN_BAD
          and (jax_version or '').startswith('0.7.')):
    return
  devices = device_count(python)
  if devices > 1:
    raise ValueError(
        f'orbax-checkpoint {orbax} cannot save the checkpoints of a '
        f'{devices}-device run with jax {jax_version}, and AlgoPerf\'s runner '
        "saves one at every eval; install the release seen to work: pip "
        f"install 'orbax-checkpoint=={ORBAX_KNOWN_GOOD}'.")


def xla_flags_warning(environ: Dict[str, str]) -> Optional[str]:
  """What to say if XLA_FLAGS asks for host devices the runner will drop."""
  if 'xla_force_host_platform_device_count' not in environ.get('XLA_FLAGS',
                                                                ''):
    return None
  return ('XLA_FLAGS asks for host devices, but submission_runner.py '
          'overwrites XLA_FLAGS when imported; set JAX_NUM_CPU_DEVICES=N '
          'instead for N host devices.')


def log_dir(args: types.SimpleNamespace, submission: str, study: int,
            workload: str) -> str:
  """Where AlgoPerf writes one run's trials."""
  return os.path.join(args.experiment_dir, submission, f'study_{study}',
                      f'{workload}_{FRAMEWORK}')


# ----------------------------------------------------------------------------
# Commands.


def runner_argv(args: types.SimpleNamespace, *, python: str, runner: str,
                submission: str, workload: str, study: int,
                facts: Dict[str, Any]) -> List[str]:
  """One `submission_runner.py` command line, run from the repository."""
  argv = [python, '-m', 'scripts.algoperf_runner', runner,
          f'--framework={FRAMEWORK}',
          f'--workload={workload}',
          f'--submission_path=submissions/{submission}/submission.py',
          f'--tuning_ruleset={args.tuning_ruleset}']
  if args.tuning_ruleset == 'external':
    space = (args.tuning_search_space or
             search_space_file(submission, workload, args.paper_settings))
    argv.append(f'--tuning_search_space={space}')
    argv.append(f'--num_tuning_trials={num_tuning_trials(args, space)}')
  for flag, path in data_paths(facts, args.data_dir).items():
    argv.append(f'--{flag}={path}')
  argv += [f'--experiment_dir={os.path.join(args.experiment_dir, submission)}',
           f'--experiment_name=study_{study}',
           f'--rng_seed={args.rng_seed + study}']
  if args.overwrite:
    argv.append('--overwrite')
  if args.resume_last_run:
    argv.append('--resume_last_run')
  if args.max_global_steps is not None:
    argv.append(f'--max_global_steps={args.max_global_steps}')
  return argv


def num_tuning_trials(args: types.SimpleNamespace, space_file: str) -> int:
  """The flag's value, else 5, or every point of a paper-settings file."""
  if args.num_tuning_trials is not None:
    return args.num_tuning_trials
  if args.paper_settings:
    with open(REPO_DIR / space_file, encoding='utf-8') as f:
      return len(json.load(f))
  return NUM_TUNING_TRIALS


def all_argvs(args: types.SimpleNamespace, submissions: Sequence[str],
              workloads: Sequence[str], facts: Dict[str, Any], *, python: str,
              runner: str) -> List[List[str]]:
  """Every run, studies outermost, then workloads, then submissions."""
  return [runner_argv(args, python=python, runner=runner, submission=s,
                      workload=w, study=i, facts=facts[w])
          for i in range(args.num_studies) for w in workloads
          for s in submissions]


def shell_line(argv: Sequence[str], repo_dir: str = str(REPO_DIR)) -> str:
  """`cd <repo> && <argv>`, quoted for a POSIX shell."""
  quoted = [a if a == ALGOPERF_PLACEHOLDER else shlex.quote(a) for a in argv]
  return f'cd {shlex.quote(repo_dir)} && {" ".join(quoted)}'


# ----------------------------------------------------------------------------
# Main.


def _warn(message: str) -> None:
  logging.warning('run_algoperf: %s', message)


def _absolute(path: str) -> str:
  return os.path.abspath(os.path.expanduser(path))


def prepare(args: types.SimpleNamespace) -> List[List[str]]:
  """Checks everything, then returns every run's argv; ValueError if bad."""
  facts = load_workloads()
  submissions = resolve_names('submissions', args.submissions,
                              submission_names())
  workloads = resolve_names('workloads', args.workloads,
                            sorted(facts['workloads']),
                            {'paper_seven': facts['paper_seven']})
  if args.tuning_search_space is not None:
    args.tuning_search_space = _absolute(args.tuning_search_space)
  check_options(args, submissions)
  missing = missing_search_spaces(submissions, workloads, args.paper_settings)
  if (args.tuning_ruleset == 'external' and missing
      and args.tuning_search_space is None):
    raise ValueError(f'missing search spaces: {", ".join(missing)}.')
  args.data_dir = _absolute(args.data_dir)
  args.experiment_dir = _absolute(args.experiment_dir)
  if args.paper_settings:
    _warn(f'{PAPER_SETTINGS_FILE} is "research only": these runs pick '
          'settings per workload, which the external-tuning rules forbid.')
  missing = missing_data(workloads, facts['workloads'], args.data_dir)
  if missing and not args.dry_run:
    raise ValueError(f'--data_dir: missing {", ".join(missing)} (set the '
                     "data up with AlgoPerf's datasets/dataset_setup.py).")
  if missing:
    _warn(f'missing data: {", ".join(missing)}.')
  python = sys.executable
  try:
    runner = find_runner(args.algoperf_dir, python)
    check_package_installed(python)
    check_orbax(python)
    if args.resume_last_run:
      check_resume(python, runner)
  except ValueError as e:
    if not args.dry_run:
      raise
    checkout = args.algoperf_dir or os.environ.get('ALGOPERF_DIR')
    runner = (os.path.join(_absolute(checkout), 'submission_runner.py')
              if checkout else ALGOPERF_PLACEHOLDER)
    _warn(f'{e} (commands use {runner}' + ('' if checkout else
          ': set ALGOPERF_DIR, or pass --algoperf_dir') + ')')
  warning = xla_flags_warning(dict(os.environ))
  if warning:
    _warn(warning)
  argvs = all_argvs(args, submissions, workloads, facts['workloads'],
                    python=python, runner=runner)
  if not (args.dry_run or args.overwrite or args.resume_last_run):
    existing = sorted({log_dir(args, s, i, w) for s in submissions
                       for i in range(args.num_studies) for w in workloads
                       if os.path.exists(log_dir(args, s, i, w))})
    if existing:
      raise ValueError(f'logs exist: {", ".join(existing)}; pass --overwrite '
                       'to start again, or --resume_last_run to go on.')
  return argvs


def slurm_options(args: types.SimpleNamespace) -> List[str]:
  """The `#SBATCH` options of one run: the flags given, whole nodes."""
  options = slurm.directives(args.slurm_partition, args.slurm_account,
                             args.slurm_time)
  options += [f'--nodes={args.slurm_nodes}', '--ntasks-per-node=1']
  if args.slurm_gpus_per_node:
    options.append(f'--gpus-per-node={args.slurm_gpus_per_node}')
  if args.slurm_exclusive:
    options.append('--exclusive')
  return options


def submit_grid(args: types.SimpleNamespace,
                argvs: Sequence[Sequence[str]]) -> int:
  """Writes config.json and grid.sh for the runs not done; submits them."""
  folder = _absolute(args.slurm_output_dir or
                     os.path.join(args.experiment_dir, 'slurm'))
  name = f'algoperf-{os.path.basename(args.experiment_dir)}'
  if not args.dry_run:
    try:
      slurm.check(args.slurm_partition, {'--experiment_dir':
                                         args.experiment_dir,
                                         '--slurm_output_dir': folder})
      queued = slurm.queued_by_name(name)
      if queued:
        raise ValueError(f'jobs named {name} are still queued or running '
                         f'({", ".join(queued)}): wait for them or scancel '
                         'them before submitting this grid again.')
    except ValueError as e:
      cli.usage_error(f'--scheduler=slurm: {e}')
  todo = [a for a in argvs if not os.path.exists(
      slurm.done_marker(folder, a))]
  if len(todo) < len(argvs):
    print(f'{len(argvs) - len(todo)} of {len(argvs)} runs are done (their '
          f'done.* files in {folder}): skipped.')
  if not todo:
    return 0
  config = os.path.join(folder, 'config.json')
  slurm.write(config, json.dumps(slurm.grid_config(folder, todo), indent=1))
  script = slurm.write(os.path.join(folder, 'grid.sh'), slurm.grid_script(
      name=name, config=config, num_tasks=len(todo), repo_dir=str(REPO_DIR),
      output=os.path.join(folder, '%A_%a.out'), options=slurm_options(args),
      python=sys.executable, container=args.slurm_container,
      binds=[args.experiment_dir, args.data_dir]), mode=0o755)
  if args.dry_run:
    print(f'{len(todo)} runs: {config}\njob script: {script}\nsubmit with: '
          f'sbatch {script}')
    return 0
  try:
    job = slurm.submit(script)
  except RuntimeError as e:
    cli.usage_error(f'--scheduler=slurm: {e}')
  print(f'submitted job {job}: {len(todo)} runs ({config}), each requeued on '
        'preemption, resuming from its last checkpoint.\n'
        f'follow: squeue -j {job}; tail -f {folder}/{job}_<task>.out\n'
        'score when done: python -m scripts.score '
        f'--submission_directory={args.experiment_dir}')
  return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
  args = parse_flags(argv)
  if args.scheduler == 'slurm':
    args.resume_last_run = True  # A requeued task goes on from its checkpoint.
  try:
    argvs = prepare(args)
  except ValueError as e:
    cli.usage_error(str(e))
  if args.scheduler == 'slurm':
    return submit_grid(args, argvs)
  for i, run in enumerate(argvs):
    line = shell_line(run)
    if args.dry_run:
      print(line)
      continue
    print(f'[{i + 1}/{len(argvs)}] {line}', flush=True)
    code = subprocess.run(run, cwd=REPO_DIR, check=False).returncode
    if code:
      sys.exit(f'run_algoperf: error: exit code {code} from: {line}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
