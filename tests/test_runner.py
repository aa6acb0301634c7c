"""The runner against AlgoPerf's submission_runner semantics (fake clock)."""

import csv
import importlib.util
import json
import os
import pathlib

import jax
import numpy as np
import pytest
from flax import serialization

from localperf import logs
from localperf import runner
from localperf import spec
from localperf import workloads as registry

FIXTURES = pathlib.Path(__file__).parent / 'fixtures'
SGD = str(FIXTURES / 'sgd' / 'submission.py')
SGD_SPACE = str(FIXTURES / 'sgd' / 'tuning_search_space.json')
# The header of AlgoPerf's own eval_measurements.csv for mnist (accuracy)
# (scoring/test_data/experiment_dir/study_0/mnist_jax/trial_0/).
ALGOPERF_COLUMNS = [
    'accumulated_eval_time', 'accumulated_logging_time',
    'accumulated_submission_time', 'global_step', 'preemption_count', 'score',
    'test/accuracy', 'test/loss', 'test/num_examples', 'total_duration',
    'train/accuracy', 'train/loss', 'validation/accuracy', 'validation/loss',
    'validation/num_examples']


def _load(path, name):
  module_spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module


TINY = _load(FIXTURES / 'tiny_workload.py', 'tiny_workload').TinyWorkload


class FakeClock:
  """Wall time that moves only when a test says so."""

  def __init__(self, start=1000.0):
    self.now = start

  def __call__(self):
    return self.now


@pytest.fixture
def clock():
  return FakeClock()


def _register(monkeypatch, clock=None, eval_sec=0.0, **attributes):
  """Registers 'tiny' with class attributes overridden; evals cost eval_sec."""

  class Tiny(TINY):

    def eval_model(self, *args, **kwargs):
      if clock is not None:
        clock.now += eval_sec
      return super().eval_model(*args, **kwargs)

  for key, value in attributes.items():
    setattr(Tiny, key, value)
  monkeypatch.setitem(registry._WORKLOADS, 'tiny', Tiny)  # pylint: disable=protected-access


def _timed(fn, clock, seconds):
  def wrapper(*args, **kwargs):
    clock.now += seconds
    return fn(*args, **kwargs)
  return wrapper


def _plan(submission_path=SGD, space=SGD_SPACE, ruleset='external', seed=0,
          **replace):
  plan = runner.plan_trials('tiny', submission_path, ruleset,
                            space if ruleset == 'external' else None, 1, seed)
  return plan._replace(submission=plan.submission._replace(**replace))


def _timed_plan(clock, select=0.25, update=1.0, prepare=0.5, **kwargs):
  sub = runner.load_submission(SGD)
  return _plan(data_selection=_timed(sub.data_selection, clock, select),
               update_params=_timed(sub.update_params, clock, update),
               prepare_for_eval=_timed(sub.prepare_for_eval, clock, prepare),
               **kwargs)


UNREACHABLE = {'validation_target_value': 2.0, 'test_target_value': 2.0}


def test_submission_time_is_selection_update_and_prepare(monkeypatch, clock):
  _register(monkeypatch, clock, eval_sec=10.0, **UNREACHABLE)
  plan = _timed_plan(clock)
  settings = runner.TrialSettings(max_global_steps=20, eval_every_n_steps=5)
  [result] = runner.run_trials(plan, None, settings, clock=clock)
  assert result.global_step == 20
  assert [s for s, _ in result.eval_results] == [5, 10, 15, 20]
  # 20 steps of (0.25 + 1.0) s, 4 prepares of 0.5 s; evals (10 s) untimed.
  assert result.score == pytest.approx(20 * 1.25 + 4 * 0.5)
  first = result.eval_results[0][1]
  assert first['score'] == pytest.approx(5 * 1.25 + 0.5)
  assert first['accumulated_eval_time'] == pytest.approx(10.0)
  assert first['total_duration'] == pytest.approx(5 * 1.25 + 0.5 + 10.0)
  last = result.eval_results[-1][1]
  assert last['accumulated_eval_time'] == pytest.approx(40.0)


