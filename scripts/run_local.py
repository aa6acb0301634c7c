r"""Run submissions on localperf's CPU workloads and compare them.

With no arguments: nadamw, nadamw_ema, nadamw_lawa, schedule_free_adamw and
nadamw_codesign on mnist1d, 5 studies (rng seeds 0-4, as AlgoPerf scores
over 5) of one trial each at the first point of each submission's
`tuning_search_space.json`, an eval every 2% of
step_hint and a budget of step_hint steps (the same steps on every run,
however loaded the machine); prints steps and time to the validation
target, the best validation metric and the studies stopped by their budget
(medians over studies; then the steps and their ratio to nadamw's at the
same seed, median (min-max) over studies), then scores the logs with
AlgoPerf's rules (time to target as submission time and as steps), and
ends with a verdict: each submission's paired ratio to nadamw against
nadamw's own seed-to-seed spread, and the ranking by AlgoPerf's score on
steps. Writes AlgoPerf-style logs, `summary.txt`, `validation_curves.png`
and `scores_<time>/` (scores.json, performance profiles) under
./experiments/<experiment_name>/.

  python -m scripts.run_local
  python -m scripts.run_local --eval_every_fraction=0  # AlgoPerf's timed evals
  python -m scripts.run_local --workloads=paper_seven
  python -m scripts.run_local --workloads=mnist1d,ctr_dlrm --num_studies=3 \
      --eval_every_n_steps=100
  python -m scripts.run_local --submission_path=submissions/nadamw/submission.py \
      --tuning_search_space=submissions/nadamw/tuning_search_space.json \
      --num_tuning_trials=5 --experiment_name=nadamw_sweep

Each submission x workload x study trains in a process of its own pinned to
one core (one XLA thread; `localperf/jobs.py`), `--jobs` of them at once, so
the same command gives bit-identical eval_measurements.csv (but for the
times) whatever the machine's load or core count.

Flags named as in AlgoPerf's `submission_runner` mean the same. Logs go to
`<experiment_dir>/<experiment_name>/<submission>/study_<k>/<workload>_jax/
trial_<j>/`, the layout AlgoPerf's scoring reads. Study k uses rng seed
`rng_seed + k`. A submission that cannot be imported (schedule_free_adamw
needs `optax.contrib.schedule_free`, absent in optax 0.2.2) is skipped with a
one-line notice.

A target is met by the first eval whose validation metric is >= it (<= if
the metric is minimised), AlgoPerf's scoring rule: the summary and the
scores both take steps and time to target from
`localperf.scoring.study_time_to_target`, and the figure marks the same
first crossing. (The runner stops a trial once both targets are beaten,
`>` or `<`, as AlgoPerf's workloads say.) The summary, the figure and the
scores cover every submission in the experiment folder, so a run that adds
a submission to an existing experiment extends them.

Ctrl-C (or SIGTERM, exit status 143) stops a run with one line saying what
was kept: every trial's logs, and its checkpoint at its last eval; the same
command with `--resume_last_run --experiment_name=<name>` continues it (a
resume with other flags, or of an experiment that does not exist, is
refused before any training).
"""

import datetime
import json
import math
import multiprocessing
import os
import pathlib
import shutil
import statistics
import sys
import tempfile
import textwrap
import time
import types
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from absl import flags
from absl import logging

from localperf import cli
from localperf import jobs
from localperf import logs
from localperf import plots
from localperf import runner
from localperf import scoring
from localperf import workloads as workload_registry
from scripts import score as score_script

DEFAULT_SUBMISSIONS = ('nadamw', 'nadamw_ema', 'nadamw_lawa',
                       'schedule_free_adamw', 'nadamw_codesign')
REFERENCE_SUBMISSION = 'nadamw'
DEFAULT_EVAL_EVERY_FRACTION = 0.02
SUBMISSIONS_DIR = 'submissions'


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
                    'Comma-separated names of folders in submissions/ '
                    'holding a submission.py.', flag_values=FLAGS)
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
flags.DEFINE_integer('num_studies', 5, 'Studies (5, as AlgoPerf scores); '
                     'study k uses rng_seed + k.',
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
    'eval_every_n_steps', None, 'Evaluate every n steps on every workload, '
    'instead of the default --eval_every_fraction cadence.', lower_bound=1,
    flag_values=FLAGS)
flags.DEFINE_float(
    'eval_every_fraction', DEFAULT_EVAL_EVERY_FRACTION, 'Evaluate every '
    'round(fraction * step_hint) steps of each workload: the same steps on '
    "every run. 0: AlgoPerf's timed evals instead, one whenever the "
    "workload's eval_period_time_sec of wall time has passed since the last "
    '(which steps get evaluated then depends on the speed and load of the '
    'machine). Excludes --eval_every_n_steps.', flag_values=FLAGS)
