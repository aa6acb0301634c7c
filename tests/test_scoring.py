"""Tests of localperf.scoring and scripts/score.py.

Expected values are worked out by hand. The tau grid is 100 points on [1, 4],
spacing h = 1/33; the trapezoid rule turns a step of rho from a to b inside
the grid cell [tau_k, tau_k + h] into a step at the cell's midpoint. Ratios
1.5, 2.5 and 3.5 are such midpoints (1 + 16.5h, 1 + 49.5h, 1 + 82.5h), so a
profile stepping from a to b at ratio r has area a (r - 1) + b (4 - r), and
the score is that area / 3.
"""

import json
import math
import re
import sys
import time
import types

import numpy as np
import pytest

import localperf
from localperf import scoring
from scripts import score as score_script

# AlgoPerf v0.6 targets used below: criteo1tb loss <= 0.123735,
# ogbg mean_average_precision >= 0.28098, librispeech_conformer wer <= 0.085884.
CRITEO_HIT, CRITEO_MISS = 0.12, 0.2
OGBG_HIT, OGBG_MISS = 0.3, 0.2
METRICS = {
    'criteo1tb': ('validation/loss', CRITEO_HIT, CRITEO_MISS),
    'criteo1tb_embed_init': ('validation/loss', 0.12, 0.2),
    'ogbg': ('validation/mean_average_precision', OGBG_HIT, OGBG_MISS),
}


def write_trial(root, submission, study, workload, trial, values, times,
                steps=None, metric=None):
  """Writes one eval_measurements.csv; returns its path."""
  metric = metric or METRICS[workload][0]
  steps = steps or [10 * (i + 1) for i in range(len(values))]
  directory = root / submission / study / f'{workload}_jax' / f'trial_{trial}'
  directory.mkdir(parents=True)
  lines = [f'global_step,score,{metric}']
  lines += [f'{s},{t},{v}' for s, t, v in zip(steps, times, values)]
  path = directory / 'eval_measurements.csv'
  path.write_text('\n'.join(lines) + '\n')
  return path


def write_solved(root, submission, workload, time_to_target, study='study_0',
                 trial=1):
  """A trial whose second eval, at `time_to_target`, meets the target."""
  _, hit, miss = METRICS[workload]
  write_trial(root, submission, study, workload, trial, [miss, hit],
              [time_to_target / 2, time_to_target])


def write_unsolved(root, submission, workload, study='study_0', trial=1):
  _, _, miss = METRICS[workload]
  write_trial(root, submission, study, workload, trial, [miss, miss], [1, 2])


def score(root, workloads=('criteo1tb', 'ogbg'), **kwargs):
  return scoring.score_submissions(root, workloads=list(workloads), **kwargs)


def run_cli(capsys, *args):
  """scripts/score.py's main in this process: (exit status, stdout, stderr)."""
  status = score_script.main([str(a) for a in args])
  out, err = capsys.readouterr()
  return status, out, err


def parse_scores(stdout):
  """The `NAME SCORE` lines (a score has 6 decimals)."""
  return {name: float(value) for name, value in
          re.findall(r'^(\S+) (\d\.\d{6})$', stdout, flags=re.MULTILINE)}


# Published v0.6 leaderboard (tests/conftest.py unpacks its logs).


def test_published_logs_reproduce_published_scores_api(leaderboard_v06):
  start = time.perf_counter()
  scores = scoring.score_submissions(leaderboard_v06 / 'external_tuning')
  elapsed = time.perf_counter() - start
  print(f'scored the published logs in {elapsed:.2f} s')
  assert elapsed < 10
  assert round(scores.scores['baseline'], 6) == 0.458965
  assert round(scores.scores['shampoo'], 6) == 0.624369


def test_published_logs_reproduce_published_scores_cli(leaderboard_v06,
                                                       tmp_path, capsys):
  start, cpu_start = time.perf_counter(), time.process_time()
  status, out, err = run_cli(capsys, '--submission_directory',
                             leaderboard_v06 / 'external_tuning',
                             '--output_dir', tmp_path, '--baseline',
                             'baseline')
  elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
  print(f'scored and plotted the published logs in {elapsed:.2f} s '
        f'({cpu:.2f} s CPU)')
  assert status == 0, err
  assert parse_scores(out) == {'baseline': 0.458965, 'shampoo': 0.624369}
  assert 'speedup of shampoo over baseline' in out
  assert 'imagenet_vit' in out  # The per-workload table.
  results = json.loads((tmp_path / 'scores.json').read_text())
  assert results['scores']['shampoo'] == pytest.approx(0.624369, abs=5e-7)
  assert (tmp_path / 'performance_profiles.png').stat().st_size > 0
  assert len(list(tmp_path.glob('validation_curves_*.png'))) == 8
  assert cpu < 10  # CPU time: wall time also counts other jobs' load.