def test_wall_time_evals_follow_eval_period(monkeypatch, clock):
  """AlgoPerf's rule: the first step always evals (last_eval_time starts at
  0), then an eval when eval_period_time_sec has passed since the last eval
  ended, and at the last step."""
  _register(monkeypatch, clock, eval_sec=7.0, eval_period_time_sec=3,
            **UNREACHABLE)
  plan = _timed_plan(clock, select=0.0, update=1.0, prepare=0.0)
  settings = runner.TrialSettings(max_global_steps=11)
  [result] = runner.run_trials(plan, None, settings, clock=clock)
  assert [s for s, _ in result.eval_results] == [1, 4, 7, 10, 11]


@pytest.mark.parametrize('ruleset, evals', [
    ('external', [3, 6, 9, 10]), ('self', [3, 6, 9, 12, 15])])
def test_run_stops_at_its_step_budget_whatever_the_wall_time(
    monkeypatch, clock, ruleset, evals):
  """step_hint 10: a budget of 10 steps (15 self-tuning, AlgoPerf's 1.5x),
  evals every 3 steps and one at the budget's last step. 1 s per step
  against max_allowed_runtime_sec 2: the wall clock stops nothing, and is
  still logged as the score."""
  _register(monkeypatch, clock, step_hint=10, max_allowed_runtime_sec=2,
            **UNREACHABLE)
  plan = _timed_plan(clock, select=0.0, update=1.0, prepare=0.0,
                     ruleset=ruleset)
  settings = runner.TrialSettings(eval_every_n_steps=3)
  [result] = runner.run_trials(plan, None, settings, clock=clock)
  assert [s for s, _ in result.eval_results] == evals
  assert result.global_step == evals[-1]
  assert result.score == pytest.approx(evals[-1])


def test_run_stops_when_both_targets_reached(monkeypatch):
  _register(monkeypatch)
  settings = runner.TrialSettings(max_global_steps=500, eval_every_n_steps=2)
  [result] = runner.run_trials(_plan(), None, settings)
  reached = [r['validation/accuracy'] > 0.9 and r['test/accuracy'] > 0.9
             for _, r in result.eval_results]
  assert reached[-1] and not any(reached[:-1])
  assert result.global_step == result.eval_results[-1][0] < 500


def test_training_complete_error_ends_run_after_a_final_eval(
    monkeypatch, clock):
  _register(monkeypatch, clock, **UNREACHABLE)
  sub = runner.load_submission(SGD)

  def update_params(**kwargs):
    if kwargs['global_step'] == 6:
      raise spec.TrainingCompleteError()
    return sub.update_params(**kwargs)

  plan = _plan(update_params=update_params)
  settings = runner.TrialSettings(eval_every_n_steps=5)
  [result] = runner.run_trials(plan, None, settings, clock=clock)
  assert result.global_step == 7
  assert [s for s, _ in result.eval_results] == [5, 7]


def test_max_global_steps_ends_run_with_an_eval(monkeypatch, clock):
  _register(monkeypatch, clock, **UNREACHABLE)
  settings = runner.TrialSettings(max_global_steps=8, eval_every_n_steps=5)
  [result] = runner.run_trials(_plan(), None, settings, clock=clock)
  assert result.global_step == 8
  assert [s for s, _ in result.eval_results] == [5, 8]


def test_rngs_are_derived_as_algoperf_does(monkeypatch, clock):
  _register(monkeypatch, clock, **UNREACHABLE)
  sub = runner.load_submission(SGD)
  seen = {}

  def update_params(**kwargs):
    seen[kwargs['global_step']] = np.asarray(kwargs['rng'])
    return sub.update_params(**kwargs)

  settings = runner.TrialSettings(max_global_steps=3)
  runner.run_trials(_plan(update_params=update_params, seed=42), None,
                    settings, clock=clock)
  key = jax.random.split(jax.random.PRNGKey(42), 2)[0]  # External ruleset.
  rest = jax.random.split(key, 4)[3]
  for step in range(3):
    expected = jax.random.split(jax.random.fold_in(rest, step), 4)[1]
    np.testing.assert_array_equal(seen[step], np.asarray(expected))


