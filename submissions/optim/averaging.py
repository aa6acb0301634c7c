"""Weight averaging (EMA and LAWA) as Optax gradient transformations.

Place one last in an `optax.chain`: it passes the updates through unchanged and
keeps, in float32, an average of the weights the chain produces. Training
continues from the raw weights; `averaged_params` reads the average out.

Snapshots follow the rule of Ajroldi et al., "When, Where and Why to Average
Weights?" (arXiv 2502.06761): the update at step `t` (0-based, counted by the
transformation) snapshots the weights it produces, `theta_{t+1} = params +
updates`, when `t >= start_step` and `t % every_k == 0`.

  EMA:   ema <- decay * ema + (1 - decay) * theta, initialised with the first
         snapshot, no bias correction.
  LAWA:  the plain mean of the last `queue_length` snapshots, ready once
         `queue_length` snapshots exist (Kaddour, arXiv 2209.14981).

The state counts the snapshots taken, so `averaged_params` can tell from the
state alone whether the average is ready. It holds arrays only and survives
flax serialization as it is.

`lawa_params` keeps its `L` snapshots on the device: `L` float32 copies of the
params in the optimizer state. `lawa_host_*` keep them in host memory instead
(NumPy, outside any jitted step), with a float64 running sum of the queue, so
a device holds no copy between snapshots, whatever `L` is:

  push:  total <- (total + theta_new) - theta_evicted   (slots start at zero)
  mean:  theta_bar = float32(total / L), ready once `L` snapshots exist.

float32 snapshots added and subtracted in float64 keep the sum within float64
rounding of the exact sum of the queue, so the mean stays within one float32
rounding of the exact mean however long training runs. The caller follows the
same rule as the transformations, after each update:

  if lawa_host_takes_snapshot(host, every_k, start_step):
    host = lawa_host_push(host, new_params)
  host = lawa_host_count(host)
"""

from typing import Any, NamedTuple, Tuple, Union

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax


class EmaParamsState(NamedTuple):
  """State of `ema_params`."""
  count: chex.Array  # Updates seen, int32 scalar.
  num_snapshots: chex.Array  # Snapshots taken, int32 scalar.
  ema: optax.Params  # float32 average, zeros before the first snapshot.


class LawaParamsState(NamedTuple):
  """State of `lawa_params`."""
  count: chex.Array  # Updates seen, int32 scalar.
  num_snapshots: chex.Array  # Snapshots taken, int32 scalar.
  queue: optax.Params  # float32 ring buffer, leaves of shape (L, *param).


class LawaHostState(NamedTuple):
  """State of a LAWA queue in host memory: NumPy arrays, never on a device."""
  count: np.ndarray  # Updates seen, int64 scalar.
  num_snapshots: np.ndarray  # Snapshots taken, int64 scalar.
  queue: Tuple[optax.Params, ...]  # L float32 slots, snapshot n in slot n % L.
  total: optax.Params  # float64 sum of the L slots (unfilled ones are zero).


AveragingState = Union[EmaParamsState, LawaParamsState, LawaHostState]


def _check_snapshot_rule(every_k: int, start_step: int) -> None:
  if not isinstance(every_k, int) or every_k < 1:
    raise ValueError(f'`every_k` must be an integer >= 1, got {every_k!r}.')
  if not isinstance(start_step, int) or start_step < 0:
    raise ValueError(
        f'`start_step` must be an integer >= 0, got {start_step!r}.')


def _takes_snapshot(t: chex.Array, every_k: int, start_step: int) -> chex.Array:
  return (t >= start_step) & (t % every_k == 0)


def _same_structure(name: str, tree: Any, reference: Any) -> None:
  got = jax.tree_util.tree_structure(tree)
  expected = jax.tree_util.tree_structure(reference)
  if got != expected:
    raise ValueError(
        f'`{name}` must have the structure of the averaged params: got {got}, '
        f'expected {expected}.')


