"""PNG figures of scoring results: performance profiles, validation curves."""

import pathlib
import re
from typing import Mapping, Optional, Sequence, Tuple

import numpy as np

from localperf import scoring


def _pyplot():
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


def first_crossing(values: Sequence[float], target: float,
                   minimize: bool) -> Optional[int]:
  """Index of the first value meeting `target` (<= if minimised, else >=)."""
  for i, value in enumerate(values):
    if (value <= target) if minimize else (value >= target):
      return i
  return None


def plot_finish(ax, curves: Mapping[str, Tuple[Sequence[float],
                                               Sequence[float]]],
                target: float, minimize: bool, colors: Sequence[str]) -> None:
  """The finish of each curve `{name: (x, y)}`, where steps to target are
  decided: x from 70% of the earliest first crossing (or the last 40% when
  none crosses), y fitted to the values shown, each first crossing marked."""
  crossings = {name: first_crossing(y, target, minimize)
               for name, (_, y) in curves.items()}
  x_end = max((x[-1] for x, _ in curves.values() if len(x)), default=1)
  hits = [curves[n][0][i] for n, i in crossings.items() if i is not None]
  x_start = 0.7 * min(hits) if hits else 0.6 * x_end
  shown = [target]
  for (name, (x, y)), color in zip(curves.items(), colors):
    x, y = np.asarray(x, float), np.asarray(y, float)
    window = x >= x_start
    shown += list(y[window & np.isfinite(y)])
    ax.plot(x[window], y[window], color=color, lw=1.2, label=name)
    i = crossings[name]
    if i is not None:
      ax.axvline(x[i], color=color, ls=':', lw=1)
      ax.plot([x[i]], [y[i]], 'o', color=color, ms=5)
  ax.axhline(target, color='k', ls='--', lw=1)
  low, high = min(shown), max(shown)
  pad = 0.05 * (high - low or abs(target) or 1)
  ax.set_ylim(low - pad, high + pad)
  ax.set_xlim(x_start, x_end)
  ax.grid(alpha=0.4)


def plot_performance_profiles(scores: scoring.Scores,
                              path: pathlib.Path) -> pathlib.Path:
  """rho(tau) of every submission, its benchmark score in the legend."""
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(8, 5))
  for name, profile in zip(scores.submissions, scores.profiles):
    ax.plot(scores.taus, profile, label=f'{name} ({scores.scores[name]:.4f})')
  ax.set_xlabel(f'ratio of `{scores.time_column}` to the best submission (tau)')
  ax.set_ylabel('fraction of workloads')
  ax.set_xlim(scores.taus[0], scores.taus[-1])
  ax.set_ylim(-0.02, 1.02)
  ax.grid(alpha=0.4)
  ax.legend()
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
  colors = plt.rcParams['axes.prop_cycle'].by_key()['color']
  paths = []
  for workload in scores.workloads:
    target = scores.targets[workload]
    fig, (ax, finish) = plt.subplots(1, 2, figsize=(14, 5))
    fastest = {}
    for i, (name, logs) in enumerate(submissions.items()):
      color = colors[i % len(colors)]
      trials = [t for study in logs.get(workload, {}).values() for t in study]
      for k, trial in enumerate(trials):
        if target.column in trial and scores.time_column in trial:
          ax.plot(trial[scores.time_column], trial[target.column], color=color,
                  alpha=0.5, lw=1, label=name if k == 0 else None)
      curve = _earliest_trial(trials, target.column, scores.time_column,
                              target.value, target.minimize)
      if curve is not None:
        fastest[name] = curve
    ax.axhline(target.value, color='k', ls='--', lw=1, label='target')
    ax.set_title(workload)
    ax.set_xlabel(scores.time_column)
    ax.set_ylabel(target.column)
    if target.minimize and np.isfinite(target.value) and target.value > 0:
      ax.set_ylim(target.value * 0.8, target.value * 2)
    elif np.isfinite(target.value):
      ax.set_ylim(target.value * 0.8, min(target.value * 1.2,
                                          ax.get_ylim()[1]))
    ax.grid(alpha=0.4)
    ax.legend()
    if fastest and np.isfinite(target.value):
      plot_finish(finish, fastest, target.value, target.minimize,
                  [colors[list(submissions).index(n) % len(colors)]
                   for n in fastest])
    finish.set_title(f'{workload}: finish of the fastest trial '
                     '(o = first crossing)')
    finish.set_xlabel(scores.time_column)
    fig.tight_layout()
    filename = re.sub(r'\W', '_', workload)
    path = output_dir / f'validation_curves_{filename}.png'
    fig.savefig(path, dpi=100)
    plt.close(fig)
    paths.append(path)
  return paths
