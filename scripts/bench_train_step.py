"""Cost of averaging in a whole AlgoPerf train step, as ratios to nadamw.

Drives `update_params` of nadamw, nadamw_ema, nadamw_lawa (its queue in
host memory, the default, and on the device) and nadamw_codesign (without
and with its batch-loss choice, also every `--every_steps` steps) as
AlgoPerf's runner does, on toy models of about 10M and 100M parameters
(`--sizes`), with a snapshot every `--every_steps` steps (the paper's
cadence: 64-128; EMA decay 0.9, LAWA L=20). A round times `--steps` consecutive steps of each submission,
synchronised at the end only, so a snapshot's copy to host memory and its
push onto the queue (a worker thread) are charged to the steps they overlap.
Then times `prepare_for_eval` once each average is ready (a snapshot every
step until then), against nadamw's train step. Rounds interleave the
submissions, each round starting with the next one, so machine noise hits
all alike; ratios are of medians from the same run. The device queue is left
out where it would take more than `--max_device_queue_gib` of memory.

  python -m scripts.bench_train_step [--sizes 10,100] [--every_steps 64]
      [--rounds 3] [--steps 64] [--batch_size 32]
"""

import gc
import importlib
import math
import statistics
import time
from typing import Dict, Optional, Sequence, Tuple

from absl import flags
from absl import logging
import jax

from localperf import cli
from localperf import toy_workload

STEP_HINT = 100_000
FLAGS = flags.FlagValues()
flags.DEFINE_list('sizes', ['10', '100'],
                  'Model sizes in millions of parameters.', flag_values=FLAGS)
flags.DEFINE_integer('every_steps', 64, 'Steps between snapshots.',
                     flag_values=FLAGS)
flags.DEFINE_integer('rounds', 3, 'Rounds over the submissions.',
                     flag_values=FLAGS)
flags.DEFINE_integer('steps', 64, 'Timed steps per round and submission.',
                     flag_values=FLAGS)
flags.DEFINE_integer('batch_size', 32, 'Global batch size.',
                     flag_values=FLAGS)
flags.DEFINE_integer('lawa_queue_length', 20, "LAWA's L.", flag_values=FLAGS)
flags.DEFINE_float('max_device_queue_gib', 2.0,
                   'Largest on-device LAWA queue to run.', flag_values=FLAGS)


def configs(every_steps: int, queue_length: int, device_queue: bool
            ) -> Dict[str, Tuple[str, dict]]:
  """name: (submission, overrides of its self-tuning hyperparameters)."""
  every = {'averaging_every_steps': every_steps}
  lawa = {**every, 'lawa_queue_length': queue_length}
  out = {
      'nadamw': ('nadamw', {}),
      'nadamw_ema': ('nadamw_ema', every),
      'nadamw_lawa (host)': ('nadamw_lawa', lawa),
      'nadamw_codesign': ('nadamw_codesign', every),
      'nadamw_codesign (select)': (
          'nadamw_codesign', {**every, 'select_every_steps': every_steps}),
  }
  if device_queue:
    out['nadamw_lawa (device)'] = (
        'nadamw_lawa', {**lawa, 'lawa_queue_location': 'device'})
  return out


