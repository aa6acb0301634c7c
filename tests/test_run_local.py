"""scripts.run_local as a person sees it: repeatable evals, one target rule,
the whole experiment summarised, 80 columns, Ctrl-C.

Runs use tests/fixtures/tiny_workload.py (registered as 'tiny': step_hint
100, so the default cadence evaluates every 2 steps) and the SGD fixture at
a learning rate that meets tiny's target (accuracy 0.9) in about 16 steps.
"""

import importlib.util
import io
import json
import math
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import types

import numpy as np
import pytest

from localperf.lab import calibration
from localperf import jobs
from localperf import logs
from localperf import runner
from localperf import scoring
from localperf import workloads as registry
from scripts import calibrate
from scripts import run_local
from scripts import sweep_codesign

FIXTURES = pathlib.Path(__file__).parent / 'fixtures'
SGD = str(FIXTURES / 'sgd' / 'submission.py')
SLOW_SGD = [{'learning_rate': 0.003}]
LONGEST = ('seq2seq_transformer', 'schedule_free_adamw')


@pytest.fixture(autouse=True)
def tiny(monkeypatch):
  path = FIXTURES / 'tiny_workload.py'
  module_spec = importlib.util.spec_from_file_location('tiny_workload', path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  monkeypatch.setitem(registry._WORKLOADS, 'tiny', module.TinyWorkload)  # pylint: disable=protected-access


def _run(tmp_path, name, *flags, submission=SGD):
  space = tmp_path / 'space.json'
  space.write_text(json.dumps(SLOW_SGD))
  return run_local.main([
      '--workload=tiny', f'--submission_path={submission}',
      f'--tuning_search_space={space}', f'--experiment_dir={tmp_path}',
      f'--experiment_name={name}', '--num_studies=1', '--jobs=1', *flags])


def _summary_rows(root):
  """{(workload, submission): row cells} of summary.txt."""
  lines = (root / 'summary.txt').read_text().splitlines()
  rows = lines[lines.index(next(l for l in lines if l.startswith('---'))) + 1:]
  return {tuple(r.split()[:2]): r.split()[2:] for r in rows}


def _eval_steps(trial_dir):
  return [r['global_step'] for r in
          logs.read_csv(str(trial_dir / 'eval_measurements.csv'))]


def _trial(root, submission='sgd'):
  return root / submission / 'study_0' / 'tiny_jax' / 'trial_1'


def test_default_cadence_gives_the_same_steps_table_twice(tmp_path):
  for name in ('a', 'b'):
    assert _run(tmp_path, name, '--max_global_steps=24',
                '--nosave_checkpoints') == 0
  a, b = _summary_rows(tmp_path / 'a'), _summary_rows(tmp_path / 'b')
  # Every 2% of step_hint 100, whatever the wall time (tiny's
  # eval_period_time_sec is 10 s, longer than the whole run).
  assert _eval_steps(_trial(tmp_path / 'a'))[:3] == ['2', '4', '6']
  assert _eval_steps(_trial(tmp_path / 'a')) == _eval_steps(
      _trial(tmp_path / 'b'))
  # Steps to target, best validation metric, budget: all but times.
  steps = lambda rows: {k: (v[0], v[2], v[3]) for k, v in rows.items()}
  assert steps(a) == steps(b) and a[('tiny', 'sgd')][0] != 'inf'


TIME_COLUMNS = ('score', 'total_duration', 'accumulated_submission_time',
                'accumulated_eval_time', 'accumulated_logging_time')


def _rows_but_times(trial_dir):
  return [{k: v for k, v in row.items() if k not in TIME_COLUMNS}
          for row in logs.read_csv(str(trial_dir / 'eval_measurements.csv'))]


def test_the_same_tables_beside_two_busy_processes(tmp_path, monkeypatch):
  """tiny's time budget cut to 1 ms: a wall-clock budget would stop both
  runs at their first eval, at a step the load decides. The step budget
  stops neither before the target (about 16 steps), with two CPU-bound
  processes beside the second run or not."""
  monkeypatch.setattr(registry.get_workload('tiny').__class__,
                      'max_allowed_runtime_sec', 0.001)
  assert _run(tmp_path, 'quiet', '--nosave_checkpoints') == 0
  burners = [subprocess.Popen([sys.executable, '-c', 'while 1: pass'])
             for _ in range(2)]
  try:
    assert _run(tmp_path, 'busy', '--nosave_checkpoints') == 0
  finally:
    for burner in burners:
      burner.kill()
      burner.wait()
  quiet, busy = tmp_path / 'quiet', tmp_path / 'busy'
  assert _rows_but_times(_trial(quiet)) == _rows_but_times(_trial(busy))
  rows = lambda root: {k: (v[0], *v[2:]) for k, v in
                       _summary_rows(root).items()}
  assert rows(quiet) == rows(busy)
  assert rows(quiet)[('tiny', 'sgd')][0] not in ('inf', '2')
  scores = lambda root: json.loads(
      (root / 'scores_global_step' / 'scores.json').read_text())['scores']
  assert scores(quiet) == scores(busy)


def test_a_trial_stopped_by_its_budget_says_so(tmp_path, monkeypatch,
                                               caplog):
  """An unreachable target, step_hint 10: the trial ends at step 10."""
  tiny = registry.get_workload('tiny').__class__
  monkeypatch.setattr(tiny, 'step_hint', 10)
  monkeypatch.setattr(tiny, 'validation_target_value', 2.0)
  assert _run(tmp_path, 'spent', '--nosave_checkpoints') == 0
  assert _eval_steps(_trial(tmp_path / 'spent'))[-1] == '10'
  assert _summary_rows(tmp_path / 'spent')[('tiny', 'sgd')][0] == 'inf'
  assert _summary_rows(tmp_path / 'spent')[('tiny', 'sgd')][3] == '1/1'
  assert 'sgd study 0: target not met in its budget of 10 steps' in (
      caplog.text)


def test_eval_every_fraction_0_gives_algoperfs_timed_evals(tmp_path):
  assert _run(tmp_path, 'timed', '--eval_every_fraction=0',
              '--max_global_steps=12', '--nosave_checkpoints') == 0
  # As AlgoPerf's runner: an eval after the first step (the clock starts at
  # 0), then one per 10 s (tiny's eval_period_time_sec), longer than these
  # 12 steps take, and one when training is complete.
  assert _eval_steps(_trial(tmp_path / 'timed')) == ['1', '12']


def _write_trial(root, submission, values, workload='mnist1d'):
  """One trial of `values` of validation accuracy (and BLEU) at steps 100,
  200, ..., 2.5 s of submission time each."""
  trial = root / submission / 'study_0' / f'{workload}_jax' / 'trial_1'
  trial.mkdir(parents=True)
  for k, value in enumerate(values, start=1):
    logs.append_csv_row(str(trial / 'eval_measurements.csv'), {
        'global_step': 100 * k, 'score': 2.5 * k,
        'validation/accuracy': value, 'validation/bleu': value,
        'validation/loss': 1 - value})


def test_summary_and_scores_agree_when_a_metric_equals_its_target(tmp_path):
  target = registry.get_workload('mnist1d').validation_target_value
  _write_trial(tmp_path, 'nadamw', [0.9, target, target + 0.001])
  _write_trial(tmp_path, 'nadamw_ema', [0.9, target - 1e-4, target + 1e-4])
  _write_trial(tmp_path, 'nadamw_lawa', [0.9, 0.95, 0.97])
  printed = run_local.summarize(str(tmp_path), ['nadamw'])
  rows = _summary_rows(tmp_path)
  scores = {column: json.loads(
      (tmp_path / f'scores_{column}' / 'scores.json').read_text())
            for column in scoring.TIME_COLUMNS}
  for name, steps in (('nadamw', 200), ('nadamw_ema', 300),
                      ('nadamw_lawa', math.inf)):
    summary_steps, summary_secs = map(float, rows[('mnist1d', name)][:2])
    assert summary_steps == steps
    assert summary_secs == (steps / 40 if math.isfinite(steps) else math.inf)
    by_steps = scores['global_step']['time_to_target'][name]['mnist1d']
    by_time = scores['score']['time_to_target'][name]['mnist1d']
    assert (by_steps, by_time) == ((steps, steps / 40) if math.isfinite(steps)
                                   else (None, None))
  # Stopped at step 300, short of mnist1d's budget of 2000 steps.
  assert rows[('mnist1d', 'nadamw_lawa')][3] == '0/1'
  assert printed.startswith(
      (tmp_path / 'summary.txt').read_text().split('\n\n')[0])


def test_study_outcome_is_the_scorers_trial():
  """Of two trials, the one meeting the target at the earlier eval counts."""
  target = scoring.local_target('mnist1d')
  columns = lambda score, values: {
      'global_step': np.array([100., 200.]), 'score': np.array(score),
      'validation/accuracy': np.array(values)}
  late = scoring.Trial(columns([1., 2.], [0.5, 0.98]))
  early = scoring.Trial(columns([3., 4.], [0.976, 0.977]))
  outcome = run_local.study_outcome([late, early], target)
  assert outcome[:3] == (100, 3.0, 0.977)
  assert outcome.curve == [(100, 0.976), (200, 0.977)]


def test_the_summary_covers_every_submission_in_the_experiment(
    tmp_path, capsys):
  assert _run(tmp_path, 'exp', '--max_global_steps=4') == 0
  root = tmp_path / 'exp'
  first = (_trial(root) / 'eval_measurements.csv').read_text()
  other = tmp_path / 'other'
  shutil.copytree(FIXTURES / 'sgd', other)
  # --overwrite replaces only what this command runs: sgd's logs stay.
  assert _run(tmp_path, 'exp', '--max_global_steps=2', '--overwrite',
              submission=str(other / 'submission.py')) == 0
  assert (_trial(root) / 'eval_measurements.csv').read_text() == first
  assert _eval_steps(_trial(root, 'other')) == ['2']
  assert set(_summary_rows(root)) == {('tiny', 'sgd'), ('tiny', 'other')}
  for column in scoring.TIME_COLUMNS:
    scores = json.loads((root / f'scores_{column}' / 'scores.json')
                        .read_text())
    assert set(scores['scores']) == {'sgd', 'other'}
  assert f'{root} also holds sgd, from earlier runs' in capsys.readouterr(
      ).out.replace('\n', ' ')


def test_an_unreadable_experiment_folder_is_one_line(tmp_path, capsys):
  """A trial folder without the _jax suffix: scoring names it."""
  stray = tmp_path / 'exp' / 'sgd' / 'study_0' / 'tiny' / 'trial_1'
  stray.mkdir(parents=True)
  (stray / 'eval_measurements.csv').write_text('global_step\n1\n')
  assert _run(tmp_path, 'exp', '--max_global_steps=2') == 1
  err = capsys.readouterr().err
  assert f'error: cannot summarise {tmp_path / "exp"}: ' in err
  assert 'is not named <workload>_jax' in err and 'Traceback' not in err


def test_ctrl_c_says_what_was_kept_and_how_to_resume(
    tmp_path, monkeypatch, capsys):
  """Interrupted after its first eval; the command it prints finishes it."""
  def interrupt(self, line):
    del self, line
    raise KeyboardInterrupt
  with monkeypatch.context() as patch:
    patch.setattr(run_local.ProgressLine, '__call__', interrupt)
    assert _run(tmp_path, 'cut', '--max_global_steps=8') == 130
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1 and 'Traceback' not in err
  assert 'interrupted; logs and checkpoints' in err
  assert ('run the same command with --resume_last_run '
          '--experiment_name=cut.') in err
  assert _eval_steps(_trial(tmp_path / 'cut')) == ['2']
  assert _run(tmp_path, 'cut', '--max_global_steps=8',
              '--resume_last_run') == 0
  assert _eval_steps(_trial(tmp_path / 'cut')) == ['2', '4', '6', '8']
  assert 'sgd study 0: resuming at step 2, its last checkpoint.' in (
      capsys.readouterr().err)


def test_sigterm_is_ctrl_c_with_exit_status_143(tmp_path, monkeypatch,
                                                capsys):
  def terminate(self, line):
    del self, line
    os.kill(os.getpid(), signal.SIGTERM)
  with monkeypatch.context() as patch:
    patch.setattr(run_local.ProgressLine, '__call__', terminate)
    assert _run(tmp_path, 'cut', '--max_global_steps=8') == 143
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1 and 'Traceback' not in err
  assert 'terminated (SIGTERM); logs and checkpoints' in err
  assert _eval_steps(_trial(tmp_path / 'cut')) == ['2']
  # The handler is this command's only: the default is back.
  assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_resuming_with_other_flags_is_refused(tmp_path, capsys):
  """A finished run resumed with another step limit: nothing reruns, and
  the one line names the flag, then and now."""
  assert _run(tmp_path, 'done', '--max_global_steps=4') == 0
  before = (_trial(tmp_path / 'done') / 'eval_measurements.csv').read_text()
  capsys.readouterr()
  assert _run(tmp_path, 'done', '--max_global_steps=6',
              '--resume_last_run') == 2
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1
  assert 'was run with other flags: --max_global_steps=4 (now 6)' in err
  after = (_trial(tmp_path / 'done') / 'eval_measurements.csv').read_text()
  assert after == before
  # The same flags resume (here: nothing left to train).
  assert _run(tmp_path, 'done', '--max_global_steps=4',
              '--resume_last_run', '--jobs=1') == 0


def test_ctrl_c_in_calibrate_and_sweep_is_one_line(
    tmp_path, monkeypatch, capsys):
  def interrupted_runs(*args, **kwargs):
    del args, kwargs
    raise KeyboardInterrupt
    yield  # pylint: disable=unreachable
  monkeypatch.setattr(calibration, 'calibrate_all', interrupted_runs)
  assert calibrate.main(['--workload=ctr_dlrm',
                         f'--output_dir={tmp_path}']) == 130
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1
  assert 'rerun the rest with --workloads=ctr_dlrm' in err
  monkeypatch.setattr(jobs, 'run', interrupted_runs)
  assert sweep_codesign.main(['--workloads=ctr_dlrm', '--schedules=cosine',
                              '--averagers=ema',
                              f'--output_dir={tmp_path}']) == 130
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1
  assert 'run the same command to train the rest' in err


def _eval(step, bleu):
  return step, {'validation/bleu': bleu}


def test_progress_fits_the_terminal_and_keeps_metric_and_time():
  workload = registry.get_workload('seq2seq_transformer')  # Target 77.0.
  status = runner.progress_line(workload, 1150, 2300,
                                [_eval(1100, 76.5), _eval(1150, 76.1234)],
                                123.4)
  assert status == 'step 1150/2300: bleu 76.1234, target 77.0; 123s'
  line = run_local.fit(f'{" ".join(LONGEST)} study 3: {status}', 79)
  assert len(line) <= 79 and line.endswith(': ' + status)
  # Each name keeps its head and tail: what tells submissions apart.
  assert line.startswith('seq2..rmer sched..damw study 3: ')
  assert run_local.fit('short: line', 79) == 'short: line'
  assert run_local.fit('x' * 100, 20) == 'x' * 18 + '..'


def test_progress_says_when_the_target_was_met_not_a_contradiction():
  """A later eval below the target: the line says when it was met, and a
  value that differs from the target is never printed as the target."""
  workload = registry.get_workload('mnist1d')
  results = [_eval(1400, 0.9), (1440, {'validation/accuracy': 0.9765}),
             (1480, {'validation/accuracy': 0.9755})]
  assert runner.progress_line(workload, 1480, 2000, results[1:], 35.6) == (
      'step 1480/2000: accuracy 0.9755; target met at 1440; 36s')
  close = [(40, {'validation/accuracy': 0.97596})]
  assert runner.progress_line(workload, 40, 2000, close, 1.0) == (
      'step 40/2000: accuracy 0.97596, target 0.976; 1s')
  # The target itself, >=: met (AlgoPerf's scorer's rule).
  equal = [(40, {'validation/accuracy': 0.976})]
  assert runner.progress_line(workload, 40, 2000, equal, 1.0) == (
      'step 40/2000: accuracy 0.9760; target met at 40; 1s')


def test_labels_keep_what_tells_the_default_submissions_apart():
  status = 'step 1480/2000: accuracy 0.9755; target met at 1440; 36s'
  lines = {run_local.fit(f'mnist1d {name} study 4: {status}', 79)
           .split(': ')[0] for name in run_local.DEFAULT_SUBMISSIONS}
  assert len(lines) == len(run_local.DEFAULT_SUBMISSIONS)
  assert all(line.endswith(' study 4') for line in lines)


class _Terminal(io.StringIO):

  def isatty(self):
    return True


@pytest.mark.parametrize('live', [True, False])
def test_progress_lines_fit_an_80_column_terminal(monkeypatch, live):
  monkeypatch.setenv('COLUMNS', '80')
  terminal = _Terminal()
  progress = run_local.ProgressLine(terminal, period_sec=0.0, live=live)
  status = 'step 1150/2300: bleu 77.1234, target 77.5; 123s'
  progress(f'{" ".join(LONGEST)}: {status}')
  progress.done(f'{" ".join(LONGEST)} study 0: target not met; best bleu 7')
  lines = terminal.getvalue().replace('\r', '\n').strip('\n').split('\n')
  assert all(len(line) <= 79 for line in lines)
  assert lines[0].endswith(status)
  assert lines[-1].rstrip().endswith('target not met; best bleu 7')


def test_tables_fit_79_columns():
  outcome = run_local.Outcome(1589, 38.2, 0.9765, [(1589, 0.976)])
  names = [*run_local.DEFAULT_SUBMISSIONS]
  outcomes = {(w, n): [outcome] for w in (*registry.PAPER_SEVEN, 'mnist1d')
              for n in names}
  table = run_local.summary_table(outcomes)
  assert max(map(len, table.splitlines())) <= 79
  assert '1589' in table and '0.9765' in table


def _outcomes(steps):
  return [run_local.Outcome(s, float(s), 0.5, []) for s in steps]


def test_spread_table_pairs_studies_by_seed():
  outcomes = {('ctr_dlrm', 'nadamw'): _outcomes([100, 200, math.inf]),
              ('ctr_dlrm', 'nadamw_ema'): _outcomes([90, 220, 150]),
              ('ctr_dlrm', 'nadamw_lawa'): _outcomes([80, math.inf, 70]),
              ('ctr_dlrm', 'nadamw_codesign'): _outcomes([110, 180,
                                                          math.inf])}
  rows = run_local.spread_table(outcomes).splitlines()[-4:]
  # The third study, which nadamw missed, leaves nothing to pair with itself.
  assert rows[0].split()[2:] == ['200', '(100-inf)', '1.00', '(1.00-1.00)',
                                 '2/3']
  # 90/100, 220/200, 150/inf: median 0.90, min 0, max 1.10.
  assert rows[1].split()[2:] == ['150', '(90-220)', '0.90', '(0.00-1.10)']
  assert rows[2].split()[2:] == ['80', '(70-inf)', '0.80', '(0.00-inf)']
  # 110/100, 180/200, both missed: median 1.00 of two.
  assert rows[3].split()[2:] == ['180', '(110-inf)', '1.00', '(0.90-1.10)',
                                 '2/3']


def test_spread_table_is_empty_for_one_study_and_fits_79_columns():
  names = [*run_local.DEFAULT_SUBMISSIONS]
  one = {(w, n): _outcomes([1589]) for w in registry.PAPER_SEVEN
         for n in names}
  assert run_local.spread_table(one) == ''
  five = {(w, n): _outcomes([12000, 11000, 13000, math.inf, 10000])
          for w in registry.PAPER_SEVEN for n in names}
  assert max(map(len, run_local.spread_table(five).splitlines())) <= 79


def test_score_table_fits_79_columns(tmp_path):
  for name in run_local.DEFAULT_SUBMISSIONS:
    _write_trial(tmp_path, name, [0.97, 0.98], workload='seq2seq_transformer')
  for name in run_local.DEFAULT_SUBMISSIONS:
    _write_trial(tmp_path, name, [0.97, 0.98])
  experiment = scoring.load_submissions(tmp_path)
  scores = {c: scoring.score_logs(experiment, scoring.load_benchmark(),
                                  time_column=c, workloads='local')
            for c in scoring.TIME_COLUMNS}
  table = run_local.scores_table(scores)
  assert max(map(len, table.splitlines())) <= 79
  assert 'benchmark score' in table


def test_verdict_pairs_seeds_and_compares_with_nadamws_spread():
  """nadamw 100, 200, 150 steps: median 150, its seeds span 0.67-1.33x.
  nadamw_ema 90, 220, 120: ratios 0.9, 1.1, 0.8, inside; nadamw_lawa 50,
  100, 70: 0.5, 0.5, 0.47, outside."""
  seeded = lambda steps: [run_local.Outcome(s, float(s), 0.5, [], seed=k)
                          for k, s in enumerate(steps)]
  outcomes = {('mnist1d', 'nadamw'): seeded([100, 200, 150]),
              ('mnist1d', 'nadamw_ema'): seeded([90, 220, 120]),
              ('mnist1d', 'nadamw_lawa'): seeded([50, 100, 70])}
  by_steps = types.SimpleNamespace(
      submissions=['nadamw', 'nadamw_ema', 'nadamw_lawa'],
      scores={'nadamw': 0.5, 'nadamw_ema': 0.6, 'nadamw_lawa': 1.0})
  text = run_local.verdict(outcomes, by_steps)
  lines = text.splitlines()
  assert "mnist1d: nadamw's own steps span 0.67-1.33x their median" in text
  flat = ' '.join(line.strip() for line in lines)
  assert ('nadamw_ema: 0.90 (0.80-1.10); fewer steps at 2/3 seeds (0, 2); '
          'inside that spread') in flat
  assert ('nadamw_lawa: 0.50 (0.47-0.50); fewer steps at 3/3 seeds '
          '(0, 1, 2); outside that spread') in flat
  assert ('nadamw_lawa 1.000, nadamw_ema 0.600, nadamw 0.500.'
          in text.replace('\n', ' '))
  assert max(map(len, lines)) <= 79
