"""AlgoPerf's `submission_runner` (v0.6, JAX) on one machine.

`plan_trials` checks everything a run needs (workload, submission, batch
size, search space) before any training; `run_trials` then runs each trial
through `train_once`, whose loop follows AlgoPerf's:

  rng = PRNGKey(seed)                  (external ruleset: split(rng, 2)[0])
  data, opt_init, model_init, rng = split(rng, 4)
  per step: step_rng = fold_in(rng, global_step)
            data_select, update, prep_eval, eval = split(step_rng, 4)

Submission time is the wall time from the end of one step to the end of the
next (data selection + update) plus `prepare_for_eval`; evals, logging and
checkpoints are untimed. An eval is due when `eval_period_time_sec` of wall
time has passed since the last eval ends (or, with `eval_every_n_steps`,
every n steps: exact and repeatable) and whenever training is complete. At a
due eval the runner first runs `prepare_for_eval` (timed), then evaluates. A
run stops when its budget is spent, when both validation and test targets
are reached, on `TrainingCompleteError`, or at `max_global_steps`.

The budget is counted in steps, not in submission time: `step_hint` steps
(1.5x for the self-tuning ruleset, AlgoPerf's factor), AlgoPerf's own
measure of what its time budget buys the baseline ("approx. steps the
baseline can do in the allowed runtime budget"). A local machine's load
changes its speed, and a time budget would then decide which trials reach
their target; steps decide the same on any machine. The trial evaluates at
its last step and ends (AlgoPerf skips the eval that finds the time spent).
Submission time is still measured and logged (`score`), as AlgoPerf does.

Deliberate differences, for exactness: JAX dispatch is asynchronous, so
before stopping the `prepare_for_eval` clock the runner waits for the params
it returned (pending training work is charged to the submission, not to the
untimed eval); a resumed run skips the training batches the restored steps
consumed, so it sees the data an uninterrupted run would, and rewinds its CSV
logs to the checkpoint. And for clear failures: a submission's optional
`check_hyperparameters` vets every trial's point while planning (and, on an
analogue of an AlgoPerf workload, that its state would fit a V100 of the real
one: `localperf.memory`), and a NaN or infinite eval metric stops the trial
(AlgoPerf trains on to the budget). On an analogue, the hyperparameters
counted in steps (`averaging_every_steps`, `select_every_steps`) are the
counterpart's steps and reach the submission scaled to the analogue's
step_hint (`localperf.workloads.in_analogue_steps`), so the paper's nu = 64
is the same fraction of the budget here as there; hparams.json records what
the submission received.
"""

import importlib.util
import inspect
import math
import os
import sys
import time
import types
from typing import (Any, Callable, Dict, Iterator, List, NamedTuple, Optional,
                    Tuple)

import jax

from localperf import checkpoints
from localperf import logs
from localperf import memory
from localperf import scoring
from localperf import search_space
from localperf import spec
from localperf import workloads as workload_registry

RULESETS = ('external', 'self')
REQUIRED_FUNCTIONS = ('init_optimizer_state', 'update_params',
                      'data_selection', 'get_batch_size')
SELF_TUNING_BUDGET_FACTOR = 1.5
Clock = Callable[[], float]


class Submission(NamedTuple):
  """A submission's functions; `prepare_for_eval` may be None (pre-v0.6)."""
  path: str
  init_optimizer_state: Callable[..., Any]
  update_params: Callable[..., Any]
  prepare_for_eval: Optional[Callable[..., Any]]
  data_selection: Callable[..., Any]
  get_batch_size: Callable[[str], int]
  # Optional, localperf only: raises ValueError naming a bad hyperparameter,
  # so that `plan_trials` rejects a trial's point before any training.
  check_hyperparameters: Optional[Callable[[Any], Any]] = None


class TrialPlan(NamedTuple):
  """One trial to run: its index (1-based) and hyperparameters."""
  index: int
  hyperparameters: Any


class RunPlan(NamedTuple):
  """A submission on a workload, checked and ready to run."""
  workload_name: str
  submission: Submission
  tuning_ruleset: str
  global_batch_size: int
  global_eval_batch_size: int
  rng_seed: int
  trials: List[TrialPlan]


class TrialResult(NamedTuple):
  index: int
  hyperparameters: Any
  score: float  # Accumulated submission time, seconds.
  global_step: int
  eval_results: List[Tuple[int, Dict[str, Any]]]
  log_dir: Optional[str]


