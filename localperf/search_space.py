"""Tuning search spaces in AlgoPerf's two JSON formats, checked and sampled.

Format 1, distributions (a JSON object), one entry per hyperparameter:

  {"learning_rate": {"min": 1e-4, "max": 1e-2, "scaling": "log"},
   "dropout_rate": {"feasible_points": [0.0, 0.1]}}

sampled as AlgoPerf does: trial i takes point i of a scrambled, shifted
Halton sequence (one prime base per hyperparameter, the first 100 points
skipped, the points shuffled), mapped to each range (log: min * (max/min)^u,
linear: min + u (max - min), discrete: feasible_points[floor(u n)]). Unlike
AlgoPerf's, the scrambling, shifts and shuffle come from `seed`, so a study is
repeatable.

Format 2, points (a JSON list of objects with the same keys): trial i is
point i, and at most len(points) trials run.

Every problem is a ValueError naming the hyperparameter and field, raised
before any training.
"""

import collections
import json
import math
from typing import Any, Dict, List, Sequence, Union

import numpy as np

SearchSpace = Union[Dict[str, Dict[str, Any]], List[Dict[str, Any]]]
SCALINGS = ('linear', 'log')
_HALTON_SKIP = 100


def load_search_space(path: str) -> SearchSpace:
  """Reads and checks `path`; ValueError on unreadable JSON or a bad entry."""
  try:
    with open(path, encoding='utf-8') as f:
      space = json.load(f)
  except OSError as e:
    raise ValueError(f'tuning_search_space {path!r}: cannot read: {e}') from e
  except json.JSONDecodeError as e:
    raise ValueError(
        f'tuning_search_space {path!r}: malformed JSON: {e}') from e
  try:
    check_search_space(space)
  except ValueError as e:
    raise ValueError(f'tuning_search_space {path!r}: {e}') from e
  return space


def check_search_space(space: Any) -> None:
  """Raises ValueError naming the first bad field of either format."""
  if isinstance(space, dict):
    if not space:
      raise ValueError('the search space names no hyperparameters.')
    for name, entry in space.items():
      _check_distribution(name, entry)
  elif isinstance(space, list):
    if not space:
      raise ValueError('the list of points is empty.')
    keys = None
    for i, point in enumerate(space):
      if not isinstance(point, dict) or not point:
        raise ValueError(f'point {i} must be a non-empty object of '
                         f'hyperparameter values, got {point!r}.')
      keys = set(point) if keys is None else keys
      if set(point) != keys:
        raise ValueError(f'point {i} has keys {sorted(point)}, point 0 has '
                         f'{sorted(keys)}; all points need the same keys.')
  else:
    raise ValueError('the search space must be a JSON object of '
                     'distributions or a list of points, got '
                     f'{type(space).__name__}.')


def _check_distribution(name: str, entry: Any) -> None:
  where = f'hyperparameter {name!r}'
  if not isinstance(entry, dict):
    raise ValueError(f'{where}: must be an object with "min", "max" and '
                     f'"scaling", or with "feasible_points"; got {entry!r}.')
  if 'feasible_points' in entry:
    points = entry['feasible_points']
    if not isinstance(points, list) or not points:
      raise ValueError(f'{where}: "feasible_points" must be a non-empty '
                       f'list, got {points!r}.')
    return
  for field in ('min', 'max', 'scaling'):
    if field not in entry:
      raise ValueError(f'{where}: missing "{field}" (give "min", "max" and '
                       '"scaling", or "feasible_points").')
  low, high, scaling = entry['min'], entry['max'], entry['scaling']
  for field, value in (('min', low), ('max', high)):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
      raise ValueError(f'{where}: "{field}" must be a number, got {value!r}.')
  if low > high:
    raise ValueError(f'{where}: "min" ({low}) is greater than "max" '
                     f'({high}).')
  if scaling not in SCALINGS:
    raise ValueError(f'{where}: unknown "scaling" {scaling!r}; accepted: '
                     f'{", ".join(SCALINGS)}.')
  if scaling == 'log' and low <= 0:
    raise ValueError(f'{where}: "scaling" "log" needs "min" > 0, got '
                     f'{low}.')


def generate_search(space: SearchSpace, num_trials: int,
                    seed: int) -> List[Any]:
  """`num_trials` hyperparameter points as `Hyperparameters` namedtuples."""
  check_search_space(space)
  if num_trials < 1:
    raise ValueError(f'num_tuning_trials must be >= 1, got {num_trials}.')
  if isinstance(space, list):
    names = list(space[0])
    points = space[:num_trials]
  else:
    names = list(space)
    unit = halton_points(num_trials, len(names), seed)
    points = [{name: _scale(space[name], u) for name, u in zip(names, row)}
              for row in unit]
  hyperparameters = collections.namedtuple('Hyperparameters', names)
  return [hyperparameters(**point) for point in points]


def _scale(entry: Dict[str, Any], u: float) -> Any:
  if 'feasible_points' in entry:
    points = entry['feasible_points']
    return points[min(int(math.floor(u * len(points))), len(points) - 1)]
  low, high = entry['min'], entry['max']
  if entry['scaling'] == 'log':
    return low * math.exp(u * math.log(high / low))
  return low + u * (high - low)


def halton_points(num_points: int, num_dims: int, seed: int) -> np.ndarray:
  """A seeded, scrambled and shifted Halton sequence in [0, 1)^num_dims.

  Dimension d uses the d-th prime as base b: point i is the radical inverse
  of i + 1 + skip with digits permuted (0 stays 0, the other digits shuffled),
  plus a random shift mod 1. Rows come back in a random order.
  """
  rng = np.random.default_rng(seed)
  columns = []
  for base in _primes(num_dims):
    digits = np.concatenate([[0], 1 + rng.permutation(base - 1)])
    shift = rng.random()
    column = [_radical_inverse(i + 1 + _HALTON_SKIP, base, digits)
              for i in range(num_points)]
    columns.append(np.mod(np.asarray(column) + shift, 1.0))
  points = np.stack(columns, axis=1) if columns else np.zeros((num_points, 0))
  return points[rng.permutation(num_points)]


def _radical_inverse(index: int, base: int, digits: Sequence[int]) -> float:
  value, scale = 0.0, 1.0 / base
  while index:
    index, digit = divmod(index, base)
    value += digits[digit] * scale
    scale /= base
  return value


def _primes(count: int) -> List[int]:
  primes, candidate = [], 2
  while len(primes) < count:
    if all(candidate % p for p in primes):
      primes.append(candidate)
    candidate += 1
  return primes
