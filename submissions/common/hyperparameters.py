"""The hyperparameter rules: a trial's values, read and range-checked."""

import numbers
from typing import Any, Callable, Dict, Mapping, Optional, Tuple


def _is_fraction(v, closed_high=False, open_low=False):
  low_ok = v > 0 if open_low else v >= 0
  return low_ok and (v <= 1 if closed_high else v < 1)


def _is_positive_int(v):
  return float(v).is_integer() and v >= 1


_RULES: Dict[str, Tuple[Callable[[float], bool], str]] = {
    'learning_rate': (lambda v: v > 0, 'a number > 0'),
    'one_minus_beta1': (lambda v: 0 < v < 1, 'a number in (0, 1)'),
    'beta2': (lambda v: 0 < v < 1, 'a number in (0, 1)'),
    'weight_decay': (lambda v: v >= 0, 'a number >= 0'),
    'warmup_factor': (lambda v: _is_fraction(v, closed_high=True),
                      'a number in [0, 1]'),
    'dropout_rate': (_is_fraction, 'a number in [0, 1)'),
    'label_smoothing': (_is_fraction, 'a number in [0, 1)'),
    'grad_clip': (lambda v: v > 0, 'a number > 0'),
    'averaging_start_fraction': (_is_fraction, 'a number in [0, 1)'),
    'averaging_window_fraction': (
        lambda v: _is_fraction(v, closed_high=True, open_low=True),
        'a number in (0, 1]'),
    'ema_decay': (_is_fraction, 'a number in [0, 1)'),
    'lawa_queue_length': (_is_positive_int, 'an integer >= 1'),
    'lawa_queue_location': (lambda v: v in LAWA_QUEUE_LOCATIONS,
                            "'host' or 'device'"),
    'averaging_every_steps': (_is_positive_int, 'an integer >= 1'),
    'weight_lr_power': (lambda v: v >= 0, 'a number >= 0'),
    'decay_start_fraction': (_is_fraction, 'a number in [0, 1)'),
    'decay_end_fraction': (
        lambda v: _is_fraction(v, closed_high=True, open_low=True),
        'a number in (0, 1]'),
    'ema_max_window_fraction': (
        lambda v: _is_fraction(v, closed_high=True, open_low=True),
        'a number in (0, 1]'),
    'ema_min_window_fraction': (
        lambda v: _is_fraction(v, closed_high=True, open_low=True),
        'a number in (0, 1]'),
    'select_every_steps': (_is_positive_int, 'an integer >= 1'),
}


# Where LAWA keeps its snapshots: host memory (a running sum, no copy on the
# device between snapshots), or the device (L param copies in the state).
LAWA_QUEUE_LOCATIONS = ('host', 'device')
_CHOICES = ('lawa_queue_location',)  # Hyperparameters that are strings.

# Hyperparameters a trial may leave out, and their value when it does.
OPTIONAL_HYPERPARAMETERS = {
    'label_smoothing': 0.0,
    'grad_clip': None,
    'averaging_every_steps': None,
    'lawa_queue_location': 'host',
    'weight_lr_power': 2.0,
    'decay_start_fraction': None,
    'decay_end_fraction': 1.0,
    'select_every_steps': None,
}


def read_hyperparameters(
    hyperparameters: Any,
    self_tuning: Mapping[str, Optional[float]],
) -> Dict[str, Optional[float]]:
  """Checks the hyperparameters a submission reads and returns them as a dict.

  Args:
    hyperparameters: AlgoPerf's namedtuple (or a mapping) of one trial, or
      `None` under the self-tuning ruleset, which selects `self_tuning`.
    self_tuning: every hyperparameter the submission reads, with its
      self-tuning value. Names in `OPTIONAL_HYPERPARAMETERS` may be absent
      from a trial; all others are required.

  Returns:
    `{name: value}` for every name of `self_tuning`.

  Raises:
    ValueError: naming the hyperparameter that is missing or out of range.
  """
  if hyperparameters is None:
    given = dict(self_tuning)
  elif isinstance(hyperparameters, Mapping):
    given = dict(hyperparameters)
  else:
    given = {k: getattr(hyperparameters, k) for k in self_tuning
             if hasattr(hyperparameters, k)}
  values = {}
  for name in self_tuning:
    if name not in given and name not in OPTIONAL_HYPERPARAMETERS:
      raise ValueError(
          f'Missing hyperparameter `{name}`; this submission reads '
          f'{sorted(self_tuning)}.')
    value = given.get(name, OPTIONAL_HYPERPARAMETERS.get(name))
    check, accepted = _RULES[name]
    is_number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if value is not None and (
        not (is_number or name in _CHOICES) or not check(value)):
      raise ValueError(
          f'Hyperparameter `{name}` must be {accepted}, got {value!r}.')
    values[name] = value
  return values


def check_hyperparameters(hyperparameters: Any,
                          self_tuning: Mapping[str, Optional[float]]) -> None:
  """`read_hyperparameters`, also rejecting names the submission never reads.

  localperf's runner calls a submission's `check_hyperparameters` on every
  trial's point before training, so a typo in a search space fails at once.
  """
  given = (hyperparameters._asdict() if hasattr(hyperparameters, '_asdict')
           else dict(hyperparameters or {}))
  unknown = sorted(set(given) - set(self_tuning))
  if unknown:
    raise ValueError(
        f'Unknown hyperparameter(s) {unknown}; this submission reads '
        f'{sorted(self_tuning)}.')
  read_hyperparameters(hyperparameters, self_tuning)


def averaging_start_step(hparams: Mapping[str, Any], step_hint: int) -> int:
  """`round(averaging_start_fraction * step_hint)`: the first snapshot step."""
  return round(hparams['averaging_start_fraction'] * step_hint)
