"""AlgoPerf's scoring: time to target, performance profiles, benchmark score.

Logs are AlgoPerf experiment directories,
`<submission>/<study>/<workload>_<framework>/trial_<k>/eval_measurements.csv`,
read by AlgoPerf's folder rules (see "Reading logs" below: stray files and
folders are ignored, ambiguous trees are errors naming the folder). The
rules are those of AlgoPerf's `scoring/performance_profile.py`:

- trial: the first eval whose validation metric meets the target (`<=` for
  minimised metrics such as loss or WER, `>=` otherwise);
- study: the trial that meets the target at the earliest eval index; a tie
  (two trials meeting it at the same eval) goes to the smaller time, or with
  `tie_rule='algoperf'` to the trial listed first, as AlgoPerf's
  `get_best_trial_index` breaks it (the order `os.listdir` gives, which may
  differ between file systems and copies of one tree);
- workload: the median over studies, an unsolved study counting as infinite;
- v0.5 held-out variants: a variant counts as unsolved when its base workload
  is; times above 4x the best submission become infinite; a base workload
  counts as unsolved when its sampled variant is;
- ratio to the best submission per workload; performance profile
  rho(tau) = fraction of workloads with ratio <= tau on 100 points of [1, 4];
  benchmark score = area under the profile / 3.

Time is AlgoPerf's `score` (accumulated submission time) or `global_step`
(the steps to target of arXiv 2502.06761). Wrong workload, study or trial
counts and submissions dropped for want of logs, which may change a score,
come back in `Scores.warnings` (or raise, with `strict`, as AlgoPerf's
`--strict`).
"""

import collections
import csv
import dataclasses
import io
import json
import math
import os
import pathlib
import re
from typing import Mapping, Optional, Sequence, Union

from absl import logging
import numpy as np

BENCHMARK_VERSIONS = ('0.5', '0.6')
TIME_COLUMNS = ('score', 'global_step')
MIN_TAU, MAX_TAU, NUM_TAU_POINTS = 1.0, 4.0, 100
NUM_TRIALS_EXTERNAL, NUM_TRIALS_SELF_TUNING = 5, 1
SELF_TUNING_BUDGET_FACTOR = 3
# Metric names AlgoPerf minimises or maximises, matched as substrings in this
# order (minimised first); `ppl` is the perplexity of finewebedu_lm.
MINIMIZED_METRICS = ('ce_loss', 'error_rate', 'ctc_loss', 'wer', 'l1_loss',
                     'loss', 'ppl')
MAXIMIZED_METRICS = ('mean_average_precision', 'ssim', 'accuracy', 'bleu')
MEASUREMENTS_FILENAME = 'eval_measurements.csv'
TIE_RULES = ('time', 'algoperf')
CONFIG_DIR = pathlib.Path(__file__).resolve().parents[1] / 'workloads_config'

_TRIAL_DIR = re.compile(r'trial_(\d+)')  # Matched at a name's start.
_WORKLOAD_DIR = re.compile(r'(.+)_(jax|pytorch)')  # Matched in full.
# What AlgoPerf's submission_runner --append_timestamp adds to a name.
_TIMESTAMP = r'-\d{4}(-\d{2}){5}'

PathLike = Union[str, pathlib.Path]
# workload -> study -> trials, each trial its columns of eval measurements.
SubmissionLogs = Mapping[str, Mapping[str, Sequence['Trial']]]


def is_minimized(metric: str) -> bool:
  """Whether AlgoPerf minimises `metric` (e.g. 'loss', 'validation/wer')."""
  for names, minimize in ((MINIMIZED_METRICS, True),
                          (MAXIMIZED_METRICS, False)):
    if any(name in metric for name in names):
      return minimize
  raise ValueError(
      f'Unknown target metric {metric!r}: expected one containing one of '
      f'{MINIMIZED_METRICS} (minimised) or {MAXIMIZED_METRICS} (maximised).')


@dataclasses.dataclass(frozen=True)
class Target:
  """A workload's validation target, as AlgoPerf's Workload defines it."""
  metric: str  # Without split, e.g. 'loss'; read from 'validation/<metric>'.
  value: float
  step_hint: int
  max_runtime_sec: Optional[float] = None

  @property
  def column(self) -> str:
    return f'validation/{self.metric}'

  @property
  def minimize(self) -> bool:
    return is_minimized(self.metric)


@dataclasses.dataclass(frozen=True)
class Benchmark:
  """The scoring constants of one AlgoPerf version."""
  version: str
  num_studies: int
  base_workloads: tuple[str, ...]
  held_out: Mapping[str, str]  # Base workload -> its sampled variant.
  targets: Mapping[str, Target]


