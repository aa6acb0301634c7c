"""AlgoPerf's own `submission_runner.py`, with its JAX resume made exact.

  python -m scripts.algoperf_runner ALGOPERF/submission_runner.py [flags]
  python -m scripts.algoperf_runner --check ALGOPERF/submission_runner.py

Runs the given runner file as `__main__` with its flags, in this process.
AlgoPerf v0.6's `--resume_last_run` crashes for every JAX submission, its own
baselines included, in `algoperf/checkpoint_utils.py`:

1. the restored `eval_results` is None (the restore's target for it is None,
   so nothing of the saved list comes back) and the runner's
   `.items()` on it fails;
2. `replicate_checkpoint` stacks a device axis onto the restored params and
   optimizer state (`flax.jax_utils.replicate`, the `pmap` layout), which
   jit-with-shardings workloads and submissions do not have.

And where it would not crash, it would not resume the run it stopped:

3. the runner rebuilds its input queues from the start, so a resumed trial
   would train again on the batches it had already drawn, and evaluate the
   train split on other batches (each eval split's queue is built at the
   first eval of a process, from that eval's rng, then cached).

On the AlgoPerf versions listed in `KNOWN_VERSIONS` (recognised by the
source of `checkpoint_utils.py` and of the runner's `train_once`, which the
corrections depend on), this process replaces
`checkpoint_utils.maybe_restore_checkpoint` and `save_checkpoint` for JAX
runs: the restore reads the saved tree as it is, puts every array where the
freshly initialised one lives (its sharding, or host memory for NumPy
state), rebuilds `eval_results` as `(global_step, metrics)` pairs, and
brings every input queue back to where the saved run had it: the same rng,
past the batches it drew (both counted here and saved in the checkpoint's
`train_state` under `input_positions`). AlgoPerf's
files are not changed, and nothing else is: a resumed trial continues bit
for bit where the checkpoint left it, as AlgoPerf's runner would once these
faults are fixed upstream. On any other version the runner runs as it is,
and `--resume_last_run` is refused with the reason.
"""

import ast
import functools
import hashlib
import inspect
import os
import runpy
import sys
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from absl import logging
import jax
import numpy as np

from localperf import checkpoints

# sha256 (first 16 hex digits) of checkpoint_utils.py and of the runner's
# train_once, for each AlgoPerf version whose faults this module corrects.
KNOWN_VERSIONS = {
    ('5e8c90367efb1b30', 'e5a542a5a19652fe'): 'AlgoPerf v0.6 (2c90454)',
}
INPUT_POSITIONS = 'input_positions'  # train_state key of saved runs.


def _digest(text: str) -> str:
  return hashlib.sha256(text.encode('utf-8')).hexdigest()[:16]


def train_once_source(runner_path: str) -> str:
  """The source of `train_once` in the runner file ('' if it has none)."""
  with open(runner_path, encoding='utf-8') as f:
    source = f.read()
  for node in ast.parse(source).body:
    if isinstance(node, ast.FunctionDef) and node.name == 'train_once':
      return ast.get_source_segment(source, node)
  return ''


def fingerprint(runner_path: str) -> Tuple[str, str]:
  """(checkpoint_utils.py, train_once) digests of the AlgoPerf in use."""
  try:
    from algoperf import checkpoint_utils  # pylint: disable=g-import-not-at-top
  except ImportError:
    utils = 'not importable'
  else:
    utils = _digest(inspect.getsource(checkpoint_utils))
  return utils, _digest(train_once_source(runner_path))


def known_version(runner_path: str) -> Optional[str]:
  """The name of the AlgoPerf version at `runner_path`, if corrected here."""
  return KNOWN_VERSIONS.get(fingerprint(runner_path))


def refusal(runner_path: str) -> str:
  """Why `--resume_last_run` is refused for an unknown AlgoPerf version."""
  utils, train_once = fingerprint(runner_path)
  known = ', '.join(KNOWN_VERSIONS.values())
  return (f'--resume_last_run: AlgoPerf at {runner_path} is not a version '
          f'whose resume faults are known here (checkpoint_utils.py '
          f'{utils}, train_once {train_once}; known: {known}), so a resume '
          'could not be made exact; rerun with --overwrite.')


# ----------------------------------------------------------------------------
# The corrections.


