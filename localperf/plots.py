"""PNG figures of scoring results: performance profiles, validation curves."""

import math
import pathlib
import re
import zlib
from typing import Mapping, Optional, Sequence, Tuple

import numpy as np

from localperf import scoring

# This package's submissions keep their colour in every figure.
SUBMISSION_COLORS = {
    'nadamw': 'tab:blue',
    'nadamw_ema': 'tab:orange',
    'nadamw_lawa': 'tab:green',
    'schedule_free_adamw': 'tab:red',
    'nadamw_codesign': 'tab:purple',
}
# Any other name: one of these, picked by a hash of the name.
OTHER_COLORS = ('tab:brown', 'tab:pink', 'tab:olive', 'tab:cyan', 'navy',
                'darkgoldenrod', 'teal', 'indigo')
# Per time column: its axis label, and what a ratio of two of it compares.
TIME_LABELS = {'score': ('submission time (s)', 'submission time'),
               'global_step': ('global step', 'steps')}


def _pyplot():
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


def submission_color(name: str) -> str:
  """The colour of submission `name` in every figure, whatever else is drawn
  beside it and in whatever order."""
  if name in SUBMISSION_COLORS:
    return SUBMISSION_COLORS[name]
  return OTHER_COLORS[zlib.crc32(name.encode()) % len(OTHER_COLORS)]


def first_crossing(values: Sequence[float], target: float,
                   minimize: bool) -> Optional[int]:
  """Index of the first value meeting `target` (<= if minimised, else >=)."""
  for i, value in enumerate(values):
    if (value <= target) if minimize else (value >= target):
      return i
  return None


def number(x: float) -> str:
  """`x` to three significant digits or more, never in e-notation."""
  digits = 2 - math.floor(math.log10(abs(x))) if x else 0
  return f'{x:.{max(0, digits)}f}'


def ring_sizes(xs: Sequence[float], near: float,
               size: float = 7.0, step: float = 5.0) -> list[float]:
  """Sizes of ring markers at `xs` that keep rings closer than `near` in x
  apart: each is `step` larger than the largest earlier ring near it, so
  they nest."""
  sizes = []
  for k, x in enumerate(xs):
    below = [s for other, s in zip(xs[:k], sizes) if abs(x - other) < near]
    sizes.append(max(below) + step if below else size)
  return sizes


# A curve per study: {submission: [(x, y), ...]}.
StudyCurves = Mapping[str, Sequence[Tuple[Sequence[float], Sequence[float]]]]


def _number_or_inf(x: float) -> str:
  return number(x) if math.isfinite(x) else 'inf'


def median_crossing(xs: Sequence[float]) -> str:
  """'median M over n studies (min-max)' of the studies' first crossings
  `xs` (inf: never met), as the scorer's median and the tables' range."""
  n = len(xs)
  if not any(math.isfinite(x) for x in xs):
    return 'not met' if n == 1 else f'not met in {n} studies'
  if n == 1:
    return f'met at {number(xs[0])}'
  median = float(np.median(xs))
  text = 'median ' + (number(median) if math.isfinite(median)
                      else 'inf (not met)')
  return (f'{text} over {n} studies ({_number_or_inf(min(xs))}-'
          f'{_number_or_inf(max(xs))})')


def plot_curves(ax, curves: StudyCurves, target: float, minimize: bool,
                zoom: bool = True) -> None:
  """Every curve of `curves`, thin, one colour per submission, each named
  once in the legend with its number of curves; a curve of one or two evals
  gets markers, so it shows. With `zoom`, y is cut to where the target is
  decided but keeps each submission's best value in view."""
  best = min if minimize else max
  bests = []
  for name, studies in curves.items():
    drawn = [(x, y) for x, y in studies if len(x)]
    values = []
    for k, (x, y) in enumerate(drawn):
      ax.plot(x, y, color=submission_color(name), alpha=0.5, lw=1,
              marker='o' if len(x) <= 2 else None, ms=4,
              label=f'{name} ({len(drawn)})' if k == 0 else None)
      values += [v for v in np.asarray(y, float) if math.isfinite(v)]
    if values:
      bests.append(best(values))
  ax.axhline(target, color='k', ls='--', lw=1, label='target')
  if zoom and math.isfinite(target) and bests:
    if minimize and target > 0:
      ax.set_ylim(min(0.8 * target, min(bests)),
                  max(2 * target, max(bests)) * 1.02)
    elif not minimize:
      low = min(0.8 * target, min(bests))
      high = max(min(1.2 * target, ax.get_ylim()[1]), 1.02 * target)
      ax.set_ylim(low - 0.02 * abs(low), high)
  ax.grid(alpha=0.4)
  ax.legend(fontsize='small', title='submission (curves)',
            title_fontsize='small')


