"""Irregular log trees and bad CSV files, as localperf.scoring reads them.

Stray files and folders must leave the scores those of the same tree without
them; an ambiguous tree or a bad file is an error naming the folder or file.
Scores are worked out by hand as in tests/test_scoring.py: with ratios a
(1, 2.5) and b (1.5, 1) on two workloads, a scores 2.25 / 3 and b 2.75 / 3.
"""

import logging
import math
import os
import re
import shutil

import numpy as np
import pytest

from localperf import logs as log_files
from localperf import scoring
from scripts import score as score_script

# AlgoPerf v0.6 targets: criteo1tb loss <= 0.123735, ogbg mAP >= 0.28098.
HIT = {'criteo1tb': 0.12, 'ogbg': 0.3}
MISS = {'criteo1tb': 0.2, 'ogbg': 0.2}
METRIC = {'criteo1tb': 'validation/loss',
          'ogbg': 'validation/mean_average_precision'}
# Times to target: a (100, 250), b (150, 100).
TIMES = {'a': {'criteo1tb': 100, 'ogbg': 250},
         'b': {'criteo1tb': 150, 'ogbg': 100}}
SCORES = {'a': 2.25 / 3, 'b': 2.75 / 3}


def csv_text(workload, time_to_target):
  """Two evals; the second, at `time_to_target`, meets the target."""
  return (f'global_step,score,{METRIC[workload]}\n'
          f'10,{time_to_target / 2},{MISS[workload]}\n'
          f'20,{time_to_target},{HIT[workload]}\n')


def write(path, text):
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(text)
  return path


def write_tree(root):
  """Submissions a and b: 3 studies of 5 trials per workload, as v0.6 asks."""
  for name, times in TIMES.items():
    for study in range(3):
      for workload, t in times.items():
        for trial in range(1, 6):
          write(root / name / f'study_{study}' / f'{workload}_jax' /
                f'trial_{trial}' / 'eval_measurements.csv',
                csv_text(workload, t))


def score(root):
  return scoring.score_submissions(root, workloads=['criteo1tb', 'ogbg'])


def layout(logs):
  """workload -> study -> number of trials."""
  return {w: {s: len(t) for s, t in studies.items()}
          for w, studies in logs.items()}


CLEAN = {w: {f'study_{k}': 5 for k in range(3)} for w in ('criteo1tb', 'ogbg')}


# Strays: scored as if absent.


def test_stray_files_and_folders_are_ignored(tmp_path, caplog):
  write_tree(tmp_path)
  a = tmp_path / 'a'
  fast = csv_text('criteo1tb', 1)  # Would make `a` the best if read.
  for directory in (tmp_path, a, a / 'study_0', a / 'study_0' / 'ogbg_jax',
                    a / 'study_0' / 'ogbg_jax' / 'trial_1'):
    write(directory / '.DS_Store', '\0\1binary')
  # A copy of a trial beside the workload folders, as in the v0.5 logs.
  write(a / 'study_0' / 'trial_1' / 'eval_measurements.csv', fast)
  write(a / 'study_1' / 'trial_2' / 'eval_measurements.csv', fast)
  (a / 'study_0' / 'criteo1tb_jax' / 'trial_6').mkdir()  # Empty trial.
  write(a / 'study_1' / 'ogbg_jax' / 'trial_7' / 'measurements.csv', fast)
  (a / 'study_1' / 'wmt_jax').mkdir()  # A workload folder without trials.
  write(a / 'study_1' / 'plots' / 'curve.png', 'png')  # No suffix, no trials.
  write(a / 'notes' / 'README', 'notes')
  write(a / 'study_0' / 'criteo1tb_jax' / 'run_1' / 'eval_measurements.csv',
        fast)  # Not a trial_<k> name.
  with caplog.at_level(logging.INFO, logger='absl'):
    logs = scoring.load_submission(a)
  assert layout(logs) == CLEAN
  assert re.search(r'a: ignored \d+ folders holding no trials: .*'
                   r'study_0/trial_1', caplog.text)
  scores = score(tmp_path)
  assert scores.scores == pytest.approx(SCORES, abs=1e-12)
  assert scores.warnings == []


