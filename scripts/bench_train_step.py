"""Cost of averaging in a whole AlgoPerf train step, as ratios to nadamw.

Drives `update_params` of nadamw, nadamw_ema and nadamw_lawa as AlgoPerf's
runner does, on a toy model of about 10.5M parameters, at the paper's
recommended settings (the self-tuning defaults: window 1% of `step_hint`, EMA
decay 0.9, LAWA L=20; with `step_hint` 100000 a snapshot every 100 and 50
steps) and with a snapshot every step. Also times `prepare_for_eval` once the
average is ready, against one train step. Rounds interleave the submissions
so machine noise hits all alike; ratios are of medians from the same run.

  python -m scripts.bench_train_step [--rounds 5] [--steps 20]
"""

import argparse
import importlib
import statistics
import time

import jax

from localperf import toy_workload

STEP_HINT = 100_000
BATCH_SIZE = 256
CONFIGS = {
    # name: (submission, hyperparameter overrides of the self-tuning point)
    'nadamw': ('nadamw', {}),
    'nadamw_ema (recommended)': ('nadamw_ema', {}),
    'nadamw_lawa (recommended)': ('nadamw_lawa', {}),
    'nadamw_ema (every step)': ('nadamw_ema', {'averaging_every_steps': 1}),
    'nadamw_lawa (every step)': ('nadamw_lawa', {'averaging_every_steps': 1}),
}


class Trial:
  """One submission's state on the toy workload, stepped as the runner does."""

  def __init__(self, submission_name, overrides):
    self.submission = importlib.import_module(
        f'submissions.{submission_name}.submission')
    self.workload = toy_workload.ToyWorkload(
        step_hint=STEP_HINT, num_features=4096, num_hidden=2048,
        num_classes=1024)
    self.hyperparameters = {**self.submission.SELF_TUNING_HYPERPARAMETERS,
                            **overrides}
    rng = jax.random.PRNGKey(0)
    self.params, self.model_state = self.workload.init_model_fn(rng)
    self.state = self.submission.init_optimizer_state(
        self.workload, self.params, self.model_state, self.hyperparameters,
        rng)
    queue = self.workload._build_input_queue(rng, 'train', None, BATCH_SIZE)
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


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--rounds', type=int, default=5)
  parser.add_argument('--steps', type=int, default=20,
                      help='timed steps per round and submission')
  args = parser.parse_args()
  trials = {name: Trial(*config) for name, config in CONFIGS.items()}
  num_params = sum(
      p.size for p in jax.tree_util.tree_leaves(trials['nadamw'].params))
  print(f'jax {jax.__version__}, {num_params / 1e6:.1f}M params, batch '
        f'{BATCH_SIZE}, {args.rounds} rounds x {args.steps} steps')
  for trial in trials.values():  # Compile, and fill the every-step queues.
    trial.train(25)
  times = {name: [] for name in trials}
  for r in range(args.rounds):
    for name, trial in trials.items():
      times[name].append(trial.train(args.steps))
    print(f'  round {r + 1}/{args.rounds} done', flush=True)
  base = statistics.median(times['nadamw'])
  print(f'{"submission":<28}{"step ms":>9}{"ratio":>8}')
  for name in trials:
    t = statistics.median(times[name])
    print(f'{name:<28}{t * 1e3:>9.1f}{t / base:>8.3f}')
  print(f'{"prepare_for_eval (ready)":<28}{"ms":>9}{"steps":>8}')
  for name in ('nadamw', 'nadamw_ema (every step)', 'nadamw_lawa (every step)'):
    trials[name].prepare_for_eval()  # Compile.
    t = statistics.median(trials[name].prepare_for_eval() for _ in range(5))
    print(f'{name:<28}{t * 1e3:>9.1f}{t / base:>8.2f}')


if __name__ == '__main__':
  main()
