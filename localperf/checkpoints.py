"""AlgoPerf's JAX checkpoints, one msgpack file per save, written atomically.

A checkpoint holds what AlgoPerf's `checkpoint_utils` saves: model params,
the first element of the optimizer state (the second is static), model
state, train_state, eval_results, global_step and preemption_count. Arrays
go through flax serialization and come back against a freshly initialised
state (same tree, same shardings). `eval_results`, a list of
`(global_step, {metric: value})`, is stored as JSON, so it comes back as it
was (AlgoPerf v0.6's JAX restore loses it).

Only the newest `checkpoint_<global_step>` is kept in the trial directory. A
process killed while writing leaves a `.tmp` file that restores ignore (the
previous checkpoint stays whole) and the next save removes.
"""

import glob
import json
import os
import re
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

import jax
from flax import serialization

_NAME = re.compile(r'checkpoint_(\d+)$')


class TrainingSnapshot(NamedTuple):
  """Everything the runner restores, in `maybe_restore_checkpoint` order."""
  optimizer_state: Tuple[Any, Any]
  model_params: Any
  model_state: Any
  train_state: Dict[str, Any]
  eval_results: List[Tuple[int, Dict[str, Any]]]
  global_step: int
  preemption_count: int


def save_checkpoint(snapshot: TrainingSnapshot, checkpoint_dir: str) -> str:
  """Writes `checkpoint_<global_step>` (temp file, then rename); returns it."""
  state = {
      'model_params': snapshot.model_params,
      'optimizer_state': snapshot.optimizer_state[0],
      'model_state': snapshot.model_state,
      'train_state': dict(snapshot.train_state),
      'eval_results': json.dumps(snapshot.eval_results),
      'global_step': snapshot.global_step,
      'preemption_count': snapshot.preemption_count,
  }
  data = serialization.to_bytes(jax.device_get(state))
  path = os.path.join(checkpoint_dir, f'checkpoint_{snapshot.global_step}')
  tmp = f'{path}.tmp'
  with open(tmp, 'wb') as f:
    f.write(data)
  os.replace(tmp, path)
  stale = glob.glob(os.path.join(checkpoint_dir, 'checkpoint_*.tmp'))
  for old in _checkpoints(checkpoint_dir) + stale:
    if old != path:
      os.remove(old)
  return path


def maybe_restore_checkpoint(fresh: TrainingSnapshot,
                             checkpoint_dir: str) -> TrainingSnapshot:
  """The newest checkpoint restored onto `fresh`, or `fresh` if none.

  The preemption count of a restored run is the saved one plus one.
  """
  paths = _checkpoints(checkpoint_dir)
  if not paths:
    return fresh
  with open(paths[-1], 'rb') as f:
    saved = serialization.msgpack_restore(f.read())
  opt_state, opt_static = fresh.optimizer_state
  restore = lambda target, value: place_like(
      target, serialization.from_state_dict(target, value))
  return TrainingSnapshot(
      optimizer_state=(restore(opt_state, saved['optimizer_state']),
                       opt_static),
      model_params=restore(fresh.model_params, saved['model_params']),
      model_state=restore(fresh.model_state, saved['model_state']),
      train_state=dict(saved['train_state']),
      eval_results=[(step, result) for step, result
                    in json.loads(saved['eval_results'])],
      global_step=int(saved['global_step']),
      preemption_count=int(saved['preemption_count']) + 1)


def place_like(target: Any, restored: Any) -> Any:
  """Puts restored numpy leaves where the fresh ones live (their sharding)."""
  def place(fresh_leaf, value):
    if isinstance(fresh_leaf, jax.Array):
      return jax.device_put(value, fresh_leaf.sharding)
    return value
  return jax.tree.map(place, target, restored)


def latest_step(checkpoint_dir: str) -> Optional[int]:
  """The global step of the checkpoint a restore would read; None if none."""
  paths = _checkpoints(checkpoint_dir)
  return int(_NAME.search(paths[-1]).group(1)) if paths else None


def _checkpoints(checkpoint_dir: str) -> List[str]:
  """Checkpoint files in `checkpoint_dir`, oldest step first."""
  paths = [p for p in glob.glob(os.path.join(checkpoint_dir, 'checkpoint_*'))
           if _NAME.search(p)]
  return sorted(paths, key=lambda p: int(_NAME.search(p).group(1)))