def load_benchmark(version: str = '0.6') -> Benchmark:
  """Reads `workloads_config/scoring_targets_v<version>.json`."""
  if version not in BENCHMARK_VERSIONS:
    raise ValueError(f'benchmark_version must be one of {BENCHMARK_VERSIONS}, '
                     f'got {version!r}.')
  config = json.loads((CONFIG_DIR / f'scoring_targets_v{version}.json')
                      .read_text())
  return Benchmark(
      version=version,
      num_studies=config['num_studies'],
      base_workloads=tuple(config['base_workloads']),
      held_out=dict(config['held_out']),
      targets={name: Target(entry['metric'], entry['target'],
                            entry['step_hint'], entry.get('max_runtime_sec'))
               for name, entry in config['workloads'].items()})


def local_target(workload: str) -> Target:
  """The target of a local workload, from `localperf.workloads`."""
  try:
    from localperf import workloads  # pylint: disable=g-import-not-at-top
    instance = workloads.get_workload(workload)
  except (ImportError, KeyError, ValueError) as e:
    raise ValueError(
        f'Workload {workload!r} is neither an AlgoPerf workload nor a local '
        f'one known to localperf.workloads.get_workload: {e}') from e
  return Target(
      metric=instance.target_metric_name,
      value=float(instance.validation_target_value),
      step_hint=int(instance.step_hint),
      max_runtime_sec=getattr(instance, 'max_allowed_runtime_sec', None))


def find_target(benchmark: Benchmark, workload: str) -> Target:
  """AlgoPerf's target for `workload`, else the local workload's own."""
  if workload in benchmark.targets:
    return benchmark.targets[workload]
  return local_target(workload)


# Reading logs.
#
# Which folders count, restating AlgoPerf's `scoring_utils.get_experiment_df`:
# - a workload folder is named `<workload>_<jax|pytorch>`;
# - its trials are the subfolders whose names start with `trial_<k>`; a trial
#   without `eval_measurements.csv` is skipped;
# - a study is a folder of workload folders; every folder of a submission
#   that holds workload folders is one;
# - anything else is ignored: files (`.DS_Store`; AlgoPerf fails on one
#   beside the study folders) and folders holding no trials. AlgoPerf reads
#   a stray `trial_<k>/` beside the workload folders as a workload folder
#   without trials, so it adds nothing.
# Added here: a submission whose workload folders sit directly in it (one
# `submission_runner.py` experiment) is one study. Folders are followed
# through symbolic links, as AlgoPerf's `os.listdir` walk follows them. A
# folder beside the submissions that holds no `eval_measurements.csv` at any
# depth is left out: a folder of files only (run_local's `scores_<time>/`)
# with an INFO line; an empty folder, a broken link, or one holding folders
# or links (a submission whose logs are missing or out of reach) with a
# warning. As AlgoPerf's `get_experiment_df`, folders `<name>-<timestamp>`
# (submission_runner's --append_timestamp) are read into `<name>` where it
# exists, their studies joined by name; AlgoPerf also scores each of them
# as a submission of its own beside `<name>`, which is not done here.
# Trees these rules cannot read one way only are errors naming the folder:
# a folder that holds `trial_<k>/eval_measurements.csv` without the
# framework suffix (AlgoPerf fails on it too), a submission holding both
# workload and study folders, one study holding two folders of a workload
# (`ogbg_jax`, `ogbg_pytorch`), and a workload whose studies use different
# frameworks (in one folder or across a submission's timestamped ones).


class Trial(dict):
  """Columns of one `eval_measurements.csv`, name -> float array; `.path`;
  `.listed`, its place in AlgoPerf's reading order within its study (the
  position of its experiment folder, then of its trial folder, in
  `os.listdir`), which breaks ties with `tie_rule='algoperf'`."""

  def __init__(self, columns: Mapping[str, np.ndarray],
               path: Optional[PathLike] = None, listed: tuple = ()):
    super().__init__(columns)
    self.path = path
    self.listed = listed


def read_eval_measurements(path: PathLike) -> Trial:
  """Columns of an `eval_measurements.csv` as float arrays (empty cell: nan).

  Raises:
    ValueError naming `path` if the file is not UTF-8 CSV, holds no eval row,
    has a row of more or fewer cells than its header, or does not end with a
    line break (a file cut off mid-row; AlgoPerf's writer ends every row).
  """
  try:
    with open(path, encoding='utf-8-sig', newline='') as f:
      text = f.read()
  except UnicodeDecodeError as e:
    raise ValueError(f'{path}: not a UTF-8 CSV file ({e}).') from e
  if text and not text.endswith('\n'):
    raise ValueError(f'{path}: does not end with a line break; the file is '
                     'cut off mid-row.')
  reader = csv.reader(io.StringIO(text))
  header, body = None, []
  try:
    for row in reader:
      if not row:
        continue  # A blank line, as pandas skips.
      if header is None:
        header = row
      elif len(row) != len(header):
        raise ValueError(
            f'{path}: line {reader.line_num} has {len(row)} cells, the header '
            f'{len(header)}; the file is cut off or malformed.')
      else:
        body.append(row)
  except csv.Error as e:
    raise ValueError(f'{path}: not a CSV file (line {reader.line_num}: '
                     f'{e}).') from e
  if not body:
    raise ValueError(f'{path}: no eval measurements (expected a header row '
                     'and at least one eval).')
  columns = {}
  for name, cells in zip(header, zip(*body)):
    try:
      columns[name] = np.array([float(c) if c else math.nan for c in cells])
    except ValueError as e:
      raise ValueError(f'{path}: column {name!r} is not numeric: {e}') from e
  return Trial(columns, path)


