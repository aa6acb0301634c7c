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


def plot_finish(ax, curves: Mapping[str, Tuple[Sequence[float],
                                               Sequence[float]]],
                target: float, minimize: bool) -> None:
  """The finish of each curve `{name: (x, y)}`, where steps to target are
  decided: x from 70% of the earliest first crossing (or the last 40% when
  none crosses) to a margin past the end, y fitted to the values shown, each
  first crossing marked by a ring and named in the legend."""
  crossings = {name: first_crossing(y, target, minimize)
               for name, (_, y) in curves.items()}
  x_end = max((x[-1] for x, _ in curves.values() if len(x)), default=1)
  hits = {n: curves[n][0][i] for n, i in crossings.items() if i is not None}
  x_start = 0.7 * min(hits.values()) if hits else 0.6 * x_end
  sizes = dict(zip(hits, ring_sizes(list(hits.values()),
                                    0.02 * (x_end - x_start))))
  shown = [target]
  for name, (x, y) in curves.items():
    x, y = np.asarray(x, float), np.asarray(y, float)
    color = submission_color(name)
    window = x >= x_start
    shown += list(y[window & np.isfinite(y)])
    i = crossings[name]
    met = 'not met' if i is None else f'met at {number(x[i])}'
    ax.plot(x[window], y[window], color=color, lw=1.2, label=f'{name} ({met})')
    if i is not None:
      ax.axvline(x[i], color=color, ls=':', lw=1.2)
      ax.plot([x[i]], [y[i]], 'o', color=color, ms=sizes[name], mfc='none',
              mew=1.5, zorder=3)
  ax.axhline(target, color='k', ls='--', lw=1, label='target')
  low, high = min(shown), max(shown)
  pad = 0.05 * (high - low or abs(target) or 1)
  ax.set_ylim(low - pad, high + pad)
  ax.set_xlim(x_start, x_end + 0.03 * (x_end - x_start))
  ax.grid(alpha=0.4)
  ax.legend(fontsize='small')


def plot_performance_profiles(scores: scoring.Scores,
                              path: pathlib.Path) -> pathlib.Path:
  """rho(tau) of every submission as the step function it is, its benchmark
  score in the legend; the best drawn last and thinnest, so lines that
  coincide all show."""
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(8, 5))
  profiles = dict(zip(scores.submissions, scores.profiles))
  ranked = sorted(scores.submissions, key=scores.scores.get)  # Best last.
  for k, name in enumerate(ranked):
    ax.step(scores.taus, profiles[name], where='post',
            lw=1.5 + (len(ranked) - 1 - k),
            color=submission_color(name),
            label=f'{name} ({scores.scores[name]:.4f})')
  ax.set_xlabel(f'tau: {TIME_LABELS[scores.time_column][1]} to the target '
                "over the best submission's")
  ax.set_ylabel('fraction of workloads solved within tau')
  ax.set_xlim(scores.taus[0], scores.taus[-1])
  ax.set_ylim(-0.04, 1.04)
  ax.grid(alpha=0.4)
  handles, labels = ax.get_legend_handles_labels()
  ax.legend(handles[::-1], labels[::-1], title='benchmark score')
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path


def _earliest_trial(trials, column: str, time_column: str, target: float,
                    minimize: bool) -> Optional[Tuple[Sequence, Sequence]]:
  """(time, metric) of the trial that meets `target` first, else the first."""
  curves = [(t[time_column], t[column]) for t in trials
            if column in t and time_column in t]
  def reached_at(curve):
    i = first_crossing(curve[1], target, minimize)
    return np.inf if i is None else curve[0][i]
  return min(curves, key=reached_at, default=None)


def plot_validation_curves(submissions: Mapping[str, scoring.SubmissionLogs],
                           scores: scoring.Scores,
                           output_dir: pathlib.Path) -> list[pathlib.Path]:
  """One PNG per workload: every trial's validation metric and the target
  (left); the finish of each submission's fastest trial, its first crossing
  marked (right)."""
  plt = _pyplot()
  x_label = TIME_LABELS[scores.time_column][0]
  paths = []
  for workload in scores.workloads:
    target = scores.targets[workload]
    fig, (ax, finish) = plt.subplots(1, 2, figsize=(14, 5))
    fastest = {}
    for name, logs in submissions.items():
      trials = [t for study in logs.get(workload, {}).values() for t in study]
      for k, trial in enumerate(trials):
        if target.column in trial and scores.time_column in trial:
          ax.plot(trial[scores.time_column], trial[target.column],
                  color=submission_color(name), alpha=0.5, lw=1,
                  label=name if k == 0 else None)
      curve = _earliest_trial(trials, target.column, scores.time_column,
                              target.value, target.minimize)
      if curve is not None:
        fastest[name] = curve
    ax.axhline(target.value, color='k', ls='--', lw=1, label='target')
    ax.set(title=f'{workload}: every trial', xlabel=x_label,
           ylabel=target.column)
    if target.minimize and np.isfinite(target.value) and target.value > 0:
      ax.set_ylim(target.value * 0.8, target.value * 2)
    elif np.isfinite(target.value):
      ax.set_ylim(target.value * 0.8, min(target.value * 1.2,
                                          ax.get_ylim()[1]))
    ax.grid(alpha=0.4)
    ax.legend()
    if fastest and np.isfinite(target.value):
      plot_finish(finish, fastest, target.value, target.minimize)
    finish.set(title=f'{workload}: finish of the fastest trial '
               '(o = first crossing)', xlabel=x_label, ylabel=target.column)
    fig.tight_layout()
    filename = re.sub(r'\W', '_', workload)
    path = output_dir / f'validation_curves_{filename}.png'
    fig.savefig(path, dpi=100)
    plt.close(fig)
    paths.append(path)
  return paths