def _new_weights(updates: optax.Updates, params: optax.Params) -> optax.Params:
  """`params + updates` in float32: the weights this update produces."""
  if params is None:
    raise ValueError('Weight averaging needs `params` in `update`.')
  _same_structure('updates', updates, params)
  return jax.tree_util.tree_map(
      lambda p, u: p.astype(jnp.float32) + u.astype(jnp.float32),
      params, updates)


def _float32_zeros(params: optax.Params, leading: tuple = ()) -> optax.Params:
  """float32 zeros shaped `leading + p.shape`, laid out like each param."""

  def zeros(p):
    z = jnp.zeros_like(p, dtype=jnp.float32)
    return jnp.broadcast_to(z, leading + p.shape) if leading else z

  return jax.tree_util.tree_map(zeros, params)


def ema_params(
    decay: Union[float, optax.Schedule] = 0.9,
    every_k: int = 1,
    start_step: int = 0,
) -> optax.GradientTransformation:
  """Exponential moving average of the weights, updated every `every_k` steps.

  `ema <- decay_t * ema + (1 - decay_t) * theta_{t+1}` at each snapshot step
  `t`, and `ema = theta_{t+1}` at the first; updates pass through unchanged.
  The average remembers about `every_k / (1 - decay_t)` steps.

  Args:
    decay: the EMA decay, in [0, 1), or an `optax.Schedule` of the update
      count `t` returning it (e.g. `lr_following_ema_decay`).
    every_k: steps between snapshots, >= 1.
    start_step: first step that may take a snapshot, >= 0.

  Returns:
    An `optax.GradientTransformation` whose state is an `EmaParamsState`.

  Example:
    >>> opt = optax.chain(optax.sgd(0.1), ema_params(decay=0.9, every_k=4))
    >>> params = {'w': jnp.ones(3)}
    >>> state = opt.init(params)
    >>> updates, state = opt.update({'w': jnp.ones(3)}, state, params)
    >>> params = optax.apply_updates(params, updates)
    >>> eval_params = averaged_params(state, params)
  """
  if not callable(decay) and not 0.0 <= decay < 1.0:
    raise ValueError(f'`decay` must lie in [0, 1), got {decay!r}.')
  _check_snapshot_rule(every_k, start_step)

  def init_fn(params):
    return EmaParamsState(
        count=jnp.zeros([], jnp.int32),
        num_snapshots=jnp.zeros([], jnp.int32),
        ema=_float32_zeros(params))

  def update_fn(updates, state, params=None):
    theta = _new_weights(updates, params)
    _same_structure('params', params, state.ema)
    decay_t = decay(state.count) if callable(decay) else decay
    keep = jnp.where(state.num_snapshots == 0, 0.0, decay_t)

    def blend(ema):
      return jax.tree_util.tree_map(
          lambda e, x: keep * e + (1.0 - keep) * x, ema, theta)

    take = _takes_snapshot(state.count, every_k, start_step)
    ema = jax.lax.cond(take, blend, lambda ema: ema, state.ema)
    return updates, EmaParamsState(
        count=state.count + 1,
        num_snapshots=state.num_snapshots + take.astype(jnp.int32),
        ema=ema)

  return optax.GradientTransformation(init_fn, update_fn)


def lr_following_ema_decay(
    learning_rate: optax.Schedule,
    peak_value: float,
    max_window_steps: float,
    min_window_steps: float = 1.0,
    every_k: int = 1,
) -> optax.Schedule:
  """An EMA decay whose memory follows the learning rate.

  The window (memory, in steps) is wide while the learning rate is high and
  narrows as it decays, so the average smooths the noise of large steps and
  does not lag the raw weights once the schedule has annealed them:

    w_t = max(min_window_steps, max_window_steps * lr_t / peak_value)
    decay_t = max(0, 1 - every_k / w_t)

  Args:
    learning_rate: the schedule the optimizer follows.
    peak_value: its largest value.
    max_window_steps: the window at `lr_t = peak_value`, > 0.
    min_window_steps: the smallest window, > 0.
    every_k: the EMA's steps between snapshots.

  Returns:
    An `optax.Schedule` of the update count, for `ema_params(decay=...)`.
  """
  if not peak_value > 0:
    raise ValueError(f'`peak_value` must be > 0, got {peak_value!r}.')
  if not 0 < min_window_steps <= max_window_steps:
    raise ValueError(
        '`min_window_steps` and `max_window_steps` must satisfy 0 < min <= '
        f'max, got {min_window_steps!r} and {max_window_steps!r}.')

  def schedule(count):
    window = jnp.maximum(
        min_window_steps, max_window_steps * learning_rate(count) / peak_value)
    return jnp.maximum(0.0, 1.0 - every_k / window)

  return schedule