def test_log_layout_and_columns_match_algoperf(monkeypatch, clock, tmp_path):
  _register(monkeypatch, clock, **UNREACHABLE)
  log_dir = logs.get_log_dir(str(tmp_path), 'tiny', 'exp', False, False)
  assert log_dir == str(tmp_path / 'exp' / 'tiny_jax')
  settings = runner.TrialSettings(max_global_steps=6, eval_every_n_steps=3,
                                  flags={'workload': 'tiny'})
  runner.run_trials(_plan(seed=5), log_dir, settings, clock=clock)
  trial = tmp_path / 'exp' / 'tiny_jax' / 'trial_1'
  assert sorted(os.listdir(trial)) == [
      'checkpoint_6', 'eval_measurements.csv', 'flags_0.json', 'hparams.json',
      'measurements.csv', 'meta_data_0.json']
  with open(trial / 'eval_measurements.csv', newline='') as f:
    rows = list(csv.reader(f))
  assert rows[0] == ALGOPERF_COLUMNS
  assert [r[rows[0].index('global_step')] for r in rows[1:]] == ['3', '6']
  assert [r[rows[0].index('preemption_count')] for r in rows[1:]] == ['0', '0']
  measurements = logs.read_csv(str(trial / 'measurements.csv'))
  assert len(measurements) == 3  # Two evals, then the final score row.
  assert measurements[-1]['validation/accuracy'] == ''
  assert measurements[-1]['global_step'] == '6'
  assert float(measurements[-1]['score']) == pytest.approx(
      float(measurements[-2]['score']))
  assert json.loads((trial / 'hparams.json').read_text()) == {
      'learning_rate': 0.5}
  assert json.loads((trial / 'flags_0.json').read_text()) == {
      'workload': 'tiny'}
  meta = json.loads((trial / 'meta_data_0.json').read_text())
  assert meta['rng_seed'] == 5
  assert meta['workload.step_hint'] == 100
  assert meta['workload.target_metric_name'] == 'accuracy'


def test_existing_experiment_dir_needs_overwrite_or_resume(tmp_path):
  logs.get_log_dir(str(tmp_path), 'tiny', 'exp', False, False)
  with pytest.raises(ValueError, match='--overwrite.*--resume_last_run'):
    logs.get_log_dir(str(tmp_path), 'tiny', 'exp', False, False)
  (tmp_path / 'exp' / 'tiny_jax' / 'old').write_text('x')
  logs.get_log_dir(str(tmp_path), 'tiny', 'exp', True, False)
  assert (tmp_path / 'exp' / 'tiny_jax' / 'old').exists()
  logs.get_log_dir(str(tmp_path), 'tiny', 'exp', False, True)
  assert not (tmp_path / 'exp' / 'tiny_jax' / 'old').exists()


class Preempted(Exception):
  pass


def test_resume_last_run_matches_an_uninterrupted_run(monkeypatch, tmp_path):
  _register(monkeypatch, **UNREACHABLE)
  space = tmp_path / 'space.json'
  space.write_text('[{"learning_rate": 0.05, "dropout_rate": 0.3}]')
  settings = runner.TrialSettings(max_global_steps=20, eval_every_n_steps=5)
  metrics = lambda result: [(s, r['validation/loss'], r['train/loss'])
                            for s, r in result.eval_results]

  straight_dir = logs.get_log_dir(str(tmp_path), 'tiny', 'straight', False,
                                  False)
  [straight] = runner.run_trials(_plan(space=str(space)), straight_dir,
                                 settings)

  sub = runner.load_submission(SGD)

  def preempted_update(**kwargs):
    if kwargs['global_step'] == 13:
      raise Preempted()
    return sub.update_params(**kwargs)

  resumed_dir = logs.get_log_dir(str(tmp_path), 'tiny', 'resumed', False,
                                 False)
  with pytest.raises(Preempted):
    runner.run_trials(_plan(space=str(space), update_params=preempted_update),
                      resumed_dir, settings)
  trial = pathlib.Path(resumed_dir) / 'trial_1'
  assert os.listdir(trial).count('checkpoint_10') == 1
  resumed_dir = logs.get_log_dir(str(tmp_path), 'tiny', 'resumed', True, False)
  [resumed] = runner.run_trials(_plan(space=str(space)), resumed_dir, settings)

  assert resumed.global_step == straight.global_step == 20
  assert metrics(resumed) == metrics(straight)
  final = lambda d: serialization.msgpack_restore(
      (pathlib.Path(d) / 'trial_1' / 'checkpoint_20').read_bytes())
  a, b = final(straight_dir), final(resumed_dir)
  for key in ('model_params', 'optimizer_state'):
    jax.tree.map(np.testing.assert_array_equal, a[key], b[key])
  assert b['preemption_count'] == 1
  rows = logs.read_csv(str(trial / 'eval_measurements.csv'))
  assert [(r['global_step'], r['preemption_count']) for r in rows] == [
      ('5', '0'), ('10', '0'), ('15', '1'), ('20', '1')]
  assert (trial / 'meta_data_1.json').exists()
  assert (trial / 'flags_1.json').exists()