def test_trials_are_folders_whose_names_start_trial_k(tmp_path):
  # AlgoPerf's TRIAL_DIR_REGEX matched at the start of the name.
  write_tree(tmp_path)
  workload = tmp_path / 'a' / 'study_0' / 'criteo1tb_jax'
  write(workload / 'trial_1_rerun' / 'eval_measurements.csv',
        csv_text('criteo1tb', 90))
  write(workload / 'old_trial_2' / 'eval_measurements.csv',
        csv_text('criteo1tb', 10))
  write(workload / 'trial_x' / 'eval_measurements.csv',
        csv_text('criteo1tb', 10))
  logs = scoring.load_submission(tmp_path / 'a')
  assert layout(logs)['criteo1tb'] == {'study_0': 6, 'study_1': 5,
                                      'study_2': 5}


def test_submission_without_study_level_ignores_stray_trials(tmp_path):
  for workload, t in TIMES['a'].items():
    write(tmp_path / 'a' / f'{workload}_jax' / 'trial_1' /
          'eval_measurements.csv', csv_text(workload, t))
  write(tmp_path / 'a' / 'trial_1' / 'eval_measurements.csv',
        csv_text('criteo1tb', 1))
  logs = scoring.load_submission(tmp_path / 'a')
  assert layout(logs) == {'criteo1tb': {'a': 1}, 'ogbg': {'a': 1}}


# Ambiguous trees: errors naming the folder.


def test_workload_folder_without_framework_suffix_is_named(tmp_path):
  write_tree(tmp_path)
  folder = tmp_path / 'a' / 'study_1' / 'ogbg'
  write(folder / 'trial_1' / 'eval_measurements.csv', csv_text('ogbg', 1))
  with pytest.raises(ValueError, match=re.escape(
      f'{folder}: holds trial_<k>/eval_measurements.csv but is not named '
      '<workload>_jax or <workload>_pytorch')):
    score(tmp_path)


def test_flat_workload_folder_without_suffix_is_named(tmp_path):
  folder = tmp_path / 'a' / 'criteo1tb'
  write(folder / 'trial_1' / 'eval_measurements.csv',
        csv_text('criteo1tb', 1))
  with pytest.raises(ValueError, match=re.escape(f'{folder}: holds trial_')):
    score(tmp_path)


def test_workload_and_study_folders_side_by_side_are_named(tmp_path):
  write_tree(tmp_path)
  write(tmp_path / 'a' / 'criteo1tb_jax' / 'trial_1' / 'eval_measurements.csv',
        csv_text('criteo1tb', 1))
  with pytest.raises(ValueError, match=re.escape(
      f'{tmp_path / "a"}: holds both workload folders (criteo1tb_jax, ...) '
      'and study folders (study_0, ...)')):
    score(tmp_path)


def test_two_frameworks_of_one_workload_in_a_study_are_named(tmp_path):
  write_tree(tmp_path)
  write(tmp_path / 'b' / 'study_1' / 'ogbg_pytorch' / 'trial_1' /
        'eval_measurements.csv', csv_text('ogbg', 1))
  with pytest.raises(ValueError, match=re.escape(
      f"{tmp_path / 'b' / 'study_1'}: two folders of workload 'ogbg', "
      'ogbg_jax and ogbg_pytorch')):
    score(tmp_path)


def test_workload_split_across_frameworks_by_study_is_named(tmp_path):
  write_tree(tmp_path)
  jax = tmp_path / 'b' / 'study_1' / 'ogbg_jax'
  jax.rename(jax.with_name('ogbg_pytorch'))
  with pytest.raises(ValueError, match=re.escape(
      f"{tmp_path / 'b'}: workload 'ogbg' is split across frameworks, "
      'study_0/ogbg_jax and study_1/ogbg_pytorch')):
    score(tmp_path)


# Symbolic links: followed, as AlgoPerf's os.listdir walk follows them.


