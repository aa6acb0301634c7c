"""Per-device memory of a submission on AlgoPerf's real workloads: a lower bound.

AlgoPerf scores on 8x V100 with 16 GB each, and its JAX workloads replicate
params, gradients and optimizer state on every device, so each device holds

  params + gradients + optimizer state + averaging in flight   (activations
                                                                 excluded)

`state_copies` measures the state of a submission in param copies: it builds
the submission's optimizer state, as the runner would, for a small probe
model, and divides the bytes each device holds (read from the arrays'
addressable shards) and the bytes kept in host memory (NumPy leaves) by the
probe's param bytes. Scalars (counts) are left out, so the copies scale to
any model. A host-memory LAWA queue adds one copy on the device while a
snapshot is on its way to the host. `workload_bytes` applies the copies to a
real workload's parameter count (workloads_config/algoperf_param_shapes_v06.json).
"""

import functools
import json
import math
import pathlib
from typing import Any, Callable, Dict, NamedTuple

import jax
import numpy as np

from localperf import toy_workload

SHAPES_FILE = (pathlib.Path(__file__).resolve().parent.parent /
               'workloads_config' / 'algoperf_param_shapes_v06.json')
DEVICE_BYTES = 16 * 2**30  # One V100 of AlgoPerf's scoring hardware.
NUM_DEVICES = 8
_PROBE_SIZES = (64, 64, 16)  # 5,200 params: counts are 0.1% of a copy.


class StateCopies(NamedTuple):
  """A submission's state in float32 param copies."""
  optimizer: float  # On each device, in the optimizer state (averaging incl.).
  in_flight: float  # On each device, a snapshot on its way to the host.
  host: float  # In host memory.


class WorkloadBytes(NamedTuple):
  """Bytes per device (lower bound) and in host memory, for one workload."""
  params: int
  gradients: int
  optimizer: int
  in_flight: int
  host: int

  @property
  def device_total(self) -> int:
    return self.params + self.gradients + self.optimizer + self.in_flight

  @property
  def checkpoint(self) -> int:
    """One AlgoPerf checkpoint: the runner's params (raw or averaged), and
    the optimizer state's first element (raw params, optimizer state, host
    queue)."""
    return 2 * self.params + self.optimizer + self.host


def load_param_counts(path: pathlib.Path = SHAPES_FILE) -> Dict[str, int]:
  """{workload: parameter count} of AlgoPerf v0.6's base workloads.

  Checks each count against the product of its shapes.
  """
  with open(path, encoding='utf-8') as f:
    workloads = json.load(f)['workloads']
  counts = {}
  for name, entry in workloads.items():
    total = sum(math.prod(s) for s in entry['shapes'].values())
    if total != entry['param_count']:
      raise ValueError(f'{path}: {name} param_count {entry["param_count"]} '
                       f'is not the sum of its shapes ({total}).')
    counts[name] = total
  return counts


def _device_bytes(tree: Any) -> int:
  """Bytes one device holds of the non-scalar device arrays in `tree`."""
  total = 0
  for leaf in jax.tree_util.tree_leaves(tree):
    if isinstance(leaf, jax.Array) and leaf.ndim > 0:
      total += max(s.data.nbytes for s in leaf.addressable_shards)
  return total


def _host_bytes(tree: Any) -> int:
  """Bytes of the non-scalar NumPy arrays in `tree`."""
  return sum(leaf.nbytes for leaf in jax.tree_util.tree_leaves(tree)
             if isinstance(leaf, np.ndarray) and leaf.ndim > 0)


def state_copies(init_optimizer_state: Callable[..., Any],
                 hyperparameters: Any) -> StateCopies:
  """Measures a submission's state for `hyperparameters` on a probe model."""
  workload = toy_workload.ToyWorkload(step_hint=1000,
                                      num_features=_PROBE_SIZES[0],
                                      num_hidden=_PROBE_SIZES[1],
                                      num_classes=_PROBE_SIZES[2])
  rng = jax.random.PRNGKey(0)
  params, model_state = workload.init_model_fn(rng)
  state, _ = init_optimizer_state(workload, params, model_state,
                                  hyperparameters, rng)
  param_bytes = _device_bytes(params)
  host = getattr(state, 'host', None)
  opt_state = getattr(state, 'opt_state', state)
  return StateCopies(
      optimizer=_device_bytes(opt_state) / param_bytes,
      in_flight=0.0 if host is None else 1.0,
      host=_host_bytes(host) / param_bytes)


def workload_bytes(param_count: int, copies: StateCopies) -> WorkloadBytes:
  """`copies` applied to a float32 model of `param_count` params."""
  copy = 4 * param_count
  return WorkloadBytes(params=copy, gradients=copy,
                       optimizer=round(copies.optimizer * copy),
                       in_flight=round(copies.in_flight * copy),
                       host=round(copies.host * copy))


@functools.lru_cache(maxsize=None)
def _param_counts() -> Dict[str, int]:
  return load_param_counts()


def check_fits(init_optimizer_state: Callable[..., Any], hyperparameters: Any,
               algoperf_workload: str) -> None:
  """ValueError if the state cannot fit one device on `algoperf_workload`."""
  counts = _param_counts()
  if algoperf_workload not in counts:
    raise ValueError(f'No parameter shapes for {algoperf_workload!r} in '
                     f'{SHAPES_FILE.name}; known: {", ".join(counts)}.')
  need = workload_bytes(counts[algoperf_workload],
                        state_copies(init_optimizer_state, hyperparameters))
  if need.device_total > DEVICE_BYTES:
    gib = lambda b: f'{b / 2**30:.1f}'
    raise ValueError(
        f'on AlgoPerf\'s {algoperf_workload} this state needs at least '
        f'{gib(need.device_total)} GiB per device (params '
        f'{gib(need.params)} + gradients {gib(need.gradients)} + optimizer '
        f'state {gib(need.optimizer)} + in flight {gib(need.in_flight)}), '
        f'over the {gib(DEVICE_BYTES)} GiB of a V100; see python -m '
        f'scripts.memory_table.')