jobs.define_jobs_flag(FLAGS)
flags.DEFINE_boolean('save_checkpoints', True,
                     'Checkpoint at every eval (--nosave_checkpoints: never).',
                     flag_values=FLAGS)
flags.DEFINE_boolean(
    'overwrite', False, 'Delete the logs this command writes (of each '
    'submission, workload and study it runs) where the experiment already '
    "has them, and run those anew. The experiment's other logs stay, and the "
    'summary and scores cover them too.', flag_values=FLAGS)
flags.DEFINE_boolean(
    'resume_last_run', False, 'Continue the runs of this command in an '
    "existing experiment from their trials' newest checkpoints (finished "
    'ones are not rerun).', flag_values=FLAGS)


def parse_flags(argv: Optional[List[str]] = None) -> types.SimpleNamespace:
  """The flags' values, checked; exits with status 2 on bad ones."""
  cli.parse(FLAGS, argv, __doc__)
  point = FLAGS.trial_point
  if point is not None and point != 'reference' and not (
      point.isdigit() and int(point) >= 1):
    cli.usage_error(f"--trial_point must be an integer >= 1 or 'reference', "
                    f'got {point!r}.')
  if (FLAGS['eval_every_fraction'].present
      and FLAGS.eval_every_n_steps is not None):
    cli.usage_error('--eval_every_fraction and --eval_every_n_steps exclude '
                    'each other: give one eval cadence.')
  if not 0.0 <= FLAGS.eval_every_fraction <= 1.0:
    cli.usage_error(f'--eval_every_fraction must be in [0, 1] (0: timed '
                    f'evals), got {FLAGS.eval_every_fraction}.')
  if (FLAGS.max_steps_fraction is not None
      and FLAGS.max_global_steps is not None):
    cli.usage_error('--max_steps_fraction and --max_global_steps exclude '
                    'each other: give one step limit.')
  if FLAGS.max_steps_fraction is not None and FLAGS.max_steps_fraction <= 0:
    cli.usage_error(f'--max_steps_fraction must be > 0, got '
                    f'{FLAGS.max_steps_fraction}.')
  if FLAGS.overwrite and FLAGS.resume_last_run:
    cli.usage_error('--overwrite and --resume_last_run exclude each other: '
                    "rerun this command's logs or continue them.")
  if (point is not None and FLAGS['num_tuning_trials'].present
      and FLAGS.num_tuning_trials != 1):
    cli.usage_error(f'--trial_point={point} runs one point of each search '
                    f'space; --num_tuning_trials={FLAGS.num_tuning_trials} '
                    'asks for more: give one of them.')
  check_experiment_name(FLAGS.experiment_name, FLAGS.experiment_dir,
                        FLAGS.resume_last_run)
  values = FLAGS.flag_values_dict()
  if values['eval_every_n_steps'] is not None:
    values['eval_every_fraction'] = None  # So the logged flags say which.
  if values['experiment_name'] is None:
    values['experiment_name'] = datetime.datetime.now().strftime(
        'run_local-%Y-%m-%d-%H-%M-%S')
  return types.SimpleNamespace(**values)


def experiments_in(experiment_dir: str) -> List[str]:
  """The experiment folders in `experiment_dir`, sorted ([] if none)."""
  path = os.path.expanduser(experiment_dir)
  return sorted(e.name for e in os.scandir(path) if e.is_dir()
                ) if os.path.isdir(path) else []


def check_experiment_name(name: Optional[str], experiment_dir: str,
                          resume: bool) -> None:
  """Exits with status 2 unless `name` is one folder name (not empty, no
  path separator, not '.' or '..') and, with `resume`, an existing one."""
  if name is not None and (name in ('', '.', '..') or '/' in name
                           or os.sep in name or '\0' in name):
    cli.usage_error(f'--experiment_name must be a folder name inside '
                    f'--experiment_dir ({experiment_dir}): not empty, no '
                    f"'/', not '.' or '..'; got {name!r}.")
  if not resume or (name is not None and os.path.isdir(
      os.path.join(os.path.expanduser(experiment_dir), name))):
    return
  existing = experiments_in(experiment_dir)
  known = (f'experiments there: {", ".join(existing)}' if existing
           else 'it holds no experiment')
  if name is None:
    cli.usage_error(f'--resume_last_run needs --experiment_name, the '
                    f'experiment to continue in {experiment_dir} ({known}).')
  cli.usage_error(f'--resume_last_run: no experiment {name!r} in '
                  f'{experiment_dir} to continue ({known}).')


# Flags that change nothing a trial computes: a resume may change them.
RESUME_MAY_CHANGE = ('resume_last_run', 'overwrite', 'jobs',
                     'experiment_dir', 'save_checkpoints', 'jobs_backend',
                     'slurm_partition', 'slurm_account', 'slurm_time')


