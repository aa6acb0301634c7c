"""Sweep schedule x averager candidates on the local analogues.

A candidate is a learning-rate schedule and a way to pick the evaluated
weights: the raw weights, an averager chained after NadamW, or `select_<x>`
(averager `x` or raw, whichever had the lower training-batch loss since the
previous eval; `calibration.train_trajectory`). Averagers pass the updates
through, so one trajectory per (workload, schedule, seed) serves every
averager on it: the updates differ only between schedules.

The baseline is `nadamw`: the cosine schedule's raw weights at the same
seed. For each candidate and seed, with `s` the first step whose validation
metric beats the workload's target (inf if none):

  ratio = s_candidate / s_nadamw

(`calibration.paired_ratio`: inf where only the candidate misses, 0 where
only nadamw does, nan where both do, as `scoring.Scores.paired_ratios`),
and the summary is the median ratio over the seeds where either met the
target, with its min and max, and the mean over workloads of the medians.

Curves are saved as JSON, one file per trajectory, so processes can split
the work and `summarize` reads them back.
"""

import json
import math
import pathlib
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import optax

from localperf.lab import calibration
from localperf import scoring
from localperf import workloads as workload_registry
from submissions import optim
from submissions.nadamw_codesign import submission as codesign
from submissions.nadamw_ema import submission as nadamw_ema

BASELINE = ('cosine', 'raw')
MIN_WINDOW_FRACTION = 0.005  # Of step_hint: the LR-following window's floor.


def _schedule(decay_start: Optional[float],
              decay_end: float) -> calibration.ScheduleFn:
  """`submissions/nadamw_codesign`'s schedule with these decay fractions."""

  def make(hparams, step_hint):
    return codesign.schedule_from_hyperparameters(
        {**hparams, 'decay_start_fraction': decay_start,
         'decay_end_fraction': decay_end}, step_hint)

  return make


# Schedules, by name: AlgoPerf's cosine to 0 at step_hint; a cosine ending at
# 0.75 of it (the paper's shorter budget); warmup-stable-decay, linear from
# 0.6 to 0.9 of it.
SCHEDULES: Dict[str, calibration.ScheduleFn] = {
    'cosine': _schedule(None, 1.0),
    'cosine_end75': _schedule(None, 0.75),
    'wsd_60_90': _schedule(0.6, 0.9),
}


def paper_ema(schedule: optax.Schedule, hparams: Dict[str, float],
              step_hint: int, workload: str) -> optax.GradientTransformation:
  """The paper's EMA as its summary states it: decay 0.9 over a window of 1%
  of step_hint (nadamw_ema at its self-tuning defaults)."""
  del schedule, hparams, workload
  defaults = nadamw_ema.SELF_TUNING_HYPERPARAMETERS
  return optim.ema_params(defaults['ema_decay'],
                          nadamw_ema.ema_every_k(defaults, step_hint))


def lr_following_ema(max_window_fraction: float):
  """`submissions/nadamw_codesign`'s EMA: a window of `max_window_fraction *
  step_hint * lr_t / peak`, at least 0.5% of step_hint."""

  def make(schedule, hparams, step_hint, workload):
    del workload
    return codesign.lr_following_ema(
        {**hparams, 'ema_max_window_fraction': max_window_fraction,
         'ema_min_window_fraction': MIN_WINDOW_FRACTION,
         'averaging_every_steps': None, 'averaging_start_fraction': 0.0},
        schedule, step_hint)

  return make


def paper_as_run(nu: int, averager: str):
  """The paper's 'ema' (decay 0.9) or 'lawa' (L = 20) as its runs used them
  and the calibration measures them (`calibration.paper_averagers`): a
  snapshot every `nu` counterpart steps."""

  def make(schedule, hparams, step_hint, workload):
    del schedule, hparams, step_hint
    return calibration.paper_averagers(workload, nu)[averager]

  return make


# (schedule, hparams, step_hint, workload name) -> an averager, by name.
AVERAGERS = {
    'ema': paper_ema,
    'ema_nu64': paper_as_run(64, 'ema'),
    'lawa_nu64': paper_as_run(64, 'lawa'),
    'ema_lr5': lr_following_ema(0.05),
    'ema_lr10': lr_following_ema(0.10),
    'ema_lr20': lr_following_ema(0.20),
}


class Trajectory(NamedTuple):
  workload: str
  schedule: str
  seed: int
  curves: Dict[str, calibration.Curve]  # 'raw', averagers, select_*.


