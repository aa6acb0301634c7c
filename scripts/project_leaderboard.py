"""Projects a method onto the official v0.6 leaderboard: a projection only.

  python -m scripts.project_leaderboard --ratios=paper_lawa|paper_ema|FILE|
      ctr_dlrm=0.8,kspace_unet=0.7,... [--step_time_ratio=1.0]
      [--leaderboard_dir=DIR] [--baseline=baseline]
      [--projected_name=projected] [--plot=PATH.png]

Takes the published v0.6 external-tuning logs (--leaderboard_dir; default
the repository's copy, workloads_config/leaderboards/algoperf_v06.tar.xz,
unpacked to a temporary folder for the run), copies
the NadamW baseline's logs and, on each of the paper's seven workloads
(criteo1tb, fastmri, imagenet_vit, librispeech_conformer,
librispeech_deepspeech, ogbg, wmt), scales the copy's time axis by that
workload's ratio r (`score' = r * s * score`, the same for
accumulated_submission_time, `global_step' = r * global_step`; s is
--step_time_ratio). It then scores the leaderboard's submissions (baseline,
Distributed Shampoo) and the copy together by AlgoPerf's rules
(localperf.scoring) and prints the per-workload table, the ratios used and
one line `NAME SCORE` per submission.

--ratios: a preset (paper_lawa, paper_ema: the paper's steps-to-target
ratios, arXiv 2502.06761), a JSON file `{"name": r}` or a comma list
`name=r`; names are AlgoPerf's or the local analogues' (ctr_dlrm, ...), all
seven are needed, r > 0, inf for a workload whose target was never met.

Assumptions, which make this a projection and not a measurement:
- the ratio measured on the local analogue (or in the paper) transfers to
  the real workload;
- the whole time axis is scaled, not only the steps: the method is assumed
  to add no time per step unless --step_time_ratio (default 1.0) says how
  much longer its step is, which multiplies every scaled time too;
- the evals are taken at the same fractions of the run, each eval's metric
  unchanged, only its time moved;
- the other workloads (imagenet_resnet) and the other submissions are
  unchanged, and so are the columns scoring does not read (eval and logging
  time, total_duration).
With --plot, also writes the performance profiles as a PNG, titled as a
projection.

Exit status: 0; 2 on bad input (a flag, a ratio, a leaderboard folder the
scorer cannot read, a --plot it cannot write), with one line on stderr.
"""

import pathlib
import sys
import tempfile
from typing import Optional, Sequence

from absl import flags

from localperf import cli
from localperf import leaderboards
from localperf import plots
from localperf.lab import projection
from localperf import scoring

FLAGS = flags.FlagValues()
flags.DEFINE_string(
    'ratios', None,
    f'Per-workload time ratios: a preset ({", ".join(projection.PRESETS)}), '
    'a JSON file {"name": ratio} or a comma list name=ratio, for all seven '
    'workloads (AlgoPerf or local analogue names; inf for a miss).',
    flag_values=FLAGS)
flags.DEFINE_float(
    'step_time_ratio', 1.0,
    "Method's time per step over NadamW's; multiplies every scaled time.",
    flag_values=FLAGS)
flags.DEFINE_string(
    'leaderboard_dir', None,
    'Folder of the leaderboard logs, one folder per submission; default the '
    "repository's v0.6 external-tuning logs.", flag_values=FLAGS)
flags.DEFINE_string(
    'baseline', 'baseline',
    'Submission (folder name) whose logs are projected: the NadamW baseline.',
    flag_values=FLAGS)
flags.DEFINE_string(
    'projected_name', 'projected',
    'Name of the projected copy in the table.', flag_values=FLAGS)
flags.DEFINE_string(
    'plot', None, 'Where to write the performance profiles (PNG); none if '
    'unset.', flag_values=FLAGS)


def _unpack_v06(directory: pathlib.Path) -> pathlib.Path:
  """The repository's v0.6 external-tuning logs, unpacked in `directory`."""
  return (leaderboards.unpack(leaderboards.archive_path('0.6'), directory)
          / 'external_tuning')


def _made(folder: pathlib.Path) -> bool:
  """Whether `folder` could be made (with its parents)."""
  try:
    folder.mkdir(parents=True, exist_ok=True)
  except OSError:
    return False
  return True


def main(argv: Optional[Sequence[str]] = None) -> int:
  cli.parse(FLAGS, argv, __doc__)
  if not FLAGS.ratios:
    cli.usage_error(f'--ratios is required: a preset '
                    f'({", ".join(projection.PRESETS)}), a JSON file or a '
                    'comma list name=ratio')
  plot = pathlib.Path(FLAGS.plot) if FLAGS.plot else None
  if plot and not (plot.parent.is_dir() or _made(plot.parent)):
    cli.usage_error(f'--plot {plot}: its folder cannot be made')
  try:
    with tempfile.TemporaryDirectory() as unpacked:
      scores, ratios = projection.project_leaderboard(
          FLAGS.leaderboard_dir or _unpack_v06(pathlib.Path(unpacked)),
          FLAGS.ratios,
          baseline=FLAGS.baseline,
          step_time_ratio=FLAGS.step_time_ratio,
          projected_name=FLAGS.projected_name)
  except ValueError as e:
    cli.usage_error(str(e))
  print(f'PROJECTION, not a measurement: {FLAGS.projected_name} = '
        f'{FLAGS.baseline} with time axes scaled by --ratios={FLAGS.ratios}')
  print(scoring.format_table(scores))
  print()
  print(projection.format_ratios(ratios, FLAGS.step_time_ratio))
  print()
  if FLAGS.plot:
    try:
      plots.plot_performance_profiles(
          scores, plot, title=f'PROJECTION, not a measurement: '
          f'{FLAGS.projected_name} = {FLAGS.baseline} with its time axes '
          f'scaled by --ratios={FLAGS.ratios}')
    except OSError as e:
      cli.usage_error(f'--plot {plot} cannot be written: {e}')
    print(f'performance profiles: {plot}')
  for name, value in scores.scores.items():
    print(f'{name} {value:.6f}')
  # The projected copy repeats its baseline's warnings, naming its folders.
  warnings = list(dict.fromkeys(scores.warnings))
  if warnings:
    print(f'\nwarnings (each may change a score): {len(warnings)}')
    for warning in warnings:
      print(f'warning: {warning}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