class CountedQueue:
  """An input iterator that counts the batches drawn from it."""

  def __init__(self, queue: Iterator[Any]):
    self._queue = iter(queue)
    self.drawn = 0

  def __iter__(self) -> 'CountedQueue':
    return self

  def __next__(self) -> Any:
    batch = next(self._queue)
    self.drawn += 1
    return batch

  def skip(self, count: int) -> None:
    """Draws and drops `count` batches."""
    for _ in range(count):
      next(self)


class InputQueues:
  """The runner's input iterators, by split: counted, and restorable.

  AlgoPerf's workloads build the training queue once per trial and each eval
  split's once per process (cached in `workload._eval_iters`, the first time
  that split is evaluated, from that eval's rng). `positions` is what a
  checkpoint needs to rebuild them as they were: each split's rng and the
  batches drawn. `restore` advances the queues already built and keeps the
  rest for `build` to rebuild from the saved rng when the runner asks.
  """

  def __init__(self):
    self.queues: Dict[str, CountedQueue] = {}
    self.rngs: Dict[str, np.ndarray] = {}
    self.saved: Dict[str, Tuple[int, Any]] = {}

  def build(self, build_fn, data_rng, split, *args, **kwargs) -> CountedQueue:
    drawn, rng = self.saved.pop(split, (0, data_rng))
    queue = CountedQueue(build_fn(rng, split, *args, **kwargs))
    queue.skip(drawn)
    self.queues[split], self.rngs[split] = queue, rng
    return queue

  def positions(self) -> Dict[str, Dict[str, Any]]:
    return {'drawn': {k: q.drawn for k, q in self.queues.items()},
            'rng': {k: np.asarray(r) for k, r in self.rngs.items()}}

  def restore(self, positions: Dict[str, Dict[str, Any]]) -> None:
    for split, drawn in positions['drawn'].items():
      drawn = int(_scalar(drawn))
      if split in self.queues:
        self.queues[split].skip(drawn - self.queues[split].drawn)
      else:
        rng = np.asarray(positions['rng'][split])
        self.saved[split] = (drawn, jax.numpy.asarray(rng, rng.dtype))


_QUEUES = InputQueues()  # This process's, as the workload's are per process.


def _counting_workload(workload: Any) -> Any:
  """`workload`, its input queues built and counted by `_QUEUES`."""
  # pylint: disable=protected-access
  workload._build_input_queue = functools.partial(
      _QUEUES.build, workload._build_input_queue)
  # pylint: enable=protected-access
  return workload


def _scalar(value: Any) -> Any:
  """A 0-d NumPy value as the Python scalar it was saved from."""
  return value.item() if isinstance(value, (np.ndarray, np.generic)) else value


def _by_index(saved: Any) -> List[Any]:
  """A saved tuple ({'0': a, '1': b, ...} or a list) as a list."""
  if isinstance(saved, dict):
    return [saved[k] for k in sorted(saved, key=int)]
  return list(saved or [])


def restored_eval_results(saved: Any) -> List[Tuple[int, Dict[str, Any]]]:
  """The saved `eval_results` tuple as the runner's list of pairs."""
  results = []
  for pair in _by_index(saved):
    step, metrics = _by_index(pair)
    results.append((int(_scalar(step)),
                    {k: _scalar(v) for k, v in metrics.items()}))
  return results


def with_empty_nodes(template: Any, saved: Any) -> Any:
  """`saved` with the leafless subtrees orbax restores as None put back.

  `template` is the fresh state's `flax.serialization.to_state_dict`; an
  empty node there (`optax.EmptyState()` is `{}`) comes back from an orbax
  checkpoint as None, which `from_state_dict` cannot restore onto.
  """
  if not isinstance(template, dict):
    return saved
  if saved is None and not jax.tree_util.tree_leaves(template):
    return template
  return {k: with_empty_nodes(v, saved[k]) for k, v in template.items()}


def _trial_goes_on(train_state: Dict[str, Any]) -> bool:
  """Whether the runner's loop will train on from `train_state`."""
  return (train_state['is_time_remaining']
          and not train_state['training_complete']
          and not (train_state['validation_goal_reached']
                   and train_state['test_goal_reached']))


