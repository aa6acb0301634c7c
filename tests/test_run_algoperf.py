"""scripts.run_algoperf: the commands it builds and the errors it raises."""

import importlib.util
import os
import sys

import pytest

from scripts import run_algoperf

REPO = str(run_algoperf.REPO_DIR)
RUNNER = '/opt/algoperf/submission_runner.py'
HAS_ALGOPERF = importlib.util.find_spec('algoperf') is not None


def _lines(flags, workloads=('ogbg',), submissions=('nadamw_ema',)):
  args = run_algoperf.parse_args(flags)
  facts = run_algoperf.load_workloads()['workloads']
  argvs = run_algoperf.all_argvs(args, submissions, workloads, facts,
                                 python='python3', runner=RUNNER)
  return [run_algoperf.shell_line(a, repo_dir='/src/wa') for a in argvs]


def _error(argv):
  with pytest.raises(SystemExit) as e:
    run_algoperf.main(argv)
  return str(e.value.code)


# ----------------------------------------------------------------------------
# Golden commands.


def test_external_tuning_commands():
  lines = _lines(
      ['--experiment_dir', '/exp', '--data_dir', '/data', '--num_studies',
       '2', '--seed', '7', '--overwrite', '--max_global_steps', '100'],
      workloads=('ogbg', 'librispeech_conformer'))
  assert lines == [
      'cd /src/wa && python3 /opt/algoperf/submission_runner.py '
      '--framework=jax --workload=ogbg '
      '--submission_path=submissions/nadamw_ema/submission.py '
      '--tuning_ruleset=external '
      '--tuning_search_space=workloads_config/external_tuning/nadamw_ema.json '
      '--num_tuning_trials=5 --data_dir=/data/ogbg '
      '--experiment_dir=/exp/nadamw_ema --experiment_name=study_0 '
      '--rng_seed=7 --overwrite --max_global_steps=100',
      'cd /src/wa && python3 /opt/algoperf/submission_runner.py '
      '--framework=jax --workload=librispeech_conformer '
      '--submission_path=submissions/nadamw_ema/submission.py '
      '--tuning_ruleset=external '
      '--tuning_search_space=workloads_config/external_tuning/nadamw_ema.json '
      '--num_tuning_trials=5 --data_dir=/data/librispeech '
      '--librispeech_tokenizer_vocab_path=/data/librispeech/spm_model.vocab '
      '--experiment_dir=/exp/nadamw_ema --experiment_name=study_0 '
      '--rng_seed=7 --overwrite --max_global_steps=100',
      'cd /src/wa && python3 /opt/algoperf/submission_runner.py '
      '--framework=jax --workload=ogbg '
      '--submission_path=submissions/nadamw_ema/submission.py '
      '--tuning_ruleset=external '
      '--tuning_search_space=workloads_config/external_tuning/nadamw_ema.json '
      '--num_tuning_trials=5 --data_dir=/data/ogbg '
      '--experiment_dir=/exp/nadamw_ema --experiment_name=study_1 '
      '--rng_seed=8 --overwrite --max_global_steps=100',
      'cd /src/wa && python3 /opt/algoperf/submission_runner.py '
      '--framework=jax --workload=librispeech_conformer '
      '--submission_path=submissions/nadamw_ema/submission.py '
      '--tuning_ruleset=external '
      '--tuning_search_space=workloads_config/external_tuning/nadamw_ema.json '
      '--num_tuning_trials=5 --data_dir=/data/librispeech '
      '--librispeech_tokenizer_vocab_path=/data/librispeech/spm_model.vocab '
      '--experiment_dir=/exp/nadamw_ema --experiment_name=study_1 '
      '--rng_seed=8 --overwrite --max_global_steps=100',
  ]


def test_self_tuning_commands():
  lines = _lines(
      ['--experiment_dir', '/exp', '--data_dir', '/my data', '--num_studies',
       '1', '--tuning_ruleset', 'self', '--resume_last_run'],
      workloads=('imagenet_vit',), submissions=('nadamw', 'nadamw_lawa'))
  assert lines == [
      'cd /src/wa && python3 /opt/algoperf/submission_runner.py '
      '--framework=jax --workload=imagenet_vit '
      '--submission_path=submissions/nadamw/submission.py '
      "--tuning_ruleset=self '--data_dir=/my data/imagenet/jax' "
      "'--imagenet_v2_data_dir=/my data/imagenet/jax' "
      '--experiment_dir=/exp/nadamw --experiment_name=study_0 --rng_seed=1 '
      '--resume_last_run',
      'cd /src/wa && python3 /opt/algoperf/submission_runner.py '
      '--framework=jax --workload=imagenet_vit '
      '--submission_path=submissions/nadamw_lawa/submission.py '
      "--tuning_ruleset=self '--data_dir=/my data/imagenet/jax' "
      "'--imagenet_v2_data_dir=/my data/imagenet/jax' "
      '--experiment_dir=/exp/nadamw_lawa --experiment_name=study_0 '
      '--rng_seed=1 --resume_last_run',
  ]


