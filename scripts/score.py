"""Scores AlgoPerf experiment directories as AlgoPerf's score_submissions.py.

  python -m scripts.score --submission_directory=DIR [--output_dir=OUT]
      [--benchmark_version=0.6] [--time_column=score] [--strict]
      [--self_tuning_ruleset] [--workloads=base|local|w1,w2]
      [--baseline=NAME] [--exclude_submissions=a,b] [--tie_rule=time]

DIR holds one folder per submission, each
`<study>/<workload>_<framework>/trial_<k>/eval_measurements.csv`, read
through symbolic links; stray files and folders are ignored as AlgoPerf
ignores them (an INFO line on stderr lists them); folders
`<name>-<timestamp>` (AlgoPerf's --append_timestamp) are read into
`<name>` as AlgoPerf's scorer reads them (an INFO line names them).
Studies and trials are counted against the ruleset on AlgoPerf's
workloads; on local ones (run_local's, `--workloads=local`) against the
most any submission holds. Prints a table per
workload, speedups over --baseline if given, one line `NAME SCORE` per
submission, then the warnings that may change a score (a submission dropped
for want of logs: an empty folder, a broken link; missing workloads, wrong
study or trial counts). Two trials of a study meeting the target at the
same eval: the smaller time counts (--tie_rule=time), or the one AlgoPerf
lists first (--tie_rule=algoperf: `os.listdir` order, which may differ
between copies of a tree). With
--output_dir, also writes scores.json, performance_profiles.png and
validation_curves_<workload>.png there.

Exit status: 0; 1 when --strict finds a warning; 2 on bad input (a flag, a
missing or empty directory, a log tree or CSV the scorer cannot read, an
--output_dir it cannot write), with one line on stderr naming it.

Reproduce the published leaderboards (AlgoPerf's targets of each version)
from their logs in workloads_config/leaderboards/:

  tar -xJf workloads_config/leaderboards/algoperf_v06.tar.xz -C /tmp
  tar -xJf workloads_config/leaderboards/algoperf_v05.tar.xz -C /tmp
  python -m scripts.score --benchmark_version=0.6 \\
      --submission_directory=/tmp/leaderboard_v06/external_tuning
  python -m scripts.score --benchmark_version=0.5 \\
      --submission_directory=/tmp/leaderboard_v05/external_tuning
  python -m scripts.score --benchmark_version=0.5 --self_tuning_ruleset \\
      --submission_directory=/tmp/leaderboard_v05/self_tuning
"""

import json
import pathlib
import sys
import tempfile
from typing import Optional, Sequence

from absl import flags

from localperf import cli
from localperf import plots
from localperf import scoring

FLAGS = flags.FlagValues()
flags.DEFINE_string(
    'submission_directory', None,
    'Folder holding one experiment folder per submission.',
    flag_values=FLAGS)
flags.DEFINE_string(
    'output_dir', None,
    'Where to write scores.json and the figures (none if unset).',
    flag_values=FLAGS)
flags.DEFINE_enum(
    'benchmark_version', '0.6', scoring.BENCHMARK_VERSIONS,
    'AlgoPerf version whose targets and rules apply (0.5 adds the held-out '
    'variants).', flag_values=FLAGS)
flags.DEFINE_enum(
    'time_column', 'score', scoring.TIME_COLUMNS,
    "'score' (accumulated submission time, AlgoPerf's) or 'global_step' "
    '(steps to target).', flag_values=FLAGS)
flags.DEFINE_boolean(
    'strict', False,
    'Exit with status 1 on a warning: a submission dropped for want of logs, '
    'a missing workload, a wrong number of studies or trials.',
    flag_values=FLAGS)
flags.DEFINE_boolean(
    'self_tuning_ruleset', False,
    'Self-tuning ruleset: one trial per study, 3x budgets in speedups.',
    flag_values=FLAGS)
flags.DEFINE_string(
    'workloads', 'base',
    "'base' (the benchmark's workloads), 'local' (every workload in the "
    'logs) or a comma-separated list of workload names.', flag_values=FLAGS)
