"""Learning-rate schedules of AlgoPerf's NadamW baseline and the paper's variants.

All are functions of the update count `t` (0-based), built from `optax`
primitives, with `warmup_steps = int(warmup_factor * step_hint)`:

  warmup:   lr_t = peak * t / warmup_steps                    for t < warmup
  cosine:   lr_t = end + (peak - end) * (1 + cos(pi * s / D)) / 2,
            s = t - warmup_steps, D = max(decay_steps - warmup_steps, 1),
            and lr_t = end for s >= D.
  stable-decay (after warmup):
            lr_t = peak                                        for t < a
            lr_t = peak * (1 - (t - a) / max(b - a, 1))        for a <= t < b
            lr_t = 0                                           for t >= b
            with a, b the decay's start and end steps.
"""

import optax


def _check_fraction(name: str, value: float, low_open: bool) -> None:
  ok = (0.0 < value <= 1.0) if low_open else (0.0 <= value <= 1.0)
  if not ok:
    interval = '(0, 1]' if low_open else '[0, 1]'
    raise ValueError(f'`{name}` must lie in {interval}, got {value}.')


def warmup_cosine_decay(
    peak_value: float,
    step_hint: int,
    warmup_factor: float,
    decay_end_fraction: float = 1.0,
    end_fraction: float = 0.0,
) -> optax.Schedule:
  """Linear warmup, then cosine decay from `peak_value` to a floor.

  With the defaults this is AlgoPerf's NadamW baseline schedule: warmup over
  `int(warmup_factor * step_hint)` steps, cosine to 0 at `step_hint`. The
  paper's variants: `decay_end_fraction < 1` ends the cosine (then stays at its
  floor) at `int(decay_end_fraction * step_hint)` (a shorter budget), and
  `end_fraction > 0` decays to `end_fraction * peak_value` ("decay less").

  Args:
    peak_value: the learning rate at the end of warmup.
    step_hint: the workload's step hint.
    warmup_factor: warmup length as a fraction of `step_hint`, in [0, 1].
    decay_end_fraction: where the cosine ends, as a fraction of `step_hint`.
    end_fraction: the final learning rate as a fraction of `peak_value`.

  Returns:
    An `optax.Schedule`.
  """
  _check_fraction('warmup_factor', warmup_factor, low_open=False)
  _check_fraction('decay_end_fraction', decay_end_fraction, low_open=True)
  _check_fraction('end_fraction', end_fraction, low_open=False)
  if step_hint < 1:
    raise ValueError(f'`step_hint` must be >= 1, got {step_hint}.')
  warmup_steps = int(warmup_factor * step_hint)
  decay_steps = int(decay_end_fraction * step_hint)
  warmup = optax.linear_schedule(
      init_value=0.0, end_value=peak_value, transition_steps=warmup_steps)
  cosine = optax.cosine_decay_schedule(
      init_value=peak_value,
      decay_steps=max(decay_steps - warmup_steps, 1),
      alpha=end_fraction)
  return optax.join_schedules([warmup, cosine], boundaries=[warmup_steps])


def warmup_constant(
    peak_value: float,
    step_hint: int,
    warmup_factor: float,
) -> optax.Schedule:
  """Linear warmup over `int(warmup_factor * step_hint)` steps, then constant."""
  _check_fraction('warmup_factor', warmup_factor, low_open=False)
  warmup_steps = int(warmup_factor * step_hint)
  return optax.join_schedules(
      [optax.linear_schedule(0.0, peak_value, warmup_steps),
       optax.constant_schedule(peak_value)],
      boundaries=[warmup_steps])


def warmup_stable_decay(
    peak_value: float,
    step_hint: int,
    warmup_factor: float,
    decay_start_fraction: float,
    decay_end_fraction: float = 1.0,
) -> optax.Schedule:
  """Warmup-stable-decay: linear warmup, constant, then linear decay to 0.

  Warmup over `int(warmup_factor * step_hint)` steps, the peak until
  `int(decay_start_fraction * step_hint)`, then linearly to 0 at
  `int(decay_end_fraction * step_hint)` (Hägele et al., arXiv 2405.18392).

  Args:
    peak_value: the learning rate at the end of warmup.
    step_hint: the workload's step hint.
    warmup_factor: warmup length as a fraction of `step_hint`, in [0, 1].
    decay_start_fraction: where the decay starts, in [warmup_factor, 1].
    decay_end_fraction: where it reaches 0, in (decay_start_fraction, 1].

  Returns:
    An `optax.Schedule`.
  """
  _check_fraction('warmup_factor', warmup_factor, low_open=False)
  _check_fraction('decay_start_fraction', decay_start_fraction, low_open=False)
  _check_fraction('decay_end_fraction', decay_end_fraction, low_open=True)
  if not warmup_factor <= decay_start_fraction < decay_end_fraction:
    raise ValueError(
        '`warmup_factor`, `decay_start_fraction` and `decay_end_fraction` '
        'must satisfy warmup <= start < end, got '
        f'{warmup_factor}, {decay_start_fraction}, {decay_end_fraction}.')
  if step_hint < 1:
    raise ValueError(f'`step_hint` must be >= 1, got {step_hint}.')
  warmup_steps = int(warmup_factor * step_hint)
  start = int(decay_start_fraction * step_hint)
  end = int(decay_end_fraction * step_hint)
  return optax.join_schedules(
      [optax.linear_schedule(0.0, peak_value, warmup_steps),
       optax.constant_schedule(peak_value),
       optax.linear_schedule(peak_value, 0.0, max(end - start, 1))],
      boundaries=[warmup_steps, start])