def workload_name(directory_name: str) -> Optional[str]:
  """'ogbg_jax' -> 'ogbg'; None for a name without a framework suffix."""
  match = _WORKLOAD_DIR.fullmatch(directory_name)
  return match.group(1) if match else None


def _subdirs(directory: pathlib.Path) -> list[pathlib.Path]:
  """Subfolders by name (files, such as `.DS_Store`, are not)."""
  return sorted(p for p in directory.iterdir() if p.is_dir())


def _trial_files(directory: pathlib.Path) -> list[pathlib.Path]:
  """`trial_<k>*/eval_measurements.csv` files in `directory`, by k."""
  trials = sorted((int(match.group(1)), p.name, p)
                  for p in _subdirs(directory)
                  if (match := _TRIAL_DIR.match(p.name)))
  return [p / MEASUREMENTS_FILENAME for *_, p in trials
          if (p / MEASUREMENTS_FILENAME).is_file()]


def _is_workload_dir(directory: pathlib.Path) -> bool:
  return (workload_name(directory.name) is not None
          and bool(_trial_files(directory)))


def _check_not_workload_dir(directory: pathlib.Path) -> None:
  """Raises if `directory` holds trials but lacks the framework suffix."""
  if workload_name(directory.name) is None and _trial_files(directory):
    raise ValueError(
        f'{directory}: holds trial_<k>/{MEASUREMENTS_FILENAME} but is not '
        'named <workload>_jax or <workload>_pytorch; rename it to score it, '
        'or move it out.')


def _read_study(study_dir: pathlib.Path, ignored: list[pathlib.Path]
                ) -> dict[str, pathlib.Path]:
  """The folder of each workload of one study; notes what it ignores."""
  folders = {}
  for directory in _subdirs(study_dir):
    workload = workload_name(directory.name)
    if workload is None or not _trial_files(directory):
      _check_not_workload_dir(directory)
      ignored.append(directory)
      continue
    if workload in folders:
      raise ValueError(
          f'{study_dir}: two folders of workload {workload!r}, '
          f'{folders[workload].name} and {directory.name}; keep one.')
    folders[workload] = directory
  return folders


def _check_one_framework(submission_dir: pathlib.Path, workload: str,
                         folders: Sequence[pathlib.Path]) -> None:
  """Raises if the studies of `workload` ran in different frameworks."""
  by_name = {}
  for folder in folders:
    by_name.setdefault(folder.name, folder)
  if len(by_name) > 1:
    named = ' and '.join(str(p.relative_to(submission_dir))
                         for p in by_name.values())
    raise ValueError(
        f'{submission_dir}: workload {workload!r} is split across '
        f'frameworks, {named}; score the studies of one framework.')


def _read_trials(folder: pathlib.Path) -> list[Trial]:
  """The trials of a workload folder by k, each `.listed` at its place in
  `os.listdir(folder)`."""
  listing = os.listdir(folder)
  trials = []
  for path in _trial_files(folder):
    trial = read_eval_measurements(path)
    trial.listed = (listing.index(path.parent.name),)
    trials.append(trial)
  return trials


def load_submission(submission_dir: PathLike) -> SubmissionLogs:
  """Reads a submission's logs by the folder rules above.

  Returns:
    workload -> study -> trials. A submission without a study level is one
    study, named after the submission.
  """
  submission_dir = pathlib.Path(submission_dir)
  _check_folder(submission_dir, 'Submission directory')
  children = _subdirs(submission_dir)
  workload_dirs = [p for p in children if _is_workload_dir(p)]
  study_dirs = [p for p in children if p not in workload_dirs
                and any(_is_workload_dir(w) for w in _subdirs(p))]
  if workload_dirs and study_dirs:
    raise ValueError(
        f'{submission_dir}: holds both workload folders ('
        f'{workload_dirs[0].name}, ...) and study folders ('
        f'{study_dirs[0].name}, ...); expected one of <study>/<workload>_'
        '<framework>/trial_<k>/ and <workload>_<framework>/trial_<k>/.')
  ignored = []
  if workload_dirs:
    study_dirs = [submission_dir]
  else:
    for directory in children:
      if directory not in study_dirs:
        _check_not_workload_dir(directory)
        ignored.append(directory)
  folders = {}
  for study_dir in study_dirs:
    for workload, folder in _read_study(study_dir, ignored).items():
      folders.setdefault(workload, []).append(folder)
  for workload, workload_folders in folders.items():
    _check_one_framework(submission_dir, workload, workload_folders)
  logs = {workload: {folder.parent.name: _read_trials(folder)
                     for folder in workload_folders}
          for workload, workload_folders in folders.items()}
  if not logs:
    raise ValueError(
        f'{submission_dir}: no {MEASUREMENTS_FILENAME} found; expected '
        f'<study>/<workload>_<framework>/trial_<k>/{MEASUREMENTS_FILENAME}.')
  if ignored:
    logging.info('%s: ignored %d folders holding no trials: %s',
                 submission_dir, len(ignored),
                 ', '.join(str(p.relative_to(submission_dir))
                           for p in ignored))
  return logs