class SubmissionImportError(ValueError):
  """The submission file exists but importing it failed."""


def load_submission(path: str) -> Submission:
  """Imports the file at `path` as AlgoPerf does (`a/b/c.py` -> `a.b.c`)."""
  if not path.endswith('.py'):
    raise ValueError(f'submission_path {path!r} must name a Python file '
                     '(*.py).')
  if not os.path.isfile(path):
    raise ValueError(f'submission_path {path!r}: no such file.')
  relative = os.path.relpath(os.path.abspath(path))
  module_name = (os.path.splitext(relative)[0].replace(os.sep, '.')
                 if not relative.startswith('..') else
                 f'localperf_submission_{abs(hash(os.path.abspath(path)))}')
  module_spec = importlib.util.spec_from_file_location(module_name, path)
  module = importlib.util.module_from_spec(module_spec)
  sys.modules[module_name] = module
  try:
    module_spec.loader.exec_module(module)
  except Exception as e:  # Whatever the file raises, say which file.
    del sys.modules[module_name]
    raise SubmissionImportError(
        f'submission_path {path!r}: import failed: {type(e).__name__}: {e}'
    ) from e
  missing = [f for f in REQUIRED_FUNCTIONS
             if not callable(getattr(module, f, None))]
  if missing:
    raise ValueError(f'submission_path {path!r}: missing required '
                     f'function(s) {", ".join(missing)} (a submission defines '
                     f'{", ".join(REQUIRED_FUNCTIONS)} and prepare_for_eval).')
  return Submission(path, module.init_optimizer_state, module.update_params,
                    getattr(module, 'prepare_for_eval', None),
                    module.data_selection, module.get_batch_size,
                    getattr(module, 'check_hyperparameters', None))


def plan_trials(workload_name: str, submission_path: str,
                tuning_ruleset: str = 'external',
                tuning_search_space: Optional[str] = None,
                num_tuning_trials: int = 1,
                rng_seed: Optional[int] = None,
                trial_point: Optional[int] = None) -> RunPlan:
  """Checks all inputs of a run and samples its hyperparameters.

  `trial_point` (1-based) runs only that point of a list search space, as
  trial `trial_point` (instead of its first `num_tuning_trials` points).
  Raises ValueError naming the bad input (workload, submission, ruleset,
  search space, batch size) before anything is trained.
  """
  workload = workload_registry.get_workload(workload_name)
  if tuning_ruleset not in RULESETS:
    raise ValueError(f'tuning_ruleset {tuning_ruleset!r}: accepted values '
                     f'are {", ".join(RULESETS)}.')
  submission = load_submission(submission_path)
  try:
    batch_size = int(submission.get_batch_size(workload_name))
  except ValueError as e:
    raise ValueError(f'submission {submission_path!r} has no batch size for '
                     f'workload {workload_name!r}: {e}') from e
  num_devices = jax.device_count()
  for name, size in (('global batch size', batch_size),
                     ('eval batch size', workload.eval_batch_size)):
    if size <= 0 or size % num_devices:
      raise ValueError(f'The {name} ({size}) must be a positive multiple of '
                       f'the number of devices ({num_devices}).')
  if rng_seed is None:
    rng_seed = int.from_bytes(os.urandom(4), 'little')
  if tuning_ruleset == 'self':
    if tuning_search_space is not None:
      raise ValueError('tuning_search_space must not be given with the '
                       'self-tuning ruleset.')
    trials = [TrialPlan(1, None)]
  else:
    if tuning_search_space is None:
      raise ValueError('tuning_search_space: the external ruleset needs a '
                       'search space JSON file.')
    space = search_space.load_search_space(tuning_search_space)
    if trial_point is None:
      points = search_space.generate_search(space, num_tuning_trials,
                                            rng_seed)
      trials = [TrialPlan(i + 1, p) for i, p in enumerate(points)]
    else:
      if not isinstance(space, list) or not 1 <= trial_point <= len(space):
        raise ValueError(
            f'trial_point {trial_point}: search space '
            f'{tuning_search_space!r} must be a list of at least that many '
            'points.')
      points = search_space.generate_search(space, trial_point, rng_seed)
      trials = [TrialPlan(trial_point, points[-1])]
  # Steps of the counterpart, on an analogue (localperf.workloads).
  trials = [t._replace(hyperparameters=workload_registry.with_analogue_steps(
      t.hyperparameters, workload_name)) for t in trials]
  if submission.check_hyperparameters is not None:
    counterpart = workload_registry.ALGOPERF_COUNTERPART.get(workload_name)
    for trial in trials:
      try:
        submission.check_hyperparameters(trial.hyperparameters)
        if counterpart is not None:  # Would it fit the benchmark's GPUs?
          memory.check_fits(submission.init_optimizer_state,
                            trial.hyperparameters, counterpart)
      except ValueError as e:
        source = (f'search space {tuning_search_space!r}'
                  if trial.hyperparameters is not None
                  else 'the self-tuning defaults')
        raise ValueError(f'trial {trial.index} of {source}: {e}') from e
  return RunPlan(workload_name, submission, tuning_ruleset, batch_size,
                 workload.eval_batch_size, rng_seed, trials)