# Rules on hand-made logs.


def test_two_submissions_two_workloads(tmp_path):
  # Ratios: a (1, 2.5), b (1.5, 1).
  # a: rho 1/2 below 2.5, 1 above: area 0.5 * 1.5 + 1 * 1.5 = 2.25.
  # b: rho 1/2 below 1.5, 1 above: area 0.5 * 0.5 + 1 * 2.5 = 2.75.
  write_solved(tmp_path, 'a', 'criteo1tb', 100)
  write_solved(tmp_path, 'a', 'ogbg', 250)
  write_solved(tmp_path, 'b', 'criteo1tb', 150)
  write_solved(tmp_path, 'b', 'ogbg', 100)
  scores = score(tmp_path)
  assert scores.scores['a'] == pytest.approx(2.25 / 3, abs=1e-12)
  assert scores.scores['b'] == pytest.approx(2.75 / 3, abs=1e-12)
  np.testing.assert_allclose(scores.ratios, [[1, 2.5], [1.5, 1]])


def test_identical_submissions_tie_at_one(tmp_path):
  for name in ('a', 'b'):
    write_solved(tmp_path, name, 'criteo1tb', 100)
    write_solved(tmp_path, name, 'ogbg', 100)
  assert score(tmp_path).scores == {'a': 1.0, 'b': 1.0}


def test_unsolved_workload_counts_as_infinite(tmp_path):
  # a: criteo ratio 1, ogbg unsolved: rho 1/2 throughout, area 1.5.
  # b: criteo ratio 2.5, ogbg ratio 1: area 0.5 * 1.5 + 1 * 1.5 = 2.25.
  write_solved(tmp_path, 'a', 'criteo1tb', 100)
  write_unsolved(tmp_path, 'a', 'ogbg')
  write_solved(tmp_path, 'b', 'criteo1tb', 250)
  write_solved(tmp_path, 'b', 'ogbg', 100)
  scores = score(tmp_path)
  assert math.isinf(scores.times[0, 1])
  assert scores.scores['a'] == pytest.approx(0.5, abs=1e-12)
  assert scores.scores['b'] == pytest.approx(0.75, abs=1e-12)


def test_missing_workload_counts_as_unsolved(tmp_path):
  write_solved(tmp_path, 'a', 'criteo1tb', 100)
  write_solved(tmp_path, 'b', 'criteo1tb', 100)
  write_solved(tmp_path, 'b', 'ogbg', 100)
  assert score(tmp_path).scores == {'a': 0.5, 'b': 1.0}


@pytest.mark.parametrize('slow_time, slow_score', [
    (350, (4 - 3.5) / 3),  # Ratio 3.5: rho 1 on the last half unit of tau.
    (450, 0.0),  # Ratio 4.5 is cut to infinity.
])
def test_ratio_above_four(tmp_path, slow_time, slow_score):
  write_solved(tmp_path, 'fast', 'criteo1tb', 100)
  write_solved(tmp_path, 'slow', 'criteo1tb', slow_time)
  scores = score(tmp_path, workloads=['criteo1tb'])
  assert scores.scores['fast'] == 1.0
  assert scores.scores['slow'] == pytest.approx(slow_score, abs=1e-12)


def test_minimised_metrics_meet_target_at_or_below():
  loss = scoring.Target('loss', 0.123735, 1)
  wer = scoring.Target('wer', 0.085884, 1)
  assert loss.minimize and wer.minimize
  trial = {'validation/loss': np.array([0.2, 0.13, 0.123735, 0.11]),
           'validation/wer': np.array([0.5, 0.0859, 0.08, 0.085884])}
  assert scoring.eval_index_at_target(trial, loss) == 2  # Equal meets it.
  assert scoring.eval_index_at_target(trial, wer) == 2


def test_maximised_metric_meets_target_at_or_above_and_ignores_nan():
  target = scoring.Target('mean_average_precision', 0.28098, 1)
  trial = {'validation/mean_average_precision':
               np.array([math.nan, 0.2, 0.28098, 0.3])}
  assert not target.minimize
  assert scoring.eval_index_at_target(trial, target) == 2
  assert scoring.eval_index_at_target(
      {'validation/mean_average_precision': np.array([math.nan, 0.2])},
      target) is None