def finish_limits(bests: Sequence[float], target: float,
                  minimize: bool) -> Tuple[float, float]:
  """y limits of a finish view: with d the furthest any curve's best value
  (`bests`) lies from the target (at least 0.1% of it), from the target 2d
  on the side curves come from to 1.1d past it."""
  d = max([abs(b - target) for b in bests] + [1e-3 * abs(target) or 1e-3])
  return ((target - 1.1 * d, target + 2 * d) if minimize
          else (target - 2 * d, target + 1.1 * d))


def plot_finish(ax, curves: StudyCurves, target: float,
                minimize: bool) -> None:
  """The finish of every study's curve `{name: [(x, y) per study]}`, where
  time to target is decided: x from 70% of the earliest first crossing (or
  the last 40% when none crosses) to a margin past the end; y from the
  target to the best value a curve reaches there (`finish_limits`), a dot
  at each eval. Each study's first crossing is ringed (rings at the same
  step nest, so none hides another); a dashed line marks each submission's
  median over its studies (an unsolved study counting as infinite, as the
  scorer's table), named in the legend with the range."""
  crossings = {name: [first_crossing(y, target, minimize) for _, y in studies]
               for name, studies in curves.items()}
  hit_x = {name: [float(x[i]) if i is not None else math.inf
                  for (x, _), i in zip(curves[name], found)]
           for name, found in crossings.items()}
  x_end = max((x[-1] for studies in curves.values() for x, _ in studies
               if len(x)), default=1)
  hits = [(name, k, x) for name, xs in hit_x.items()
          for k, x in enumerate(xs) if math.isfinite(x)]
  x_start = 0.7 * min(x for *_, x in hits) if hits else 0.6 * x_end
  sizes = dict(zip([(name, k) for name, k, _ in hits],
                   ring_sizes([x for *_, x in hits],
                              0.02 * (x_end - x_start))))
  bests = []
  medians = {name: float(np.median(xs)) for name, xs in hit_x.items() if xs}
  dashed = [name for name, m in medians.items() if math.isfinite(m)]
  for name, studies in curves.items():
    color = submission_color(name)
    label = f'{name}: {median_crossing(hit_x[name])}'
    for k, (x, y) in enumerate(studies):
      x, y = np.asarray(x, float), np.asarray(y, float)
      window = x >= x_start
      if not window.any():
        continue
      finite = y[window & np.isfinite(y)]
      if finite.size:
        bests.append(finite.min() if minimize else finite.max())
      ax.plot(x[window], y[window], color=color, lw=1, alpha=0.8,
              marker='.', ms=4, label=label)
      label = None
      i = crossings[name][k]
      if i is not None:
        ax.plot([x[i]], [y[i]], 'o', color=color, ms=sizes[(name, k)],
                mfc='none', mew=1.5, zorder=3)
    if label is not None:  # Every curve ends before the view: say so.
      ends = max(float(x[-1]) for x, _ in studies if len(x))
      ax.plot([], [], color=color, lw=1,
              label=f'{label}; ends by {number(ends)}, left of this view')
    if name in dashed:
      # Dashes offset per submission, so medians at one step all show.
      j = dashed.index(name)
      ax.axvline(medians[name], color=color, lw=1.5,
                 ls=(3 * j, (3, 3 * max(len(dashed) - 1, 1))))
  ax.axhline(target, color='k', ls='--', lw=1, label='target')
  ax.set_ylim(*finish_limits(bests, target, minimize))
  ax.set_xlim(x_start, x_end + 0.03 * (x_end - x_start))
  ax.grid(alpha=0.4)
  ax.legend(fontsize='small', title='first crossing (o); median (dashed)',
            title_fontsize='small')


# Vertical offset between two submissions' profile lines, so that lines
# that coincide (all at 1, or at 0 along the axis) all show.
PROFILE_OFFSET = 0.012


def profile_offsets(n: int) -> np.ndarray:
  """Offsets of `n` profile lines, best first: the best highest, spread
  evenly about 0 in steps of PROFILE_OFFSET."""
  return PROFILE_OFFSET * ((n - 1) / 2 - np.arange(n))