def job_flags(args: types.SimpleNamespace, job: 'Job') -> Dict[str, object]:
  """The flags a job's trials log (flags_<preemption>.json)."""
  return dict(vars(args), workload=job.workload, submission_path=job.path,
              rng_seed=args.rng_seed + job.study, study=job.study)


def resume_differences(args: types.SimpleNamespace, job: 'Job',
                       log_dir: str) -> List[str]:
  """'--flag=old (now new)' for each flag the job's first run logged
  (flags_0.json of its trials) that this command changes."""
  now = json.loads(json.dumps(job_flags(args, job)))
  differences = []
  for path in sorted(pathlib.Path(log_dir).glob('trial_*/flags_0.json')):
    with open(path, encoding='utf-8') as f:
      then = json.load(f)
    differences += [
        f'--{key}={then.get(key)} (now {now.get(key)})'
        for key in sorted(set(then) | set(now))
        if key not in RESUME_MAY_CHANGE and then.get(key) != now.get(key)]
  return list(dict.fromkeys(differences))


def _steps_for(fraction: Optional[float], steps: Optional[int],
               workload) -> Optional[int]:
  """round(fraction * step_hint) (at least 1) if a fraction is given, else
  `steps`."""
  if fraction is None:
    return steps
  return max(1, round(fraction * workload.step_hint))


def eval_every_n_steps(args: types.SimpleNamespace,
                       workload) -> Optional[int]:
  """The eval cadence for `workload` in steps; None: AlgoPerf's timed evals
  (`--eval_every_fraction=0`)."""
  return _steps_for(args.eval_every_fraction or None,
                    args.eval_every_n_steps, workload)


def max_global_steps(args: types.SimpleNamespace,
                     workload) -> Optional[int]:
  """The step limit for `workload`, None for none."""
  return _steps_for(args.max_steps_fraction, args.max_global_steps, workload)


class Job(NamedTuple):
  """One submission on one workload in one study, checked by `plan_jobs`."""
  submission: str
  workload: str
  study: int
  path: str  # The submission.py.
  search_space: Optional[str]


def plan_job(args: types.SimpleNamespace, job: Job) -> runner.RunPlan:
  """The job's trials and their hyperparameters (the same on every call)."""
  return runner.plan_trials(
      job.workload, job.path, args.tuning_ruleset, job.search_space,
      args.num_tuning_trials, args.rng_seed + job.study,
      trial_point(args.trial_point, job.workload))


def plan_jobs(args: types.SimpleNamespace) -> List[Job]:
  """Every run, checked before any training; skips unimportable submissions."""
  workloads = expand_workloads(args.workloads or args.workload)
  if args.submission_path:
    paths = {_name_of(args.submission_path): args.submission_path}
  else:
    paths = {name: os.path.join(SUBMISSIONS_DIR, name, 'submission.py')
             for name in args.submissions.split(',')}
    unknown = [name for name, path in paths.items()
               if not os.path.isfile(path)]
    if unknown:
      raise ValueError(
          f'--submissions: no submission {", ".join(map(repr, unknown))}; '
          f'valid submissions: {", ".join(submission_names())}.')
  planned = []
  for submission, path in paths.items():
    space = args.tuning_search_space
    if args.tuning_ruleset == 'external' and space is None:
      space = os.path.join(os.path.dirname(path), 'tuning_search_space.json')
    try:
      for workload in workloads:
        for study in range(args.num_studies):
          job = Job(submission, workload, study, path, space)
          plan_job(args, job)
          planned.append(job)
    except runner.SubmissionImportError as e:
      print(f'Skipping {submission}: {e}', file=sys.stderr)
  if not planned:
    raise ValueError('no submission could be loaded.')
  return planned


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


def submission_names() -> List[str]:
  """The folders of submissions/ (in the working directory, where AlgoPerf
  looks) that hold a submission.py."""
  return sorted(p.parent.name
                for p in pathlib.Path(SUBMISSIONS_DIR).glob('*/submission.py'))


def _name_of(submission_path: str) -> str:
  return os.path.basename(os.path.dirname(os.path.abspath(submission_path)))


def fit(line: str, width: int, shortest_word: int = 6) -> str:
  """`line` in `width` columns. The label before its first ': ' gives way
  first: its longest word loses its middle ('nadamw_codesign' ->
  'nada..sign'), then the next longest, down to `shortest_word`
  characters, so each name keeps the ends that tell it apart and what
  follows (step, metric, time) stays whole; past that the line's end is
  cut."""
  if len(line) <= width:
    return line
  label, sep, status = line.partition(': ')
  words = label.split(' ')
  sizes = [len(w) for w in words]
  while sep and len(line) - len(label) + sum(sizes) + len(sizes) - 1 > width:
    longest = max(range(len(sizes)), key=lambda k: sizes[k])
    if sizes[longest] <= shortest_word:
      break
    sizes[longest] -= 1
  label = ' '.join(_cut_middle(w, n) for w, n in zip(words, sizes))
  line = label + sep + status
  return line if len(line) <= width else line[:width - 2] + '..'