def lawa_params(
    queue_length: int = 20,
    every_k: int = 1,
    start_step: int = 0,
) -> optax.GradientTransformation:
  """Latest weight averaging: the mean of the last `queue_length` snapshots.

  `theta_bar = (1 / L) * sum_{i < L} theta_{s_{n-i}}` over the snapshots
  `theta_{s_1}, ..., theta_{s_n}` taken so far, ready once `n >= L`; updates
  pass through unchanged. The snapshots live in a float32 ring buffer of `L`
  copies of the params; the mean is taken only by `averaged_params`.

  Args:
    queue_length: `L`, the number of snapshots averaged, >= 1.
    every_k: steps between snapshots, >= 1.
    start_step: first step that may take a snapshot, >= 0.

  Returns:
    An `optax.GradientTransformation` whose state is a `LawaParamsState`.
  """
  if not isinstance(queue_length, int) or queue_length < 1:
    raise ValueError(
        f'`queue_length` must be an integer >= 1, got {queue_length!r}.')
  _check_snapshot_rule(every_k, start_step)

  def init_fn(params):
    return LawaParamsState(
        count=jnp.zeros([], jnp.int32),
        num_snapshots=jnp.zeros([], jnp.int32),
        queue=_float32_zeros(params, leading=(queue_length,)))

  def update_fn(updates, state, params=None):
    theta = _new_weights(updates, params)
    _same_structure('params', params, state.queue)
    slot = state.num_snapshots % queue_length

    def push(queue):
      return jax.tree_util.tree_map(
          lambda q, x: jax.lax.dynamic_update_index_in_dim(q, x, slot, 0),
          queue, theta)

    take = _takes_snapshot(state.count, every_k, start_step)
    queue = jax.lax.cond(take, push, lambda queue: queue, state.queue)
    return updates, LawaParamsState(
        count=state.count + 1,
        num_snapshots=state.num_snapshots + take.astype(jnp.int32),
        queue=queue)

  return optax.GradientTransformation(init_fn, update_fn)


def lawa_host_init(params: optax.Params, queue_length: int) -> LawaHostState:
  """An empty host queue of `queue_length` slots shaped like `params`.

  The slots share one zero array per leaf until snapshots replace them, so
  the queue takes host memory as it fills.
  """
  if not isinstance(queue_length, int) or queue_length < 1:
    raise ValueError(
        f'`queue_length` must be an integer >= 1, got {queue_length!r}.')
  zeros = jax.tree_util.tree_map(
      lambda p: np.zeros(np.shape(p), np.float32), params)
  return LawaHostState(
      count=np.zeros([], np.int64),
      num_snapshots=np.zeros([], np.int64),
      queue=(zeros,) * queue_length,
      total=jax.tree_util.tree_map(lambda z: z.astype(np.float64), zeros))


def lawa_host_takes_snapshot(state: LawaHostState, every_k: int,
                             start_step: int) -> bool:
  """Whether the next update (step `state.count`) is a snapshot step."""
  _check_snapshot_rule(every_k, start_step)
  return bool(_takes_snapshot(int(state.count), every_k, start_step))


def lawa_host_count(state: LawaHostState) -> LawaHostState:
  """`state` after one more update (snapshot or not)."""
  return state._replace(count=np.asarray(state.count + 1, np.int64))


