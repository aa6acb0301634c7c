"""Bad input ends `scripts.run_local` with a message naming the problem.

Every case is caught before any training: the exit status is 2 (for bad
flags and run_local's own checks), stderr names the problem, and no trial
directory exists. A loss that turns NaN is caught at the next eval: the
trial stops with a message and its logs are kept.
"""

import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

from localperf import logs
from scripts import run_local

REPO = pathlib.Path(__file__).resolve().parent.parent
NADAMW = 'submissions/nadamw/submission.py'
LAWA = 'submissions/nadamw_lawa/submission.py'
POINT = {'learning_rate': 0.003, 'one_minus_beta1': 0.1, 'beta2': 0.99,
         'weight_decay': 0.05, 'warmup_factor': 0.02, 'dropout_rate': 0.0}
LAWA_POINT = {**POINT, 'averaging_start_fraction': 0.5,
              'averaging_window_fraction': 0.1, 'lawa_queue_length': 4}


def _point(**changes):
  """POINT with `changes`; a value of None removes the key."""
  point = {**POINT, **changes}
  return {k: v for k, v in point.items() if v is not None}


# (flags, file contents the flags refer to, message regex). '{space}' in a
# flag is the search space written from the contents; '{tmp}' the temp dir.
CASES = {
    'unknown workload': (
        ['--workload=imagenet'], None, "Unknown workload 'imagenet'; valid "
        'workloads: mnist1d'),
    'unknown workload in a list': (
        ['--workloads=mnist1d,nope'], None, "Unknown workload 'nope'"),
    'unknown submission name': (
        ['--submissions=nadamw,adam'], None,
        "--submissions: no submission 'adam'; valid submissions: nadamw, "
        '.*nadamw_ema, nadamw_lawa, schedule_free_adamw'),
    'submission path not a .py file': (
        ['--submission_path=submissions/nadamw'], None,
        'must name a Python file'),
    'submission missing a function': (
        ['--submission_path={tmp}/bad/submission.py'],
        'def init_optimizer_state(*a): pass\n',
        'missing required function.*update_params'),
    'submission fails to import': (
        ['--submission_path={tmp}/bad/submission.py'],
        'import not_a_module_anywhere\n',
        'import failed: ModuleNotFoundError'),
    'search space file missing': (
        [f'--submission_path={NADAMW}',
         '--tuning_search_space={tmp}/none.json'], None, 'cannot read'),
    'search space malformed JSON': (
        [f'--submission_path={NADAMW}', '--tuning_search_space={space}'],
        '{"learning_rate": ', 'malformed JSON'),
    'search space entry without min/max or points': (
        [f'--submission_path={NADAMW}', '--tuning_search_space={space}'],
        {'learning_rate': {'min': 0.001}}, "'learning_rate'.*missing"),
    'search space min above max': (
        [f'--submission_path={NADAMW}', '--tuning_search_space={space}'],
        {'learning_rate': {'min': 0.1, 'max': 0.01, 'scaling': 'log'}},
        r'"min" \(0.1\) is greater than "max"'),
    'search space unknown scaling': (
        [f'--submission_path={NADAMW}', '--tuning_search_space={space}'],
        {'learning_rate': {'min': 0.001, 'max': 0.1, 'scaling': 'cubic'}},
        'unknown "scaling"'),
    'search space empty list': (
        [f'--submission_path={NADAMW}', '--tuning_search_space={space}'],
        [], 'list of points is empty'),
    'missing hyperparameter': (
        [f'--submission_path={NADAMW}', '--tuning_search_space={space}'],
        [_point(learning_rate=None)], 'Missing hyperparameter `learning_rate`'),
    'misspelt hyperparameter': (
        [f'--submission_path={NADAMW}', '--tuning_search_space={space}'],
        [_point(weight_decay=None, wieght_decay=0.1)],
        r"Unknown hyperparameter\(s\) \['wieght_decay'\]"),
    'negative learning rate': (
        [f'--submission_path={NADAMW}', '--tuning_search_space={space}'],
        [_point(learning_rate=-0.1)], '`learning_rate` must be a number > 0'),
    'beta2 above one': (
        [f'--submission_path={NADAMW}', '--tuning_search_space={space}'],
        [_point(beta2=1.5)], r'`beta2` must be a number in \(0, 1\)'),
    'dropout rate of one': (
        [f'--submission_path={NADAMW}', '--tuning_search_space={space}'],
        [_point(dropout_rate=1.0)], r'`dropout_rate` must be a number in'),
    'learning rate as text': (
        [f'--submission_path={NADAMW}', '--tuning_search_space={space}'],
        [_point(learning_rate='fast')], "`learning_rate`.*got 'fast'"),
    'fractional LAWA queue length': (
        [f'--submission_path={LAWA}', '--tuning_search_space={space}'],
        [{**LAWA_POINT, 'lawa_queue_length': 2.5}],
        '`lawa_queue_length` must be an integer >= 1'),
    'unknown tuning ruleset': (
        ['--tuning_ruleset=internal'], None,
        '--tuning_ruleset=internal: value should be one of <external|self>'),
    'self-tuning with a search space': (
        [f'--submission_path={NADAMW}', '--tuning_ruleset=self',
         '--tuning_search_space={space}'], [POINT],
        'must not be given with the self-tuning ruleset'),
    'zero tuning trials': (
        ['--num_tuning_trials=0'], None,
        '--num_tuning_trials=0: 0 is not a positive integer'),
    'zero eval interval': (
        ['--eval_every_n_steps=0'], None,
        '--eval_every_n_steps=0: 0 is not a positive integer'),
    'eval fraction above one': (
        ['--eval_every_fraction=1.5'], None,
        r'--eval_every_fraction must be in \[0, 1\] \(0: timed evals\), '
        'got 1.5'),
    'negative eval fraction': (
        ['--eval_every_fraction=-0.02'], None,
        r'--eval_every_fraction must be in \[0, 1\]'),
    'two eval cadences': (
        ['--eval_every_fraction=0.02', '--eval_every_n_steps=5'], None,
        '--eval_every_fraction and --eval_every_n_steps exclude each other'),
    'timed evals and a step cadence': (
        ['--eval_every_fraction=0', '--eval_every_n_steps=5'], None,
        '--eval_every_fraction and --eval_every_n_steps exclude each other'),
    'two step limits': (
        ['--max_steps_fraction=1.2', '--max_global_steps=5'], None,
        '--max_steps_fraction and --max_global_steps exclude each other'),
    'zero step fraction': (
        ['--max_steps_fraction=0'], None,
        '--max_steps_fraction must be > 0, got 0.0'),
    'negative step limit': (
        ['--max_global_steps=-5'], None,
        '--max_global_steps=-5: -5 is not a positive integer'),
    'trial point not a number': (
        ['--trial_point=first'], None,
        "--trial_point must be an integer >= 1 or 'reference', got 'first'"),
    'trial point beyond the search space': (
        [f'--submission_path={NADAMW}', '--trial_point=6'], None,
        'trial_point 6: search space .* must be a list of at least that '
        'many points'),
    'unknown flag': (
        ['--num_trials=3'], None, "Unknown command line flag 'num_trials'"),
    'overwrite and resume together': (
        ['--overwrite', '--resume_last_run'], None,
        'exclude each other'),
    'existing experiment without overwrite or resume': (
        ['--experiment_name=exists'], None,
        'exists: pass --overwrite to replace it or --resume_last_run'),
    'resume without an experiment name': (
        ['--resume_last_run'], None,
        '--resume_last_run needs --experiment_name, the experiment to '
        r'continue in .* \(experiments there: exists\)'),
    'resume a misspelt experiment': (
        ['--resume_last_run', '--experiment_name=exsits'], None,
        "--resume_last_run: no experiment 'exsits' in .* to continue "
        r'\(experiments there: exists\)'),
    'empty experiment name': (
        ['--experiment_name='], None,
        "--experiment_name must be a folder name inside --experiment_dir .*"
        "got ''"),
    'experiment name outside the experiment directory': (
        ['--experiment_name=../escape'], None,
        "--experiment_name must be a folder name .*got '../escape'"),
    'trial point and a trial count': (
        ['--num_tuning_trials=3', '--trial_point=2'], None,
        '--trial_point=2 runs one point of each search space; '
        '--num_tuning_trials=3 asks for more'),
    'experiment directory under a file': (
        ['--experiment_dir={tmp}/a_file'], None,
        'cannot write the experiment directory.*Not a directory'),
}