@pytest.mark.parametrize('metric, minimize', [
    ('loss', True), ('ce_loss', True), ('ctc_loss', True), ('wer', True),
    ('error_rate', True), ('l1_loss', True), ('ppl', True),
    ('accuracy', False), ('bleu', False), ('ssim', False),
    ('mean_average_precision', False), ('validation/wer', True),
])
def test_is_minimized(metric, minimize):
  assert scoring.is_minimized(metric) is minimize


def test_unknown_metric_names_accepted_ones():
  with pytest.raises(ValueError, match="'f1'.*accuracy"):
    scoring.is_minimized('f1')


def test_study_takes_trial_at_earliest_eval_not_smallest_time(tmp_path):
  # Trial 1 meets the target at eval 3 (time 30), trial 2 at eval 2 (time 50):
  # AlgoPerf takes the earliest eval, so 50.
  write_trial(tmp_path, 'a', 'study_0', 'criteo1tb', 1,
              [0.2, 0.2, 0.12], [10, 20, 30])
  write_trial(tmp_path, 'a', 'study_0', 'criteo1tb', 2,
              [0.2, 0.12, 0.12], [25, 50, 75])
  assert score(tmp_path, workloads=['criteo1tb']).times[0, 0] == 50


def test_study_tie_on_eval_index_takes_smaller_time(tmp_path):
  write_trial(tmp_path, 'a', 'study_0', 'criteo1tb', 1, [0.2, 0.12], [40, 80])
  write_trial(tmp_path, 'a', 'study_0', 'criteo1tb', 2, [0.2, 0.12], [30, 60])
  write_trial(tmp_path, 'a', 'study_0', 'criteo1tb', 3, [0.2, 0.12], [35, 70])
  assert score(tmp_path, workloads=['criteo1tb']).times[0, 0] == 60


@pytest.mark.parametrize('study_times, median', [
    ([100, 300, None], 300),  # None: unsolved study.
    ([100, None], math.inf),  # np.median of (100, inf) is inf.
    ([100, 200, 300, 400], 250),
    ([None, None, 100], math.inf),
])
def test_median_over_studies(tmp_path, study_times, median):
  for i, t in enumerate(study_times):
    if t is None:
      write_unsolved(tmp_path, 'a', 'criteo1tb', study=f'study_{i}')
    else:
      write_solved(tmp_path, 'a', 'criteo1tb', t, study=f'study_{i}')
  assert score(tmp_path, workloads=['criteo1tb']).times[0, 0] == median


def test_paired_ratios_compare_the_same_study(tmp_path, capsys):
  # Study i of each submission ran with the same seed: ratios pair them.
  for i, (ours, theirs) in enumerate([(90, 100), (240, 200), (None, 300),
                                      (50, None), (None, None)]):
    for name, t in (('a', ours), ('base', theirs)):
      if t is None:
        write_unsolved(tmp_path, name, 'criteo1tb', study=f'study_{i}')
      else:
        write_solved(tmp_path, name, 'criteo1tb', t, study=f'study_{i}')
  write_solved(tmp_path, 'a', 'criteo1tb', 10, study='study_9')  # Unpaired.
  scores = score(tmp_path, workloads=['criteo1tb'])
  ratios = scores.paired_ratios('a', 'base', 'criteo1tb')
  np.testing.assert_array_equal(ratios[:4], [0.9, 1.2, math.inf, 0.0])
  assert ratios.size == 5 and math.isnan(ratios[4])
  status, out, _ = run_cli(capsys, '--submission_directory', tmp_path,
                           '--workloads=criteo1tb', '--baseline=base')
  assert status == 0
  # Median of (0.9, 1.2, inf, 0) is 1.05; min 0, max inf; 4 of the 5
  # paired studies have a ratio (both missed in the fifth).
  assert re.search(r'criteo1tb\s+1\.05 \(0\.00-inf\) 4/5', out), out