def _cut_middle(word: str, size: int) -> str:
  """`word` in `size` characters, its middle replaced by '..'."""
  if len(word) <= size:
    return word
  head = (size - 1) // 2
  return word[:head] + '..' + word[len(word) - (size - 2 - head):]


class ProgressLine:
  """Progress on a terminal, fitted to its width: one updating line if
  `live`, else (several jobs sharing the terminal) a line every `period_sec`.
  Elsewhere, an absl log line every `period_sec`."""

  def __init__(self, stream=sys.stderr, period_sec: float = 10.0,
               live: bool = True):
    self.stream, self.period_sec = stream, period_sec
    self.tty = stream.isatty()
    self.live = live and self.tty
    self.last_print = -math.inf

  def __call__(self, line: str) -> None:
    if self.live:
      self._write('\r', line, '')
    elif time.time() - self.last_print >= self.period_sec:
      self.last_print = time.time()
      self.done(line)

  def done(self, line: str) -> None:
    if self.tty:
      self._write('\r' if self.live else '', line, '\n')
    else:
      logging.info(line)

  def _write(self, start: str, line: str, end: str) -> None:
    # One column short of the width: a full line would wrap on some terminals.
    width = shutil.get_terminal_size().columns - 1
    line = fit(line, width)
    self.stream.write(start + (line.ljust(width) if self.live else line)
                      + end)
    self.stream.flush()


class Outcome(NamedTuple):
  """A study's result, as AlgoPerf's scorer reads it from the logs."""
  steps_to_target: float  # math.inf if never reached.
  time_to_target: float  # Submission time (AlgoPerf's `score`).
  best_validation: float
  curve: List[tuple]  # (global_step, validation metric) of the counted trial.
  at_budget: bool = False  # Its budget (runner.budget_steps) ran out first.
  seed: Optional[int] = None  # The study's rng seed, from its logged flags.


def _logged_flags(trial: scoring.Trial) -> Dict[str, object]:
  """The flags a trial's first run logged (flags_0.json beside its
  measurements; {} if none)."""
  if trial.path is None:
    return {}
  path = pathlib.Path(trial.path).parent / 'flags_0.json'
  if not path.is_file():
    return {}
  with open(path, encoding='utf-8') as f:
    return json.load(f)


def study_outcome(trials: Sequence[scoring.Trial],
                  target: scoring.Target) -> Outcome:
  """Steps and time to `target` by `scoring.study_time_to_target` (the
  target met at `>=`, or `<=` if minimised), with the curve and the best
  validation metric of the trial it counts (the first if none meets it),
  and whether that trial ran to its step budget without meeting it."""
  if not trials:
    return Outcome(math.inf, math.inf, math.nan, [])
  met = [(index, float(trial['score'][index]), k)
         for k, trial in enumerate(trials)
         if (index := scoring.eval_index_at_target(trial, target)) is not None]
  trial = trials[min(met)[2] if met else 0]
  values = [float(v) for v in trial[target.column]]
  finite = [v for v in values if math.isfinite(v)]
  best = min if target.minimize else max
  flags = _logged_flags(trial)
  return Outcome(
      scoring.study_time_to_target(trials, target, 'global_step'),
      scoring.study_time_to_target(trials, target, 'score'),
      best(finite) if finite else math.nan,
      [(int(step), value) for step, value in zip(trial['global_step'], values)],
      at_budget=not met and trial['global_step'][-1] >= runner.budget_steps(
          target.step_hint, flags.get('tuning_ruleset')),
      seed=flags.get('rng_seed'))


def experiment_outcomes(experiment: Dict[str, scoring.SubmissionLogs]
                        ) -> Dict[tuple, List[Outcome]]:
  """(workload, submission) -> an Outcome per study, of every submission's
  logs (`scoring.load_submissions`), workloads sorted, studies by name."""
  benchmark = scoring.load_benchmark()
  outcomes = {}
  for workload in sorted({w for logs in experiment.values() for w in logs}):
    target = scoring.find_target(benchmark, workload)
    for name, logs in experiment.items():
      if workload in logs:
        outcomes[(workload, name)] = [
            study_outcome(trials, target)
            for _, trials in sorted(logs[workload].items())]
  return outcomes


