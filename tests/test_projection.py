"""Tests of localperf.lab.projection and scripts/project_leaderboard.py.

References: the published v0.6 scores in its EXPECTED_SCORES.md (unpacked
with the logs by tests/conftest.py); the
issue's figures for the paper's gains on that board (NadamW 0.40 -> about
0.50, Distributed Shampoo 0.58, given to 2 decimals); a trial's CSV read and
scaled with NumPy alone.
"""

import json
import math
import re

import numpy as np
import pytest

from localperf.lab import projection
from localperf import plots
from localperf import scoring
from scripts import project_leaderboard as script

SEVEN = ('criteo1tb', 'fastmri', 'imagenet_vit', 'librispeech_conformer',
         'librispeech_deepspeech', 'ogbg', 'wmt')
ONES = {w: 1.0 for w in SEVEN}
OGBG_TARGET = 0.28098  # AlgoPerf v0.6 ogbg validation mAP target (>=).


@pytest.fixture(name='logs')
def fixture_logs(leaderboard_v06):
  """The published v0.6 external-tuning logs."""
  return leaderboard_v06 / 'external_tuning'


def published_scores(leaderboard_v06) -> dict[str, float]:
  """`| name | framework | 0.xxxxxx (shown ...) |` rows of EXPECTED_SCORES."""
  rows = re.findall(r'^\| (\w+) +\| \w+ +\| (\d\.\d{6}) ',
                    (leaderboard_v06 / 'EXPECTED_SCORES.md').read_text(),
                    flags=re.MULTILINE)
  return {name: float(value) for name, value in rows}


def scores_of(stdout: str) -> dict[str, float]:
  return {name: float(value) for name, value in
          re.findall(r'^(\w+) (\d\.\d{6})$', stdout, flags=re.MULTILINE)}


# (a) Ratios of 1 change nothing.


def test_unit_ratios_reproduce_published_scores(leaderboard_v06, logs):
  expected = published_scores(leaderboard_v06)
  assert set(expected) == {'baseline', 'shampoo'}
  scores, _ = projection.project_leaderboard(logs, ONES)
  # A copy ties the baseline everywhere: no best time moves.
  assert scores.scores['projected'] == scores.scores['baseline']
  assert {k: round(scores.scores[k], 6) for k in expected} == expected


# (b) The paper's gains on the v0.6 board.


@pytest.mark.parametrize('preset', ['paper_lawa', 'paper_ema'])
def test_paper_presets_land_on_the_issue_figures(preset, logs):
  scores, ratios = projection.project_leaderboard(logs, preset)
  got = scores.scores
  # The baseline meets 4 of the 8 targets (criteo1tb, fastmri, ogbg, wmt);
  # scaled by the paper's ratios it is fastest on all 4 (fastmri by 2%), so
  # rho(tau) = 4/8 on all of [1, 4]: exactly 0.5.
  ratios_projected = scores.ratios[scores.submissions.index('projected')]
  solved = [w for w, r in zip(scores.scored_workloads, ratios_projected)
            if math.isfinite(r)]
  assert solved == ['criteo1tb', 'fastmri', 'ogbg', 'wmt']
  assert all(r == 1 for r in ratios_projected if math.isfinite(r))
  assert got['projected'] == 0.5
  # The issue gives 0.40 and 0.58, to 2 decimals: half a unit of the last.
  assert got['baseline'] == pytest.approx(0.40, abs=0.005)
  assert got['shampoo'] == pytest.approx(0.58, abs=0.005)
  assert got['baseline'] < got['projected'] < got['shampoo']
  assert ratios['ogbg'] == pytest.approx(
      {'paper_lawa': 0.43, 'paper_ema': 0.42}[preset], abs=0.005)


def test_cli_paper_lawa(tmp_path, capsys, monkeypatch):
  plot = tmp_path / 'profiles.png'
  titles = []
  draw = plots.plot_performance_profiles
  monkeypatch.setattr(plots, 'plot_performance_profiles',
                      lambda *a, title=None: titles.append(title) or draw(
                          *a, title=title))
  status = script.main(['--ratios=paper_lawa', f'--plot={plot}'])
  assert titles == ['PROJECTION, not a measurement: projected = baseline '
                    'with its time axes scaled by --ratios=paper_lawa']
  out = capsys.readouterr().out
  assert status == 0
  got = scores_of(out)
  assert got['projected'] == 0.5
  assert round(got['baseline'], 2) == 0.40 and round(got['shampoo'], 2) == 0.58
  assert 'PROJECTION, not a measurement' in out
  assert re.search(r'^ogbg +molgraph_gnn +0\.4341 +0\.4341$', out,
                   flags=re.MULTILINE)
  assert plot.stat().st_size > 0


# (c) The scaling itself, restated with NumPy.