def test_time_column_global_step(tmp_path):
  # a meets criteo at step 50 (time 100), b at step 20 (time 250): by time
  # b has ratio 2.5, by step a has; the other scores 1.
  write_trial(tmp_path, 'a', 'study_0', 'criteo1tb', 1, [0.2, 0.12],
              [50, 100], steps=[20, 50])
  write_trial(tmp_path, 'b', 'study_0', 'criteo1tb', 1, [0.2, 0.12],
              [125, 250], steps=[10, 20])
  by_time = score(tmp_path, workloads=['criteo1tb'])
  by_step = score(tmp_path, workloads=['criteo1tb'], time_column='global_step')
  np.testing.assert_array_equal(by_time.times[:, 0], [100, 250])
  np.testing.assert_array_equal(by_step.times[:, 0], [50, 20])
  assert by_time.scores == pytest.approx({'a': 1.0, 'b': 0.5}, abs=1e-12)
  assert by_step.scores == pytest.approx({'a': 0.5, 'b': 1.0}, abs=1e-12)


def test_missing_trial_files_are_skipped(tmp_path):
  write_solved(tmp_path, 'a', 'criteo1tb', 100)
  (tmp_path / 'a' / 'study_0' / 'criteo1tb_jax' / 'trial_2').mkdir()
  logs = scoring.load_submission(tmp_path / 'a')
  assert len(logs['criteo1tb']['study_0']) == 1


def test_submission_without_study_level_is_one_study(tmp_path):
  write_trial(tmp_path, 'exp', '.', 'criteo1tb', 1, [0.2, 0.12], [1, 2])
  logs = scoring.load_submission(tmp_path / 'exp')
  assert list(logs) == ['criteo1tb'] and len(logs['criteo1tb']) == 1


# v0.5 held-out variants.


def test_held_out_variant_rules_by_hand():
  # Columns: base, variant. inf is unsolved.
  inf = math.inf
  times = np.array([[100., inf],  # Variant missed: base unsolved.
                    [200., 100.],  # Solved both.
                    [150., 500.]])  # Variant 5x the best: cut, base unsolved.
  base = scoring.apply_held_out_rules(times, ['w', 'w_v'], {'w': 'w_v'})
  np.testing.assert_array_equal(base, [[inf], [200.], [inf]])


def test_variant_of_unsolved_base_does_not_set_the_best():
  # Row 0's variant (100) is dropped because its base is unsolved, so row 1's
  # variant (500) is the best and not cut; row 1 keeps its base time.
  inf = math.inf
  times = np.array([[inf, 100.], [100., 500.]])
  base = scoring.apply_held_out_rules(times, ['w', 'w_v'], {'w': 'w_v'})
  np.testing.assert_array_equal(base, [[inf], [100.]])


def test_v05_base_unsolved_when_sampled_variant_missed(tmp_path):
  # a: criteo1tb 100, its variant criteo1tb_embed_init never met.
  # b: criteo1tb 250, variant met.
  # v0.6: ratios a 1, b 2.5 over 8 workloads: a 1/8, b 1.5 / 8 / 3.
  # v0.5: a's criteo1tb is unsolved, b is the best: b 1/8, a 0.
  write_solved(tmp_path, 'a', 'criteo1tb', 100)
  write_unsolved(tmp_path, 'a', 'criteo1tb_embed_init')
  write_solved(tmp_path, 'b', 'criteo1tb', 250)
  write_solved(tmp_path, 'b', 'criteo1tb_embed_init', 100)
  v06 = scoring.score_submissions(tmp_path, benchmark_version='0.6')
  v05 = scoring.score_submissions(tmp_path, benchmark_version='0.5')
  assert v06.scores['a'] == pytest.approx(1 / 8, abs=1e-12)
  assert v06.scores['b'] == pytest.approx(1.5 / 8 / 3, abs=1e-12)
  assert v05.scores == {'a': 0.0, 'b': 1 / 8}
  assert v05.scored_workloads == v06.scored_workloads
  assert 'criteo1tb_embed_init' in v05.workloads


# Strict mode.


def write_full_study_set(root, num_studies, num_trials, name='a'):
  for s in range(num_studies):
    for t in range(1, num_trials + 1):
      write_solved(root, name, 'criteo1tb', 100, study=f'study_{s}', trial=t)


def test_strict_accepts_three_studies_of_five_trials(tmp_path):
  write_full_study_set(tmp_path, 3, 5)
  assert score(tmp_path, ['criteo1tb'], strict=True).scores == {'a': 1.0}