def test_link_loops_end_and_add_nothing(tmp_path):
  write_tree(tmp_path / 'logs')
  a = tmp_path / 'logs' / 'a'
  (a / 'study_0' / 'loop').symlink_to(a / 'study_0')
  (a / 'study_1' / 'ogbg_jax' / 'trial_1' / 'up').symlink_to(a)
  (a / 'loop').symlink_to(tmp_path / 'logs')
  (tmp_path / 'logs' / 'd' / 'study_0').mkdir(parents=True)
  (tmp_path / 'logs' / 'd' / 'study_0' / 'loop').symlink_to(
      tmp_path / 'logs' / 'd')  # No logs, only a loop: dropped.
  assert layout(scoring.load_submission(a)) == CLEAN
  scores = score(tmp_path / 'logs')
  assert scores.scores == pytest.approx(SCORES, abs=1e-12)
  assert len(scores.warnings) == 1 and 'logs/d: holds folders' in (
      scores.warnings[0])


def test_submission_of_broken_links_is_dropped_with_a_warning(tmp_path,
                                                              caplog):
  write_tree(tmp_path / 'logs')
  for study in range(3):  # c's logs were not copied along.
    path = tmp_path / 'logs' / 'c' / f'study_{study}'
    path.parent.mkdir(exist_ok=True)
    path.symlink_to(tmp_path / 'gone' / f'study_{study}')
  with caplog.at_level(logging.WARNING, logger='absl'):
    scores = score(tmp_path / 'logs')
  assert scores.submissions == ['a', 'b']
  assert scores.scores == pytest.approx(SCORES, abs=1e-12)
  message = (f"{tmp_path / 'logs' / 'c'}: holds folders but no "
             'eval_measurements.csv at any depth (a broken link?); '
             'submission dropped.')
  assert scores.warnings == [message]
  assert message in caplog.text
  with pytest.raises(ValueError, match=re.escape(message)):
    scoring.score_submissions(tmp_path / 'logs', strict=True,
                              workloads=['criteo1tb', 'ogbg'])


def test_folder_without_logs_beside_submissions_is_ignored(tmp_path, caplog):
  """As run_local's scores_<time>/ folders beside its submissions."""
  write_tree(tmp_path)
  write(tmp_path / 'scores_score' / 'profile.png', 'png')
  write(tmp_path / 'scores_score' / 'scores.json', '{}')
  with caplog.at_level(logging.INFO, logger='absl'):
    scores = score(tmp_path)
  assert scores.scores == pytest.approx(SCORES, abs=1e-12)
  assert 'ignored folders holding no logs: scores_score' in caplog.text
  assert scores.warnings == []  # Files only: not a submission.


def test_directory_without_any_logs_is_named(tmp_path):
  write(tmp_path / 'plots' / 'profile.png', 'png')
  with pytest.raises(ValueError, match=re.escape(
      f'--submission_directory {tmp_path} holds no submission directories')):
    score(tmp_path)


# Bad CSV files: errors naming the file, never NaN.


@pytest.fixture
def trial_csv(tmp_path):
  write_tree(tmp_path)
  return (tmp_path / 'b' / 'study_1' / 'criteo1tb_jax' / 'trial_1' /
          'eval_measurements.csv')


GOOD = 'global_step,score,validation/loss\n10,50,0.2\n20,100,0.12\n'


@pytest.mark.parametrize('content, message', [
    (np.random.default_rng(0).bytes(300), 'not a UTF-8 CSV file'),
    (GOOD.encode('utf-16'), 'not a UTF-8 CSV file'),
    (GOOD[:-1].encode(), 'does not end with a line break'),  # Mid-number.
    (GOOD[:-6].encode(), 'does not end with a line break'),  # Mid-row.
    (GOOD.replace('20,100,0.12', '20,100').encode(),
     'line 3 has 2 cells, the header 3'),
    (GOOD.replace('20,100,0.12', '20,100,0.12,7').encode(),
     'line 3 has 4 cells, the header 3'),
    (GOOD.replace('validation/loss', 'validation/accuracy').encode(),
     "no column 'validation/loss'; it has ['global_step', 'score', "
     "'validation/accuracy']"),
    (GOOD.replace('0.12', 'oops').encode(),
     "column 'validation/loss' is not numeric"),
    (GOOD.split('\n')[0].encode() + b'\n', 'no eval measurements'),
    (b'', 'no eval measurements'),
])
def test_bad_csv_is_an_error_naming_the_file(trial_csv, content, message):
  trial_csv.write_bytes(content)
  with pytest.raises(ValueError, match=re.escape(f'{trial_csv}: ')) as error:
    score(trial_csv.parents[4])
  assert message in str(error.value)


