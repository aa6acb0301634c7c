"""Search spaces: both AlgoPerf formats, clear errors, seeded Halton sampling."""

import json
import math

import numpy as np
import pytest

from localperf import search_space


def _write(tmp_path, content):
  path = tmp_path / 'space.json'
  path.write_text(content if isinstance(content, str) else json.dumps(content))
  return str(path)


@pytest.mark.parametrize('content, words', [
    ('{"learning_rate": {"min": 0.1,', ['malformed JSON']),
    ({'learning_rate': {'max': 1.0, 'scaling': 'log'}},
     ["'learning_rate'", '"min"']),
    ({'learning_rate': {'min': 0.1, 'scaling': 'log'}},
     ["'learning_rate'", '"max"']),
    ({'learning_rate': {'min': 0.1, 'max': 1.0}},
     ["'learning_rate'", '"scaling"']),
    ({'learning_rate': {'min': 1.0, 'max': 0.1, 'scaling': 'linear'}},
     ["'learning_rate'", '"min" (1.0) is greater than "max" (0.1)']),
    ({'learning_rate': {'min': 0.1, 'max': 1.0, 'scaling': 'cubic'}},
     ["'learning_rate'", "'cubic'", 'linear, log']),
    ({'learning_rate': {'min': 0.0, 'max': 1.0, 'scaling': 'log'}},
     ["'learning_rate'", '"min" > 0']),
    ({'beta2': {'min': -1.0, 'max': 1.0, 'scaling': 'log'}},
     ["'beta2'", '"min" > 0']),
    ({'dropout_rate': {'feasible_points': []}},
     ["'dropout_rate'", '"feasible_points"', 'non-empty']),
    ({'learning_rate': {'min': 'a', 'max': 1.0, 'scaling': 'log'}},
     ["'learning_rate'", '"min" must be a number']),
    ({'learning_rate': 0.1}, ["'learning_rate'", 'must be an object']),
    ({}, ['no hyperparameters']),
    ([], ['empty']),
    ([{'learning_rate': 0.1}, {'lr': 0.1}], ['point 1', 'same keys']),
    ('"just a string"', ['object of distributions or a list of points']),
])
def test_bad_search_space_names_the_field(tmp_path, content, words):
  path = _write(tmp_path, content)
  with pytest.raises(ValueError) as error:
    search_space.load_search_space(path)
  for word in words:
    assert word in str(error.value)
  assert path in str(error.value)


def test_missing_file_is_a_clear_error(tmp_path):
  with pytest.raises(ValueError, match='cannot read'):
    search_space.load_search_space(str(tmp_path / 'absent.json'))


def test_list_of_points_is_taken_in_order_and_truncated():
  points = [{'learning_rate': 0.1, 'warmup_factor': 0.02},
            {'learning_rate': 0.2, 'warmup_factor': 0.05}]
  trials = search_space.generate_search(points, num_trials=5, seed=0)
  assert [t._asdict() for t in trials] == points
  assert type(trials[0]).__name__ == 'Hyperparameters'
  assert search_space.generate_search(points, 1, 0)[0].learning_rate == 0.1


def test_distributions_respect_bounds_scaling_and_feasible_points():
  space = {'learning_rate': {'min': 1e-4, 'max': 1e-2, 'scaling': 'log'},
           'weight_decay': {'min': 0.0, 'max': 0.5, 'scaling': 'linear'},
           'dropout_rate': {'feasible_points': [0.0, 0.1, 0.2]}}
  trials = search_space.generate_search(space, num_trials=64, seed=3)
  lr = np.array([t.learning_rate for t in trials])
  wd = np.array([t.weight_decay for t in trials])
  assert np.all((lr >= 1e-4) & (lr <= 1e-2))
  assert np.all((wd >= 0.0) & (wd <= 0.5))
  # Log scaling: half the points below the geometric mean 1e-3.
  assert abs(np.mean(lr < 1e-3) - 0.5) <= 0.1
  # Linear scaling: half the points below the midpoint.
  assert abs(np.mean(wd < 0.25) - 0.5) <= 0.1
  drops = [t.dropout_rate for t in trials]
  assert set(drops) == {0.0, 0.1, 0.2}
  assert all(abs(drops.count(v) - 64 / 3) <= 3 for v in (0.0, 0.1, 0.2))


def test_sampling_is_seeded():
  space = {'learning_rate': {'min': 1e-4, 'max': 1e-2, 'scaling': 'log'}}
  a = search_space.generate_search(space, 4, seed=7)
  b = search_space.generate_search(space, 4, seed=7)
  c = search_space.generate_search(space, 4, seed=8)
  assert a == b
  assert a != c


@pytest.mark.parametrize('dim, base', [(0, 2), (1, 3)])
def test_halton_points_are_evenly_spread(dim, base):
  """n = base^k consecutive Halton points put one point in each 1/n cell
  (before the shift), so each of `base` equal bins gets n/base +- 1 points;
  independent uniform draws would vary by about sqrt(n/base)."""
  n = base ** 4
  points = search_space.halton_points(n, 2, seed=11)[:, dim]
  assert np.all((points >= 0) & (points < 1))
  counts = np.histogram(points, bins=base, range=(0, 1))[0]
  assert np.all(np.abs(counts - n / base) <= 1), counts
  # Every one of the n cells of width 1/n holds at most two points.
  cells = np.bincount(np.floor(points * n).astype(int), minlength=n)
  assert cells.max() <= 2


def test_num_trials_must_be_positive():
  with pytest.raises(ValueError, match='num_tuning_trials'):
    search_space.generate_search([{'a': 1}], 0, 0)


def test_log_scaling_formula():
  space = {'x': {'min': 2.0, 'max': 32.0, 'scaling': 'log'}}
  value = search_space.generate_search(space, 1, seed=5)[0].x
  u = search_space.halton_points(1, 1, seed=5)[0, 0]
  assert math.isclose(value, 2.0 * 16.0 ** u)