@pytest.mark.parametrize('case', sorted(CASES))
def test_bad_input_is_named_before_training(case, tmp_path, capsys):
  flags, contents, message = CASES[case]
  space = tmp_path / 'space.json'
  if contents is not None:
    text = contents if isinstance(contents, str) else json.dumps(contents)
    (tmp_path / 'bad').mkdir()
    (tmp_path / 'bad' / 'submission.py').write_text(text)
    space.write_text(text)
  (tmp_path / 'a_file').write_text('')
  experiments = tmp_path / 'experiments'
  (experiments / 'exists' / 'nadamw' / 'study_0' / 'mnist1d_jax').mkdir(
      parents=True)
  flags = [f.format(tmp=tmp_path, space=space) for f in flags]
  argv = [f'--experiment_dir={experiments}', '--submissions=nadamw'] + flags
  try:
    code = run_local.main(argv)
  except SystemExit as e:  # A bad flag.
    code = e.code
  assert code == 2
  err = capsys.readouterr().err
  assert re.search(message, err)
  # One line, but for the skip notice before 'no submission could be loaded'.
  assert len(err.strip().splitlines()) == (
      2 if case == 'submission fails to import' else 1)
  assert not list(tmp_path.glob('**/trial_*'))
  assert not (tmp_path / 'escape').exists()