def test_empty_cells_of_complete_rows_are_nan(tmp_path):
  # As pandas reads AlgoPerf's CSVs: a metric not computed at an eval.
  path = write(tmp_path / 'eval_measurements.csv',
               'global_step,score,test/loss\n10,5,\n20,,0.3\n')
  trial = scoring.read_eval_measurements(path)
  np.testing.assert_array_equal(trial['test/loss'], [math.nan, 0.3])
  np.testing.assert_array_equal(trial['score'], [5, math.nan])
  assert trial.path == path


def test_reads_localperf_logs_csv(tmp_path):
  # localperf.logs writes as Python's csv module does, lines ending \r\n.
  path = str(tmp_path / 'eval_measurements.csv')
  for step, loss in ((10, 0.5), (20, 0.25)):
    log_files.append_csv_row(path, {'global_step': step, 'validation/loss':
                                    loss, 'score': step / 10})
  trial = scoring.read_eval_measurements(path)
  np.testing.assert_array_equal(trial['validation/loss'], [0.5, 0.25])
  np.testing.assert_array_equal(trial['score'], [1, 2])


# The command line: warnings at the end, --strict, errors.


def run(capsys, *args):
  status = score_script.main([str(a) for a in args])
  out, err = capsys.readouterr()
  return status, out, err


@pytest.mark.parametrize('strict', [False, True])
def test_cli_prints_warnings_last_and_strict_fails(tmp_path, capsys, strict):
  write_tree(tmp_path)
  for path in (tmp_path / 'b').glob('study_*/ogbg_jax/*/*.csv'):
    path.unlink()
  status, out, err = run(capsys, f'--submission_directory={tmp_path}',
                         '--workloads=criteo1tb,ogbg',
                         '--strict' if strict else '--nostrict')
  # b misses ogbg: a's ratios (1, 1), b's (1.5, inf).
  lines = out.rstrip('\n').split('\n')
  assert lines[-5:] == [
      'a 1.000000', 'b 0.416667', '',
      'warnings (each may change a score): 1',
      'warning: b: no ogbg logs; it counts as unsolved.']
  assert status == (1 if strict else 0)
  assert ('error: --strict: warnings above (1).' in err) is strict


def bad_input(capsys, *args):
  """stderr of scripts/score.py's main, which must exit 2 with one line."""
  with pytest.raises(SystemExit) as exit_info:
    score_script.main([str(a) for a in args])
  out, err = capsys.readouterr()
  assert exit_info.value.code == 2 and out == ''
  assert err.count('\n') == 1 and ': error: ' in err, err
  return err


def test_cli_bad_csv_exits_2_naming_the_file(trial_csv, capsys):
  trial_csv.write_bytes(GOOD[:-6].encode())
  err = bad_input(capsys, f'--submission_directory={trial_csv.parents[4]}')
  assert err.endswith(f': error: {trial_csv}: does not end with a line '
                      'break; the file is cut off mid-row.\n')


@pytest.mark.parametrize('case', ['missing', 'empty', 'zero-byte CSV'])
def test_cli_missing_or_empty_input_exits_2(tmp_path, capsys, case):
  write_tree(tmp_path / 'logs')
  trial_csv = (tmp_path / 'logs' / 'a' / 'study_0' / 'ogbg_jax' / 'trial_1' /
               'eval_measurements.csv')
  trial_csv.write_bytes(b'')
  (tmp_path / 'empty').mkdir()
  directory, message = {
      'missing': (tmp_path / 'nowhere', 'does not exist'),
      'empty': (tmp_path / 'empty', 'holds no submission directories'),
      'zero-byte CSV': (tmp_path / 'logs',
                        f'{trial_csv}: no eval measurements'),
  }[case]
  assert message in bad_input(capsys, f'--submission_directory={directory}')