@pytest.mark.parametrize('num_studies, num_trials, self_tuning, message', [
    (3, 4, False, 'a/study_0/criteo1tb_jax: expected 5 trials, found 4'),
    (2, 5, False, 'a: criteo1tb: expected 3 studies, found 2'),
    (3, 5, True, 'a/study_2/criteo1tb_jax: expected 1 trials, found 5'),
])
def test_strict_rejects_wrong_counts(tmp_path, num_studies, num_trials,
                                     self_tuning, message):
  write_full_study_set(tmp_path, num_studies, num_trials)
  with pytest.raises(ValueError, match=re.escape(message)):
    score(tmp_path, ['criteo1tb'], strict=True,
          self_tuning_ruleset=self_tuning)
  # Without strict the same logs are scored, the problems in `warnings`.
  scores = score(tmp_path, ['criteo1tb'], self_tuning_ruleset=self_tuning)
  assert scores.scores == {'a': 1.0}
  assert any(message in w for w in scores.warnings), scores.warnings


def test_strict_self_tuning_accepts_one_trial(tmp_path):
  write_full_study_set(tmp_path, 3, 1)
  assert score(tmp_path, ['criteo1tb'], strict=True,
               self_tuning_ruleset=True).scores == {'a': 1.0}


def test_strict_rejects_missing_workload(tmp_path):
  write_full_study_set(tmp_path, 3, 5)
  with pytest.raises(ValueError, match='a: no ogbg logs; it counts as '
                     'unsolved'):
    score(tmp_path, ['criteo1tb', 'ogbg'], strict=True)
  assert score(tmp_path, ['criteo1tb']).warnings == []


def test_strict_v05_expects_five_studies(tmp_path):
  write_full_study_set(tmp_path, 3, 5)
  with pytest.raises(ValueError, match='expected 5 studies, found 3'):
    score(tmp_path, ['criteo1tb'], strict=True, benchmark_version='0.5')


# Speedups.


def test_speedup_is_geometric_mean_of_ratios(tmp_path):
  # b / a: 50 / 100 and 400 / 200: geometric mean 1.
  # c / a: 25 / 100 and 200 / 200: sqrt(1/4) = 1/2.
  for name, times in {'a': (100, 200), 'b': (50, 400), 'c': (25, 200)}.items():
    write_solved(tmp_path, name, 'criteo1tb', times[0])
    write_solved(tmp_path, name, 'ogbg', times[1])
  speedups = score(tmp_path).speedups('a')
  assert speedups == pytest.approx({'a': 1.0, 'b': 1.0, 'c': 0.5})


def test_speedup_replaces_unsolved_by_budget_plus_one(tmp_path):
  # criteo1tb's v0.6 budget is 7703 s (x3 when self-tuning).
  write_solved(tmp_path, 'a', 'criteo1tb', 100)
  write_unsolved(tmp_path, 'b', 'criteo1tb')
  scores = score(tmp_path, ['criteo1tb'])
  assert scores.speedups('a')['b'] == pytest.approx(7704 / 100)
  assert scores.speedups('a', True)['b'] == pytest.approx(23110 / 100)
  with pytest.raises(ValueError, match="--baseline 'z'"):
    scores.speedups('z')


# Local workloads.


class _FakeWorkload:
  target_metric_name = 'error_rate'
  validation_target_value = 0.1
  step_hint = 500
  max_allowed_runtime_sec = 60


def _fake_workloads_module(monkeypatch):
  def get_workload(name):
    if name != 'tiny_mlp':
      raise ValueError(f'unknown workload {name!r}')
    return _FakeWorkload()
  module = types.SimpleNamespace(get_workload=get_workload)
  monkeypatch.setitem(sys.modules, 'localperf.workloads', module)
  monkeypatch.setattr(localperf, 'workloads', module, raising=False)


def test_local_workload_uses_its_own_target(tmp_path, monkeypatch):
  _fake_workloads_module(monkeypatch)
  # error_rate is minimised: a meets 0.1 at time 20, b at time 50.
  for name, t in (('a', 20), ('b', 50)):
    write_trial(tmp_path, name, 'study_0', 'tiny_mlp', 1, [0.5, 0.09],
                [t / 2, t], metric='validation/error_rate')
  write_solved(tmp_path, 'a', 'criteo1tb', 100)
  scores = scoring.score_submissions(tmp_path, workloads='local')
  assert scores.workloads == ['criteo1tb', 'tiny_mlp']
  assert scores.targets['tiny_mlp'] == scoring.Target('error_rate', 0.1, 500,
                                                      60)
  np.testing.assert_array_equal(scores.times[:, 1], [20, 50])
  # b: criteo1tb missing, tiny_mlp ratio 2.5: rho 1/2 on the last 1.5 of tau.
  assert scores.scores['b'] == pytest.approx(0.25, abs=1e-12)


