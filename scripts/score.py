"""Scores AlgoPerf experiment directories as AlgoPerf's score_submissions.py.

  python -m scripts.score --submission_directory DIR [--output_dir OUT]
      [--benchmark_version 0.6] [--time_column score] [--strict]
      [--self_tuning_ruleset] [--workloads base|local|w1,w2] [--baseline NAME]

DIR holds one directory per submission, each
`<study>/<workload>_<framework>/trial_<k>/eval_measurements.csv`. Prints a
table per workload, speedups over --baseline if given, then one line
`NAME SCORE` per submission. With --output_dir, also writes scores.json,
performance_profiles.png and validation_curves_<workload>.png there.
"""

import argparse
import json
import logging
import pathlib
import sys
from typing import Optional, Sequence

from localperf import plots
from localperf import scoring


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
      prog='python -m scripts.score',
      description=__doc__.split('\n', 1)[0])
  parser.add_argument(
      '--submission_directory', required=True,
      help='Directory with one experiment directory per submission.')
  parser.add_argument(
      '--output_dir', default=None,
      help='Where to write scores.json and the figures (none if unset).')
  parser.add_argument(
      '--benchmark_version', default='0.6', choices=scoring.BENCHMARK_VERSIONS,
      help='AlgoPerf version whose targets and rules apply (0.5 adds the '
      'held-out variants).')
  parser.add_argument(
      '--time_column', default='score', choices=scoring.TIME_COLUMNS,
      help="'score' (accumulated submission time, AlgoPerf's) or "
      "'global_step' (steps to target).")
  parser.add_argument(
      '--strict', action='store_true',
      help='Fail, rather than warn, on wrong workload, study or trial counts.')
  parser.add_argument(
      '--self_tuning_ruleset', action='store_true',
      help='Self-tuning ruleset: one trial per study, 3x budgets in speedups.')
  parser.add_argument(
      '--workloads', default='base',
      help="'base' (the benchmark's workloads), 'local' (every workload in "
      'the logs) or a comma-separated list of workload names.')
  parser.add_argument(
      '--baseline', default=None,
      help='Submission to compute speedups against (geometric mean of '
      'per-workload time ratios, as AlgoPerf compute_speedups.py).')
  return parser.parse_args(argv)


def _workloads(flag: str):
  if flag in ('base', 'local'):
    return flag
  names = [w.strip() for w in flag.split(',') if w.strip()]
  if not names:
    raise ValueError(f"--workloads {flag!r}: expected 'base', 'local' or a "
                     'comma-separated list of workload names.')
  return names


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


def main(argv: Optional[Sequence[str]] = None) -> None:
  args = parse_args(argv)
  logging.basicConfig(format='%(levelname)s: %(message)s', stream=sys.stderr)
  try:
    benchmark = scoring.load_benchmark(args.benchmark_version)
    submissions = scoring.load_submissions(args.submission_directory)
    scores = scoring.score_logs(
        submissions, benchmark,
        time_column=args.time_column,
        workloads=_workloads(args.workloads),
        strict=args.strict,
        self_tuning_ruleset=args.self_tuning_ruleset)
    speedups = None
    if args.baseline is not None:
      speedups = scores.speedups(args.baseline, args.self_tuning_ruleset)
  except ValueError as e:
    raise SystemExit(f'error: {e}') from e
  print(scoring.format_table(scores))
  print()
  if speedups is not None:
    for name, value in speedups.items():
      if name == args.baseline:
        continue
      print(f'speedup of {name} over {args.baseline}: {value:.4f} '
            f'({1 - value:.1%} less {args.time_column})')
    print()
  if args.output_dir:
    write_outputs(pathlib.Path(args.output_dir), submissions, scores, speedups)
  for name, value in scores.scores.items():
    print(f'{name} {value:.6f}')


if __name__ == '__main__':
  main()