def _holds_logs(directory: pathlib.Path) -> bool:
  """Whether an `eval_measurements.csv` lies at any depth of `directory`.

  Symbolic links are followed; each folder is entered once by its real path,
  so a link loop ends.
  """
  seen, stack = set(), [directory]
  while stack:
    folder = stack.pop()
    real = folder.resolve()
    if real in seen:
      continue
    seen.add(real)
    if (folder / MEASUREMENTS_FILENAME).is_file():
      return True
    stack += _subdirs(folder)
  return False


def _holds_folders(directory: pathlib.Path) -> bool:
  """Whether `directory` holds a folder or a link (broken ones included)."""
  return any(p.is_dir() or p.is_symlink() for p in directory.iterdir())


class Submissions(dict):
  """Logs by submission name; `.warnings` names the folders left out."""

  def __init__(self, logs: Mapping[str, SubmissionLogs],
               warnings: Sequence[str] = ()):
    super().__init__(logs)
    self.warnings = list(warnings)


def _check_folder(path: pathlib.Path, what: str) -> None:
  """Raises naming `what` unless `path` is a folder (or a link to one)."""
  if path.is_dir():
    return
  if path.is_symlink():
    reason = f'is a broken link (to {os.readlink(path)})'
  elif path.exists():
    reason = 'is not a folder'
  else:
    reason = 'does not exist'
  raise ValueError(f'{what} {path} {reason}.')


def timestamped_groups(names: Sequence[str]) -> dict[str, list[str]]:
  """Submission -> its folders among `names`: itself, then every
  `<name>-<timestamp>...` folder (`submission_runner --append_timestamp`'s
  suffix `-YYYY-MM-DD-HH-MM-SS`), which AlgoPerf's `get_experiment_df`
  reads into `<name>`; a timestamped folder without its `<name>` is a
  submission of its own. Where two names could take a folder, the longer
  does."""
  groups = {}
  for name in names:
    bases = [b for b in names
             if b != name and re.match(re.escape(b) + _TIMESTAMP, name)]
    groups.setdefault(max(bases, key=len) if bases else name, []).append(name)
  return {base: sorted(folders, key=lambda f: f != base)
          for base, folders in groups.items()}


def _merge(submission_dir: pathlib.Path,
           parts: Sequence[SubmissionLogs]) -> SubmissionLogs:
  """The logs of a submission's folders as one: the trials of a study (by
  study name) in all of them, as AlgoPerf groups its rows by study."""
  logs, frameworks = {}, {}
  for part in parts:
    for workload, studies in part.items():
      for study, trials in studies.items():
        logs.setdefault(workload, {}).setdefault(study, []).extend(trials)
        folder = pathlib.Path(trials[0].path).parents[1]
        frameworks.setdefault(workload, {}).setdefault(folder.name, folder)
  for workload, folders in frameworks.items():
    if len(folders) > 1:
      _check_one_framework(submission_dir.parent, workload,
                           list(folders.values()))
  return logs


