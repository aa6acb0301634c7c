r"""Check that workloads sit in the real workloads' regime (R1, R4, R5,
speed) and report their response to averaging (R2, R3, R6, LAWA).

For each workload: a NadamW run at the workload's `reference_point` (a point
of submissions/nadamw/tuning_search_space.json, cosine schedule) of
step_hint steps at each of `--rng_seeds`, with EMA (decay 0.9) and LAWA
(L = 20) chained beside it, a snapshot every `--nu` (64) of the
counterpart's steps scaled to the analogue's step_hint; and one with warmup
then a constant learning rate at the first seed. The validation metric of
the raw, EMA and LAWA weights every `--eval_every_fraction` of step_hint
gives R1-R6 and the speed check, printed with their figures and PASS/FAIL
(see localperf/lab/calibration.py): the regime checks first, then the
response report, then a summary over the workloads. Writes
<output_dir>/<workload>.png, and exits with status 1 if a regime check
fails (with `--require_response`, a response check too).

  python -m scripts.calibrate --workload=ctr_dlrm
  python -m scripts.calibrate --workloads=paper_seven
  python -m scripts.calibrate --workload=molgraph_gnn --suggest_targets \
      --noconstant_run
  python -m scripts.calibrate --workload=ctr_dlrm --rng_seeds=0  # one seed
  python -m scripts.calibrate --workloads=ctr_dlrm,kspace_unet --nu=128 \
      --noconstant_run  # the paper's other snapshot period
  python -m scripts.calibrate --workload=ctr_dlrm --rescore  # new target

Every run trains in a process of its own pinned to one core (one XLA
thread; `localperf/jobs.py`), `--jobs` of them at once, so the same seeds
give bit-identical curves and verdicts whatever the machine's load or core
count. The speed check is on the cosine runs' CPU time, which with one
thread counts no waiting for a core (it still grows, up to about 1.5x, on a
busy machine): the least over the seeds decides, the most and the wall
times are printed beside it.
Every run's curves and seconds are saved as JSON under <output_dir>/runs/;
`--rescore` re-scores them (at targets changed since) instead of training.
`--noconstant_run`
skips R1 and `--max_fraction` < 1 makes R1 and R2 partial: exploration only.
"""

import functools
import pathlib
import sys
from typing import List, Optional

from absl import flags
from absl import logging

from localperf.lab import calibration
from localperf import cli
from localperf import jobs
from localperf import workloads as workload_registry

FLAGS = flags.FlagValues()
flags.DEFINE_string('workload', None, 'One workload.', flag_values=FLAGS)
flags.DEFINE_string(
    'workloads', None, 'Comma-separated workloads or paper_seven (overrides '
    '--workload).', flag_values=FLAGS)
flags.DEFINE_float('eval_every_fraction', 0.02,
                   'Steps between evals as a fraction of step_hint; must '
                   'divide 0.5 and 0.7 of step_hint.', flag_values=FLAGS)
flags.DEFINE_list('rng_seeds', [str(s) for s in calibration.DEFAULT_SEEDS],
                  'Seeds (external ruleset): a cosine run with the '
                  'averagers at each (R4-R6 take medians over them), the '
                  'constant-LR run at the first.',
                  flag_values=FLAGS)
flags.DEFINE_float('max_fraction', 1.0, 'Stop both runs at this fraction of '
                   'step_hint (exploration only).', flag_values=FLAGS)
flags.DEFINE_boolean('constant_run', True, 'Also run the constant-LR '
                     'schedule (R1; without it R1 is not checked).',
                     flag_values=FLAGS)
flags.DEFINE_boolean('suggest_targets', False, 'Print the validation target '
                     'that the cosine run first meets at the paper\'s '
                     'fraction, and the test metric of the raw weights at the '
                     'step it is met (evaluating the test split too).',
                     flag_values=FLAGS)
flags.DEFINE_integer('nu', calibration.PAPER_EVERY_STEPS,
                     "The averagers' snapshot period in the counterpart's "
                     'steps (the paper ran 64 and 128; R2, R3 and R6 use it), '
                     "scaled to the analogue's step_hint.", flag_values=FLAGS)
