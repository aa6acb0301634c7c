"""Where a local trial's time goes: the runner against a bare jitted loop.

Times, in this process pinned to one core (as run_local runs each trial),
CPU seconds of this process and wall seconds beside them:

  start-up   `python -c 'import scripts.run_local'` in a fresh process
  data       the workload's data generation (once per process)
  bare step  the submission's jitted train step in a plain loop:
             `state = train_step(model_state, state, batch, rng)`, batches
             from the same input queue, one sync at the end
  runner     `runner.train_once` per step (rng folding and splitting,
             data_selection, update_params, the timing, no evals): the
             difference between a run of `--steps` more steps and one of
             `--warmup_steps` (the least of `--repeats` runs of each, after
             one run that compiles, with run_local's compilation cache), so
             the evals and the programs' loading cancel;
             of which the per-step rngs, in one jitted call, and eagerly
             (fold_in, then split) as the runner did before
  eval       one `eval_model` (train, validation and test splits), compiled
  checkpoint one `checkpoints.save_checkpoint`

then the runner's overhead (runner step / bare step) and a trial's cost at
run_local's cadence (an eval every 2% of step_hint, up to step_hint steps).
CPU time is what the lead can compare across machines: on a busy machine
wall time grows with the load and CPU time grows less (caches, frequency).

  python -m scripts.bench_runner [--workload=mnist1d] [--submission=nadamw]
      [--steps=400] [--warmup_steps=50] [--repeats=3] [--evals=3]
"""

import os
import resource
import subprocess
import sys
import tempfile
import time
from typing import Callable, Optional, Sequence, Tuple

from absl import flags

from localperf import cli
from localperf import jobs

FLAGS = flags.FlagValues()
flags.DEFINE_string('workload', 'mnist1d', 'A localperf workload.',
                    flag_values=FLAGS)
flags.DEFINE_string('submission', 'nadamw', 'A folder of submissions/.',
                    flag_values=FLAGS)
flags.DEFINE_integer('steps', 400, 'Timed steps of the bare loop and the '
                     'runner.', lower_bound=1, flag_values=FLAGS)
flags.DEFINE_integer('warmup_steps', 50, 'Steps of the runner run whose '
                     'time is subtracted.', lower_bound=1, flag_values=FLAGS)
flags.DEFINE_integer('repeats', 3, 'Runner runs of each length; the least '
                     'time of each counts.', lower_bound=1, flag_values=FLAGS)
flags.DEFINE_integer('evals', 3, 'Evals timed (after one to compile).',
                     lower_bound=1, flag_values=FLAGS)

Timing = Tuple[float, float]  # (CPU seconds, wall seconds).


def timed(fn: Callable[[], object]) -> Tuple[object, Timing]:
  """fn()'s value and the (CPU, wall) seconds it took in this process."""
  cpu, wall = time.process_time(), time.perf_counter()
  value = fn()
  return value, (time.process_time() - cpu, time.perf_counter() - wall)


def start_up() -> Timing:
  """(CPU, wall) seconds of a fresh `python -c 'import scripts.run_local'`."""
  before = resource.getrusage(resource.RUSAGE_CHILDREN)
  wall = time.perf_counter()
  subprocess.run([sys.executable, '-c', 'import scripts.run_local'],
                 check=True)
  wall = time.perf_counter() - wall
  after = resource.getrusage(resource.RUSAGE_CHILDREN)
  return (after.ru_utime + after.ru_stime - before.ru_utime
          - before.ru_stime), wall