def make_maybe_restore_checkpoint(original, flax_checkpoints, serialization):
  """`checkpoint_utils.maybe_restore_checkpoint` with the faults corrected."""

  def maybe_restore_checkpoint(framework, optimizer_state, model_params,
                               model_state, train_state, eval_results,
                               global_step, preemption_count, checkpoint_dir):
    if framework != 'jax':
      return original(framework, optimizer_state, model_params, model_state,
                      train_state, eval_results, global_step,
                      preemption_count, checkpoint_dir)
    saved = flax_checkpoints.restore_checkpoint(checkpoint_dir, target=None)
    if not saved:
      return (optimizer_state, model_params, model_state, train_state,
              eval_results, global_step, preemption_count)

    def restore(fresh, value):
      value = with_empty_nodes(serialization.to_state_dict(fresh), value)
      return checkpoints.place_like(
          fresh, serialization.from_state_dict(fresh, value))

    opt_state, opt_update_fn = optimizer_state
    restored_train_state = {k: _scalar(v)
                            for k, v in saved['train_state'].items()}
    positions = restored_train_state.pop(INPUT_POSITIONS, None)
    if positions is None:
      logging.warning('%s was saved without scripts.algoperf_runner: the '
                      'input queues start again from their first batch.',
                      checkpoint_dir)
    elif _trial_goes_on(restored_train_state):
      _QUEUES.restore(positions)
    return ((restore(opt_state, saved['optimizer_state']), opt_update_fn),
            restore(model_params, saved['model_params']),
            restore(model_state, saved['model_state']),
            restored_train_state,
            restored_eval_results(saved['eval_results']),
            int(_scalar(saved['global_step'])),
            int(_scalar(saved['preemption_count'])) + 1)

  return maybe_restore_checkpoint


def make_save_checkpoint(original):
  """`checkpoint_utils.save_checkpoint`, saving the input queue's position."""

  def save_checkpoint(framework, optimizer_state, model_params, model_state,
                      train_state, eval_results, global_step,
                      preemption_count, checkpoint_dir,
                      save_intermediate_checkpoints):
    if framework == 'jax':
      train_state = dict(train_state, **{INPUT_POSITIONS: _QUEUES.positions()})
    return original(framework, optimizer_state, model_params, model_state,
                    train_state, eval_results, global_step, preemption_count,
                    checkpoint_dir, save_intermediate_checkpoints)

  return save_checkpoint


def install() -> None:
  """Replaces AlgoPerf's checkpoint functions; counts its input queues."""
  # pylint: disable=g-import-not-at-top
  from algoperf import checkpoint_utils
  from algoperf.workloads import workloads
  from flax import serialization
  from flax.training import checkpoints as flax_checkpoints
  # pylint: enable=g-import-not-at-top
  checkpoint_utils.maybe_restore_checkpoint = make_maybe_restore_checkpoint(
      checkpoint_utils.maybe_restore_checkpoint, flax_checkpoints,
      serialization)
  checkpoint_utils.save_checkpoint = make_save_checkpoint(
      checkpoint_utils.save_checkpoint)
  import_workload = workloads.import_workload

  def counted_import_workload(*args, **kwargs):
    workload = import_workload(*args, **kwargs)
    return workload if kwargs.get('return_class') else _counting_workload(
        workload)

  workloads.import_workload = counted_import_workload


# ----------------------------------------------------------------------------
# Main.


def run(runner_path: str, flags: Sequence[str]) -> None:
  """Runs the runner file as `__main__`, corrected where its version is known.

  Raises:
    SystemExit: with the reason, for `--resume_last_run` on a version not
      known here.
  """
  version = known_version(runner_path)
  resume = any(f in ('--resume_last_run', '--resume_last_run=true',
                     '--resume_last_run=True') for f in flags)
  if version is None and resume:
    sys.exit(f'algoperf_runner: error: {refusal(runner_path)}')
  if version is not None:
    install()
  sys.argv = [runner_path, *flags]
  runpy.run_path(runner_path, run_name='__main__')


def main(argv: Sequence[str]) -> int:
  if len(argv) >= 2 and argv[0] == '--check':
    version = known_version(argv[1])
    print(version or refusal(argv[1]))
    return 0 if version else 1
  if not argv or not os.path.isfile(argv[0]):
    sys.exit('usage: python -m scripts.algoperf_runner '
             '[--check] ALGOPERF/submission_runner.py [runner flags]')
  run(argv[0], argv[1:])
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