def test_paper_settings_commands_run_every_point_of_the_workloads_file():
  lines = _lines(['--experiment_dir', '/exp', '--data_dir', '/data',
                  '--num_studies', '1', '--paper_settings'],
                 workloads=('wmt',), submissions=('nadamw', 'nadamw_lawa'))
  assert lines == [
      'cd /src/wa && python3 /opt/algoperf/submission_runner.py '
      '--framework=jax --workload=wmt '
      '--submission_path=submissions/nadamw/submission.py '
      '--tuning_ruleset=external '
      '--tuning_search_space=workloads_config/paper_runs/nadamw/wmt.json '
      '--num_tuning_trials=1 --data_dir=/data/wmt '
      '--experiment_dir=/exp/nadamw --experiment_name=study_0 --rng_seed=1',
      'cd /src/wa && python3 /opt/algoperf/submission_runner.py '
      '--framework=jax --workload=wmt '
      '--submission_path=submissions/nadamw_lawa/submission.py '
      '--tuning_ruleset=external '
      '--tuning_search_space=workloads_config/paper_runs/nadamw_lawa/wmt.json '
      '--num_tuning_trials=2 --data_dir=/data/wmt '
      '--experiment_dir=/exp/nadamw_lawa --experiment_name=study_0 '
      '--rng_seed=1',
  ]


def test_dry_run_prints_every_paper_run_without_algoperf_or_data(capsys):
  assert run_algoperf.main(
      ['--dry_run', '--experiment_dir', '/exp', '--data_dir', '/nodata',
       '--num_studies', '2', '--algoperf_dir', '/nowhere']) == 0
  out, err = capsys.readouterr()
  lines = out.splitlines()
  assert len(lines) == 2 * 7 * 3  # Studies x paper workloads x submissions.
  assert lines[0] == (
      f'cd {REPO} && {sys.executable} /nowhere/submission_runner.py '
      '--framework=jax --workload=criteo1tb '
      '--submission_path=submissions/nadamw/submission.py '
      '--tuning_ruleset=external '
      '--tuning_search_space=workloads_config/external_tuning/nadamw.json '
      '--num_tuning_trials=5 --data_dir=/nodata/criteo1tb '
      '--experiment_dir=/exp/nadamw --experiment_name=study_0 --rng_seed=1')
  assert lines[-1].endswith('--experiment_dir=/exp/nadamw_lawa '
                            '--experiment_name=study_1 --rng_seed=2')
  assert 'warning: missing data: /nodata/criteo1tb' in err


@pytest.mark.skipif(HAS_ALGOPERF, reason='AlgoPerf is installed here.')
def test_dry_run_without_algoperf_leaves_a_placeholder(capsys):
  run_algoperf.main(['--dry_run', '--experiment_dir', '/exp', '--workloads',
                     'ogbg', '--submissions', 'nadamw'])
  out, err = capsys.readouterr()
  assert f'{sys.executable} ${{ALGOPERF_DIR}}/submission_runner.py ' in out
  assert 'AlgoPerf is not importable' in err


# ----------------------------------------------------------------------------
# Launching.


def test_launches_runs_in_order_from_the_repository(tmp_path, monkeypatch,
                                                    capsys):
  record = tmp_path / 'calls.txt'
  fake_runner = tmp_path / 'submission_runner.py'
  fake_runner.write_text(
      'import os, sys\n'
      f'with open({str(record)!r}, "a") as f:\n'
      '  f.write(os.getcwd() + " " + " ".join(sys.argv[1:3]) + "\\n")\n')
  (tmp_path / 'data' / 'ogbg').mkdir(parents=True)
  monkeypatch.setattr(run_algoperf, 'find_runner',
                      lambda *_: str(fake_runner))
  monkeypatch.setattr(run_algoperf, 'check_package_installed', lambda _: None)
  assert run_algoperf.main(
      ['--experiment_dir', str(tmp_path / 'exp'), '--data_dir',
       str(tmp_path / 'data'), '--workloads', 'ogbg', '--submissions',
       'nadamw,nadamw_ema', '--num_studies', '1']) == 0
  assert record.read_text().splitlines() == [
      f'{REPO} --framework=jax --workload=ogbg',
      f'{REPO} --framework=jax --workload=ogbg',
  ]
  assert '[2/2] cd ' in capsys.readouterr().out


