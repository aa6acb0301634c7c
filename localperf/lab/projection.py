"""A projection of the real benchmark: a submission's logs, time scaled.

Given a ratio r_w per workload w of the paper's seven (time to target of a
method over NadamW's, measured on the local analogue or taken from the
paper), the projected logs are a submission's own with every time axis that
scoring reads scaled:

  score'       = r_w * s * score        (and accumulated_submission_time)
  global_step' = r_w * global_step

where s is the step-time ratio (extra time per step of the method; 1 assumes
none). The eval metrics stay as they are, so the eval at index i, once at
time t_i, is now at r_w * s * t_i: the method is assumed to reach each value
at the same fraction of the run. r_w = inf (the analogue never met its
target) makes every time inf, a miss. Other workloads are left unscaled.
This is a projection, not a measurement.
"""

import json
import math
import pathlib
from typing import Mapping, Union

import numpy as np

from localperf import scoring
from localperf.workloads import ALGOPERF_COUNTERPART

# The paper's seven AlgoPerf workloads, and the local analogue of each.
PAPER_WORKLOADS = tuple(ALGOPERF_COUNTERPART.values())
LOCAL_ANALOGUE = {real: local for local, real in ALGOPERF_COUNTERPART.items()}
# Columns scaled by r_w * s (time) and by r_w alone (steps).
TIME_COLUMNS = ('score', 'accumulated_submission_time')
STEP_COLUMNS = ('global_step',)

# Steps to the validation target, mean over seeds, (NadamW, +LAWA, +EMA):
# Ajroldi, Orvieto, Geiping, arXiv 2502.06761 (ICML 2025), "Results on the
# seven AlgoPerf workloads" in shared/paper/REFERENCE.md. The presets are the
# exact quotients (the paper prints them rounded: criteo1tb 0.79 / 0.80).
PAPER_STEPS_TO_TARGET = {
    'criteo1tb': (8182, 6436, 6577),
    'fastmri': (11250, 8119, 8251),
    'imagenet_vit': (148992, 126448, 119708),
    'librispeech_conformer': (71107, 61696, 61184),
    'librispeech_deepspeech': (42534, 37710, 36279),
    'ogbg': (29139, 12648, 12328),
    'wmt': (118851, 84480, 87211),
}
PRESETS = {
    'paper_lawa': {w: lawa / nadamw for w, (nadamw, lawa, _)
                   in PAPER_STEPS_TO_TARGET.items()},
    'paper_ema': {w: ema / nadamw for w, (nadamw, _, ema)
                  in PAPER_STEPS_TO_TARGET.items()},
}

RatioSpec = Union[str, pathlib.Path, Mapping[str, object]]


def _ratio(name: str, value: object) -> float:
  """`value` as a ratio in (0, inf]; ValueError naming `name` otherwise."""
  try:
    if isinstance(value, bool):
      raise TypeError
    ratio = float(value)
  except (TypeError, ValueError):
    ratio = math.nan
  if not ratio > 0:  # Also rejects nan.
    raise ValueError(f'--ratios: {name}={value!r} is not a ratio; expected a '
                     'number > 0, or inf for a workload whose target was '
                     'never met.')
  return ratio


def check_ratios(ratios: Mapping[str, object]) -> dict[str, float]:
  """Ratios by AlgoPerf workload, from real or local analogue names.

  Raises:
    ValueError naming the field and the accepted values: an unknown name, a
    workload named twice, one missing, or a value not in (0, inf].
  """
  accepted = (f'AlgoPerf names {", ".join(PAPER_WORKLOADS)} or local '
              f'analogue names {", ".join(ALGOPERF_COUNTERPART)}')
  checked = {}
  for name, value in ratios.items():
    name = str(name).strip()
    real = ALGOPERF_COUNTERPART.get(name, name)
    if real not in PAPER_WORKLOADS:
      raise ValueError(f'--ratios: unknown workload {name!r}; expected '
                       f'{accepted}.')
    if real in checked:
      raise ValueError(f'--ratios: {real} is given twice (as {real} and '
                       f'{LOCAL_ANALOGUE[real]}, or repeated); give it once.')
    checked[real] = _ratio(name, value)
  missing = [w for w in PAPER_WORKLOADS if w not in checked]
  if missing:
    raise ValueError(f'--ratios: no ratio for {", ".join(missing)}; every one '
                     f'of the seven is needed ({accepted}; inf for a miss).')
  return {w: checked[w] for w in PAPER_WORKLOADS}


def _parse_pairs(text: str) -> dict[str, str]:
  """'a=1,b=inf' -> {'a': '1', 'b': 'inf'}."""
  pairs = {}
  for item in (i.strip() for i in text.split(',')):
    name, sep, value = (part.strip() for part in item.partition('='))
    if not sep or not name:
      raise ValueError(f'--ratios: {item!r} is not name=ratio; expected a '
                       'comma list such as ctr_dlrm=0.8,ogbg=inf.')
    if name in pairs:
      raise ValueError(f'--ratios: {name} is given twice; give it once.')
    pairs[name] = value
  return pairs


