"""workloads_config/ agrees with AlgoPerf's facts, the paper and the code."""

import importlib
import json
import pathlib

import jax
import numpy as np
import optax
import pytest

from localperf import search_space
from submissions import common
from localperf import toy_workload

REPO = pathlib.Path(__file__).resolve().parent.parent
CONFIG = REPO / 'workloads_config'
SUBMISSIONS = ('nadamw', 'nadamw_ema', 'nadamw_lawa', 'schedule_free_adamw',
               'nadamw_codesign')
PAPER_SEVEN = ['criteo1tb', 'fastmri', 'imagenet_vit', 'librispeech_conformer',
               'librispeech_deepspeech', 'ogbg', 'wmt']
# AlgoPerf's NadamW baseline list, points 1 and 4 (of five), as published.
BASELINE_POINT_1 = {
    'dropout_rate': 0.0, 'label_smoothing': 0.1,
    'learning_rate': 0.001308209823469072, 'one_minus_beta1': 0.02686663061,
    'beta2': 0.9981232922116359, 'weight_decay': 0.16375311233774334,
    'warmup_factor': 0.1}
BASELINE_POINT_4 = {
    'dropout_rate': 0.0, 'label_smoothing': 0.0,
    'learning_rate': 0.004958460849689891, 'one_minus_beta1': 0.13625575743,
    'beta2': 0.6291854735396584, 'weight_decay': 0.1147386261512052,
    'warmup_factor': 0.02}
EMA = {'averaging_start_fraction': 0.0, 'averaging_window_fraction': 0.01,
       'ema_decay': 0.9}
LAWA = {'averaging_start_fraction': 0.0, 'averaging_window_fraction': 0.01,
        'lawa_queue_length': 20}
PAPER_POINTS = {'criteo1tb': 5, 'fastmri': 3, 'imagenet_vit': 2,
                'librispeech_conformer': 5, 'librispeech_deepspeech': 5,
                'ogbg': 5, 'wmt': 3}


def _load(path):
  with open(path, encoding='utf-8') as f:
    return json.load(f)


def _submission(name):
  """The submission module; skips schedule-free where optax lacks it."""
  if name == 'schedule_free_adamw' and not hasattr(
      optax.contrib, 'schedule_free_adamw'):
    pytest.skip(f'optax {optax.__version__} lacks '
                'optax.contrib.schedule_free_adamw (needs >= 0.2.3).')
  return importlib.import_module(f'submissions.{name}.submission')


def _all_search_spaces():
  external = sorted((CONFIG / 'external_tuning').glob('*.json'))
  paper = sorted((CONFIG / 'paper_runs').glob('*/*.json'))
  return [(p.stem, p) for p in external] + [(p.parent.name, p) for p in paper]


# ----------------------------------------------------------------------------
# External tuning.


def test_local_comparison_runs_schedule_free_at_nadamw_point_4():
  # The analogues' reference point (baseline point 4) plus the leaderboard
  # entry's weight_lr_power 2 (the local comparison's one point).
  points = _load(CONFIG / 'local_comparison' / 'schedule_free_adamw.json')
  assert points == [{**BASELINE_POINT_4, 'weight_lr_power': 2.0}]


@pytest.mark.parametrize('name', SUBMISSIONS)
def test_search_space_beside_submission_matches_config(name):
  beside = _load(REPO / 'submissions' / name / 'tuning_search_space.json')
  assert beside == _load(CONFIG / 'external_tuning' / f'{name}.json')


def test_nadamw_is_the_published_baseline_list():
  points = _load(CONFIG / 'external_tuning' / 'nadamw.json')
  assert len(points) == 5
  assert points[0] == BASELINE_POINT_1
  assert points[2] == {**BASELINE_POINT_1, 'label_smoothing': 0.0}
  assert points[3] == BASELINE_POINT_4
  # Point 5 is the self-tuning baseline's setting.
  self_tuning = _submission('nadamw').SELF_TUNING_HYPERPARAMETERS
  assert points[4] == {k: v for k, v in self_tuning.items()
                       if k != 'grad_clip'}


@pytest.mark.parametrize('name, averaging', [('nadamw_ema', EMA),
                                             ('nadamw_lawa', LAWA)])
def test_averaging_spaces_add_the_papers_settings_to_each_point(
    name, averaging):
  nadamw = _load(CONFIG / 'external_tuning' / 'nadamw.json')
  points = _load(CONFIG / 'external_tuning' / f'{name}.json')
  assert points == [{**p, **averaging} for p in nadamw]


def test_schedule_free_space_is_its_v05_self_tuning_point():
  points = _load(CONFIG / 'external_tuning' / 'schedule_free_adamw.json')
  assert points == [{
      'learning_rate': 0.0025, 'one_minus_beta1': 0.1,
      'beta2': 0.9955159689799007, 'weight_decay': 0.08121616522670176,
      'warmup_factor': 0.02, 'weight_lr_power': 2.0, 'dropout_rate': 0.1,
      'label_smoothing': 0.2}]