def lawa_host_push(state: LawaHostState,
                   snapshot: optax.Params) -> LawaHostState:
  """`state` with `snapshot` in the next slot and the sum updated.

  `snapshot` may be device arrays: they are copied to host memory here.
  Nothing of `state` is modified; the new state shares the other slots.
  """
  _same_structure('snapshot', snapshot, state.total)
  snapshot = jax.tree_util.tree_map(
      lambda x: np.asarray(x, np.float32), snapshot)
  slot = int(state.num_snapshots) % len(state.queue)
  evicted = state.queue[slot]

  def add(total, new, old):
    out = np.add(total, new)
    return np.subtract(out, old, out=out)

  return state._replace(
      num_snapshots=np.asarray(state.num_snapshots + 1, np.int64),
      queue=state.queue[:slot] + (snapshot,) + state.queue[slot + 1:],
      total=jax.tree_util.tree_map(add, state.total, snapshot, evicted))


def find_averaging_state(state: optax.OptState) -> AveragingState:
  """The single averaging state (EMA, LAWA, host LAWA) inside `state`."""
  kinds = (EmaParamsState, LawaParamsState, LawaHostState)
  is_averaging = lambda x: isinstance(x, kinds)
  found = [
      s for s in jax.tree_util.tree_leaves(state, is_leaf=is_averaging)
      if is_averaging(s)
  ]
  if len(found) != 1:
    raise ValueError(
        f'`state` must hold exactly one EmaParamsState, LawaParamsState or '
        f'LawaHostState, found {len(found)}.')
  return found[0]


def is_average_ready(state: optax.OptState) -> chex.Array:
  """Whether the average exists: EMA after one snapshot, LAWA after `L`."""
  state = find_averaging_state(state)
  if isinstance(state, EmaParamsState):
    return state.num_snapshots >= 1
  if isinstance(state, LawaHostState):
    return state.num_snapshots >= len(state.queue)
  queue_length = jax.tree_util.tree_leaves(state.queue)[0].shape[0]
  return state.num_snapshots >= queue_length


def average_of(state: optax.OptState) -> optax.Params:
  """The float32 average, meaningful only once `is_average_ready(state)`.

  For EMA this is the accumulator itself (no copy); for LAWA the mean over
  the queue, computed here and nowhere else: on the device for
  `LawaParamsState`, in host memory (NumPy) for `LawaHostState`.
  """
  state = find_averaging_state(state)
  if isinstance(state, EmaParamsState):
    return state.ema
  if isinstance(state, LawaHostState):
    queue_length = len(state.queue)
    return jax.tree_util.tree_map(
        lambda t: np.divide(t, queue_length).astype(np.float32), state.total)
  return _queue_mean(state.queue)


@jax.jit
def _queue_mean(queue: optax.Params) -> optax.Params:
  """Mean over the leading (queue) axis, as one fused sum of the slots.

  Summing the slots reads each contiguously; XLA:CPU reduces a leading axis
  about 30x slower (`scripts/bench_train_step.py` shows the difference).
  """

  def mean(q):
    total = q[0]
    for i in range(1, q.shape[0]):
      total = total + q[i]
    return total / q.shape[0]

  return jax.tree_util.tree_map(mean, queue)


def averaged_params(state: optax.OptState, params: optax.Params) -> optax.Params:
  """The averaged weights when ready, else `params`, in `params`' dtypes.

  In the spirit of `optax.contrib.schedule_free_eval_params`. `state` may be
  the averaging state itself or any optimizer state that holds exactly one.
  The choice is made on device, so this works under `jax.jit` with no sync
  (except for a `LawaHostState`, whose mean is formed in host memory).

  Args:
    state: an optimizer state holding an `EmaParamsState`, `LawaParamsState`
      or `LawaHostState`.
    params: the raw weights, returned as they are until the average is ready.

  Returns:
    A tree like `params`.
  """
  average = average_of(state)
  _same_structure('params', params, average)
  ready = is_average_ready(state)
  return jax.tree_util.tree_map(
      lambda a, p: jnp.where(ready, a.astype(p.dtype), p), average, params)