def test_unknown_workload_is_named(tmp_path, monkeypatch):
  _fake_workloads_module(monkeypatch)
  write_trial(tmp_path, 'a', 'study_0', 'mystery', 1, [0.5], [1],
              metric='validation/loss')
  folder = tmp_path / 'a' / 'study_0' / 'mystery_jax'
  with pytest.raises(ValueError, match=re.escape(f"{folder}: Workload "
                                                 "'mystery'")):
    scoring.score_submissions(tmp_path, workloads='local')


# Bad input.


def test_missing_or_empty_directories(tmp_path):
  with pytest.raises(ValueError, match='does not exist'):
    scoring.score_submissions(tmp_path / 'nowhere')
  with pytest.raises(ValueError, match='holds no submission'):
    scoring.score_submissions(tmp_path)
  (tmp_path / 'a' / 'study_0').mkdir(parents=True)
  with pytest.raises(ValueError, match=re.escape(
      f'{tmp_path} holds no submission directories (no eval_measurements.csv '
      'in a)')):
    scoring.score_submissions(tmp_path)


def test_malformed_csv_names_path_or_column(tmp_path):
  path = write_trial(tmp_path, 'a', 'study_0', 'criteo1tb', 1, [0.2], [1])
  path.write_text('global_step,score,validation/loss\n')
  with pytest.raises(ValueError, match=f'{path}: no eval measurements'):
    scoring.score_submissions(tmp_path)
  path.write_text('global_step,score,validation/loss\n1,2,oops\n')
  with pytest.raises(ValueError, match="'validation/loss' is not numeric"):
    scoring.score_submissions(tmp_path)
  path.write_text('global_step,score,validation/accuracy\n1,2,0.5\n')
  with pytest.raises(ValueError, match=re.escape(
      f"{path}: no column 'validation/loss'")):
    scoring.score_submissions(tmp_path)


def test_bad_arguments():
  with pytest.raises(ValueError, match=r"benchmark_version.*\('0.5', '0.6'\)"):
    scoring.load_benchmark('0.7')
  with pytest.raises(ValueError, match='time_column'):
    scoring.score_logs({'a': {}}, scoring.load_benchmark(), time_column='t')
  with pytest.raises(ValueError, match="workloads must be 'base', 'local'"):
    scoring.score_logs({'a': {}}, scoring.load_benchmark(), workloads='all')


def test_cli_errors_exit_with_message(tmp_path, capsys):
  for args, named in ((['--submission_directory', tmp_path / 'nowhere'],
                      f'{tmp_path / "nowhere"} does not exist'),
                     (['--submission_directory', tmp_path, '--time_column',
                       'x'], '--time_column'),
                     ([], '--submission_directory'),
                     (['--submission_directory', tmp_path, '--workloads',
                       ','], '--workloads')):
    with pytest.raises(SystemExit) as exit_info:
      run_cli(capsys, *args)
    assert exit_info.value.code == 2
    assert named in capsys.readouterr().err


def test_cli_local_workloads_list_and_outputs(tmp_path, capsys):
  logs, out = tmp_path / 'logs', tmp_path / 'out'
  write_solved(logs, 'a', 'criteo1tb', 100)
  write_solved(logs, 'a', 'ogbg', 250)
  write_solved(logs, 'b', 'criteo1tb', 150)
  write_solved(logs, 'b', 'ogbg', 100)
  status, stdout, stderr = run_cli(
      capsys, '--submission_directory', logs, '--output_dir', out,
      '--workloads', 'criteo1tb,ogbg', '--baseline', 'a')
  assert status == 0, stderr
  assert parse_scores(stdout) == {'a': 0.75, 'b': 0.916667}
  results = json.loads((out / 'scores.json').read_text())
  assert results['ratios']['b'] == {'criteo1tb': 1.5, 'ogbg': 1.0}
  assert results['speedups']['b'] == pytest.approx(math.sqrt(1.5 * 0.4))
  assert sorted(p.name for p in out.glob('*.png')) == [
      'performance_profiles.png', 'validation_curves_criteo1tb.png',
      'validation_curves_ogbg.png']


def test_median_range_leaves_out_nan_and_counts_what_is_left():
  assert scoring.median_range([0.9, 1.1, 0.7]) == '0.90 (0.70-1.10)'
  assert scoring.median_range([1.0, math.nan, 3.0, math.inf]) == (
      '3.00 (1.00-inf) 3/4')
  assert scoring.median_range([100, 300], '.0f') == '200 (100-300)'
  assert scoring.median_range([math.nan, math.nan]) == '-'
  assert scoring.median_range([]) == '-'