class TrialSettings(NamedTuple):
  """How a trial runs, beyond the submission and its hyperparameters."""
  max_global_steps: Optional[int] = None
  eval_every_n_steps: Optional[int] = None  # None: AlgoPerf's wall-time evals.
  save_checkpoints: bool = True
  data_dir: str = ''
  flags: Dict[str, Any] = {}  # Written to flags_<preemption>.json.


def run_trials(plan: RunPlan, log_dir: Optional[str],
               settings: TrialSettings = TrialSettings(),
               clock: Clock = time.time,
               progress: Optional[Callable[[str], None]] = None,
               label: Optional[str] = None) -> List[TrialResult]:
  """Runs every trial of `plan`, logging under `log_dir/trial_<k>`;
  `progress` lines start with `label` (default '<workload> <submission>')."""
  results = []
  for i, trial in enumerate(plan.trials):
    rng = jax.random.PRNGKey(plan.rng_seed)
    if plan.tuning_ruleset == 'external':
      rng, _ = jax.random.split(rng, 2)
    trial_dir, hyperparameters = None, trial.hyperparameters
    if log_dir is not None:
      trial_dir = os.path.join(log_dir, f'trial_{trial.index}')
      os.makedirs(trial_dir, exist_ok=True)
      if hyperparameters is not None:
        hyperparameters = logs.write_hparams(hyperparameters, trial_dir)
    name = label or (f'{plan.workload_name} '
                     f'{_submission_name(plan.submission.path)}')
    if len(plan.trials) > 1:
      name += f' trial {trial.index} ({i + 1}/{len(plan.trials)})'
    workload = workload_registry.get_workload(plan.workload_name)
    resumed = checkpoints.latest_step(trial_dir) if trial_dir else None
    if resumed and progress is not None:
      print(f'{name}: resuming at step {resumed}, its last checkpoint.',
            file=sys.stderr)
    score, metrics = train_once(
        workload, plan.submission, hyperparameters, rng, plan.rng_seed,
        global_batch_size=plan.global_batch_size,
        global_eval_batch_size=plan.global_eval_batch_size,
        budget_steps=budget_steps(workload.step_hint, plan.tuning_ruleset),
        settings=settings, log_dir=trial_dir, clock=clock,
        progress=(lambda line, name=name: progress(f'{name}: {line}'))
        if progress else None)
    results.append(TrialResult(trial.index, hyperparameters, score,
                               metrics['global_step'],
                               metrics['eval_results'], trial_dir))
  return results


def budget_steps(step_hint: int, tuning_ruleset: str) -> int:
  """A trial's budget: round(factor * step_hint) steps, factor 1.5 for the
  self-tuning ruleset, else 1 (module docstring: why steps, not seconds)."""
  factor = SELF_TUNING_BUDGET_FACTOR if tuning_ruleset == 'self' else 1.0
  return round(factor * step_hint)


def _submission_name(path: str) -> str:
  return os.path.basename(os.path.dirname(os.path.abspath(path)))


def new_train_state() -> Dict[str, Any]:
  """AlgoPerf's `train_state` at the start of a run."""
  return {
      'validation_goal_reached': False,
      'test_goal_reached': False,
      'is_time_remaining': True,
      'last_eval_time': 0,
      'training_complete': False,
      'accumulated_submission_time': 0,
      'accumulated_eval_time': 0,
      'accumulated_logging_time': 0,
      'last_step_end_time': None,
  }