@pytest.mark.parametrize('strict', [False, True])
def test_cli_dropped_submission_warns_and_strict_fails(tmp_path, capsys,
                                                       strict):
  write_tree(tmp_path / 'logs')
  (tmp_path / 'logs' / 'c').mkdir()
  (tmp_path / 'logs' / 'c' / 'study_0').symlink_to(tmp_path / 'gone')
  status, out, err = run(capsys, f'--submission_directory={tmp_path / "logs"}',
                         '--workloads=criteo1tb,ogbg',
                         '--strict' if strict else '--nostrict')
  assert status == (1 if strict else 0)
  assert out.rstrip('\n').split('\n')[-2:] == [
      'warnings (each may change a score): 1',
      f'warning: {tmp_path / "logs" / "c"}: holds folders but no '
      'eval_measurements.csv at any depth (a broken link?); submission '
      'dropped.']
  assert ('error: --strict: warnings above (1).' in err) is strict


def test_cli_exclude_submissions(tmp_path, capsys):
  write_tree(tmp_path)
  status, out, _ = run(capsys, f'--submission_directory={tmp_path}',
                       '--workloads=criteo1tb,ogbg', '--exclude_submissions=b')
  assert status == 0
  assert re.findall(r'^\w+ \d\.\d{6}$', out, flags=re.MULTILINE) == [
      'a 1.000000']
  err = bad_input(capsys, f'--submission_directory={tmp_path}',
                  '--exclude_submissions=c')
  assert "--exclude_submissions ['c'] are not" in err


# Submission folders without logs: warned, not silent.


@pytest.mark.parametrize('case', ['empty folder', 'broken link'])
def test_empty_or_broken_submission_folder_is_dropped_with_a_warning(
    tmp_path, caplog, case):
  write_tree(tmp_path / 'logs')
  c = tmp_path / 'logs' / 'c'
  if case == 'empty folder':
    c.mkdir()
    message = f'{c}: an empty folder; submission dropped.'
  else:
    c.symlink_to(tmp_path / 'gone')
    message = (f'{c}: a broken link (to {tmp_path / "gone"}); submission '
               'dropped.')
  with caplog.at_level(logging.INFO, logger='absl'):
    scores = score(tmp_path / 'logs')
  assert scores.submissions == ['a', 'b']
  assert scores.scores == pytest.approx(SCORES, abs=1e-12)
  assert scores.warnings == [message]
  assert [r.levelname for r in caplog.records
          if message in r.getMessage()] == ['WARNING']


# <name>-<timestamp> folders (submission_runner --append_timestamp).


STAMP = '-2024-01-02-03-04-05'


def test_timestamped_folder_is_read_into_its_submission(tmp_path, caplog):
  write_tree(tmp_path)
  # a's study_2 moved to a rerun's folder: the tree scores as before.
  (tmp_path / f'a{STAMP}').mkdir()
  (tmp_path / 'a' / 'study_2').rename(tmp_path / f'a{STAMP}' / 'study_2')
  with caplog.at_level(logging.INFO, logger='absl'):
    scores = score(tmp_path)
  assert scores.submissions == ['a', 'b'] and scores.warnings == []
  assert scores.scores == pytest.approx(SCORES, abs=1e-12)
  assert f'read a{STAMP} into submission a' in caplog.text
  # The rerun adds a trial meeting criteo1tb's target at 40 s to studies 0
  # and 1: those studies hold 6 trials (AlgoPerf joins them by study name)
  # and a's median time is median(40, 40, 100) = 40.
  for study in ('study_0', 'study_1'):
    write(tmp_path / f'a{STAMP}' / study / 'criteo1tb_jax' / 'trial_1' /
          'eval_measurements.csv', csv_text('criteo1tb', 40))
  scores = score(tmp_path)
  assert scores.times[0].tolist() == [40, 250]
  assert layout(scoring.load_submissions(tmp_path)['a'])['criteo1tb'] == {
      'study_0': 6, 'study_1': 6, 'study_2': 5}
  assert scores.warnings == [
      f'{tmp_path / "a" / "study_0" / "criteo1tb_jax"}: expected 5 trials, '
      'found 6.',
      f'{tmp_path / "a" / "study_1" / "criteo1tb_jax"}: expected 5 trials, '
      'found 6.']