# ----------------------------------------------------------------------------
# Bad input.


def test_unknown_workload_lists_the_valid_ones():
  message = _error(['--dry_run', '--experiment_dir', '/exp', '--workloads',
                    'ogbg,imagenet'])
  assert "--workloads: unknown ['imagenet']; valid: paper_seven, criteo1tb" in (
      message)


def test_unknown_submission_lists_the_valid_ones():
  message = _error(['--dry_run', '--experiment_dir', '/exp', '--submissions',
                    'adamw'])
  assert message == (
      "run_algoperf: error: --submissions: unknown ['adamw']; valid: nadamw, "
      'nadamw_ema, nadamw_lawa, schedule_free_adamw.')


@pytest.mark.parametrize('flags, expected', [
    (['--seed', '0'], '--seed must be an integer >= 1, got 0.'),
    (['--num_studies', '0'], '--num_studies must be an integer >= 1'),
    (['--tuning_ruleset', 'self', '--num_tuning_trials', '3'],
     '--num_tuning_trials applies to --tuning_ruleset external only'),
    (['--tuning_ruleset', 'self', '--paper_settings'],
     '--paper_settings needs --tuning_ruleset external'),
    (['--paper_settings', '--submissions', 'schedule_free_adamw'],
     "--paper_settings: no paper settings for ['schedule_free_adamw']"),
    (['--paper_settings', '--workloads', 'imagenet_resnet'],
     'missing search spaces: '
     'workloads_config/paper_runs/nadamw/imagenet_resnet.json'),
])
def test_bad_options(flags, expected):
  assert expected in _error(['--dry_run', '--experiment_dir', '/exp', *flags])


def test_missing_data_fails_before_anything_launches(tmp_path):
  message = _error(['--experiment_dir', str(tmp_path), '--data_dir',
                    str(tmp_path / 'data'), '--workloads', 'wmt,fastmri'])
  assert message == (
      f'run_algoperf: error: --data_dir: missing {tmp_path}/data/fastmri, '
      f"{tmp_path}/data/wmt (set the data up with AlgoPerf's "
      'datasets/dataset_setup.py).')


@pytest.mark.skipif(HAS_ALGOPERF, reason='AlgoPerf is installed here.')
def test_missing_algoperf_says_how_to_install_it(tmp_path):
  (tmp_path / 'ogbg').mkdir()
  message = _error(['--experiment_dir', str(tmp_path / 'exp'), '--data_dir',
                    str(tmp_path), '--workloads', 'ogbg'])
  assert 'AlgoPerf is not importable' in message
  assert ('git clone https://github.com/mlcommons/algorithmic-efficiency && '
          "pip install -e 'algorithmic-efficiency[pytorch_cpu,jax_gpu,full]'"
          in message)


def test_algoperf_dir_without_runner_is_rejected(tmp_path):
  (tmp_path / 'ogbg').mkdir()
  message = _error(['--experiment_dir', str(tmp_path / 'exp'), '--data_dir',
                    str(tmp_path), '--workloads', 'ogbg', '--algoperf_dir',
                    str(tmp_path)])
  assert ('AlgoPerf is not importable' in message if not HAS_ALGOPERF
          else f'no submission_runner.py in {tmp_path}' in message)


def test_existing_logs_need_overwrite_or_resume(tmp_path, monkeypatch):
  (tmp_path / 'ogbg').mkdir()
  os.makedirs(tmp_path / 'exp' / 'nadamw' / 'study_0' / 'ogbg_jax')
  monkeypatch.setattr(run_algoperf, 'find_runner', lambda *_: RUNNER)
  monkeypatch.setattr(run_algoperf, 'check_package_installed', lambda _: None)
  message = _error(['--experiment_dir', str(tmp_path / 'exp'), '--data_dir',
                    str(tmp_path), '--workloads', 'ogbg', '--submissions',
                    'nadamw'])
  assert message == (
      f'run_algoperf: error: logs exist: {tmp_path}/exp/nadamw/study_0/'
      'ogbg_jax; pass --overwrite or --resume_last_run.')