@pytest.mark.parametrize('name', SUBMISSIONS)
def test_self_tuning_copy_matches_code(name):
  copy = _load(CONFIG / 'self_tuning_hyperparameters.json')[name]
  assert copy == _submission(name).SELF_TUNING_HYPERPARAMETERS


# ----------------------------------------------------------------------------
# Paper runs (research only).


def test_paper_settings_are_marked_and_hold_the_papers_choices():
  settings = _load(CONFIG / 'paper_runs' / 'paper_settings.json')
  assert settings['_rules'] == 'research only'
  assert settings['nadamw_point_by_workload'] == PAPER_POINTS
  assert settings['averaging_grid_searched'] == {
      'averaging_every_steps': [32, 64, 128, 256, 512, 1024, 2048],
      'lawa_queue_length': [2, 5, 10, 20, 50],
      'ema_decay': [0.6, 0.8, 0.9, 0.95, 0.99]}
  assert 'research only' in (CONFIG / 'paper_runs' / 'README.md').read_text()


@pytest.mark.parametrize('workload', PAPER_SEVEN)
def test_paper_search_spaces_follow_the_settings(workload):
  nadamw = _load(CONFIG / 'external_tuning' / 'nadamw.json')
  point = nadamw[PAPER_POINTS[workload] - 1]
  runs = CONFIG / 'paper_runs'
  assert _load(runs / 'nadamw' / f'{workload}.json') == [point]
  assert _load(runs / 'nadamw_ema' / f'{workload}.json') == [
      {**point, **EMA, 'averaging_every_steps': nu} for nu in (64, 128)]
  assert _load(runs / 'nadamw_lawa' / f'{workload}.json') == [
      {**point, **LAWA, 'averaging_every_steps': nu} for nu in (64, 128)]


# ----------------------------------------------------------------------------
# Workload facts.


def test_workload_facts():
  facts = _load(CONFIG / 'algoperf_workloads_v06.json')
  assert facts['paper_seven'] == PAPER_SEVEN
  workloads = facts['workloads']
  assert sorted(workloads) == [
      'criteo1tb', 'fastmri', 'imagenet_resnet', 'imagenet_vit',
      'librispeech_conformer', 'librispeech_deepspeech', 'mnist', 'ogbg',
      'wmt']
  assert workloads['wmt']['step_hint'] == 120_000
  assert workloads['criteo1tb']['validation_target_value'] == 0.123735
  assert workloads['ogbg']['max_allowed_runtime_sec'] == 12011
  assert workloads['librispeech_deepspeech']['data_flags'] == {
      'librispeech_tokenizer_vocab_path': 'librispeech/spm_model.vocab'}
  for name, workload in workloads.items():
    assert workload['global_batch_size'] == common.BATCH_SIZES[name], name


# ----------------------------------------------------------------------------
# Every search space samples and trains with the code.


@pytest.mark.parametrize(
    'name, path', _all_search_spaces(),
    ids=[str(p.relative_to(CONFIG)) for _, p in _all_search_spaces()])
def test_search_space_samples_into_the_submissions_hyperparameters(name, path):
  module = _submission(name)
  space = search_space.load_search_space(str(path))
  trials = search_space.generate_search(space, 5, seed=0)
  assert len(trials) == min(5, len(space))
  for trial in trials:
    assert set(trial._fields) <= set(module.SELF_TUNING_HYPERPARAMETERS)
    common.read_hyperparameters(trial, module.SELF_TUNING_HYPERPARAMETERS)


def _train(module, hyperparameters, num_steps=3):
  """Trains `num_steps` on the toy workload; returns (initial, eval) params."""
  workload = toy_workload.ToyWorkload(step_hint=50)
  rng = jax.random.PRNGKey(0)
  params, model_state = workload.init_model_fn(rng)
  initial = jax.tree.map(np.asarray, params)
  state = module.init_optimizer_state(workload, params, model_state,
                                      hyperparameters, rng)
  queue = workload._build_input_queue(rng, 'train', None, 16)
  calls = dict(workload=workload, current_params_types=workload.model_params_types,
               hyperparameters=hyperparameters, loss_type=workload.loss_type,
               eval_results=[], rng=rng)
  for step in range(num_steps):
    state, params, model_state = module.update_params(
        current_param_container=params, model_state=model_state,
        batch=next(queue), optimizer_state=state, global_step=step, **calls)
  _, params, _ = module.prepare_for_eval(
      current_param_container=params, model_state=model_state,
      optimizer_state=state, global_step=num_steps, **calls)
  return initial, params


@pytest.mark.parametrize('name', SUBMISSIONS)
def test_first_point_trains(name):
  module = _submission(name)
  path = CONFIG / 'external_tuning' / f'{name}.json'
  space = search_space.load_search_space(str(path))
  first = search_space.generate_search(space, 1, seed=0)[0]
  initial, evaluated = _train(module, first)
  leaves = jax.tree.leaves(jax.tree.map(np.asarray, evaluated))
  assert all(np.isfinite(leaf).all() for leaf in leaves)
  changed = jax.tree.map(lambda a, b: not np.allclose(a, b), initial,
                         evaluated)
  assert any(jax.tree.leaves(changed))
