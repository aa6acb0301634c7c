r"""The analogues' held-out checks: constant LR and a shorter cosine, averaged.

For each workload and seed, NadamW at the workload's reference point four
ways: the baseline's cosine and warmup-then-constant, each with the paper's
EMA and LAWA chained beside it (a snapshot every `--nu` counterpart steps),
evaluated at 0.25-1.0 of step_hint, and cosines ending at 0.5 and 0.75 of
step_hint, evaluated at their end. Prints, per workload, medians over the
seeds of what the paper found and the calibration never fitted
(localperf/lab/held_out.py): the constant run's average against the cosine,
and the share of a shorter decay's gain that the long run's EMA recovers;
writes each seed's figures to <output_dir>/<workload>.json.

  python -m scripts.held_out --workloads=ctr_dlrm,kspace_unet
  python -m scripts.held_out --workloads=paper_seven --rng_seeds=0,1,2

Every run trains in a process of its own on one core, `--jobs` at once, so
the figures are the same on any machine and load.
"""

import json
import pathlib
import sys
from typing import List, Optional

from absl import flags

from localperf import cli
from localperf import jobs
from localperf import workloads as workload_registry
from localperf.lab import calibration
from localperf.lab import held_out

FLAGS = flags.FlagValues()
flags.DEFINE_string('workloads', None, 'Comma-separated workloads or '
                    'paper_seven.', flag_values=FLAGS)
flags.DEFINE_list('rng_seeds', [str(s) for s in calibration.DEFAULT_SEEDS],
                  'Seeds: the four runs at each.', flag_values=FLAGS)
flags.DEFINE_integer('nu', calibration.PAPER_EVERY_STEPS,
                     "The averagers' snapshot period in the counterpart's "
                     "steps, scaled to the analogue's step_hint.",
                     flag_values=FLAGS)
flags.DEFINE_string('output_dir', 'experiments/held_out',
                    "Where each workload's per-seed figures go (JSON).",
                    flag_values=FLAGS)
jobs.define_jobs_flag(FLAGS)


def write_figures(path: pathlib.Path,
                  figures: List[held_out.Seed]) -> pathlib.Path:
  """The per-seed figures as JSON (fractions of step_hint as keys)."""
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps(
      [dict(s._asdict(), at_fraction={str(f): v for f, v in
                                      s.at_fraction.items()})
       for s in figures], indent=1))
  return path


def main(argv: Optional[List[str]] = None) -> int:
  cli.parse(FLAGS, argv, __doc__)
  if not FLAGS.workloads:
    cli.usage_error('--workloads is required: workloads among '
                    f'{", ".join(calibration.PAPER_FIRST_MET_FRACTION)} or '
                    'paper_seven')
  try:
    names = calibration.workloads_from_flag(FLAGS.workloads)
    seeds = calibration.seeds_from_flag(FLAGS.rng_seeds)
  except ValueError as e:
    cli.usage_error(str(e))
  if FLAGS.nu < 1:
    cli.usage_error(f'--nu must be an integer >= 1, got {FLAGS.nu}')
  for name in names:
    try:
      held_out.eval_steps(workload_registry.get_workload(name).step_hint)
    except ValueError as e:
      cli.usage_error(f'--workloads {name}: {e}')
  cores = jobs.pin_this_process()
  calls = [c for name in names for c in held_out.runs(name, seeds, FLAGS.nu)]
  results = jobs.run(held_out.train, calls, jobs=FLAGS.jobs, cores=cores,
                     backend=jobs.backend(FLAGS, FLAGS.output_dir))
  try:
    for name in names:
      workload = workload_registry.get_workload(name)
      figures = []
      for _ in seeds:
        cosine, constant, *shorts = [next(results) for _ in held_out.KINDS]
        figures.append(held_out.seed_figures(
            cosine, constant, dict(zip(held_out.SHORT_FRACTIONS, shorts)),
            workload.step_hint))
      print(held_out.format_table(name, figures,
                                  workload.minimize_target_metric))
      path = write_figures(pathlib.Path(FLAGS.output_dir) / f'{name}.json',
                           figures)
      print(f'  figures: {path}', flush=True)
  except KeyboardInterrupt:
    return cli.interrupted('the tables above are kept; rerun the rest with '
                           'their --workloads.')
  return 0


if __name__ == '__main__':
  sys.exit(main())