def plot_performance_profiles(scores: scoring.Scores, path: pathlib.Path,
                              title: Optional[str] = None) -> pathlib.Path:
  """rho(tau) of every submission as the step function it is, one line
  width for all, each line shifted by its `profile_offsets` (said on the
  figure) so that coinciding lines show side by side; the legend, best
  first, gives each benchmark score and rho(4). `title` (default: what is
  profiled) heads the figure."""
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(9, 5.5))
  ranked = sorted(scores.submissions, key=scores.scores.get, reverse=True)
  offsets = profile_offsets(len(ranked))
  profiles = dict(zip(scores.submissions, scores.profiles))
  for name, offset in zip(ranked, offsets):
    ax.step(scores.taus, profiles[name] + offset, where='post', lw=1.8,
            color=submission_color(name), clip_on=False,
            label=f'{name}: {scores.scores[name]:.4f}, '
            f'rho(4) = {profiles[name][-1]:.2f}')
  what = TIME_LABELS[scores.time_column][1]
  n = len(scores.scored_workloads)
  ax.set_title((title + '\n' if title else '') +
               f'Performance profiles: {what} to the target on {n} workload'
               f'{"s" if n != 1 else ""}, each the median over studies',
               fontsize='medium')
  ax.set_xlabel(f'tau: {what} to the target over the best submission\'s')
  ax.set_ylabel('fraction of workloads solved within tau')
  ax.set_xlim(scores.taus[0], scores.taus[-1])
  ax.set_ylim(min(offsets) - 0.05, 1.05 + max(offsets))
  ax.grid(alpha=0.4)
  ax.legend(title='benchmark score (area / 3), rho(4)', fontsize='small',
            title_fontsize='small', loc='best')
  if len(ranked) > 1:
    fig.text(0.01, 0.01, f'Lines shifted vertically {PROFILE_OFFSET} apart '
             '(best highest) so that equal values show side by side.',
             fontsize='small', color='0.3')
  fig.tight_layout(rect=(0, 0.03, 1, 1))
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path


def _study_curve(trials: Sequence[scoring.Trial], target: scoring.Target,
                 time_column: str, tie_rule: str) -> Tuple[np.ndarray, ...]:
  """(time, metric) of the trial a study counts (`scoring.counted_trial`),
  else of its first trial."""
  counted = scoring.counted_trial(trials, target, time_column, tie_rule)
  trial = counted[0] if counted else trials[0]
  return trial[time_column], trial[target.column]


def plot_validation_curves(submissions: Mapping[str, scoring.SubmissionLogs],
                           scores: scoring.Scores,
                           output_dir: pathlib.Path) -> list[pathlib.Path]:
  """One PNG per workload: every trial of every study, the target, and the
  number of trials in the legend (left); the finish of the trial each study
  counts, each study's first crossing ringed and each submission's median
  over studies (the scorer's time to target) dashed and named (right)."""
  plt = _pyplot()
  x_label = TIME_LABELS[scores.time_column][0]
  paths = []
  for workload in scores.workloads:
    target = scores.targets[workload]
    fig, (ax, finish) = plt.subplots(1, 2, figsize=(15, 5.5))
    every, counted = {}, {}
    for name, logs in submissions.items():
      studies = [t for t in logs.get(workload, {}).values()
                 if t and all(c in t[0] for c in (target.column,
                                                  scores.time_column))]
      every[name] = [(t[scores.time_column], t[target.column])
                     for trials in studies for t in trials]
      counted[name] = [_study_curve(trials, target, scores.time_column,
                                    scores.tie_rule) for trials in studies]
    every = {n: c for n, c in every.items() if c}
    counted = {n: c for n, c in counted.items() if c}
    plot_curves(ax, every, target.value, target.minimize)
    ax.set(title=f'{workload}: every trial of every study (legend: trials)',
           xlabel=x_label, ylabel=target.column)
    if counted and np.isfinite(target.value):
      plot_finish(finish, counted, target.value, target.minimize)
    finish.set(title=f'{workload}: finish of the trial each study counts\n'
               'median over studies (dashed) = the table\'s time to target',
               xlabel=x_label, ylabel=target.column)
    fig.tight_layout()
    filename = re.sub(r'\W', '_', workload)
    path = output_dir / f'validation_curves_{filename}.png'
    fig.savefig(path, dpi=100)
    plt.close(fig)
    paths.append(path)
  return paths