def trajectory_path(output_dir: pathlib.Path, workload: str, schedule: str,
          seed: int) -> pathlib.Path:
  return output_dir / f'{workload}__{schedule}__seed{seed}.json'


def run_trajectory(workload: str, schedule: str, seed: int,
                   averagers: Sequence[str], *, eval_every_fraction: float,
                   select_every: int, output_dir: pathlib.Path,
                   log=None) -> Trajectory:
  """Trains one trajectory with `averagers` chained, saves its curves."""
  step_hint = workload_registry.get_workload(workload).step_hint

  def averagers_fn(lr, hparams, hint):
    return {name: AVERAGERS[name](lr, hparams, hint, workload)
            for name in averagers}

  run = calibration.train_trajectory(
      workload, schedule_fn=SCHEDULES[schedule], averagers_fn=averagers_fn,
      eval_every=calibration.eval_every_steps(step_hint, eval_every_fraction),
      rng_seed=seed, select_every=select_every, label=schedule, log=log)
  output_dir.mkdir(parents=True, exist_ok=True)
  trajectory_path(output_dir, workload, schedule, seed).write_text(json.dumps({
      name: {'steps': c.steps.tolist(), 'values': c.values.tolist()}
      for name, c in run.curves.items()}))
  return Trajectory(workload, schedule, seed, run.curves)


def load_trajectories(output_dir: pathlib.Path) -> List[Trajectory]:
  """Every trajectory saved under `output_dir`."""
  found = []
  for path in sorted(pathlib.Path(output_dir).glob('*__*__seed*.json')):
    workload, schedule, seed = path.stem.split('__')
    curves = {name: calibration.Curve(np.asarray(c['steps']),
                                      np.asarray(c['values']))
              for name, c in json.loads(path.read_text()).items()}
    found.append(Trajectory(workload, schedule, int(seed[4:]), curves))
  return found


class Summary(NamedTuple):
  """Steps-to-target ratios of each candidate against nadamw."""
  # (schedule, weights) -> workload -> ratios, one per shared seed.
  ratios: Dict[Tuple[str, str], Dict[str, List[float]]]
  seeds: Dict[str, List[int]]  # workload -> seeds with a baseline.


def summarize(trajectories: Sequence[Trajectory]) -> Summary:
  """Ratios to the same seed's cosine raw run, for every candidate."""
  by_key = {(t.workload, t.schedule, t.seed): t for t in trajectories}
  ratios: Dict[Tuple[str, str], Dict[str, List[float]]] = {}
  seeds: Dict[str, List[int]] = {}
  for (workload, schedule, seed), traj in sorted(by_key.items()):
    base = by_key.get((workload,) + (BASELINE[0], seed))
    if base is None:
      continue
    w = workload_registry.get_workload(workload)
    target, minimize = w.validation_target_value, w.minimize_target_metric
    base_step = calibration.first_met(base.curves[BASELINE[1]], target,
                                      minimize)
    if seed not in seeds.setdefault(workload, []):
      seeds[workload].append(seed)
    for name, curve in traj.curves.items():
      if name == 'test':
        continue
      ratio = calibration.paired_ratio(
          calibration.first_met(curve, target, minimize), base_step)
      ratios.setdefault((schedule, name), {}).setdefault(
          workload, []).append(ratio)
  return Summary(ratios, seeds)


def median_ratios(summary: Summary, candidate: Tuple[str, str],
                  workloads: Sequence[str]) -> Dict[str, float]:
  """{workload: median ratio} of `candidate`, leaving out workloads where
  it has no trajectory or no seed where either met the target."""
  out = {}
  for workload in workloads:
    median = scoring.median_ratio(summary.ratios[candidate].get(workload,
                                                                []))
    if not math.isnan(median):
      out[workload] = median
  return out


def format_summary(summary: Summary, workloads: Sequence[str]) -> str:
  """One row per candidate: median (min-max) per workload, and the mean of
  the medians over workloads (inf if any is inf)."""
  header = ['schedule/weights'] + list(workloads) + ['mean']
  rows = []
  for (schedule, name), per_workload in sorted(summary.ratios.items()):
    values = [per_workload.get(workload, []) for workload in workloads]
    cells = [scoring.median_range(v) for v in values]
    medians = [m for m in map(scoring.median_ratio, values)
               if not math.isnan(m)]
    mean = float(np.mean(medians)) if medians else math.nan
    rows.append([f'{schedule}/{name}'] + cells + [f'{mean:.3f}'])
  widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
  return '\n'.join('  '.join(c.ljust(w) for c, w in zip(r, widths))
                   for r in [header] + rows)
