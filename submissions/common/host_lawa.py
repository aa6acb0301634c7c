"""LAWA's queue in host memory, filled by a worker thread.

`TrainState.host` holds what lives in host memory: LAWA's queue when it is
kept there (`HostLawa`). Only `params` and `opt_state` enter the jitted step;
on a snapshot step the new weights are copied on the device, sent to the host
asynchronously and pushed onto the queue by a worker thread, which the next
snapshot step or `prepare_for_eval` waits for. So every state
`prepare_for_eval` returns, which is what both runners checkpoint, holds the
whole queue.
"""

import concurrent.futures
import functools
from typing import NamedTuple

import jax

from submissions import optim
from submissions.common.train_step import TrainState


class HostLawa(NamedTuple):
  """A LAWA queue kept in host memory: its length and snapshot rule."""
  queue_length: int
  every_k: int
  start_step: int


@functools.lru_cache(maxsize=None)
def _host_worker() -> concurrent.futures.ThreadPoolExecutor:
  """One thread that moves snapshots into host queues, in submission order."""
  return concurrent.futures.ThreadPoolExecutor(
      max_workers=1, thread_name_prefix='lawa_host')


def joined(state: TrainState) -> TrainState:
  """`state` once its snapshot in flight, if any, is on the host queue."""
  if state.host_pending is None:
    return state
  pushed = state.host_pending.result()
  return state._replace(host=pushed._replace(count=state.host.count),
                        host_pending=None)


def host_lawa_step(state: TrainState, rule: HostLawa) -> TrainState:
  """Counts a finished update; on a snapshot step, queues its weights.

  The weights are copied on their devices (the next step donates them) and
  the copy starts for the host at once; the worker thread pushes it onto the
  queue while training goes on, dropping the device copy when done.
  """
  if not optim.lawa_host_takes_snapshot(state.host, rule.every_k,
                                        rule.start_step):
    return state._replace(host=optim.lawa_host_count(state.host))
  state = joined(state)
  snapshot = jax.tree_util.tree_map(
      lambda p: jax.device_put(p, p.sharding, may_alias=False), state.params)
  for leaf in jax.tree_util.tree_leaves(snapshot):
    leaf.copy_to_host_async()
  pending = _host_worker().submit(optim.lawa_host_push, state.host, snapshot)
  return state._replace(host=optim.lawa_host_count(state.host),
                        host_pending=pending)