SUMMARY_CAPTION = (
    'Median over studies. steps, time_s: steps and submission time to the '
    'validation target (the first eval >= it, <= if minimised: AlgoPerf\'s '
    'scoring rule; inf: not met); best_val: best validation metric; '
    'budget: the studies that ran out of their budget (step_hint steps) '
    'before the target.')


def _name_widths(outcomes: Dict[tuple, List[Outcome]]) -> Tuple[int, int]:
  """Widths of the workload and submission columns of a table of
  `outcomes`."""
  return (max(len('workload'), *(len(w) for w, _ in outcomes)),
          max(len('submission'), *(len(s) for _, s in outcomes)))


def summary_table(outcomes: Dict[tuple, List[Outcome]]) -> str:
  """Median over studies per (workload, submission), and how many studies
  ran out of budget; in 79 columns when names are at most 19 characters
  long."""
  workload_width, name_width = _name_widths(outcomes)
  header = (f'{"workload":<{workload_width}} {"submission":<{name_width}} '
            f'{"steps":>5} {"time_s":>6} {"best_val":>8} {"budget":>6}')
  lines = textwrap.wrap(SUMMARY_CAPTION, 79) + [header, '-' * len(header)]
  for (workload, submission), studies in outcomes.items():
    steps = statistics.median(o.steps_to_target for o in studies)
    secs = statistics.median(o.time_to_target for o in studies)
    best = statistics.median(o.best_validation for o in studies)
    spent = sum(o.at_budget for o in studies)
    lines.append(
        f'{workload:<{workload_width}} {submission:<{name_width}} '
        f'{_fmt(steps, 0):>5} {_fmt(secs, 1):>6} {best:>8.4f} '
        f'{f"{spent}/{len(studies)}":>6}')
  return '\n'.join(lines)


SPREAD_CAPTION = (
    'Over studies, median (min-max): steps to the validation target, and '
    f'their ratio to {REFERENCE_SUBMISSION}\'s at the same study (paired; inf: '
    'the submission missed the target in that study, 0: only '
    f'{REFERENCE_SUBMISSION} missed it; k/n: a ratio at k of n studies, '
    'both missed the others).')


def paired_ratios(studies: Sequence[Outcome],
                  reference: Sequence[Outcome]) -> List[float]:
  """steps_k / reference steps_k for each study k (matched by position): inf
  where only the submission missed the target, 0 where only the reference
  did, nan where both did."""
  return [o.steps_to_target / r.steps_to_target
          for o, r in zip(studies, reference)]


def spread_table(outcomes: Dict[tuple, List[Outcome]]) -> str:
  """Steps to target and paired ratios to nadamw, median (min-max) over
  studies, per (workload, submission); '' when no row has two studies."""
  if all(len(studies) < 2 for studies in outcomes.values()):
    return ''
  workload_width, name_width = _name_widths(outcomes)
  header = (f'{"workload":<{workload_width}} {"submission":<{name_width}} '
            f'{"steps":<17} {"step/ref, paired":<16}')
  lines = textwrap.wrap(SPREAD_CAPTION, 79) + [header, '-' * len(header)]
  for (workload, submission), studies in outcomes.items():
    reference = outcomes.get((workload, REFERENCE_SUBMISSION), [])
    ratios = (paired_ratios(studies, reference)
              if len(reference) == len(studies) else [])
    steps = [o.steps_to_target for o in studies]
    lines.append(
        f'{workload:<{workload_width}} {submission:<{name_width}} '
        f'{scoring.median_range(steps, ".0f"):<17} '
        f'{scoring.median_range(ratios)}')
  return '\n'.join(lines)


def seed_spread(reference: Sequence[Outcome]) -> Tuple[float, float]:
  """(min, max) of the reference's steps to target over its median: how far
  changing the seed alone moves them (inf if a seed missed)."""
  steps = [o.steps_to_target for o in reference]
  median = statistics.median(steps)
  if not 0 < median < math.inf:
    return math.nan, math.nan
  return min(steps) / median, max(steps) / median