# --- Bad input, caught before any training. ---------------------------------


def test_unknown_workload_lists_valid_names():
  with pytest.raises(ValueError, match="Unknown workload 'nope'.*mnist1d"):
    runner.plan_trials('nope', SGD, 'external', SGD_SPACE)


def test_unknown_submission_path():
  with pytest.raises(ValueError, match='no such file'):
    runner.plan_trials('mnist1d', 'submissions/nope/submission.py',
                       'external', SGD_SPACE)


def test_submission_missing_a_function(tmp_path):
  path = tmp_path / 'submission.py'
  text = (FIXTURES / 'sgd' / 'submission.py').read_text()
  path.write_text(text.replace('def data_selection(', 'def select_data('))
  with pytest.raises(ValueError, match='missing required function.*'
                     'data_selection'):
    runner.plan_trials('mnist1d', str(path), 'external', SGD_SPACE)


def test_submission_that_fails_to_import(tmp_path):
  path = tmp_path / 'submission.py'
  path.write_text('import not_a_module_anywhere\n')
  with pytest.raises(runner.SubmissionImportError,
                     match='ModuleNotFoundError'):
    runner.load_submission(str(path))


def test_unsupported_batch_size_workload(monkeypatch):
  _register(monkeypatch)
  monkeypatch.setitem(registry._WORKLOADS, 'other', TINY)  # pylint: disable=protected-access
  with pytest.raises(ValueError, match="no batch size for workload 'other'"):
    runner.plan_trials('other', SGD, 'external', SGD_SPACE)


def test_ruleset_and_search_space_combinations(monkeypatch, tmp_path):
  _register(monkeypatch)
  with pytest.raises(ValueError, match='tuning_ruleset'):
    runner.plan_trials('tiny', SGD, 'internal', SGD_SPACE)
  with pytest.raises(ValueError, match='self-tuning'):
    runner.plan_trials('tiny', SGD, 'self', SGD_SPACE)
  with pytest.raises(ValueError, match='needs a search space'):
    runner.plan_trials('tiny', SGD, 'external', None)
  bad = tmp_path / 'bad.json'
  bad.write_text('{"learning_rate": {"min": 1, "max": 0, "scaling": "log"}}')
  with pytest.raises(ValueError, match="'learning_rate'.*greater"):
    runner.plan_trials('tiny', SGD, 'external', str(bad))


def test_run_local_rejects_bad_input_before_training(tmp_path, capsys):
  from scripts import run_local  # pylint: disable=g-import-not-at-top
  code = run_local.main(['--workload=nope', f'--experiment_dir={tmp_path}',
                         f'--submission_path={SGD}'])
  assert code == 2
  assert "Unknown workload 'nope'" in capsys.readouterr().err
  assert not list(tmp_path.iterdir())


def test_steps_counted_hyperparameters_are_the_counterparts_on_an_analogue(
    tmp_path):
  # The paper's nu = 128 on criteo1tb (step_hint 10666) is 1.2% of its
  # budget: 36 of ctr_dlrm's 3000 steps. mnist1d has no counterpart.
  point = json.loads(
      (pathlib.Path(__file__).resolve().parent.parent / 'workloads_config'
       / 'paper_runs' / 'nadamw_lawa' / 'criteo1tb.json').read_text())[1]
  assert point['averaging_every_steps'] == 128
  space = tmp_path / 'space.json'
  space.write_text(json.dumps([point]))
  lawa = 'submissions/nadamw_lawa/submission.py'
  for workload, every in (('ctr_dlrm', 36), ('mnist1d', 128)):
    plan = runner.plan_trials(workload, lawa, tuning_search_space=str(space),
                              rng_seed=1)
    assert plan.trials[0].hyperparameters.averaging_every_steps == every