class _Trial(NamedTuple):
  """What the phases of one `train_once` run share; none of it changes."""
  workload: spec.Workload
  submission: Submission
  hyperparameters: Any
  settings: TrialSettings
  global_eval_batch_size: int
  budget_steps: Optional[int]
  log_dir: Optional[str]
  metrics_logger: Optional[logs.MetricsLogger]
  clock: Clock
  progress: Optional[Callable[[str], None]]
  needs_train_state: bool  # Whether `update_params` takes `train_state`.


def train_once(workload: spec.Workload, submission: Submission,
               hyperparameters: Any, rng: spec.RandomState,
               rng_seed: Optional[int], *, global_batch_size: int,
               global_eval_batch_size: int, budget_steps: Optional[int],
               settings: TrialSettings = TrialSettings(),
               log_dir: Optional[str] = None, clock: Clock = time.time,
               progress: Optional[Callable[[str], None]] = None
               ) -> Tuple[float, Dict[str, Any]]:
  """One training run; returns (submission time, {eval_results, global_step}).

  `budget_steps`: the run ends after that many steps (None: no budget).

  A NaN or infinite eval metric stops the run with a message on stderr (the
  logs and checkpoint so far are kept; AlgoPerf's runner would go on).
  `clock` is the wall clock (inject a fake one to test timing); `progress`
  receives a one-line summary after each eval.
  """
  data_rng, opt_init_rng, model_init_rng, rng = jax.random.split(rng, 4)
  input_queue = workload._build_input_queue(  # pylint: disable=protected-access
      data_rng, 'train', data_dir=settings.data_dir,
      global_batch_size=global_batch_size)
  model_params, model_state = workload.init_model_fn(model_init_rng)
  optimizer_state = submission.init_optimizer_state(
      workload, model_params, model_state, hyperparameters, opt_init_rng)
  run = checkpoints.TrainingSnapshot(
      optimizer_state, model_params, model_state, new_train_state(),
      eval_results=[], global_step=0, preemption_count=0)
  metrics_logger = None
  if log_dir is not None:
    run = _resume(run, input_queue, workload, rng_seed, settings, log_dir)
    metrics_logger = logs.MetricsLogger(log_dir)
  needs_train_state = ('train_state' in
                       inspect.signature(submission.update_params).parameters)
  trial = _Trial(workload, submission, hyperparameters, settings,
                 global_eval_batch_size, budget_steps, log_dir, metrics_logger,
                 clock, progress, needs_train_state)

  train_state = run.train_state
  global_start_time = train_state['last_step_end_time'] = clock()
  while _keep_training(train_state):
    data_select_rng, update_rng, prep_eval_rng, eval_rng = _step_rngs(
        rng, run.global_step)
    run = _train_step(trial, run, input_queue, data_select_rng, update_rng)
    train_step_end_time = clock()
    train_state['accumulated_submission_time'] += (
        train_step_end_time - train_state['last_step_end_time'])
    if eval_due(run.global_step, train_step_end_time, train_state,
                workload.eval_period_time_sec, settings.eval_every_n_steps):
      run = _prepare_for_eval(trial, run, prep_eval_rng)
      run = _eval_and_checkpoint(trial, run, eval_rng, global_start_time)
    train_state['last_step_end_time'] = clock()
  return _end_trial(trial, run)


@jax.jit
def _step_rngs(rng: spec.RandomState, global_step: int
               ) -> Tuple[spec.RandomState, ...]:
  """split(fold_in(rng, global_step), 4), AlgoPerf's per-step keys, in one
  dispatch (eager, the fold and the split cost more than the train step of
  a small model)."""
  return tuple(jax.random.split(jax.random.fold_in(rng, global_step), 4))


def _resume(run: checkpoints.TrainingSnapshot, input_queue: Iterator[Any],
            workload: spec.Workload, rng_seed: Optional[int],
            settings: TrialSettings, log_dir: str
            ) -> checkpoints.TrainingSnapshot:
  """`run` from the newest checkpoint in `log_dir`, if any, with the CSV logs
  and the data stream rewound to it; writes this start's meta data and flags."""
  run = checkpoints.maybe_restore_checkpoint(run, log_dir)
  logs.roll_back(log_dir, run.global_step)
  for _ in range(run.global_step):  # Resume where the data stream was.
    next(input_queue)
  logs.write_json(
      os.path.join(log_dir, f'meta_data_{run.preemption_count}.json'),
      logs.meta_data(workload, rng_seed))
  logs.write_json(
      os.path.join(log_dir, f'flags_{run.preemption_count}.json'),
      dict(settings.flags))
  return run