def verdict(outcomes: Dict[tuple, List[Outcome]],
            by_steps: scoring.Scores) -> str:
  """Who won: per workload, each submission's paired steps ratio to
  nadamw (`paired_ratios`: median (min-max), the seeds where it took fewer
  steps), whether its median lies outside nadamw's seed-to-seed spread
  (`seed_spread`); then the ranking by AlgoPerf's benchmark score on steps.
  '' when no workload has nadamw and another submission at 2+ studies."""
  lines = []
  for (workload, name), studies in outcomes.items():
    reference = outcomes.get((workload, REFERENCE_SUBMISSION), [])
    if (name == REFERENCE_SUBMISSION or len(studies) < 2
        or len(reference) != len(studies)):
      continue
    low, high = seed_spread(reference)
    if all(not l.startswith(f'{workload}:') for l in lines):
      lines.append(
          f'{workload}: {REFERENCE_SUBMISSION}\'s own steps span '
          f'{_fmt(low, 2)}-{_fmt(high, 2)}x their median over '
          f'{len(reference)} seeds.' if not math.isnan(low) else
          f'{workload}: {REFERENCE_SUBMISSION} met the target at '
          f'{sum(math.isfinite(o.steps_to_target) for o in reference)} of '
          f'{len(reference)} seeds: no median to compare with.')
    ratios = paired_ratios(studies, reference)
    median = scoring.median_ratio(ratios)
    if math.isnan(median):
      lines.append(f'  {name}: neither it nor {REFERENCE_SUBMISSION} met '
                   'the target at any seed')
      continue
    faster = [str(o.seed if o.seed is not None else k)
              for k, (o, ratio) in enumerate(zip(studies, ratios))
              if ratio < 1]
    where = ('' if math.isnan(low) else '; outside that spread'
             if median < low or median > high else '; inside that spread')
    lines += textwrap.wrap(
        f'  {name}: {scoring.median_range(ratios)}; fewer steps at '
        f'{len(faster)}/{len(studies)} seeds'
        f'{" (" + ", ".join(faster) + ")" if faster else ""}{where}', 79,
        subsequent_indent='    ')
  if not lines:
    return ''
  ranking = sorted(by_steps.submissions, key=lambda n: -by_steps.scores[n])
  caption = (
      f'Verdict. Steps to target against {REFERENCE_SUBMISSION}\'s at the '
      'same seed (paired ratio, median (min-max) over seeds; below 1: fewer '
      'steps); a median outside the seeds\' own spread is a difference '
      'larger than changing the seed makes.')
  return '\n'.join(
      textwrap.wrap(caption, 79) + lines + textwrap.wrap(
          "Ranking by AlgoPerf's benchmark score on steps: " + ', '.join(
              f'{n} {by_steps.scores[n]:.3f}' for n in ranking) + '.', 79))


def _fmt(value: float, digits: int) -> str:
  if math.isnan(value):
    return '-'
  return 'inf' if math.isinf(value) else f'{value:.{digits}f}'