def load_submissions(submission_directory: PathLike,
                     exclude_submissions: Sequence[str] = ()) -> Submissions:
  """Every submission (subfolder) of `submission_directory`, by name.

  Folders `<name>-<timestamp>` are read into `<name>` (`timestamped_groups`,
  an INFO line names them). A subfolder holding no eval_measurements.csv at
  any depth is left out: one of files only (the `scores_<time>/` run_local
  writes beside its submissions) with an INFO line; an empty one, a broken
  link, or one holding folders or links but no logs (a submission whose
  logs are missing or out of reach) with a WARNING line and a message in
  `.warnings`, which `score_logs` reports.
  """
  directory = pathlib.Path(submission_directory)
  _check_folder(directory, '--submission_directory')
  names, ignored, dropped, warnings = [], [], [], []
  for path in sorted(directory.iterdir()):
    if path.is_symlink() and not path.exists():
      warning = f'a broken link (to {os.readlink(path)})'
    elif not path.is_dir():
      continue
    elif _holds_logs(path):
      names.append(path.name)
      continue
    elif not any(path.iterdir()):
      warning = 'an empty folder'
    elif _holds_folders(path):
      warning = (f'holds folders but no {MEASUREMENTS_FILENAME} at any depth '
                 '(a broken link?)')
    else:
      ignored.append(path.name)
      continue
    dropped.append(path.name)
    warnings.append(f'{path}: {warning}; submission dropped.')
  if ignored:
    logging.info('%s: ignored folders holding no logs: %s', directory,
                 ', '.join(ignored))
  for warning in warnings:
    logging.warning('%s', warning)
  unknown = sorted(set(exclude_submissions) - set(names))
  if unknown:
    raise ValueError(f'--exclude_submissions {unknown} are not submissions '
                     f'in {directory}; it holds {names}.')
  kept = [name for name in names if name not in exclude_submissions]
  if names and not kept:
    raise ValueError(f'--exclude_submissions leaves nothing to score: it '
                     f'names every submission in {directory} '
                     f'({", ".join(names)}).')
  if not kept:
    left_out = sorted(ignored + dropped)
    raise ValueError(
        f'--submission_directory {directory} holds no submission directories'
        + (f' (no eval_measurements.csv in {", ".join(left_out)})'
           if left_out else '') + '.')
  listing = os.listdir(directory)
  logs = {}
  for name, folders in timestamped_groups(kept).items():
    parts = [load_submission(directory / folder) for folder in folders]
    for folder, part in zip(folders, parts):
      for trial in (t for studies in part.values()
                    for trials in studies.values() for t in trials):
        trial.listed = (listing.index(folder),) + trial.listed
    logs[name] = parts[0] if len(parts) == 1 else _merge(directory / name,
                                                         parts)
    if len(folders) > 1:
      logging.info('%s: read %s into submission %s, as AlgoPerf reads '
                   '<name>-<timestamp> folders', directory,
                   ', '.join(folders[1:]), name)
  return Submissions(logs, warnings)


# Time to target.


def _column(trial: Trial, name: str) -> np.ndarray:
  if name not in trial:
    where = getattr(trial, 'path', None) or 'Eval measurements'
    raise ValueError(f'{where}: no column {name!r}; it has {sorted(trial)}.')
  return trial[name]


def eval_index_at_target(trial: Trial, target: Target) -> Optional[int]:
  """Index of the first eval meeting the target, None if none does."""
  values = _column(trial, target.column)
  with np.errstate(invalid='ignore'):
    met = values <= target.value if target.minimize else values >= target.value
  return int(np.argmax(met)) if met.any() else None


def counted_trial(trials: Sequence[Trial], target: Target, time_column: str,
                  tie_rule: str = 'time') -> Optional[tuple[Trial, int]]:
  """The trial a study counts and the index of its first eval meeting the
  target: the earliest such eval, a tie to the smaller time ('time') or to
  the trial AlgoPerf lists first ('algoperf', by `Trial.listed`); None if
  no trial meets the target."""
  if tie_rule not in TIE_RULES:
    raise ValueError(f'tie_rule must be one of {TIE_RULES}, got '
                     f'{tie_rule!r}.')
  reached = []
  for k, trial in enumerate(trials):
    index = eval_index_at_target(trial, target)
    if index is not None:
      time = float(_column(trial, time_column)[index])
      reached.append(((index, time if tie_rule == 'time' else trial.listed,
                       k), trial, index))
  return min(reached, key=lambda r: r[0])[1:] if reached else None


def study_time_to_target(trials: Sequence[Trial], target: Target,
                         time_column: str, tie_rule: str = 'time') -> float:
  """Time of the trial meeting the target at the earliest eval (a tie by
  `tie_rule`, see `counted_trial`); inf if none does."""
  counted = counted_trial(trials, target, time_column, tie_rule)
  if counted is None:
    return math.inf
  trial, index = counted
  return float(_column(trial, time_column)[index])


def _folder(name: str, study: str, workload: str,
            trials: Sequence[Trial]) -> str:
  """The workload folder of `trials`, else `name/study/workload`."""
  path = getattr(trials[0], 'path', None) if trials else None
  if path is not None:
    return str(pathlib.Path(path).parents[1])
  return f'{name}/{study}/{workload}'


def count_warnings(name: str, logs: SubmissionLogs, workloads: Sequence[str],
                   counts: Mapping[str, tuple[int, int]]) -> list[str]:
  """AlgoPerf's checks of workload, study and trial counts, as messages;
  `counts`: workload -> (studies, trials per study) expected.

  A missing workload counts as unsolved; a study or trial too few or too many
  moves the median or the best trial: each may change a score.
  """
  warnings = [f'{name}: no {workload} logs; it counts as unsolved.'
              for workload in workloads if workload not in logs]
  for workload in workloads:
    num_studies, num_trials = counts[workload]
    studies = logs.get(workload, {})
    if studies and len(studies) != num_studies:
      warnings.append(f'{name}: {workload}: expected {num_studies} studies, '
                      f'found {len(studies)} ({", ".join(studies)}).')
    for study, trials in studies.items():
      if len(trials) != num_trials:
        warnings.append(f'{_folder(name, study, workload, trials)}: expected '
                        f'{num_trials} trials, found {len(trials)}.')
  return warnings


