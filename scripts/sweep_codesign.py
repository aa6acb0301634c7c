r"""Sweep schedule x averager candidates on the analogues; print the ratios.

For each workload, schedule and seed: one NadamW trajectory at the
workload's reference point on that schedule, with every averager of
`--averagers` chained beside it and evaluated at every eval (one trajectory
serves them all: their updates are the same), and `select_<averager>` read
off by the training-batch loss rule (localperf/lab/sweep.py). Then, for every
candidate (schedule, weights), the steps to the validation target over
those of nadamw (cosine schedule, raw weights) at the same seed: median
(min-max) over seeds per workload, and the mean of the medians.

  python -m scripts.sweep_codesign --workloads=paper_seven \
      --schedules=cosine --averagers=ema,ema_lr5,ema_lr10,ema_lr20
  python -m scripts.sweep_codesign --workloads=paper_seven \
      --schedules=cosine_end75,wsd_60_90 --averagers=ema,ema_lr10
  python -m scripts.sweep_codesign --workloads=paper_seven --summarize_only \
      --export_candidate=cosine/ema_lr10 --export_path=ratios.json

Each trajectory trains in a process of its own pinned to one core (one XLA
thread; `localperf/jobs.py`), `--jobs` of them at once, so a seed gives the
same curves whatever the machine's load or core count. Trajectories already
saved under `--output_dir` are not trained again, so several processes may
share one directory and a stopped sweep resumes.
Writes <output_dir>/ratios.png, and with --export_candidate the median
ratio per workload of one candidate as JSON (the input of
`scripts.project_leaderboard --ratios=FILE`; a workload where nadamw never
met the target at any seed is left out). The cosine schedule must be in the
directory for any ratio to exist.
"""

import json
import math
import pathlib
import sys
from typing import List, Optional

from absl import flags
from absl import logging

from localperf.lab import calibration
from localperf import cli
from localperf import jobs
from localperf import scoring
from localperf.lab import sweep
from localperf import workloads as workload_registry

FLAGS = flags.FlagValues()
flags.DEFINE_string('workloads', 'paper_seven',
                    'Comma-separated workloads or paper_seven.',
                    flag_values=FLAGS)
flags.DEFINE_list('schedules', list(sweep.SCHEDULES),
                  f'Schedules, among {", ".join(sweep.SCHEDULES)}.',
                  flag_values=FLAGS)
flags.DEFINE_list('averagers', list(sweep.AVERAGERS),
                  f'Averagers chained on every trajectory, among '
                  f'{", ".join(sweep.AVERAGERS)}.', flag_values=FLAGS)
flags.DEFINE_list('rng_seeds', [str(s) for s in calibration.DEFAULT_SEEDS],
                  'Seeds (external ruleset), one study each; AlgoPerf '
                  'takes 5 studies.', flag_values=FLAGS)
flags.DEFINE_float('eval_every_fraction', 0.02,
                   'Steps between evals as a fraction of step_hint.',
                   flag_values=FLAGS)
flags.DEFINE_integer('select_every', 16, 'Steps between the training-batch '
                     'losses of the select_* rule.', flag_values=FLAGS)
flags.DEFINE_string('output_dir', 'experiments/sweep_codesign',
                    'Where the curves (JSON) and ratios.png go.',
                    flag_values=FLAGS)
jobs.define_jobs_flag(FLAGS)
flags.DEFINE_boolean('summarize_only', False, 'Train nothing; summarize '
                     'what --output_dir holds.', flag_values=FLAGS)
flags.DEFINE_string('export_candidate', None, 'SCHEDULE/WEIGHTS (a row of '
                    'the table) whose median ratios to write to '
                    '--export_path, for scripts.project_leaderboard.',
                    flag_values=FLAGS)
flags.DEFINE_string('export_path', None, 'JSON file for --export_candidate: '
                    '{"workload": median ratio}.', flag_values=FLAGS)