def plot_curves(outcomes: Dict[tuple, List[Outcome]], path: str) -> None:
  """Validation metric against step, per workload: every study's counted
  trial over the whole run above, its finish below with each study's first
  crossing ringed and each submission's median steps to target (the
  table's) dashed."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  names = list(dict.fromkeys(w for w, _ in outcomes))
  cols = min(len(names), 4)
  rows = math.ceil(len(names) / cols)
  fig, axes = plt.subplots(2 * rows, cols, figsize=(6.5 * cols, 8 * rows),
                           squeeze=False)
  for k, name in enumerate(names):
    whole, finish = axes[2 * (k // cols), k % cols], axes[
        2 * (k // cols) + 1, k % cols]
    workload = workload_registry.get_workload(name)
    curves = {submission: [tuple(zip(*o.curve)) for o in studies if o.curve]
              for (w, submission), studies in outcomes.items() if w == name}
    curves = {submission: c for submission, c in curves.items() if c}
    target = workload.validation_target_value
    minimize = scoring.is_minimized(workload.target_metric_name)
    plots.plot_curves(whole, curves, target, minimize, zoom=False)
    metric = f'validation/{workload.target_metric_name}'
    studies = max(map(len, curves.values()), default=0)
    whole.set(title=f'{name}: every study ({studies}), the trial it counts',
              xlabel='global step', ylabel=metric)
    plots.plot_finish(finish, curves, target, minimize)
    finish.set(title=f'{name}: finish; median over studies = the table\'s',
               xlabel='global step', ylabel=metric)
  for k in range(len(names), rows * cols):
    for row in (2 * (k // cols), 2 * (k // cols) + 1):
      axes[row, k % cols].set_visible(False)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def main(argv: Optional[List[str]] = None) -> int:
  args = parse_flags(argv)
  cores = jobs.pin_this_process()
  root = os.path.join(args.experiment_dir, args.experiment_name)
  start = time.time()
  with cli.sigterm_as_interrupt():
    try:
      try:
        backend = jobs.backend(FLAGS, root)
        planned = plan_jobs(args)
        log_dirs = [job_log_dir(args, root, job, create=False)
                    for job in planned]
        if args.resume_last_run:
          differences = [d for job, log_dir in zip(planned, log_dirs)
                         for d in resume_differences(args, job, log_dir)]
          if differences:
            raise ValueError(
                f'--resume_last_run: {root} was run with other flags: '
                f'{", ".join(dict.fromkeys(differences))}; resume with its '
                'own, or pass --overwrite to rerun it with these.')
        log_dirs = [job_log_dir(args, root, job) for job in planned]
      except ValueError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
      except OSError as e:
        print(f'error: cannot write the experiment directory '
              f'{e.filename or args.experiment_dir!r}: {e.strerror}.',
              file=sys.stderr)
        return 2
      print(plan_line(args, planned, root), flush=True)
      with tempfile.TemporaryDirectory(prefix='run_local-xla-') as cache:
        # SLURM's tasks may run on other nodes, which cannot see `cache`.
        calls = [dict(args=args, job=job, log_dir=log_dir,
                      live=min(args.jobs, len(planned)) == 1,
                      label=job_label(job, planned),
                      compile_cache=None if backend else cache)
                 for job, log_dir in zip(planned, log_dirs)]
        for _ in jobs.run(run_job, calls, args.jobs, cores, backend):
          pass
      try:
        print(summarize(root, [job.submission for job in planned]))
      except ValueError as e:  # A folder of the experiment scoring cannot read.
        print(f'error: cannot summarise {root}: {e}', file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM (cli.Terminated).
      return cli.interrupted(interrupted_note(args, root), e)
  print(f'\nLogs, summary.txt, validation_curves.png and AlgoPerf scores '
        f'(scores_<time>/) in {root} ({time.time() - start:.0f}s)')
  return 0


def job_log_dir(args: types.SimpleNamespace, root: str, job: 'Job',
                create: bool = True) -> str:
  """`<root>/<submission>/study_<k>/<workload>_jax`; made (or, with
  --overwrite, emptied) if `create`, else only named."""
  experiment = os.path.join(root, job.submission)
  if not create:
    return os.path.join(experiment, f'study_{job.study}',
                        f'{job.workload}_jax')
  return logs.get_log_dir(experiment, job.workload, f'study_{job.study}',
                          args.resume_last_run, args.overwrite)


def plan_line(args: types.SimpleNamespace, planned: Sequence['Job'],
              root: str) -> str:
  """What the command is about to train, and where it logs."""
  count = lambda values, noun: (
      f'{len(set(values))} {noun}{"s" if len(set(values)) > 1 else ""}')
  return (f'Training {count([j.submission for j in planned], "submission")}'
          f' x {count([j.workload for j in planned], "workload")} x '
          f'{count([j.study for j in planned], "study").replace("ys", "ies")}'
          f' ({len(planned)} runs, {min(args.jobs, len(planned))} at once), '
          f'each to its target or its budget of step_hint steps; logs in '
          f'{root}')


def job_label(job: 'Job', planned: Sequence['Job']) -> str:
  """'<submission> study <k>', led by the workload when several run."""
  several = len({j.workload for j in planned}) > 1
  return (f'{job.workload} ' if several else '') + (
      f'{job.submission} study {job.study}')


def use_compile_cache(folder: str) -> None:
  """XLA programs compiled in this process are kept in `folder/<pid>` and
  reused (JAX's persistent compilation cache), when this process is the
  command's own or one of its workers, whose JAX settings are its to
  change (not a test's).

  A job's train and eval steps are new closures, so JAX would compile them
  afresh for every study (about 6 s of CPU on mnist1d, a third of a
  trial); the same program compiled before is loaded instead. An
  executable loaded is the one compiled: the results are the same bits.
  One folder per process: no two processes write one entry.
  """
  if __name__ != '__main__' and multiprocessing.parent_process() is None:
    return
  keep_compiled_programs(os.path.join(folder, str(os.getpid())))


def keep_compiled_programs(folder: str) -> None:
  """JAX's persistent compilation cache in `folder`, for every program."""
  import jax  # pylint: disable=g-import-not-at-top
  jax.config.update('jax_compilation_cache_dir', folder)
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 0)
  jax.config.update('jax_persistent_cache_min_entry_size_bytes', 0)


def run_job(args: types.SimpleNamespace, job: Job, log_dir: str,
            live: bool = True, label: Optional[str] = None,
            compile_cache: Optional[str] = None) -> None:
  """Runs one job's trials, showing progress, then its outcome in one line.

  `live`: progress on one updating line if stderr is a terminal; else (as
  when several jobs share the terminal) a log line every 10 s.
  """
  if compile_cache is not None:
    use_compile_cache(compile_cache)
  workload = workload_registry.get_workload(job.workload)
  settings = runner.TrialSettings(
      max_global_steps=max_global_steps(args, workload),
      eval_every_n_steps=eval_every_n_steps(args, workload),
      save_checkpoints=args.save_checkpoints,
      flags=job_flags(args, job))
  label = label or f'{job.workload} {job.submission} study {job.study}'
  progress = ProgressLine(live=live)
  results = runner.run_trials(plan_job(args, job), log_dir, settings,
                              progress=progress, label=label)
  paths = [os.path.join(r.log_dir, scoring.MEASUREMENTS_FILENAME)
           for r in results]
  outcome = study_outcome(
      [scoring.read_eval_measurements(p) for p in paths if os.path.isfile(p)],
      scoring.find_target(scoring.load_benchmark(), job.workload))
  if math.isfinite(outcome.steps_to_target):
    reached = (f'{outcome.steps_to_target:.0f} steps, '
               f'{outcome.time_to_target:.1f}s to target')
  elif outcome.at_budget:
    reached = (f'target not met in its budget of '
               f'{outcome.curve[-1][0]} steps')
  else:
    reached = 'target not met'
  progress.done(f'{label}: {reached}; best {workload.target_metric_name} '
                f'{outcome.best_validation:.4f}')


def interrupted_note(args: types.SimpleNamespace, root: str) -> str:
  """What an interrupted run kept, and the command that continues it."""
  if not os.path.isdir(root):
    return 'nothing was written.'
  kept = ('logs and checkpoints (one at each trial\'s last eval)'
          if args.save_checkpoints else
          'logs (no checkpoints: an unfinished trial will start over)')
  return (f'{kept} are kept in {root}. To continue, run the same command '
          f'with --resume_last_run --experiment_name={args.experiment_name}'
          + (' instead of --overwrite.' if args.overwrite else '.'))


def summarize(root: str, first: Sequence[str] = ()) -> str:
  """Summary, curves and AlgoPerf scores of every submission in the
  experiment folder `root` (`first` leading, in order); writes summary.txt,
  validation_curves.png and scores_<time>/. Returns the text to print."""
  experiment = scoring.load_submissions(root)
  names = [n for n in first if n in experiment]
  others = [n for n in experiment if n not in names]
  experiment = {n: experiment[n] for n in names + others}
  outcomes = experiment_outcomes(experiment)
  table = summary_table(outcomes)
  spread = spread_table(outcomes)
  if spread:
    table += '\n\n' + spread
  plot_curves(outcomes, os.path.join(root, 'validation_curves.png'))
  scores = {column: score_run(root, experiment, column)
            for column in scoring.TIME_COLUMNS}
  lines = [table, '', scores_table(scores)]
  judged = verdict(outcomes, scores['global_step'])
  if judged:
    lines += ['', judged]
  with open(os.path.join(root, 'summary.txt'), 'w', encoding='utf-8') as f:
    f.write('\n\n'.join([table] + ([judged] if judged else [])) + '\n')
  if others and first:
    lines += [''] + textwrap.wrap(
        f'{root} also holds {", ".join(others)}, from earlier runs: the '
        'summary, curves and scores cover them too.', 79,
        break_long_words=False, break_on_hyphens=False)
  return '\n'.join(lines)


def score_run(root: str, submissions: Dict[str, scoring.SubmissionLogs],
              time_column: str) -> scoring.Scores:
  """Scores every workload of the logs with AlgoPerf's rules; writes
  scores_<time_column>/ (scores.json, performance profiles, curves)."""
  # A local run picks its own numbers of studies and trials, so the
  # scorer's count warnings (`scores.warnings`) do not apply here.
  scores = scoring.score_logs(submissions, scoring.load_benchmark(),
                              time_column=time_column, workloads='local')
  score_script.write_outputs(
      pathlib.Path(root) / f'scores_{time_column}', submissions, scores, None)
  return scores


SCORES_CAPTION = (
    "AlgoPerf's scoring (scores_score/ and scores_global_step/): each "
    "workload's time to target over the best submission's (inf past 4x; "
    'by submission time and by steps), and the benchmark score: the area '
    'under the performance profile / 3.')


def scores_table(scores: Dict[str, scoring.Scores]) -> str:
  """Ratios to the best submission and benchmark scores, by time and by
  steps, one row per workload and submission."""
  by_time, by_steps = scores['score'], scores['global_step']
  label = 'benchmark score'
  label_width = max(len(label), *map(len, by_time.scored_workloads))
  name_width = max(map(len, by_time.submissions))
  lines = textwrap.wrap(SCORES_CAPTION, 79) + [
      f'{"":<{label_width}} {"":<{name_width}} {"by time":>8} '
      f'{"by steps":>8}']
  for j, workload in enumerate(by_time.scored_workloads):
    for i, name in enumerate(by_time.submissions):
      lines.append(f'{workload:<{label_width}} {name:<{name_width}} '
                   f'{_fmt(by_time.ratios[i, j], 2):>8} '
                   f'{_fmt(by_steps.ratios[i, j], 2):>8}')
  for name in by_time.submissions:
    lines.append(f'{label:<{label_width}} {name:<{name_width}} '
                 f'{by_time.scores[name]:>8.4f} {by_steps.scores[name]:>8.4f}')
  return '\n'.join(lines)


if __name__ == '__main__':
  sys.exit(main())