def _usual(counts: Sequence[int]) -> int:
  """The most common of `counts`, a tie to the larger; 0 if none."""
  return max(collections.Counter(counts).items(),
             key=lambda item: item[::-1], default=(0, 0))[0]


def expected_counts(submissions: Mapping[str, SubmissionLogs],
                    workloads: Sequence[str], benchmark: Benchmark,
                    num_trials: int) -> dict[str, tuple[int, int]]:
  """Workload -> (studies, trials per study) to expect: the ruleset's for
  AlgoPerf's workloads; for a local workload, whose runs pick their own
  (run_local's --num_studies and --num_tuning_trials), the usual count in
  the logs (the most common, a tie to the larger), so that only a study or
  trial missing or extra beside the others warns."""
  counts = {}
  for workload in workloads:
    if workload in benchmark.targets:
      counts[workload] = (benchmark.num_studies, num_trials)
      continue
    studies = [logs[workload] for logs in submissions.values()
               if workload in logs]
    counts[workload] = (_usual([len(s) for s in studies]),
                        _usual([len(t) for s in studies for t in s.values()]))
  return counts


# Profiles and scores.


def apply_held_out_rules(times: np.ndarray, workloads: Sequence[str],
                         held_out: Mapping[str, str]) -> np.ndarray:
  """AlgoPerf's variant rules and 4x cut; times are (submission, workload).

  Returns the times of the base workloads (those not variants), in order.
  """
  times = np.where(np.isnan(times), math.inf, times)
  column = {w: i for i, w in enumerate(workloads)}
  for base, variant in held_out.items():
    unsolved = np.isinf(times[:, column[base]])
    times[unsolved, column[variant]] = math.inf
  best = times.min(axis=0)
  times = np.where(times > MAX_TAU * best, math.inf, times)
  for base, variant in held_out.items():
    unsolved = np.isinf(times[:, column[variant]])
    times[unsolved, column[base]] = math.inf
  bases = [column[w] for w in workloads if w not in held_out.values()]
  return times[:, bases]


def performance_ratios(times: np.ndarray) -> np.ndarray:
  """Time over the best submission's time, per workload (inf if unsolved)."""
  best = times.min(axis=0)
  with np.errstate(invalid='ignore', divide='ignore'):
    ratios = times / best
  return np.where(np.isfinite(ratios), ratios, math.inf)


def performance_profiles(ratios: np.ndarray, taus: np.ndarray) -> np.ndarray:
  """rho(tau): fraction of workloads with ratio <= tau, (submission, tau)."""
  return (ratios[:, :, None] <= taus[None, None, :]).mean(axis=1)


def benchmark_scores(profiles: np.ndarray, taus: np.ndarray) -> np.ndarray:
  """Trapezoidal area under each profile over the width of the tau range."""
  areas = ((profiles[:, 1:] + profiles[:, :-1]) / 2 * np.diff(taus)).sum(axis=1)
  return areas / (taus[-1] - taus[0])


def speedup(times: np.ndarray, baseline: np.ndarray,
            budgets: np.ndarray) -> float:
  """Geometric mean of time ratios to `baseline`, as compute_speedups.py.

  Unsolved workloads count as their budget plus one.
  """
  times = np.where(np.isinf(times), budgets + 1, times)
  baseline = np.where(np.isinf(baseline), budgets + 1, baseline)
  return float(np.exp(np.mean(np.log(times / baseline))))