def main(argv: Optional[Sequence[str]] = None) -> int:
  cli.parse(FLAGS, argv, __doc__)
  jobs.pin_this_process()
  # After pinning: JAX's CPU pool is sized when its backend starts.
  import jax  # pylint: disable=g-import-not-at-top
  from localperf import checkpoints  # pylint: disable=g-import-not-at-top
  from localperf import runner  # pylint: disable=g-import-not-at-top
  from localperf import workloads  # pylint: disable=g-import-not-at-top
  from submissions.common import train_step as common_step  # pylint: disable=g-import-not-at-top
  from scripts import run_local  # pylint: disable=g-import-not-at-top
  # As in run_local's workers: a trial's new closures compile once, then
  # load from the cache (a compile's noise is larger than 300 steps' cost).
  # This process's JAX settings change: run it as a command.
  cache = tempfile.TemporaryDirectory()
  run_local.keep_compiled_programs(cache.name)

  try:
    workload = workloads.get_workload(FLAGS.workload)
    path = os.path.join('submissions', FLAGS.submission, 'submission.py')
    plan = runner.plan_trials(
        FLAGS.workload, path, 'external', os.path.join(
            os.path.dirname(path), 'tuning_search_space.json'), 1, 0)
  except ValueError as e:
    cli.usage_error(str(e))
  hparams = plan.trials[0].hyperparameters
  print(f'{FLAGS.workload}, {FLAGS.submission}; jax {jax.__version__}, one '
        f'core; load average {os.getloadavg()[0]:.2f} on '
        f'{os.cpu_count()} cores')
  print(f'{"":<36}{"CPU ms":>10}{"wall ms":>10}{"count":>7}', flush=True)
  per = {}

  def report(name, timing, count):
    per[name] = timing[0] / count
    print(f'{name:<36}{1e3 * timing[0] / count:>10.2f}'
          f'{1e3 * timing[1] / count:>10.2f}{count:>7}', flush=True)

  report('start-up (import scripts.run_local)', start_up(), 1)
  _, data = timed(lambda: workload.splits)
  report('data generation', data, 1)

  rng = jax.random.PRNGKey(0)
  params, model_state = workload.init_model_fn(rng)
  opt_state = plan.submission.init_optimizer_state(
      workload, params, model_state, hparams, rng)
  (state, static), queue = opt_state, workload._build_input_queue(  # pylint: disable=protected-access
      rng, 'train', '', plan.global_batch_size)
  train = common_step.TrainState(state.params, state.opt_state)

  def bare(steps):
    nonlocal train, model_state
    for _ in range(steps):
      train, model_state, _, _ = static.train_step(model_state, train,
                                                   next(queue), rng)
    jax.block_until_ready(train.params)

  _, compile_time = timed(lambda: bare(1))
  _, bare_time = timed(lambda: bare(FLAGS.steps))
  report('compile + first bare step', compile_time, 1)
  report('bare jitted step', bare_time, FLAGS.steps)

  def runner_run(steps):
    settings = runner.TrialSettings(max_global_steps=steps,
                                    eval_every_n_steps=10 * steps,
                                    save_checkpoints=False)
    return runner.train_once(
        workload, plan.submission, hparams, rng, 0,
        global_batch_size=plan.global_batch_size,
        global_eval_batch_size=plan.global_eval_batch_size,
        budget_steps=None, settings=settings)

  def least(steps):
    """The least CPU and the least wall seconds of --repeats runs."""
    runs = [timed(lambda: runner_run(steps))[1] for _ in range(FLAGS.repeats)]
    return min(cpu for cpu, _ in runs), min(wall for _, wall in runs)

  runner_run(FLAGS.warmup_steps)  # Compiles the update and the evals.
  short = least(FLAGS.warmup_steps)
  long = least(FLAGS.warmup_steps + FLAGS.steps)
  runner_time = (long[0] - short[0], long[1] - short[1])
  if runner_time[0] <= 0:
    cli.usage_error(f'--steps={FLAGS.steps}: the runner\'s {FLAGS.steps} '
                    'steps took less CPU than its timing noise; give more '
                    'steps.')
  report('runner step (train_once)', runner_time, FLAGS.steps)

  def keys(make):
    jax.block_until_ready([make(rng, step) for step in range(FLAGS.steps)])

  eager = lambda key, step: jax.random.split(jax.random.fold_in(key, step), 4)
  keys(eager)
  keys(runner._step_rngs)  # pylint: disable=protected-access
  report('  of which step rngs, one jit', timed(
      lambda: keys(runner._step_rngs))[1], FLAGS.steps)  # pylint: disable=protected-access
  report('  (step rngs eager, as before)', timed(lambda: keys(eager))[1],
         FLAGS.steps)

  evaluate = lambda: workload.eval_model(
      plan.global_eval_batch_size, train.params, model_state, rng, '', None,
      0)
  evaluate()
  _, eval_time = timed(lambda: [evaluate() for _ in range(FLAGS.evals)])
  report('eval (train, validation, test)', eval_time, FLAGS.evals)
  with tempfile.TemporaryDirectory() as folder:
    snapshot = checkpoints.TrainingSnapshot(
        (state._replace(params=train.params, opt_state=train.opt_state),
         static), train.params, model_state, runner.new_train_state(), [], 0,
        0)
    _, save = timed(lambda: [checkpoints.save_checkpoint(snapshot, folder)
                             for _ in range(FLAGS.evals)])
  report('checkpoint', save, FLAGS.evals)
  bare_step = per['bare jitted step']
  runner_step = per['runner step (train_once)']
  print(f'runner step / bare step (CPU): {runner_step / bare_step:.2f}')
  every = max(1, round(run_local.DEFAULT_EVAL_EVERY_FRACTION
                       * workload.step_hint))
  evals = workload.step_hint // every
  trial = (runner_step * workload.step_hint + evals * (
      per['eval (train, validation, test)'] + per['checkpoint'])
           + per['compile + first bare step'])
  print(f'a trial of step_hint {workload.step_hint} steps, {evals} evals '
        f'(every {every} steps): {trial:.1f} CPU s, of which steps '
        f'{runner_step * workload.step_hint:.1f}, evals and checkpoints '
        f'{evals * (per["eval (train, validation, test)"] + per["checkpoint"]):.1f}'
        f'; per process, start-up and data '
        f'{per["start-up (import scripts.run_local)"] + per["data generation"]:.1f}')
  cache.cleanup()
  return 0


if __name__ == '__main__':
  raise SystemExit(main())