def workload_of(millions: int) -> toy_workload.ToyWorkload:
  """A toy model of about `millions` * 1e6 params: side^2 + side^2 / 2."""
  side = 128 * max(1, round(math.sqrt(millions * 1e6 / 1.5) / 128))
  return toy_workload.ToyWorkload(step_hint=STEP_HINT, num_features=side,
                                  num_hidden=side, num_classes=side // 2)


class Trial:
  """One submission's state on a toy workload, stepped as the runner does."""

  def __init__(self, workload, submission_name, overrides, batch_size):
    self.submission = importlib.import_module(
        f'submissions.{submission_name}.submission')
    self.workload = workload
    self.hyperparameters = {**self.submission.SELF_TUNING_HYPERPARAMETERS,
                            **overrides}
    rng = jax.random.PRNGKey(0)
    self.params, self.model_state = workload.init_model_fn(rng)
    self.state = self.submission.init_optimizer_state(
        workload, self.params, self.model_state, self.hyperparameters, rng)
    queue = workload._build_input_queue(rng, 'train', None, batch_size)
    self.batches = [next(queue) for _ in range(4)]
    self.step = 0

  def _calls(self):
    return dict(workload=self.workload, current_param_container=self.params,
                current_params_types=self.workload.model_params_types,
                model_state=self.model_state,
                hyperparameters=self.hyperparameters,
                loss_type=self.workload.loss_type,
                optimizer_state=self.state, eval_results=[],
                global_step=self.step, rng=jax.random.PRNGKey(self.step))

  def train(self, steps):
    """Seconds per `update_params`, synchronised at the end only."""
    start = time.perf_counter()
    for _ in range(steps):
      self.state, self.params, self.model_state = (
          self.submission.update_params(
              batch=self.batches[self.step % len(self.batches)],
              **self._calls()))
      self.step += 1
    jax.block_until_ready(self.params)
    return (time.perf_counter() - start) / steps

  def prepare_for_eval(self):
    start = time.perf_counter()
    self.state, self.params, self.model_state = (
        self.submission.prepare_for_eval(**self._calls()))
    jax.block_until_ready(self.params)
    return time.perf_counter() - start


def bench_size(millions: int) -> None:
  """Prints step and `prepare_for_eval` ratios for one model size."""
  workload = workload_of(millions)
  queue_gib = workload.sizes[0] * workload.sizes[1] * 1.5 * 4 * (
      FLAGS.lawa_queue_length) / 2**30
  device_queue = queue_gib <= FLAGS.max_device_queue_gib
  names = configs(FLAGS.every_steps, FLAGS.lawa_queue_length, device_queue)
  trials = {name: Trial(workload, *config, FLAGS.batch_size)
            for name, config in names.items()}
  num_params = sum(
      p.size for p in jax.tree_util.tree_leaves(trials['nadamw'].params))
  print(f'{num_params / 1e6:.1f}M params, batch {FLAGS.batch_size}, a '
        f'snapshot every {FLAGS.every_steps} steps, {FLAGS.rounds} rounds x '
        f'{FLAGS.steps} steps' + ('' if device_queue else
                                  f' (device queue left out: {queue_gib:.1f} '
                                  'GiB)'))
  for trial in trials.values():  # Compile; the first snapshot is at step 0.
    trial.train(FLAGS.every_steps)
  times = {name: [] for name in trials}
  order = list(trials)
  for r in range(FLAGS.rounds):
    for name in order[r % len(order):] + order[:r % len(order)]:
      times[name].append(trials[name].train(FLAGS.steps))
    logging.info('%.0fM: round %d/%d done', num_params / 1e6, r + 1,
                 FLAGS.rounds)
  base = statistics.median(times['nadamw'])
  print(f'  {"submission":<24}{"step ms":>9}{"ratio":>8}')
  for name in trials:
    t = statistics.median(times[name])
    print(f'  {name:<24}{t * 1e3:>9.1f}{t / base:>8.3f}')
  del trials
  gc.collect()
  print(f'  {"prepare_for_eval (ready)":<24}{"ms":>9}{"steps":>8}')
  for name, (submission, overrides) in names.items():
    trial = Trial(workload, submission,
                  {**overrides, 'averaging_every_steps': 1}, FLAGS.batch_size)
    trial.train(FLAGS.lawa_queue_length + 1)
    trial.prepare_for_eval()  # Compile.
    t = statistics.median(trial.prepare_for_eval() for _ in range(3))
    print(f'  {name:<24}{t * 1e3:>9.1f}{t / base:>8.2f}', flush=True)
    del trial
    gc.collect()


def main(argv: Optional[Sequence[str]] = None) -> int:
  cli.parse(FLAGS, argv, __doc__)
  sizes = []
  for s in FLAGS.sizes:
    if not s.isdigit() or int(s) < 1:
      cli.usage_error(f'--sizes must be integers >= 1 (millions), got {s!r}')
    sizes.append(int(s))
  for name in ('every_steps', 'rounds', 'steps', 'batch_size',
               'lawa_queue_length'):
    if FLAGS[name].value < 1:
      cli.usage_error(f'--{name} must be an integer >= 1, got '
                      f'{FLAGS[name].value}')
  if FLAGS.batch_size % jax.device_count():
    cli.usage_error(f'--batch_size must be a multiple of the '
                    f'{jax.device_count()} devices, got {FLAGS.batch_size}')
  print(f'jax {jax.__version__} on {jax.device_count()} '
        f'{jax.devices()[0].platform} device(s)')
  for millions in sizes:
    bench_size(millions)
  return 0


if __name__ == '__main__':
  raise SystemExit(main())