flags.DEFINE_string(
    'baseline', None,
    'Submission to compute speedups against (geometric mean of per-workload '
    'time ratios, as AlgoPerf compute_speedups.py).', flag_values=FLAGS)
flags.DEFINE_enum(
    'tie_rule', 'time', scoring.TIE_RULES,
    'Which of two trials of a study meeting the target at the same eval '
    "counts: 'time' (the smaller time) or 'algoperf' (the one listed first, "
    "as AlgoPerf's scorer; file-system order).", flag_values=FLAGS)
flags.DEFINE_list(
    'exclude_submissions', [],
    'Submissions (folder names, comma-separated) to leave out.',
    flag_values=FLAGS)


def _workloads(flag: str):
  if flag in ('base', 'local'):
    return flag
  names = [w.strip() for w in flag.split(',') if w.strip()]
  if not names:
    cli.usage_error(f"--workloads must be 'base', 'local' or a "
                    f'comma-separated list of workload names, got {flag!r}')
  return names


def check_output_dir(output_dir: pathlib.Path) -> None:
  """Creates `output_dir`; one line naming it and exit 2 if it cannot be
  written."""
  try:
    output_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=output_dir):
      pass
  except OSError as e:
    cli.usage_error(f'--output_dir {output_dir} cannot be written: '
                    f'{e.strerror or e}')


def write_outputs(output_dir: pathlib.Path, submissions, scores, speedups):
  """scores.json and PNG figures in `output_dir`."""
  output_dir.mkdir(parents=True, exist_ok=True)
  results = scores.to_json()
  if speedups is not None:
    results['speedups'] = speedups
  (output_dir / 'scores.json').write_text(json.dumps(results, indent=1) + '\n')
  plots.plot_performance_profiles(scores,
                                  output_dir / 'performance_profiles.png')
  plots.plot_validation_curves(submissions, scores, output_dir)


def main(argv: Optional[Sequence[str]] = None) -> int:
  cli.parse(FLAGS, argv, __doc__)
  if not FLAGS.submission_directory:
    cli.usage_error('--submission_directory must be a directory of '
                    'submissions, got none')
  workloads = _workloads(FLAGS.workloads)
  if FLAGS.output_dir:
    check_output_dir(pathlib.Path(FLAGS.output_dir))
  try:
    benchmark = scoring.load_benchmark(FLAGS.benchmark_version)
    submissions = scoring.load_submissions(FLAGS.submission_directory,
                                           FLAGS.exclude_submissions)
    scores = scoring.score_logs(
        submissions, benchmark,
        time_column=FLAGS.time_column,
        workloads=workloads,
        self_tuning_ruleset=FLAGS.self_tuning_ruleset,
        tie_rule=FLAGS.tie_rule)
    speedups = None
    if FLAGS.baseline is not None:
      speedups = scores.speedups(FLAGS.baseline, FLAGS.self_tuning_ruleset)
  except ValueError as e:
    cli.usage_error(str(e))
  print(scoring.format_table(scores))
  print()
  if speedups is not None:
    print(scoring.format_paired_ratios(scores, FLAGS.baseline))
    print()
    for name, value in speedups.items():
      if name == FLAGS.baseline:
        continue
      print(f'speedup of {name} over {FLAGS.baseline}: {value:.4f} '
            f'({1 - value:.1%} less {FLAGS.time_column})')
    print()
  if FLAGS.output_dir:
    try:
      write_outputs(pathlib.Path(FLAGS.output_dir), submissions, scores,
                    speedups)
    except OSError as e:
      cli.usage_error(f'--output_dir {FLAGS.output_dir} cannot be written: '
                      f'{e}')
  for name, value in scores.scores.items():
    print(f'{name} {value:.6f}')
  if scores.warnings:
    print(f'\nwarnings (each may change a score): {len(scores.warnings)}')
    for warning in scores.warnings:
      print(f'warning: {warning}')
  if FLAGS.strict and scores.warnings:
    print(f'error: --strict: warnings above ({len(scores.warnings)}).',
          file=sys.stderr)
    return 1
  return 0


if __name__ == '__main__':
  sys.exit(main())
