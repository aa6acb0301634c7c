r"""Run submissions on localperf's CPU workloads and compare them.

With no arguments: nadamw, nadamw_ema, nadamw_lawa, schedule_free_adamw and
nadamw_codesign on mnist1d, one trial each at the first point of each submission's
`tuning_search_space.json`; prints steps and time to the validation target,
the best validation metric and the ratio to nadamw, then scores the logs with
AlgoPerf's rules (time to target as submission time and as steps) and writes
AlgoPerf-style logs, `validation_curves.png` and `scores_<time>/` (scores.json,
performance profiles) under ./experiments/<experiment_name>/.

  python -m scripts.run_local
  python -m scripts.run_local --workloads=paper_seven --eval_every_fraction=0.02
  python -m scripts.run_local --workloads=mnist1d,ctr_dlrm --num_studies=3 \
      --eval_every_n_steps=100
  python -m scripts.run_local --submission_path=submissions/nadamw/submission.py \
      --tuning_search_space=submissions/nadamw/tuning_search_space.json \
      --num_tuning_trials=5 --experiment_name=nadamw_sweep

Flags named as in AlgoPerf's `submission_runner` mean the same. Logs go to
`<experiment_dir>/<experiment_name>/<submission>/study_<k>/<workload>_jax/
trial_<j>/`, the layout AlgoPerf's scoring reads. Study k uses rng seed
`rng_seed + k`. A submission that cannot be imported (schedule_free_adamw
needs `optax.contrib.schedule_free`, absent in optax 0.2.2) is skipped with a
one-line notice.
"""

import datetime
import math
import os
import pathlib
import statistics
import sys
import time
import types
from typing import Dict, List, NamedTuple, Optional

from absl import flags
from absl import logging

from localperf import cli
from localperf import logs
from localperf import plots
from localperf import runner
from localperf import scoring
from localperf import workloads as workload_registry
from scripts import score as score_script

DEFAULT_SUBMISSIONS = ('nadamw', 'nadamw_ema', 'nadamw_lawa',
                       'schedule_free_adamw', 'nadamw_codesign')
REFERENCE_SUBMISSION = 'nadamw'


FLAGS = flags.FlagValues()
flags.DEFINE_string(
    'workload', workload_registry.DEFAULT_WORKLOAD,
    f'One of {", ".join(workload_registry.WORKLOAD_NAMES)}.', flag_values=FLAGS)
flags.DEFINE_string(
    'workloads', None, 'Comma-separated workloads (overrides --workload); '
    "paper_seven: the analogues of the paper's seven AlgoPerf workloads.",
    flag_values=FLAGS)
flags.DEFINE_string('submission_path', None,
                    'A submission.py (overrides --submissions).',
                    flag_values=FLAGS)
flags.DEFINE_string('submissions', ','.join(DEFAULT_SUBMISSIONS),
                    'Comma-separated names of folders in submissions/.',
                    flag_values=FLAGS)
flags.DEFINE_enum('tuning_ruleset', 'external', runner.RULESETS,
                  'Which tuning ruleset to score this submission on.',
                  flag_values=FLAGS)
flags.DEFINE_string(
    'tuning_search_space', None, 'JSON search space (default: '
    'tuning_search_space.json beside each submission; external ruleset only).',
    flag_values=FLAGS)
flags.DEFINE_integer('num_tuning_trials', 1, 'Trials per study.',
                     lower_bound=1, flag_values=FLAGS)
flags.DEFINE_string(
    'trial_point', None, "Run only this point (1-based) of each submission's "
    "list search space, as that trial; 'reference': each workload's "
    '`reference_point` (the NadamW baseline point it is calibrated at).',
    flag_values=FLAGS)
flags.DEFINE_integer('num_studies', 1, 'Studies; study k uses rng_seed + k.',
                     lower_bound=1, flag_values=FLAGS)
flags.DEFINE_string('experiment_dir', './experiments',
                    'Where experiment folders go.', flag_values=FLAGS)
flags.DEFINE_string('experiment_name', None,
                    'Default: run_local-<date-time>.', flag_values=FLAGS)
flags.DEFINE_integer('rng_seed', 0, 'Seed of study 0.', flag_values=FLAGS)
flags.DEFINE_integer('max_global_steps', None,
                     'Stop each trial after this many steps.', lower_bound=1,
                     flag_values=FLAGS)
flags.DEFINE_float(
    'max_steps_fraction', None, 'Stop each trial after round(fraction * '
    'step_hint) steps of its workload (excludes --max_global_steps); past '
    'step_hint a cosine schedule has decayed to 0, so later evals of a '
    'decaying submission cannot change its steps to target.',
    flag_values=FLAGS)