def _keep_training(train_state: Dict[str, Any]) -> bool:
  """AlgoPerf's loop condition: time left, targets not all met, not complete."""
  goals_reached = (train_state['validation_goal_reached'] and
                   train_state['test_goal_reached'])
  return (train_state['is_time_remaining'] and not goals_reached and
          not train_state['training_complete'])


def _train_step(trial: _Trial, run: checkpoints.TrainingSnapshot,
                input_queue: Iterator[Any], data_select_rng: spec.RandomState,
                update_rng: spec.RandomState) -> checkpoints.TrainingSnapshot:
  """`data_selection` and `update_params` (timed by the caller); counts the
  step and marks training complete on `TrainingCompleteError` or the cap."""
  submission, workload, train_state = (trial.submission, trial.workload,
                                       run.train_state)
  batch = submission.data_selection(
      workload, input_queue, run.optimizer_state, run.model_params,
      run.model_state, trial.hyperparameters, run.global_step,
      data_select_rng)
  try:
    optimizer_state, model_params, model_state = submission.update_params(
        workload=workload, current_param_container=run.model_params,
        current_params_types=workload.model_params_types,
        model_state=run.model_state, hyperparameters=trial.hyperparameters,
        batch=batch, loss_type=workload.loss_type,
        optimizer_state=run.optimizer_state, eval_results=run.eval_results,
        global_step=run.global_step, rng=update_rng,
        **({'train_state': types.MappingProxyType(train_state)}
           if trial.needs_train_state else {}))
    run = run._replace(optimizer_state=optimizer_state,
                       model_params=model_params, model_state=model_state)
  except spec.TrainingCompleteError:
    train_state['training_complete'] = True
  run = run._replace(global_step=run.global_step + 1)
  if max_steps_reached(run.global_step, trial.settings.max_global_steps):
    train_state['training_complete'] = True
  if trial.budget_steps is not None and run.global_step >= trial.budget_steps:
    train_state['is_time_remaining'] = False
  return run


def _prepare_for_eval(trial: _Trial, run: checkpoints.TrainingSnapshot,
                      rng: spec.RandomState) -> checkpoints.TrainingSnapshot:
  """Timed `prepare_for_eval` (to the params it returns being ready)."""
  train_state = run.train_state
  prepare_start_time = trial.clock()
  if trial.submission.prepare_for_eval is not None:
    optimizer_state, model_params, model_state = (
        trial.submission.prepare_for_eval(
            workload=trial.workload, current_param_container=run.model_params,
            current_params_types=trial.workload.model_params_types,
            model_state=run.model_state,
            hyperparameters=trial.hyperparameters,
            loss_type=trial.workload.loss_type,
            optimizer_state=run.optimizer_state,
            eval_results=run.eval_results, global_step=run.global_step,
            rng=rng))
    run = run._replace(optimizer_state=optimizer_state,
                       model_params=model_params, model_state=model_state)
  jax.block_until_ready(run.model_params)
  train_state['accumulated_submission_time'] += (
      trial.clock() - prepare_start_time)
  return run


def _eval_and_checkpoint(trial: _Trial, run: checkpoints.TrainingSnapshot,
                         rng: spec.RandomState, global_start_time: float
                         ) -> checkpoints.TrainingSnapshot:
  """Untimed eval, its CSV rows, a checkpoint and the progress line; a NaN or
  infinite metric marks training complete."""
  workload, train_state, clock = trial.workload, run.train_state, trial.clock
  eval_start_time = clock()
  latest_eval_result = workload.eval_model(
      trial.global_eval_batch_size, run.model_params, run.model_state, rng,
      trial.settings.data_dir, None, run.global_step)
  train_state['validation_goal_reached'] = (
      workload.has_reached_validation_target(latest_eval_result) or
      train_state['validation_goal_reached'])
  train_state['test_goal_reached'] = (
      workload.has_reached_test_target(latest_eval_result) or
      train_state['test_goal_reached'])
  diverged = non_finite_metrics(latest_eval_result, run.global_step)
  if diverged:
    train_state['training_complete'] = True
  eval_end_time = clock()
  train_state['last_eval_time'] = eval_end_time
  train_state['accumulated_eval_time'] += eval_end_time - eval_start_time
  latest_eval_result.update({
      'score': train_state['accumulated_submission_time'],
      'total_duration': eval_end_time - global_start_time,
      'accumulated_submission_time':
          train_state['accumulated_submission_time'],
      'accumulated_eval_time': train_state['accumulated_eval_time'],
      'accumulated_logging_time': train_state['accumulated_logging_time'],
  })
  run.eval_results.append((run.global_step, latest_eval_result))

  logging_start_time = clock()
  if trial.metrics_logger is not None:
    trial.metrics_logger.append_scalar_metrics(
        latest_eval_result, global_step=run.global_step,
        preemption_count=run.preemption_count, is_eval=True)
    if trial.settings.save_checkpoints:
      checkpoints.save_checkpoint(run, trial.log_dir)
  train_state['accumulated_logging_time'] += clock() - logging_start_time
  if trial.progress is not None:
    trial.progress(progress_line(workload, run.global_step,
                                 trial.budget_steps, run.eval_results,
                                 train_state['accumulated_submission_time']))
  if diverged:
    print(f'Stopping the trial: {diverged}; logs so far are kept'
          f'{" in " + trial.log_dir if trial.log_dir else ""}.',
          file=sys.stderr)
  return run