def test_timestamped_folder_without_its_name_is_a_submission(tmp_path):
  write_tree(tmp_path)
  (tmp_path / 'b').rename(tmp_path / f'b{STAMP}')
  (tmp_path / 'a').rename(tmp_path / 'a-2024-01-02')  # Not a timestamp.
  assert scoring.timestamped_groups(
      ['a', f'a{STAMP}', f'a{STAMP}_x', 'ab', f'ab{STAMP}', 'b-1']) == {
          'a': ['a', f'a{STAMP}', f'a{STAMP}_x'], 'ab': ['ab', f'ab{STAMP}'],
          'b-1': ['b-1']}
  assert score(tmp_path).submissions == ['a-2024-01-02', f'b{STAMP}']


def test_timestamped_folder_in_another_framework_is_named(tmp_path):
  write_tree(tmp_path)
  write(tmp_path / f'a{STAMP}' / 'study_0' / 'ogbg_pytorch' / 'trial_1' /
        'eval_measurements.csv', csv_text('ogbg', 40))
  with pytest.raises(ValueError, match=re.escape(
      "workload 'ogbg' is split across frameworks")):
    score(tmp_path)


# Trials meeting the target at the same eval: --tie_rule.


def trial(time, listed):
  """A trial meeting criteo1tb's target at its second eval, at `time`."""
  return scoring.Trial({'global_step': np.array([10.0, 20]),
                        'score': np.array([time / 2, time]),
                        'validation/loss': np.array([0.2, 0.12])},
                       listed=listed)


def test_tie_goes_to_the_smaller_time_or_to_the_trial_listed_first():
  target = scoring.load_benchmark().targets['criteo1tb']
  # Both meet the target at eval 1; the one listed first took 120 s.
  trials = [trial(100, (0, 1)), trial(120, (0, 0)), trial(90, ())]
  trials[2]['validation/loss'] = np.array([0.2, 0.2])  # Never meets it.
  assert scoring.study_time_to_target(trials, target, 'score') == 100
  assert scoring.study_time_to_target(trials, target, 'score',
                                      tie_rule='algoperf') == 120
  # AlgoPerf's order: the experiment folder first, then the trial folder.
  trials = [trial(100, (1, 0)), trial(120, (0, 4))]
  assert scoring.study_time_to_target(trials, target, 'score',
                                      tie_rule='algoperf') == 120
  with pytest.raises(ValueError, match="tie_rule must be one of"):
    scoring.study_time_to_target(trials, target, 'score', tie_rule='first')


@pytest.mark.parametrize('reverse, expected', [(False, 120), (True, 100)])
def test_tie_rule_algoperf_follows_the_listing(tmp_path, monkeypatch, capsys,
                                              reverse, expected):
  # One study, two trials meeting criteo1tb's target at eval 1, trial_1 at
  # 120 s, trial_2 at 100 s; the file system lists them in `reverse` order.
  for k, time in ((1, 120), (2, 100)):
    write(tmp_path / 'a' / 'study_0' / 'criteo1tb_jax' / f'trial_{k}' /
          'eval_measurements.csv', csv_text('criteo1tb', time))
  listdir = os.listdir
  monkeypatch.setattr(scoring.os, 'listdir',
                      lambda p: sorted(listdir(p), reverse=reverse))
  scores = scoring.score_submissions(tmp_path, workloads=['criteo1tb'],
                                     tie_rule='algoperf')
  assert scores.times[0].tolist() == [expected]
  assert scoring.score_submissions(tmp_path, workloads=['criteo1tb']
                                   ).times[0].tolist() == [100]
  status, out, _ = run(capsys, f'--submission_directory={tmp_path}',
                       '--workloads=criteo1tb', '--tie_rule=algoperf')
  assert status == 0 and f'{expected:.1f} [1.00]' in out