flags.DEFINE_integer(
    'eval_every_n_steps', None, 'Evaluate every n steps instead of every '
    'eval_period_time_sec of wall time (exact, repeatable).', lower_bound=1,
    flag_values=FLAGS)
flags.DEFINE_float(
    'eval_every_fraction', None, 'Evaluate every round(fraction * step_hint) '
    'steps of each workload (exact, repeatable; excludes '
    '--eval_every_n_steps).', flag_values=FLAGS)
flags.DEFINE_boolean('save_checkpoints', True,
                     'Checkpoint at every eval (--nosave_checkpoints: never).',
                     flag_values=FLAGS)
flags.DEFINE_boolean('overwrite', False,
                     'Replace an existing experiment of the same name.',
                     flag_values=FLAGS)
flags.DEFINE_boolean('resume_last_run', False,
                     "Continue an existing experiment from its trials' newest "
                     'checkpoints.', flag_values=FLAGS)


def parse_flags(argv: Optional[List[str]] = None) -> types.SimpleNamespace:
  """The flags' values, checked; exits with status 2 on bad ones."""
  cli.parse(FLAGS, argv, __doc__)
  point = FLAGS.trial_point
  if point is not None and point != 'reference' and not (
      point.isdigit() and int(point) >= 1):
    cli.usage_error(f"--trial_point must be an integer >= 1 or 'reference', "
                    f'got {point!r}.')
  fraction = FLAGS.eval_every_fraction
  if fraction is not None and FLAGS.eval_every_n_steps is not None:
    cli.usage_error('--eval_every_fraction and --eval_every_n_steps exclude '
                    'each other: give one eval cadence.')
  if fraction is not None and not 0.0 < fraction <= 1.0:
    cli.usage_error(f'--eval_every_fraction must be in (0, 1], got '
                    f'{fraction}.')
  if (FLAGS.max_steps_fraction is not None
      and FLAGS.max_global_steps is not None):
    cli.usage_error('--max_steps_fraction and --max_global_steps exclude '
                    'each other: give one step limit.')
  if FLAGS.max_steps_fraction is not None and FLAGS.max_steps_fraction <= 0:
    cli.usage_error(f'--max_steps_fraction must be > 0, got '
                    f'{FLAGS.max_steps_fraction}.')
  if FLAGS.overwrite and FLAGS.resume_last_run:
    cli.usage_error('--overwrite and --resume_last_run exclude each other: '
                    'replace the experiment or continue it.')
  values = FLAGS.flag_values_dict()
  if values['experiment_name'] is None:
    values['experiment_name'] = datetime.datetime.now().strftime(
        'run_local-%Y-%m-%d-%H-%M-%S')
  return types.SimpleNamespace(**values)


def _steps_for(fraction: Optional[float], steps: Optional[int],
               workload) -> Optional[int]:
  """round(fraction * step_hint) (at least 1) if a fraction is given, else
  `steps`."""
  if fraction is None:
    return steps
  return max(1, round(fraction * workload.step_hint))


def eval_every_n_steps(args: types.SimpleNamespace,
                       workload) -> Optional[int]:
  """The exact eval cadence for `workload`, None for wall-time evals."""
  return _steps_for(args.eval_every_fraction, args.eval_every_n_steps,
                    workload)


def max_global_steps(args: types.SimpleNamespace,
                     workload) -> Optional[int]:
  """The step limit for `workload`, None for none."""
  return _steps_for(args.max_steps_fraction, args.max_global_steps, workload)


class Job(NamedTuple):
  """One submission on one workload in one study, planned and checked."""
  submission: str
  workload: str
  study: int
  plan: runner.RunPlan


def plan_jobs(args: types.SimpleNamespace) -> List[Job]:
  """Every run, checked before any training; skips unimportable submissions."""
  workloads = expand_workloads(args.workloads or args.workload)
  if args.submission_path:
    paths = {_name_of(args.submission_path): args.submission_path}
  else:
    paths = {name: os.path.join('submissions', name, 'submission.py')
             for name in args.submissions.split(',')}
  jobs = []
  for submission, path in paths.items():
    space = args.tuning_search_space
    if args.tuning_ruleset == 'external' and space is None:
      space = os.path.join(os.path.dirname(path), 'tuning_search_space.json')
    try:
      for workload in workloads:
        for study in range(args.num_studies):
          plan = runner.plan_trials(
              workload, path, args.tuning_ruleset, space,
              args.num_tuning_trials, args.rng_seed + study,
              trial_point(args.trial_point, workload))
          jobs.append(Job(submission, workload, study, plan))
    except runner.SubmissionImportError as e:
      print(f'Skipping {submission}: {e}', file=sys.stderr)
  if not jobs:
    raise ValueError('no submission could be loaded.')
  return jobs