def _end_trial(trial: _Trial, run: checkpoints.TrainingSnapshot
               ) -> Tuple[float, Dict[str, Any]]:
  """Logs the score and saves the last checkpoint; returns `train_once`'s
  (submission time, {eval_results, global_step})."""
  score = run.train_state['accumulated_submission_time']
  if trial.metrics_logger is not None:
    trial.metrics_logger.append_scalar_metrics(
        {'score': score}, global_step=run.global_step,
        preemption_count=run.preemption_count)
    if trial.settings.save_checkpoints:
      checkpoints.save_checkpoint(run, trial.log_dir)
  return score, {'eval_results': run.eval_results,
                 'global_step': run.global_step}


def non_finite_metrics(eval_result: Dict[str, Any],
                       global_step: int) -> Optional[str]:
  """'validation/loss is nan at step 40', or None if every metric is finite."""
  bad = [f'{name} is {value}' for name, value in sorted(eval_result.items())
         if isinstance(value, float) and not math.isfinite(value)]
  if not bad:
    return None
  return f'{", ".join(bad)} at step {global_step} (training diverged)'


def max_steps_reached(global_step: int, max_global_steps: Optional[int]
                      ) -> bool:
  return max_global_steps is not None and global_step == max_global_steps


def eval_due(global_step: int, now: float, train_state: Dict[str, Any],
             eval_period_time_sec: float,
             eval_every_n_steps: Optional[int]) -> bool:
  """AlgoPerf's wall-time rule, or every n steps; always when complete or
  at the end of the budget."""
  if (train_state['training_complete']
      or not train_state['is_time_remaining']):
    return True
  if eval_every_n_steps is not None:
    return global_step % eval_every_n_steps == 0
  return now - train_state['last_eval_time'] >= eval_period_time_sec


def progress_line(workload: spec.Workload, global_step: int,
                  budget: Optional[int],
                  eval_results: List[Tuple[int, Dict[str, Any]]],
                  submission_sec: float) -> str:
  """'step 600/2000: accuracy 0.9312, target 0.976; 12s': the step of the
  budget (of step_hint without one), the latest validation metric, with
  the digits that tell it from the target, the target and the submission
  time. Once an eval has met the target (>=, or <= if minimised, as the
  scorer counts) the target gives way to when: 'accuracy 0.9748; target
  met at 1440' (the latest value may be below it again)."""
  metric = workload.target_metric_name
  key, target = f'validation/{metric}', workload.validation_target_value
  value = eval_results[-1][1][key]
  minimize = scoring.is_minimized(metric)
  met = next((step for step, result in eval_results
              if (result[key] <= target if minimize
                  else result[key] >= target)), None)
  where = (f', target {target}' if met is None
           else f'; target met at {met}')
  return (f'step {global_step}/{budget or workload.step_hint}: {metric} '
          f'{distinct(value, target)}{where}; {submission_sec:.0f}s')


def distinct(value: float, target: float, digits: int = 4) -> str:
  """`value` with `digits` decimals, or as many more as it takes (up to 9)
  not to read as `target` when it differs: 0.97595 against 0.976 is
  '0.97595', not '0.9760'."""
  for places in range(digits, 10):
    text = f'{value:.{places}f}'
    if value == target or float(text) != target:
      return text
  return repr(value)