# Local workloads: the layout run_local writes draws no count warning.


def write_local(root, studies=2, trials=1):
  """run_local's layout: mnist1d (accuracy >= 0.976), seeds as studies."""
  for name in ('nadamw', 'nadamw_ema'):
    for study in range(studies):
      for k in range(1, trials + 1):
        write(root / name / f'study_{study}' / 'mnist1d_jax' / f'trial_{k}' /
              'eval_measurements.csv',
              'global_step,score,validation/accuracy\n'
              '100,5.0,0.9\n200,10.0,0.98\n')


def test_local_layout_draws_no_count_warning(tmp_path, capsys):
  write_local(tmp_path, studies=2, trials=1)
  write(tmp_path / 'scores_score' / 'scores.json', '{}')
  status, out, _ = run(capsys, f'--submission_directory={tmp_path}',
                       '--workloads=local')
  assert status == 0 and 'warning' not in out
  # Genuine problems still warn: a study missing beside the others', a
  # trial missing beside the others'.
  write_local(tmp_path, studies=3, trials=2)
  shutil.rmtree(tmp_path / 'nadamw_ema' / 'study_2')
  shutil.rmtree(tmp_path / 'nadamw' / 'study_1' / 'mnist1d_jax' / 'trial_2')
  scores = scoring.score_submissions(tmp_path, workloads='local')
  assert scores.warnings == [
      f'{tmp_path / "nadamw" / "study_1" / "mnist1d_jax"}: expected 2 '
      'trials, found 1.',
      'nadamw_ema: mnist1d: expected 3 studies, found 2 (study_0, study_1).']
  # A trial extra beside the others' warns in its study only.
  write_local(tmp_path, studies=3, trials=2)
  write(tmp_path / 'nadamw' / 'study_0' / 'mnist1d_jax' / 'trial_3' /
        'eval_measurements.csv', 'global_step,validation/accuracy,score\n'
        '100,0.9,5\n')
  assert scoring.score_submissions(tmp_path, workloads='local').warnings == [
      f'{tmp_path / "nadamw" / "study_0" / "mnist1d_jax"}: expected 2 '
      'trials, found 3.']


def test_algoperf_workloads_keep_the_rulesets_counts(tmp_path):
  write_tree(tmp_path)
  shutil.rmtree(tmp_path / 'a' / 'study_2')
  assert scoring.expected_counts(
      scoring.load_submissions(tmp_path), ['criteo1tb'],
      scoring.load_benchmark(), 5) == {'criteo1tb': (3, 5)}


# One line, exit status 2.


def test_cli_unwritable_output_dir_exits_2(tmp_path, capsys):
  write_tree(tmp_path / 'logs')
  (tmp_path / 'file').write_text('')
  err = bad_input(capsys, f'--submission_directory={tmp_path / "logs"}',
                  f'--output_dir={tmp_path / "file" / "out"}')
  assert f'--output_dir {tmp_path / "file" / "out"} cannot be written' in err


def test_cli_file_as_submission_directory_is_not_a_folder(tmp_path, capsys):
  (tmp_path / 'file').write_text('')
  err = bad_input(capsys, f'--submission_directory={tmp_path / "file"}')
  assert err.endswith(f'--submission_directory {tmp_path / "file"} is not a '
                      'folder.\n')


def test_cli_excluding_every_submission_leaves_nothing(tmp_path, capsys):
  write_tree(tmp_path)
  write(tmp_path / 'scores_score' / 'scores.json', '{}')
  err = bad_input(capsys, f'--submission_directory={tmp_path}',
                  '--exclude_submissions=a,b')
  assert err.endswith(f'--exclude_submissions leaves nothing to score: it '
                      f'names every submission in {tmp_path} (a, b).\n')
  assert 'scores_score' not in err