def parse_ratios(spec: RatioSpec) -> dict[str, float]:
  """Ratios from a preset name, a JSON file, `name=r,...` or a mapping.

  A JSON file holds an object `{"name": r}`; r may be a number, Infinity or
  the string "inf". Names and values are checked by `check_ratios`.
  """
  if isinstance(spec, Mapping):
    return check_ratios(spec)
  text = str(spec).strip()
  if text in PRESETS:
    return check_ratios(PRESETS[text])
  path = pathlib.Path(text)
  if path.is_file():
    try:
      ratios = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
      raise ValueError(f'--ratios: {path} is not JSON: {e}') from e
    if not isinstance(ratios, dict):
      raise ValueError(f'--ratios: {path} holds a {type(ratios).__name__}; '
                       'expected an object {"workload": ratio, ...}.')
    return check_ratios(ratios)
  if '=' in text:
    return check_ratios(_parse_pairs(text))
  raise ValueError(f'--ratios: {text!r} is neither a preset '
                   f'({", ".join(PRESETS)}), a JSON file nor a comma list of '
                   'name=ratio.')


def check_step_time_ratio(value: float) -> float:
  """`value` if finite and > 0; ValueError naming --step_time_ratio else."""
  if not (isinstance(value, (int, float)) and math.isfinite(value)
          and value > 0):
    raise ValueError(f'--step_time_ratio must be a finite number > 0 (1.0: '
                     f'no extra time per step), got {value!r}.')
  return float(value)


def scale_trial(trial: scoring.Trial, ratio: float,
                step_time_ratio: float = 1.0) -> scoring.Trial:
  """A copy of `trial` with `score' = r s score`, `global_step' = r step`.

  Columns absent from the trial are skipped; r = inf makes them all inf.
  """
  columns = dict(trial)
  for names, factor in ((TIME_COLUMNS, ratio * step_time_ratio),
                        (STEP_COLUMNS, ratio)):
    for name in names:
      if name in columns:
        values = np.asarray(columns[name], dtype=float)
        columns[name] = (np.full_like(values, math.inf) if math.isinf(factor)
                         else values * factor)
  return scoring.Trial(columns, trial.path)


def project_logs(logs: scoring.SubmissionLogs, ratios: Mapping[str, float],
                 step_time_ratio: float = 1.0) -> scoring.SubmissionLogs:
  """`logs` with each workload in `ratios` scaled by `scale_trial`.

  Workloads not in `ratios` (imagenet_resnet, ...) are kept as they are.
  """
  check_step_time_ratio(step_time_ratio)
  return {
      workload: {study: [scale_trial(t, ratios[workload], step_time_ratio)
                         if workload in ratios else t for t in trials]
                 for study, trials in studies.items()}
      for workload, studies in logs.items()}


def format_ratios(ratios: Mapping[str, float],
                  step_time_ratio: float = 1.0) -> str:
  """One line per workload: analogue, ratio r and time factor r * s."""
  lines = [f'ratios used (step_time_ratio s = {step_time_ratio:g}; '
           'other workloads unscaled)',
           f'{"workload":<26}{"local analogue":<22}{"r":>8}{"r*s":>8}']
  for workload, ratio in ratios.items():
    lines.append(f'{workload:<26}{LOCAL_ANALOGUE[workload]:<22}'
                 f'{ratio:>8.4f}{ratio * step_time_ratio:>8.4f}')
  return '\n'.join(lines)


def project_leaderboard(leaderboard_dir: scoring.PathLike,
                        ratios: RatioSpec,
                        baseline: str = 'baseline',
                        step_time_ratio: float = 1.0,
                        projected_name: str = 'projected',
                        benchmark_version: str = '0.6'
                        ) -> tuple[scoring.Scores, dict[str, float]]:
  """Scores every submission of `leaderboard_dir` and `baseline` projected.

  Every input is checked before the logs are read or scored.

  Returns:
    The scores of the submissions and of `projected_name` (the baseline's
    logs scaled by `project_logs`), and the ratios used by workload.
  """
  ratios = parse_ratios(ratios)
  check_step_time_ratio(step_time_ratio)
  benchmark = scoring.load_benchmark(benchmark_version)
  directory = pathlib.Path(leaderboard_dir)
  if not directory.is_dir():
    raise ValueError(f'--leaderboard_dir {directory} does not exist; expected '
                     'the leaderboard logs, <submission>/<study>/<workload>_'
                     '<framework>/trial_<k>/eval_measurements.csv.')
  submissions = scoring.load_submissions(directory)
  if baseline not in submissions:
    raise ValueError(f'--baseline {baseline!r} is not a submission in '
                     f'{directory}; expected one of {sorted(submissions)}.')
  if projected_name in submissions:
    raise ValueError(f'--projected_name {projected_name!r} is taken by a '
                     f'submission in {directory}; choose another name.')
  submissions[projected_name] = project_logs(submissions[baseline], ratios,
                                             step_time_ratio)
  return scoring.score_logs(submissions, benchmark), ratios
