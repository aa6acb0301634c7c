"""Launches AlgoPerf's own runner for submissions x workloads x studies.

  python -m scripts.run_algoperf --experiment_dir EXP [--data_dir ~/data]
      [--submissions nadamw,nadamw_ema,nadamw_lawa] [--workloads paper_seven]
      [--tuning_ruleset external|self] [--num_studies 3] [--num_tuning_trials 5]
      [--seed 1] [--max_global_steps N] [--overwrite | --resume_last_run]
      [--paper_settings] [--algoperf_dir DIR] [--dry_run]

Runs `submission_runner.py` (framework jax) once per study, workload and
submission, one after another, with this checkout as the working directory
(AlgoPerf imports `submissions/x/submission.py` as `submissions.x.submission`,
so this package must be installed: `pip install -e .`). Logs land in
`EXP/<submission>/study_<i>/<workload>_jax/trial_<k>/`, the layout
`python -m scripts.score --submission_directory EXP` reads. Study i runs with
`--rng_seed seed + i` for every submission, so submissions are compared on
the same seeds. With --dry_run, prints one shell command per run instead (for
a cluster scheduler) and needs neither AlgoPerf nor the data.

Everything is checked before the first launch: names, search spaces, data
folders, AlgoPerf and this package being importable, existing logs.
--paper_settings uses the per-workload settings of the paper
(workloads_config/paper_runs/): research only, they break the external-tuning
rules.
"""

import argparse
import json
import os
import pathlib
import shlex
import subprocess
import sys
from typing import Any, Dict, List, Optional, Sequence

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


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
      prog='python -m scripts.run_algoperf',
      description=__doc__.split('\n', 1)[0])
  parser.add_argument(
      '--submissions', default=','.join(PAPER_SUBMISSIONS),
      help='Comma-separated submission names (folders of submissions/).')
  parser.add_argument(
      '--workloads', default='paper_seven',
      help="Comma-separated AlgoPerf workload names, or 'paper_seven' (the "
      "paper's seven workloads).")
  parser.add_argument(
      '--tuning_ruleset', default='external', choices=RULESETS,
      help='external: search space per submission; self: its defaults.')
  parser.add_argument(
      '--num_studies', type=int, default=NUM_STUDIES,
      help='Studies (independent repetitions, one seed each).')
  parser.add_argument(
      '--num_tuning_trials', type=int, default=None,
      help=f'Trials per study (external only; default {NUM_TUNING_TRIALS}, '
      'or every point of the paper settings).')
  parser.add_argument(
      '--seed', type=int, default=1,
      help='Study i runs with --rng_seed seed + i (>= 1: AlgoPerf draws a '
      'random seed for 0).')
  parser.add_argument(
      '--data_dir', default='~/data',
      help="Root of AlgoPerf's datasets as datasets/dataset_setup.py lays "
      'them out (criteo1tb/, fastmri/, imagenet/jax/, librispeech/, ogbg/, '
      'wmt/).')
  parser.add_argument(
      '--experiment_dir', required=True,
      help='Logs go to EXPERIMENT_DIR/<submission>/study_<i>/.')
  parser.add_argument(
      '--algoperf_dir', default=None,
      help='AlgoPerf checkout holding submission_runner.py (default: the '
      'checkout of the installed algoperf package).')
  parser.add_argument(
      '--max_global_steps', type=int, default=None,
      help='Stop every run after this many steps (smoke tests).')
  resume = parser.add_mutually_exclusive_group()
  resume.add_argument('--overwrite', action='store_true',
                      help='Delete existing logs of the same runs first.')
  resume.add_argument('--resume_last_run', action='store_true',
                      help='Resume existing runs from their last checkpoint.')
  parser.add_argument(
      '--paper_settings', action='store_true',
      help="Research mode: each workload's settings from the paper "
      '(workloads_config/paper_runs/); breaks the external-tuning rules.')
  parser.add_argument(
      '--dry_run', action='store_true',
      help='Print one shell command per run; launch nothing.')
  return parser.parse_args(argv)


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