def test_scale_trial_matches_numpy_restatement(logs):
  path = logs / 'baseline' / 'study_0' / 'ogbg_jax' / 'trial_5' / (
      'eval_measurements.csv')
  table = np.genfromtxt(path, delimiter=',', names=True)
  trial = scoring.read_eval_measurements(path)
  scaled = projection.scale_trial(trial, 0.5, step_time_ratio=1.2)
  np.testing.assert_allclose(scaled['score'], table['score'] * 0.6)
  np.testing.assert_allclose(scaled['accumulated_submission_time'],
                             table['accumulated_submission_time'] * 0.6)
  np.testing.assert_allclose(scaled['global_step'], table['global_step'] * 0.5)
  np.testing.assert_array_equal(scaled['total_duration'],
                                table['total_duration'])
  np.testing.assert_array_equal(trial['score'], table['score'])  # Unchanged.
  met = table['validationmean_average_precision'] >= OGBG_TARGET
  assert met.any()  # This trial meets the target (at its last eval, 21).
  first = int(np.argmax(met))
  target = scoring.load_benchmark('0.6').targets['ogbg']
  assert target.value == OGBG_TARGET
  assert scoring.study_time_to_target([scaled], target, 'score') == (
      pytest.approx(table['score'][first] * 0.6))
  missed = projection.scale_trial(trial, math.inf)
  assert np.isinf(missed['score']).all() and np.isinf(
      missed['global_step']).all()
  assert scoring.study_time_to_target([missed], target, 'score') == math.inf


def test_project_logs_scales_only_the_seven(logs):
  baseline = scoring.load_submission(logs / 'baseline')
  ratios = dict(ONES, ogbg=0.5, wmt=math.inf)
  projected = projection.project_logs(baseline, ratios)
  assert projected['imagenet_resnet'] == baseline['imagenet_resnet']
  np.testing.assert_array_equal(projected['fastmri']['study_1'][2]['score'],
                                baseline['fastmri']['study_1'][2]['score'])
  np.testing.assert_array_equal(projected['ogbg']['study_2'][0]['score'],
                                baseline['ogbg']['study_2'][0]['score'] / 2)
  scores = scoring.score_logs({'baseline': baseline, 'projected': projected},
                              scoring.load_benchmark('0.6'))
  times = dict(zip(scores.workloads, scores.times[1]))
  assert times['wmt'] == math.inf
  assert times['ogbg'] == scores.times[0][scores.workloads.index('ogbg')] / 2


# Names, formats.


def test_analogue_names_json_and_list_agree(tmp_path):
  lawa = projection.PRESETS['paper_lawa']
  local = {projection.LOCAL_ANALOGUE[w]: r for w, r in lawa.items()}
  path = tmp_path / 'ratios.json'
  path.write_text(json.dumps(local))
  assert projection.parse_ratios(str(path)) == lawa
  listed = ','.join(f'{n}={r!r}' for n, r in local.items())
  assert projection.parse_ratios(listed) == lawa
  path.write_text('{"ogbg": Infinity, "wmt": "inf", ' +
                  ', '.join(f'"{w}": 1' for w in SEVEN[:5]) + '}')
  parsed = projection.parse_ratios(path)
  assert parsed['ogbg'] == parsed['wmt'] == math.inf


# (d) Bad input: ValueError naming the field and what is accepted.


@pytest.mark.parametrize('ratios, match', [
    (dict(ONES, imagenet_resnet=1.0), r"unknown workload 'imagenet_resnet'.*"
     r'criteo1tb.*ctr_dlrm'),
    ('ogbg=0.5,foo=1', r"unknown workload 'foo'"),
    (dict(ONES, ogbg=0.0), r"ogbg=0\.0 is not a ratio; expected a number > 0"),
    (dict(ONES, ogbg=-1), r'ogbg=-1 is not a ratio'),
    (dict(ONES, ogbg='fast'), r"ogbg='fast' is not a ratio"),
    (dict(ONES, ogbg=math.nan), r'ogbg=nan is not a ratio'),
    ({w: 1.0 for w in SEVEN[:-1]}, r'no ratio for wmt'),
    (dict(ONES, seq2seq_transformer=1.0), r'wmt is given twice'),
    ('paper_swa', r"'paper_swa' is neither a preset \(paper_lawa, paper_ema"),
    ('ogbg', r"'ogbg' is neither a preset"),
])
def test_bad_ratios(ratios, match, monkeypatch, logs):
  def fail(*args, **kwargs):
    raise AssertionError('logs read or scored before the input was checked')
  monkeypatch.setattr(scoring, 'load_submissions', fail)
  monkeypatch.setattr(scoring, 'score_logs', fail)
  with pytest.raises(ValueError, match='--ratios: ' + match):
    projection.project_leaderboard(logs, ratios)


def test_bad_other_inputs(tmp_path, capsys, logs):
  with pytest.raises(ValueError, match=r'--leaderboard_dir .*missing does not '
                     'exist'):
    projection.project_leaderboard(tmp_path / 'missing', ONES)
  with pytest.raises(ValueError, match=r'--step_time_ratio must be a finite '
                     r'number > 0.*got 0'):
    projection.project_leaderboard(logs, ONES, step_time_ratio=0)
  with pytest.raises(ValueError, match=r"--baseline 'nadamw' is not a "
                     r"submission.*\['baseline', 'shampoo'\]"):
    projection.project_leaderboard(logs, ONES, baseline='nadamw')
  with pytest.raises(ValueError, match=r"--projected_name 'shampoo' is taken"):
    projection.project_leaderboard(logs, ONES, projected_name='shampoo')
  bad_json = tmp_path / 'ratios.json'
  bad_json.write_text('[0.8]')
  with pytest.raises(ValueError, match=r'holds a list; expected an object'):
    projection.parse_ratios(bad_json)
  with pytest.raises(SystemExit) as e:  # Bad input: one line, status 2.
    script.main(['--ratios=ogbg=0'])
  assert e.value.code == 2
  err = capsys.readouterr().err
  assert '--ratios: ogbg=' in err and err.count('\n') == 1
  with pytest.raises(SystemExit) as e:
    script.main([])
  assert e.value.code == 2