@dataclasses.dataclass
class Scores:
  """Everything the scoring computes, arrays indexed (submission, workload)."""
  submissions: list[str]
  workloads: list[str]  # All timed, v0.5 held-out variants included.
  scored_workloads: list[str]  # Those in the profiles.
  time_column: str
  targets: dict[str, Target]
  times: np.ndarray  # Median time to target over studies.
  ratios: np.ndarray  # Of the scored workloads, after the benchmark rules.
  taus: np.ndarray
  profiles: np.ndarray  # (submission, tau).
  scores: dict[str, float]
  # Submissions dropped (see load_submissions) and count checks that failed
  # (see count_warnings): each may change a score.
  warnings: list[str] = dataclasses.field(default_factory=list)
  # submission -> workload -> study -> time to target (inf if never).
  study_times: dict[str, dict[str, dict[str, float]]] = dataclasses.field(
      default_factory=dict)
  tie_rule: str = 'time'  # See `counted_trial`.

  def paired_ratios(self, name: str, baseline: str,
                    workload: str) -> np.ndarray:
    """t_name(study) / t_baseline(study) over the studies both ran.

    Studies pair by name, so the same seed's runs are compared (run_local
    and run_algoperf give study i the same seed for every submission). A
    ratio is inf where only `name` missed the target, 0 where only the
    baseline did, nan where both did.
    """
    ours = self.study_times.get(name, {}).get(workload, {})
    theirs = self.study_times.get(baseline, {}).get(workload, {})
    with np.errstate(invalid='ignore', divide='ignore'):
      return np.array([ours[s] / theirs[s] for s in sorted(ours)
                       if s in theirs])

  def speedups(self, baseline: str, self_tuning_ruleset: bool = False
               ) -> dict[str, float]:
    """Speedup of every submission over `baseline` on the scored workloads."""
    if baseline not in self.submissions:
      raise ValueError(f'--baseline {baseline!r} is not a submission; '
                       f'expected one of {self.submissions}.')
    columns = [self.workloads.index(w) for w in self.scored_workloads]
    budgets = np.array([self._budget(w, self_tuning_ruleset)
                        for w in self.scored_workloads])
    times = self.times[:, columns]
    reference = times[self.submissions.index(baseline)]
    return {name: speedup(row, reference, budgets)
            for name, row in zip(self.submissions, times)}

  def _budget(self, workload: str, self_tuning_ruleset: bool) -> float:
    target = self.targets[workload]
    budget = (target.step_hint if self.time_column == 'global_step'
              else target.max_runtime_sec)
    if budget is None:
      raise ValueError(f'Workload {workload!r} has no runtime budget '
                       '(max_runtime_sec) to stand in for unsolved runs.')
    return budget * (SELF_TUNING_BUDGET_FACTOR if self_tuning_ruleset else 1)

  def to_json(self) -> dict:
    """A JSON-serialisable summary (infinities as null)."""
    def finite(a):
      return [None if not math.isfinite(x) else x for x in np.ravel(a)]
    return {
        'time_column': self.time_column,
        'workloads': self.workloads,
        'scored_workloads': self.scored_workloads,
        'targets': {w: dataclasses.asdict(t) for w, t in self.targets.items()},
        'time_to_target': {s: dict(zip(self.workloads, finite(row)))
                           for s, row in zip(self.submissions, self.times)},
        'ratios': {s: dict(zip(self.scored_workloads, finite(row)))
                   for s, row in zip(self.submissions, self.ratios)},
        'taus': self.taus.tolist(),
        'profiles': {s: row.tolist()
                     for s, row in zip(self.submissions, self.profiles)},
        'scores': self.scores,
        'warnings': self.warnings,
    }


def score_logs(submissions: Mapping[str, SubmissionLogs],
               benchmark: Benchmark,
               time_column: str = 'score',
               workloads: Union[str, Sequence[str]] = 'base',
               strict: bool = False,
               self_tuning_ruleset: bool = False,
               tie_rule: str = 'time') -> Scores:
  """Scores loaded logs.

  Args:
    submissions: logs by submission name, as `load_submission` reads them;
      the `.warnings` of `load_submissions` (submissions dropped) come first
      in `Scores.warnings`.
    benchmark: the AlgoPerf version's constants (targets, studies, variants).
    time_column: 'score' (accumulated submission time) or 'global_step'.
    workloads: 'base' for the benchmark's base workloads (and v0.5 held-out
      variants), 'local' for every workload present in the logs, or a list.
      Only 'base' applies the held-out rules.
    strict: raise ValueError, rather than return them in `Scores.warnings`,
      on wrong workload, study or trial counts or a dropped submission
      (AlgoPerf's `--strict`).
    self_tuning_ruleset: expect one trial per study instead of five (on
      AlgoPerf's workloads; on local ones, see `expected_counts`).
    tie_rule: which of two trials meeting the target at the same eval a
      study counts: 'time' (the smaller time) or 'algoperf' (the one listed
      first); see `counted_trial`.
  """
  if time_column not in TIME_COLUMNS:
    raise ValueError(f'time_column must be one of {TIME_COLUMNS}, got '
                     f'{time_column!r}.')
  if tie_rule not in TIE_RULES:
    raise ValueError(f'tie_rule must be one of {TIE_RULES}, got '
                     f'{tie_rule!r}.')
  if not submissions:
    raise ValueError('No submissions to score.')
  held_out = {}
  if workloads == 'base':
    held_out = dict(benchmark.held_out)
    names = list(benchmark.base_workloads) + list(held_out.values())
  elif workloads == 'local':
    names = sorted({w for logs in submissions.values() for w in logs})
  elif isinstance(workloads, str):
    raise ValueError(f"workloads must be 'base', 'local' or a list of "
                     f'workload names, got {workloads!r}.')
  else:
    names = list(workloads)
  targets = {w: _target(benchmark, w, submissions) for w in names}
  num_trials = (NUM_TRIALS_SELF_TUNING if self_tuning_ruleset
                else NUM_TRIALS_EXTERNAL)
  warnings = list(getattr(submissions, 'warnings', ()))
  counts = expected_counts(submissions, names, benchmark, num_trials)
  for name, logs in submissions.items():
    warnings += count_warnings(name, logs, names, counts)
    unscored = sorted(set(logs) - set(names))
    if unscored:
      logging.info('%s: workloads not scored: %s', name, ', '.join(unscored))
  if strict and warnings:
    raise ValueError(' '.join(warnings) + ' (--strict)')
  study_times = {
      name: {w: {study: study_time_to_target(trials, targets[w], time_column,
                                             tie_rule)
                 for study, trials in logs[w].items()}
             for w in names if w in logs}
      for name, logs in submissions.items()}
  times = np.array([
      [float(np.median(list(study_times[name][w].values())))
       if w in study_times[name] else math.inf for w in names]
      for name in submissions])
  ratios = performance_ratios(apply_held_out_rules(times, names, held_out))
  taus = np.linspace(MIN_TAU, MAX_TAU, NUM_TAU_POINTS)
  profiles = performance_profiles(ratios, taus)
  scores = benchmark_scores(profiles, taus)
  return Scores(
      submissions=list(submissions),
      workloads=names,
      scored_workloads=[w for w in names if w not in held_out.values()],
      time_column=time_column,
      targets=targets,
      times=times,
      ratios=ratios,
      taus=taus,
      profiles=profiles,
      scores={s: float(v) for s, v in zip(submissions, scores)},
      warnings=warnings,
      study_times=study_times,
      tie_rule=tie_rule)