def trial_point(flag: Optional[str], workload: str) -> Optional[int]:
  """--trial_point as a number: 'reference' is the workload's own point."""
  if flag != 'reference':
    return None if flag is None else int(flag)
  point = getattr(workload_registry.get_workload(workload), 'reference_point',
                  None)
  if point is None:
    raise ValueError(f'--trial_point=reference: workload {workload!r} names '
                     'no reference_point.')
  return point


def expand_workloads(names: str) -> List[str]:
  """Comma-separated workload names, a group (paper_seven) standing for its
  members."""
  expanded = []
  for name in names.split(','):
    expanded += workload_registry.WORKLOAD_GROUPS.get(name, (name,))
  return list(dict.fromkeys(expanded))


def _name_of(submission_path: str) -> str:
  return os.path.basename(os.path.dirname(os.path.abspath(submission_path)))


class ProgressLine:
  """One updating status line on a terminal; elsewhere, a log line every
  `period_sec` (absl logging)."""

  def __init__(self, stream=sys.stderr, period_sec: float = 10.0):
    self.stream, self.period_sec = stream, period_sec
    self.tty = stream.isatty()
    self.last_print = -math.inf

  def __call__(self, line: str) -> None:
    if self.tty:
      self.stream.write('\r' + line[:150].ljust(150))
      self.stream.flush()
    elif time.time() - self.last_print >= self.period_sec:
      self.last_print = time.time()
      logging.info(line)

  def done(self, line: str) -> None:
    if self.tty:
      self.stream.write('\r' + line.ljust(150) + '\n')
      self.stream.flush()
    else:
      logging.info(line)


class Outcome(NamedTuple):
  """A study's result: its best trial's steps/time to target and curve."""
  steps_to_target: float  # math.inf if never reached.
  time_to_target: float
  best_validation: float
  curve: List[tuple]  # (global_step, validation metric) of the best trial.


def study_outcome(workload, results: List[runner.TrialResult]) -> Outcome:
  """The trial that reached the target at the lowest submission time wins."""
  metric = f'validation/{workload.target_metric_name}'
  best = min if workload.minimize_target_metric else max
  outcomes = []
  for trial in results:
    hits = [(r['score'], step) for step, r in trial.eval_results
            if workload.has_reached_validation_target(r)]
    time_to, steps_to = hits[0] if hits else (math.inf, math.inf)
    values = [r[metric] for _, r in trial.eval_results]
    outcomes.append(Outcome(
        steps_to, time_to, best(values) if values else math.nan,
        [(step, r[metric]) for step, r in trial.eval_results]))
  return min(outcomes, key=lambda o: (o.time_to_target, o.steps_to_target))


def summary_table(outcomes: Dict[tuple, List[Outcome]]) -> str:
  """Median over studies per (workload, submission), ratios to nadamw."""
  header = (f'{"workload":<20} {"submission":<20} {"steps":>7} {"time_s":>7} '
            f'{"best_val":>9} {"steps/ref":>9} {"time/ref":>9}')
  lines = [header, '-' * len(header)]
  for (workload, submission), studies in outcomes.items():
    steps = statistics.median(o.steps_to_target for o in studies)
    secs = statistics.median(o.time_to_target for o in studies)
    best = statistics.median(o.best_validation for o in studies)
    ref = outcomes.get((workload, REFERENCE_SUBMISSION))
    ratio = lambda value, key: (
        value / statistics.median(getattr(o, key) for o in ref)
        if ref else math.nan)
    lines.append(
        f'{workload:<20} {submission:<20} {_fmt(steps, 0):>7} '
        f'{_fmt(secs, 1):>7} {best:>9.4f} '
        f'{_fmt(ratio(steps, "steps_to_target"), 3):>9} '
        f'{_fmt(ratio(secs, "time_to_target"), 3):>9}')
  return '\n'.join(lines)


def _fmt(value: float, digits: int) -> str:
  if math.isnan(value):
    return '-'
  return 'inf' if math.isinf(value) else f'{value:.{digits}f}'


