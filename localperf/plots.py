"""PNG figures of scoring results: performance profiles, validation curves."""

import pathlib
import re
from typing import Mapping

import numpy as np

from localperf import scoring


def _pyplot():
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


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


def plot_validation_curves(submissions: Mapping[str, scoring.SubmissionLogs],
                           scores: scoring.Scores,
                           output_dir: pathlib.Path) -> list[pathlib.Path]:
  """One PNG per workload: every trial's validation metric, and the target."""
  plt = _pyplot()
  colors = plt.rcParams['axes.prop_cycle'].by_key()['color']
  paths = []
  for workload in scores.workloads:
    target = scores.targets[workload]
    fig, ax = plt.subplots(figsize=(8, 5))
    for i, (name, logs) in enumerate(submissions.items()):
      color = colors[i % len(colors)]
      trials = [t for study in logs.get(workload, {}).values() for t in study]
      for k, trial in enumerate(trials):
        if target.column in trial and scores.time_column in trial:
          ax.plot(trial[scores.time_column], trial[target.column], color=color,
                  alpha=0.5, lw=1, label=name if k == 0 else None)
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
    fig.tight_layout()
    filename = re.sub(r'\W', '_', workload)
    path = output_dir / f'validation_curves_{filename}.png'
    fig.savefig(path, dpi=100)
    plt.close(fig)
    paths.append(path)
  return paths