def _target(benchmark: Benchmark, workload: str,
            submissions: Mapping[str, SubmissionLogs]) -> Target:
  """`find_target`, its error naming a folder that holds `workload`."""
  try:
    return find_target(benchmark, workload)
  except ValueError as e:
    for name, logs in submissions.items():
      for study, trials in logs.get(workload, {}).items():
        raise ValueError(
            f'{_folder(name, study, workload, trials)}: {e}') from e
    raise


def score_submissions(submission_directory: PathLike,
                      benchmark_version: str = '0.6',
                      **kwargs) -> Scores:
  """Scores every submission under `submission_directory`; see `score_logs`."""
  benchmark = load_benchmark(benchmark_version)
  return score_logs(load_submissions(submission_directory), benchmark, **kwargs)


def format_table(scores: Scores) -> str:
  """Per-workload median time to target (and ratio), one row per workload."""
  width = max(len(s) for s in scores.submissions + ['submission'])
  lines = [f'time to target ({scores.time_column}), median over studies; '
           '[ratio to best after the benchmark rules]']
  header = f'{"workload":<32}' + ''.join(
      f'{s:>{max(width, 20)}}' for s in scores.submissions)
  lines.append(header)
  for j, workload in enumerate(scores.workloads):
    cells = []
    for i in range(len(scores.submissions)):
      cell = _format_time(scores.times[i, j])
      if workload in scores.scored_workloads:
        ratio = scores.ratios[i, scores.scored_workloads.index(workload)]
        cell += f' [{ratio:.2f}]' if math.isfinite(ratio) else ' [inf]'
      cells.append(f'{cell:>{max(width, 20)}}')
    lines.append(f'{workload:<32}' + ''.join(cells))
  return '\n'.join(lines)


def format_paired_ratios(scores: Scores, baseline: str) -> str:
  """Per workload, each submission's median ratio to `baseline` over the
  studies, with its min-max (`median_range`: over the paired studies where
  either met the target, ' k/n' where only k of the n were)."""
  others = [s for s in scores.submissions if s != baseline]
  lines = [f'{scores.time_column} ratio to {baseline} per study (same seed), '
           'median (min-max) over the paired studies where either met the '
           'target, k/n where only k of n were (inf: only the baseline did; 0: '
           'only the baseline missed)']
  lines.append(f'{"workload":<32}' + ''.join(f'{s:>24}' for s in others))
  for workload in scores.workloads:
    cells = []
    for name in others:
      cell = median_range(scores.paired_ratios(name, baseline, workload))
      cells.append(f'{cell:>24}')
    lines.append(f'{workload:<32}' + ''.join(cells))
  return '\n'.join(lines)


def median_ratio(values: Sequence[float]) -> float:
  """Median of the paired ratios that are not nan (studies where either met
  the target); nan if none is."""
  kept = [v for v in values if not math.isnan(v)]
  return float(np.median(kept)) if kept else math.nan


def median_range(values: Sequence[float], spec: str = '.2f') -> str:
  """'median (min-max)' of the values that are not nan, then ' k/n' if only
  k of the n are; '-' if none is."""
  kept = [v for v in values if not math.isnan(v)]
  if not kept:
    return '-'
  text = (f'{median_ratio(kept):{spec}} ({min(kept):{spec}}-'
          f'{max(kept):{spec}})')
  return text if len(kept) == len(values) else (
      f'{text} {len(kept)}/{len(values)}')


def _format_time(value: float) -> str:
  return f'{value:.1f}' if math.isfinite(value) else 'inf'