def check_options(args: argparse.Namespace, submissions: Sequence[str]) -> None:
  """ValueError naming the flag whose value (or combination) is invalid."""
  for flag in ('num_studies', 'seed', 'num_tuning_trials', 'max_global_steps'):
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
  code = ('import importlib.util, sys; s = importlib.util.find_spec(sys.argv[1]);'
          ' print(s.origin if s and s.origin else "")')
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


def log_dir(args: argparse.Namespace, submission: str, study: int,
            workload: str) -> str:
  """Where AlgoPerf writes one run's trials."""
  return os.path.join(args.experiment_dir, submission, f'study_{study}',
                      f'{workload}_{FRAMEWORK}')


# ----------------------------------------------------------------------------
# Commands.


def runner_argv(args: argparse.Namespace, *, python: str, runner: str,
                submission: str, workload: str, study: int,
                facts: Dict[str, Any]) -> List[str]:
  """One `submission_runner.py` command line, run from the repository."""
  argv = [python, runner,
          f'--framework={FRAMEWORK}',
          f'--workload={workload}',
          f'--submission_path=submissions/{submission}/submission.py',
          f'--tuning_ruleset={args.tuning_ruleset}']
  if args.tuning_ruleset == 'external':
    space = search_space_file(submission, workload, args.paper_settings)
    argv.append(f'--tuning_search_space={space}')
    argv.append(f'--num_tuning_trials={num_tuning_trials(args, space)}')
  for flag, path in data_paths(facts, args.data_dir).items():
    argv.append(f'--{flag}={path}')
  argv += [f'--experiment_dir={os.path.join(args.experiment_dir, submission)}',
           f'--experiment_name=study_{study}',
           f'--rng_seed={args.seed + study}']
  if args.overwrite:
    argv.append('--overwrite')
  if args.resume_last_run:
    argv.append('--resume_last_run')
  if args.max_global_steps is not None:
    argv.append(f'--max_global_steps={args.max_global_steps}')
  return argv


def num_tuning_trials(args: argparse.Namespace, space_file: str) -> int:
  """The flag's value, else 5, or every point of a paper-settings file."""
  if args.num_tuning_trials is not None:
    return args.num_tuning_trials
  if args.paper_settings:
    with open(REPO_DIR / space_file, encoding='utf-8') as f:
      return len(json.load(f))
  return NUM_TUNING_TRIALS


def all_argvs(args: argparse.Namespace, submissions: Sequence[str],
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
  print(f'run_algoperf: warning: {message}', file=sys.stderr)


def _absolute(path: str) -> str:
  return os.path.abspath(os.path.expanduser(path))


def prepare(args: argparse.Namespace) -> List[List[str]]:
  """Checks everything, then returns every run's argv; ValueError if bad."""
  facts = load_workloads()
  submissions = resolve_names('submissions', args.submissions,
                              submission_names())
  workloads = resolve_names('workloads', args.workloads,
                            sorted(facts['workloads']),
                            {'paper_seven': facts['paper_seven']})
  check_options(args, submissions)
  missing = missing_search_spaces(submissions, workloads, args.paper_settings)
  if args.tuning_ruleset == 'external' and missing:
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
  except ValueError as e:
    if not args.dry_run:
      raise
    _warn(f'{e} (commands use {ALGOPERF_PLACEHOLDER})')
    runner = (os.path.join(_absolute(args.algoperf_dir), 'submission_runner.py')
              if args.algoperf_dir else ALGOPERF_PLACEHOLDER)
  argvs = all_argvs(args, submissions, workloads, facts['workloads'],
                    python=python, runner=runner)
  if not (args.dry_run or args.overwrite or args.resume_last_run):
    existing = sorted({log_dir(args, s, i, w) for s in submissions
                       for i in range(args.num_studies) for w in workloads
                       if os.path.exists(log_dir(args, s, i, w))})
    if existing:
      raise ValueError(f'logs exist: {", ".join(existing)}; pass --overwrite '
                       'or --resume_last_run.')
  return argvs


def main(argv: Optional[Sequence[str]] = None) -> int:
  args = parse_args(argv)
  try:
    argvs = prepare(args)
  except ValueError as e:
    sys.exit(f'run_algoperf: error: {e}')
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