def test_batch_size_not_divisible_by_devices(tmp_path):
  """mnist1d's batch of 128 over 3 devices."""
  env = dict(os.environ,
             XLA_FLAGS='--xla_force_host_platform_device_count=3')
  run = subprocess.run(
      [sys.executable, '-m', 'scripts.run_local', '--submissions=nadamw',
       f'--experiment_dir={tmp_path}'], env=env, cwd=REPO,
      capture_output=True, text=True, check=False)
  assert run.returncode == 2
  assert ('global batch size (128) must be a positive multiple of the '
          'number of devices (3)') in run.stderr
  assert not list(tmp_path.glob('**/trial_*'))


def test_nan_loss_stops_the_trial_and_keeps_its_logs(tmp_path, capsys):
  """A learning rate of 1e30 turns mnist1d's loss NaN within a few steps."""
  space = tmp_path / 'space.json'
  space.write_text(json.dumps([_point(learning_rate=1e30,
                                      warmup_factor=0.0)]))
  code = run_local.main([
      f'--submission_path={NADAMW}', f'--tuning_search_space={space}',
      '--workload=mnist1d', '--eval_every_n_steps=5',
      '--max_global_steps=200', f'--experiment_dir={tmp_path}',
      '--experiment_name=nan', '--num_studies=1', '--jobs=1'])
  assert code == 0
  err = capsys.readouterr().err
  assert 'Stopping the trial: ' in err
  assert 'validation/loss is nan at step 5 (training diverged)' in err
  trial = tmp_path / 'nan' / 'nadamw' / 'study_0' / 'mnist1d_jax' / 'trial_1'
  rows = logs.read_csv(str(trial / 'eval_measurements.csv'))
  assert [r['global_step'] for r in rows] == ['5']
  assert rows[0]['validation/loss'] == 'nan'
  assert (trial / 'measurements.csv').exists()
  assert (trial / 'checkpoint_5').exists()
  assert (trial / 'hparams.json').exists()