flags.DEFINE_boolean('require_response', False, 'Exit with status 1 when '
                     'a response check (R2, R3, R6, LAWA) fails, as when a '
                     'regime check (R1, R4, R5, speed) does.',
                     flag_values=FLAGS)
flags.DEFINE_boolean('rescore', False, 'Re-score the runs an earlier '
                     'calibration with the same flags saved in '
                     '<output_dir>/runs, at the workloads\' targets of today, '
                     'without training (the trajectories do not depend on '
                     'the target).', flag_values=FLAGS)
flags.DEFINE_string('output_dir', 'experiments/calibrate',
                    'Where the curve PNGs go, and each run\'s curves as '
                    'JSON under runs/.', flag_values=FLAGS)
jobs.define_jobs_flag(FLAGS)


def main(argv: Optional[List[str]] = None) -> int:
  cli.parse(FLAGS, argv, __doc__)
  cores = jobs.pin_this_process()
  flag = '--workloads' if FLAGS.workloads else '--workload'
  value = FLAGS.workloads or FLAGS.workload
  if not value:
    cli.usage_error('--workload or --workloads is required, one of '
                    f'{", ".join(calibration.PAPER_FIRST_MET_FRACTION)} or '
                    'paper_seven')
  try:
    names = calibration.workloads_from_flag(value, flag)
    seeds = calibration.seeds_from_flag(FLAGS.rng_seeds)
  except ValueError as e:
    cli.usage_error(str(e))
  if not 0.0 < FLAGS.max_fraction <= 1.0:
    cli.usage_error(f'--max_fraction must be in (0, 1], got '
                    f'{FLAGS.max_fraction}')
  if FLAGS.nu < 1:
    cli.usage_error(f'--nu must be an integer >= 1, got {FLAGS.nu}')
  for name in names:
    workload = workload_registry.get_workload(name)
    try:
      calibration.reference_hyperparameters(workload)
      calibration.eval_every_steps(workload.step_hint,
                                   FLAGS.eval_every_fraction)
    except ValueError as e:
      cli.usage_error(f'{flag} {name}: {e}')
  runs_dir = pathlib.Path(FLAGS.output_dir) / 'runs'
  if FLAGS.rescore:
    map_runs = calibration.saved_runs(runs_dir)
  else:
    map_runs = calibration.saving_runs(functools.partial(
        jobs.run, calibration.train, jobs=FLAGS.jobs, cores=cores,
        backend=jobs.backend(FLAGS, FLAGS.output_dir)), runs_dir)
  try:
    reports = calibration.calibrate_all(
        names, eval_every_fraction=FLAGS.eval_every_fraction,
        rng_seeds=seeds, max_fraction=FLAGS.max_fraction,
        constant_run=FLAGS.constant_run, test=FLAGS.suggest_targets,
        nu=FLAGS.nu, log=logging.info, map_runs=map_runs)
  except ValueError as e:
    cli.usage_error(f'--rescore: {e}')
  done = []
  try:
    for name, report in zip(names, reports):
      print(calibration.format_report(report))
      if FLAGS.suggest_targets:
        print(calibration.suggested_targets(report))
      path = calibration.plot(report,
                              pathlib.Path(FLAGS.output_dir) / f'{name}.png')
      print(f'  curves: {path}', flush=True)
      done.append(report)
  except KeyboardInterrupt:
    return cli.interrupted(interrupted_note(names, [r.workload for r in done]))
  print(calibration.format_summary(done))
  passed = all(r.passed and (r.responds or not FLAGS.require_response)
               for r in done)
  return 0 if passed else 1


def interrupted_note(names: List[str], done: List[str]) -> str:
  """What an interrupted calibration kept, and how to finish it."""
  rest = ','.join(n for n in names if n not in done)
  kept = (f'the reports above and the curves of {", ".join(done)} are kept '
          f'in {FLAGS.output_dir}' if done else 'nothing is kept')
  return (f'{kept}; a calibration does not resume: rerun the rest with '
          f'--workloads={rest}.')


if __name__ == '__main__':
  sys.exit(main())
