"""Packs a published AlgoPerf leaderboard's logs into the repository.

  python -m scripts.pack_leaderboard --source=DIR --benchmark_version=0.5
      [--scored_columns] [--output=FILE.tar.xz]

DIR is a leaderboard folder as published, `leaderboard_v0<k>/` holding
EXPECTED_SCORES.md and `<ruleset>/<submission>/<study>/<workload>_
<framework>/trial_<k>/eval_measurements.csv` (mlcommons/submissions_algorithms;
EXPECTED_SCORES.md names the folder). Writes it, every file and folder, to
--output (default workloads_config/leaderboards/algoperf_v0<k>.tar.xz);
with --scored_columns a workload's CSVs keep only global_step, score and the
workload's validation target metric (localperf.leaderboards). The archives
in the repository were packed with

  python -m scripts.pack_leaderboard --benchmark_version=0.6 \\
      --source=../shared/algoperf/leaderboard_v06
  python -m scripts.pack_leaderboard --benchmark_version=0.5 \\
      --source=../shared/algoperf/leaderboard_v05 --scored_columns
"""

import pathlib
import sys
from typing import Optional, Sequence

from absl import flags

from localperf import cli
from localperf import leaderboards
from localperf import scoring

FLAGS = flags.FlagValues()
flags.DEFINE_string('source', None, 'The leaderboard folder, as published.',
                    flag_values=FLAGS)
flags.DEFINE_enum('benchmark_version', '0.6', scoring.BENCHMARK_VERSIONS,
                  'AlgoPerf version of the logs (their targets name the '
                  'scored column).', flag_values=FLAGS)
flags.DEFINE_boolean('scored_columns', False,
                     "Keep only the columns scoring reads in a workload's "
                     'CSVs.', flag_values=FLAGS)
flags.DEFINE_string('output', None, 'The archive to write (.tar.xz); default '
                    'workloads_config/leaderboards/algoperf_v0<k>.tar.xz.',
                    flag_values=FLAGS)


def main(argv: Optional[Sequence[str]] = None) -> int:
  cli.parse(FLAGS, argv, __doc__)
  if not FLAGS.source or not pathlib.Path(FLAGS.source).is_dir():
    cli.usage_error(f'--source must be a leaderboard folder, got '
                    f'{FLAGS.source!r}')
  output = pathlib.Path(FLAGS.output or
                        leaderboards.archive_path(FLAGS.benchmark_version))
  output.parent.mkdir(parents=True, exist_ok=True)
  try:
    leaderboards.pack(pathlib.Path(FLAGS.source), output,
                      FLAGS.benchmark_version, FLAGS.scored_columns)
  except ValueError as e:
    cli.usage_error(str(e))
  print(f'{output}: {output.stat().st_size / 2**20:.2f} MiB')
  return 0


if __name__ == '__main__':
  sys.exit(main())