def plot_curves(outcomes: Dict[tuple, List[Outcome]], path: str) -> None:
  """Validation metric against step (study 0), per workload: the whole run
  above, its finish below with each submission's first crossing marked."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  colors = plt.rcParams['axes.prop_cycle'].by_key()['color']
  names = list(dict.fromkeys(w for w, _ in outcomes))
  cols = min(len(names), 4)
  rows = math.ceil(len(names) / cols)
  fig, axes = plt.subplots(2 * rows, cols, figsize=(5 * cols, 6.6 * rows),
                           squeeze=False)
  for k, name in enumerate(names):
    whole, finish = axes[2 * (k // cols), k % cols], axes[
        2 * (k // cols) + 1, k % cols]
    workload = workload_registry.get_workload(name)
    curves = {submission: tuple(zip(*studies[0].curve))
              for (w, submission), studies in outcomes.items()
              if w == name and studies[0].curve}
    for (submission, (steps, values)), color in zip(curves.items(), colors):
      whole.plot(steps, values, color=color, label=submission)
    target = workload.validation_target_value
    whole.axhline(target, color='k', ls='--', label='target')
    metric = f'validation/{workload.target_metric_name}'
    whole.set(title=name, xlabel='global step', ylabel=metric)
    whole.legend(fontsize='small')
    plots.plot_finish(finish, curves, target,
                      scoring.is_minimized(workload.target_metric_name),
                      colors)
    finish.set(title=f'{name}: finish (o = first crossing)',
               xlabel='global step', ylabel=metric)
  for k in range(len(names), rows * cols):
    for row in (2 * (k // cols), 2 * (k // cols) + 1):
      axes[row, k % cols].set_visible(False)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def main(argv: Optional[List[str]] = None) -> int:
  args = parse_flags(argv)
  try:
    jobs = plan_jobs(args)
    log_dirs = [logs.get_log_dir(
        os.path.join(args.experiment_dir, args.experiment_name,
                     job.submission), job.workload, f'study_{job.study}',
        args.resume_last_run, args.overwrite) for job in jobs]
  except ValueError as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  except OSError as e:
    print(f'error: cannot write the experiment directory '
          f'{e.filename or args.experiment_dir!r}: {e.strerror}.',
          file=sys.stderr)
    return 2
  outcomes: Dict[tuple, List[Outcome]] = {}
  start = time.time()
  for job, log_dir in zip(jobs, log_dirs):
    workload = workload_registry.get_workload(job.workload)
    settings = runner.TrialSettings(
        max_global_steps=max_global_steps(args, workload),
        eval_every_n_steps=eval_every_n_steps(args, workload),
        save_checkpoints=args.save_checkpoints,
        flags=dict(vars(args), workload=job.workload,
                   submission_path=job.plan.submission.path,
                   rng_seed=job.plan.rng_seed, study=job.study))
    progress = ProgressLine()
    results = runner.run_trials(job.plan, log_dir, settings,
                                progress=progress)
    outcome = study_outcome(workload, results)
    progress.done(f'{job.workload} {job.submission} study {job.study}: '
                  f'{_fmt(outcome.steps_to_target, 0)} steps, '
                  f'{_fmt(outcome.time_to_target, 1)}s to target; best '
                  f'validation {outcome.best_validation:.4f}')
    outcomes.setdefault((job.workload, job.submission), []).append(outcome)
  root = os.path.join(args.experiment_dir, args.experiment_name)
  table = summary_table(outcomes)
  print(table)
  with open(os.path.join(root, 'summary.txt'), 'w', encoding='utf-8') as f:
    f.write(table + '\n')
  plot_curves(outcomes, os.path.join(root, 'validation_curves.png'))
  submission_logs = {
      name: scoring.load_submission(os.path.join(root, name))
      for name in dict.fromkeys(s for _, s in outcomes)}
  for time_column in scoring.TIME_COLUMNS:
    print('\n' + score_run(root, submission_logs,
                           sorted({w for w, _ in outcomes}), time_column))
  print(f'\nLogs, summary.txt, validation_curves.png and AlgoPerf scores '
        f'(scores_<time>/) in {root} ({time.time() - start:.0f}s)')
  return 0


def score_run(root: str, submissions: Dict[str, scoring.SubmissionLogs],
              workloads: List[str], time_column: str) -> str:
  """Scores the run's logs with AlgoPerf's rules; writes scores_<time>/.

  Returns the table of times to target and each submission's benchmark
  score (area under its performance profile / 3).
  """
  # A local run picks its own numbers of studies and trials, so the
  # scorer's count warnings (`scores.warnings`) do not apply here.
  scores = scoring.score_logs(submissions, scoring.load_benchmark(),
                              time_column=time_column, workloads=workloads)
  score_script.write_outputs(
      pathlib.Path(root) / f'scores_{time_column}', submissions, scores, None)
  lines = [scoring.format_table(scores)]
  lines += [f'benchmark score ({time_column}) {name}: {value:.4f}'
            for name, value in scores.scores.items()]
  return '\n'.join(lines)


if __name__ == '__main__':
  sys.exit(main())