def _check_flags() -> List[str]:
  try:
    names = calibration.workloads_from_flag(FLAGS.workloads)
    calibration.seeds_from_flag(FLAGS.rng_seeds)
  except ValueError as e:
    cli.usage_error(str(e))
  for flag, known in (('schedules', sweep.SCHEDULES),
                      ('averagers', sweep.AVERAGERS)):
    for value in getattr(FLAGS, flag):
      if value not in known:
        cli.usage_error(f'--{flag} must be among {", ".join(known)}, got '
                        f'{value!r}')
  if (FLAGS.export_candidate is None) != (FLAGS.export_path is None):
    cli.usage_error('--export_candidate and --export_path go together')
  if FLAGS.export_candidate is not None:
    schedule, _, weights = FLAGS.export_candidate.partition('/')
    averagers = ['raw'] + [f'{p}{a}' for a in FLAGS.averagers
                           for p in ('', 'select_')]
    if schedule not in sweep.SCHEDULES or weights not in averagers:
      cli.usage_error(f'--export_candidate must be SCHEDULE/WEIGHTS with '
                      f'SCHEDULE among {", ".join(sweep.SCHEDULES)} and '
                      f'WEIGHTS among {", ".join(averagers)}, got '
                      f'{FLAGS.export_candidate!r}')
  if FLAGS.select_every < 1:
    cli.usage_error(f'--select_every must be an integer >= 1, got '
                    f'{FLAGS.select_every}')
  for name in names:
    try:
      calibration.eval_every_steps(
          workload_registry.get_workload(name).step_hint,
          FLAGS.eval_every_fraction)
    except ValueError as e:
      cli.usage_error(f'--eval_every_fraction for {name}: {e}')
  return names


def plot(summary: sweep.Summary, workloads: List[str],
         path: pathlib.Path) -> pathlib.Path:
  """Median ratio per workload (bars) for every candidate, as a PNG."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  candidates = sorted(summary.ratios)
  fig, ax = plt.subplots(figsize=(max(8, 1.6 * len(workloads)), 5))
  width = 0.8 / max(len(candidates), 1)
  colors = plt.get_cmap('tab20')
  for i, candidate in enumerate(candidates):
    medians = [scoring.median_ratio(summary.ratios[candidate].get(w, []))
               for w in workloads]
    shown = [2.0 if math.isinf(m) else m for m in medians]
    ax.bar(np.arange(len(workloads)) + i * width, shown, width,
           label='/'.join(candidate), color=colors(i % 20))
  ax.axhline(1.0, color='k', lw=0.8)
  ax.set_xticks(np.arange(len(workloads)) + 0.4 - width / 2)
  ax.set_xticklabels(workloads, rotation=20)
  ax.set_ylabel('steps to target / nadamw (median; never shown at 2)')
  ax.set_ylim(0, 2.05)
  ax.legend(fontsize=7, ncol=2)
  fig.tight_layout()
  path.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path


def train_missing(names: List[str], output_dir: pathlib.Path,
                  cores: List[int]) -> None:
  """Trains each trajectory of the sweep that `output_dir` lacks, `--jobs`
  at a time (one core each: `localperf.jobs`)."""
  calls = [dict(workload=name, schedule=schedule, seed=seed,
                averagers=FLAGS.averagers,
                eval_every_fraction=FLAGS.eval_every_fraction,
                select_every=FLAGS.select_every, output_dir=output_dir,
                log=logging.info)
           for name in names for schedule in FLAGS.schedules
           for seed in map(int, FLAGS.rng_seeds)
           if not sweep.trajectory_path(output_dir, name, schedule,
                                        seed).exists()]
  logging.info('training %d trajectories, %d at a time', len(calls),
               FLAGS.jobs)
  for _ in jobs.run(sweep.run_trajectory, calls, FLAGS.jobs, cores,
                    jobs.backend(FLAGS, str(output_dir))):
    pass


def main(argv: Optional[List[str]] = None) -> int:
  cli.parse(FLAGS, argv, __doc__)
  cores = jobs.pin_this_process()
  names = _check_flags()
  output_dir = pathlib.Path(FLAGS.output_dir)
  if not FLAGS.summarize_only:
    try:
      train_missing(names, output_dir, cores)
    except KeyboardInterrupt:
      return cli.interrupted(
          f'the trajectories finished so far are kept in {output_dir}; run '
          'the same command to train the rest (saved ones are not trained '
          'again).')
  summary = sweep.summarize(sweep.load_trajectories(output_dir))
  if not summary.ratios:
    cli.usage_error(f'{output_dir} holds no cosine trajectory to compare '
                    'against; run --schedules=cosine first')
  print(sweep.format_summary(summary, names))
  print(f'ratios: {plot(summary, names, output_dir / "ratios.png")}',
        flush=True)
  if FLAGS.export_candidate:
    candidate = tuple(FLAGS.export_candidate.split('/'))
    if candidate not in summary.ratios:
      cli.usage_error(f'--export_candidate {FLAGS.export_candidate} has no '
                      f'trajectories in {output_dir}')
    medians = sweep.median_ratios(summary, candidate, names)
    path = pathlib.Path(FLAGS.export_path)
    path.write_text(json.dumps(medians, indent=1) + '\n')
    print(f'{FLAGS.export_candidate} median ratios: {path}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
