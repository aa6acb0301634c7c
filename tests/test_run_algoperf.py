"""scripts.run_algoperf: the commands it builds and the errors it raises."""

import importlib.metadata
import importlib.util
import os
import sys

import pytest

from scripts import run_algoperf

REPO = str(run_algoperf.REPO_DIR)
RUNNER = '/opt/algoperf/submission_runner.py'
HAS_ALGOPERF = importlib.util.find_spec('algoperf') is not None
CHECK_ORBAX = run_algoperf.check_orbax  # Before the fixture replaces it.


def _lines(flags, workloads=('ogbg',), submissions=('nadamw_ema',)):
  args = run_algoperf.parse_flags(flags)
  facts = run_algoperf.load_workloads()['workloads']
  argvs = run_algoperf.all_argvs(args, submissions, workloads, facts,
                                 python='python3', runner=RUNNER)
  return [run_algoperf.shell_line(a, repo_dir='/src/wa') for a in argvs]


def _error(argv, capsys):
  """main's one-line usage error (exit status 2), before anything launches."""
  with pytest.raises(SystemExit) as e:
    run_algoperf.main(argv)
  assert e.value.code == 2
  return capsys.readouterr().err.split(': error: ', 1)[1].strip()


@pytest.fixture(autouse=True)
def _no_orbax_probe(monkeypatch):
  """check_orbax starts jax in a subprocess; its own tests call it."""
  monkeypatch.setattr(run_algoperf, 'check_orbax', lambda _: None)


# ----------------------------------------------------------------------------
# Golden commands.


def test_external_tuning_commands():
  lines = _lines(
      ['--experiment_dir', '/exp', '--data_dir', '/data', '--num_studies',
       '2', '--rng_seed', '7', '--overwrite', '--max_global_steps', '100'],
      workloads=('ogbg', 'librispeech_conformer'))
  assert lines == [
      'cd /src/wa && python3 -m scripts.algoperf_runner '
      '/opt/algoperf/submission_runner.py '
      '--framework=jax --workload=ogbg '
      '--submission_path=submissions/nadamw_ema/submission.py '
      '--tuning_ruleset=external '
      '--tuning_search_space=workloads_config/external_tuning/nadamw_ema.json '
      '--num_tuning_trials=5 --data_dir=/data/ogbg '
      '--experiment_dir=/exp/nadamw_ema --experiment_name=study_0 '
      '--rng_seed=7 --overwrite --max_global_steps=100',
      'cd /src/wa && python3 -m scripts.algoperf_runner '
      '/opt/algoperf/submission_runner.py '
      '--framework=jax --workload=librispeech_conformer '
      '--submission_path=submissions/nadamw_ema/submission.py '
      '--tuning_ruleset=external '
      '--tuning_search_space=workloads_config/external_tuning/nadamw_ema.json '
      '--num_tuning_trials=5 --data_dir=/data/librispeech '
      '--librispeech_tokenizer_vocab_path=/data/librispeech/spm_model.vocab '
      '--experiment_dir=/exp/nadamw_ema --experiment_name=study_0 '
      '--rng_seed=7 --overwrite --max_global_steps=100',
      'cd /src/wa && python3 -m scripts.algoperf_runner '
      '/opt/algoperf/submission_runner.py '
      '--framework=jax --workload=ogbg '
      '--submission_path=submissions/nadamw_ema/submission.py '
      '--tuning_ruleset=external '
      '--tuning_search_space=workloads_config/external_tuning/nadamw_ema.json '
      '--num_tuning_trials=5 --data_dir=/data/ogbg '
      '--experiment_dir=/exp/nadamw_ema --experiment_name=study_1 '
      '--rng_seed=8 --overwrite --max_global_steps=100',
      'cd /src/wa && python3 -m scripts.algoperf_runner '
      '/opt/algoperf/submission_runner.py '
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
       '1', '--tuning_ruleset', 'self', '--seed=3'],
      workloads=('imagenet_vit',), submissions=('nadamw', 'nadamw_lawa'))
  assert lines == [
      'cd /src/wa && python3 -m scripts.algoperf_runner '
      '/opt/algoperf/submission_runner.py '
      '--framework=jax --workload=imagenet_vit '
      '--submission_path=submissions/nadamw/submission.py '
      "--tuning_ruleset=self '--data_dir=/my data/imagenet/jax' "
      "'--imagenet_v2_data_dir=/my data/imagenet/jax' "
      '--experiment_dir=/exp/nadamw --experiment_name=study_0 --rng_seed=3',
      'cd /src/wa && python3 -m scripts.algoperf_runner '
      '/opt/algoperf/submission_runner.py '
      '--framework=jax --workload=imagenet_vit '
      '--submission_path=submissions/nadamw_lawa/submission.py '
      "--tuning_ruleset=self '--data_dir=/my data/imagenet/jax' "
      "'--imagenet_v2_data_dir=/my data/imagenet/jax' "
      '--experiment_dir=/exp/nadamw_lawa --experiment_name=study_0 '
      '--rng_seed=3',
  ]


def test_paper_settings_commands_run_every_point_of_the_workloads_file():
  lines = _lines(['--experiment_dir', '/exp', '--data_dir', '/data',
                  '--num_studies', '1', '--paper_settings'],
                 workloads=('wmt',), submissions=('nadamw', 'nadamw_lawa'))
  assert lines == [
      'cd /src/wa && python3 -m scripts.algoperf_runner '
      '/opt/algoperf/submission_runner.py '
      '--framework=jax --workload=wmt '
      '--submission_path=submissions/nadamw/submission.py '
      '--tuning_ruleset=external '
      '--tuning_search_space=workloads_config/paper_runs/nadamw/wmt.json '
      '--num_tuning_trials=1 --data_dir=/data/wmt '
      '--experiment_dir=/exp/nadamw --experiment_name=study_0 --rng_seed=1',
      'cd /src/wa && python3 -m scripts.algoperf_runner '
      '/opt/algoperf/submission_runner.py '
      '--framework=jax --workload=wmt '
      '--submission_path=submissions/nadamw_lawa/submission.py '
      '--tuning_ruleset=external '
      '--tuning_search_space=workloads_config/paper_runs/nadamw_lawa/wmt.json '
      '--num_tuning_trials=2 --data_dir=/data/wmt '
      '--experiment_dir=/exp/nadamw_lawa --experiment_name=study_0 '
      '--rng_seed=1',
  ]


def test_dry_run_prints_every_paper_run_without_algoperf_or_data(capsys,
                                                                caplog):
  assert run_algoperf.main(
      ['--dry_run', '--experiment_dir', '/exp', '--data_dir', '/nodata',
       '--num_studies', '2', '--algoperf_dir', '/nowhere']) == 0
  out, err = capsys.readouterr()
  lines = out.splitlines()
  assert len(lines) == 2 * 7 * 3  # Studies x paper workloads x submissions.
  assert lines[0] == (
      f'cd {REPO} && {sys.executable} -m scripts.algoperf_runner '
      '/nowhere/submission_runner.py '
      '--framework=jax --workload=criteo1tb '
      '--submission_path=submissions/nadamw/submission.py '
      '--tuning_ruleset=external '
      '--tuning_search_space=workloads_config/external_tuning/nadamw.json '
      '--num_tuning_trials=5 --data_dir=/nodata/criteo1tb '
      '--experiment_dir=/exp/nadamw --experiment_name=study_0 --rng_seed=1')
  assert lines[-1].endswith('--experiment_dir=/exp/nadamw_lawa '
                            '--experiment_name=study_1 --rng_seed=2')
  del err
  assert 'missing data: /nodata/criteo1tb' in caplog.text
  for line in lines:  # Seeds >= 1, submission paths relative to the repo.
    assert ' --rng_seed=0' not in line
    assert '--submission_path=submissions/' in line


@pytest.mark.skipif(HAS_ALGOPERF, reason='AlgoPerf is installed here.')
def test_dry_run_without_algoperf_leaves_a_placeholder(capsys, caplog):
  run_algoperf.main(['--dry_run', '--experiment_dir', '/exp', '--workloads',
                     'ogbg', '--submissions', 'nadamw'])
  out = capsys.readouterr().out
  assert (f'{sys.executable} -m scripts.algoperf_runner '
          '${ALGOPERF_DIR}/submission_runner.py ') in out
  assert 'AlgoPerf is not importable' in caplog.text


@pytest.mark.skipif(HAS_ALGOPERF, reason='AlgoPerf is installed here.')
def test_dry_run_uses_algoperf_dir_from_the_environment(capsys, caplog,
                                                        monkeypatch):
  monkeypatch.setenv('ALGOPERF_DIR', '/opt/ap')
  run_algoperf.main(['--dry_run', '--experiment_dir', '/exp', '--workloads',
                     'ogbg', '--submissions', 'nadamw', '--data_dir',
                     '/nodata'])
  out = capsys.readouterr().out
  assert ' -m scripts.algoperf_runner /opt/ap/submission_runner.py ' in out
  assert '${ALGOPERF_DIR}' not in out
  assert 'missing data: /nodata/ogbg' in caplog.text
  assert '(commands use /opt/ap/submission_runner.py)' in caplog.text


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


def test_unknown_workload_lists_the_valid_ones(capsys):
  message = _error(['--dry_run', '--experiment_dir', '/exp', '--workloads',
                    'ogbg,imagenet'], capsys)
  assert "--workloads: unknown ['imagenet']; valid: paper_seven, criteo1tb" in (
      message)


def test_unknown_submission_lists_the_valid_ones(capsys):
  message = _error(['--dry_run', '--experiment_dir', '/exp', '--submissions',
                    'adamw'], capsys)
  assert message == (
      "--submissions: unknown ['adamw']; valid: nadamw, nadamw_codesign, "
      'nadamw_ema, nadamw_lawa, schedule_free_adamw.')


@pytest.mark.parametrize('flags, expected', [
    (['--rng_seed', '0'], "--rng_seed must be an integer >= 1 (AlgoPerf's "
     'runner draws a random seed for 0), got 0.'),
    (['--seed=0'], '--rng_seed must be an integer >= 1'),
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
    (['--tuning_ruleset', 'both'],
     'flag --tuning_ruleset=both: value should be one of <external|self>'),
    (['--resume_last_run', '--overwrite'],
     '--resume_last_run and --overwrite exclude each other'),
    (['--tuning_search_space', '/no/such.json', '--submissions', 'nadamw'],
     '--tuning_search_space: no such file: /no/such.json.'),
    (['--tuning_search_space', 'setup.cfg'],
     '--tuning_search_space needs exactly one submission, got nadamw, '
     'nadamw_ema, nadamw_lawa.'),
    (['--tuning_search_space', 'setup.cfg', '--submissions', 'nadamw',
      '--tuning_ruleset', 'self'],
     '--tuning_search_space applies to --tuning_ruleset external'),
])
def test_bad_options(flags, expected, capsys):
  assert expected in _error(['--dry_run', '--experiment_dir', '/exp', *flags],
                            capsys)


def test_experiment_dir_is_required(capsys):
  assert _error(['--dry_run'], capsys) == '--experiment_dir is required.'


def test_missing_data_fails_before_anything_launches(tmp_path, capsys):
  message = _error(['--experiment_dir', str(tmp_path), '--data_dir',
                    str(tmp_path / 'data'), '--workloads', 'wmt,fastmri'],
                   capsys)
  assert message == (
      f'--data_dir: missing {tmp_path}/data/fastmri, '
      f"{tmp_path}/data/wmt (set the data up with AlgoPerf's "
      'datasets/dataset_setup.py).')


@pytest.mark.skipif(HAS_ALGOPERF, reason='AlgoPerf is installed here.')
def test_missing_algoperf_says_how_to_install_it(tmp_path, capsys):
  (tmp_path / 'ogbg').mkdir()
  message = _error(['--experiment_dir', str(tmp_path / 'exp'), '--data_dir',
                    str(tmp_path), '--workloads', 'ogbg'], capsys)
  assert 'AlgoPerf is not importable' in message
  assert ('git clone https://github.com/mlcommons/algorithmic-efficiency && '
          "pip install -e 'algorithmic-efficiency[pytorch_cpu,jax_gpu,full]'"
          in message)


def test_algoperf_dir_without_runner_is_rejected(tmp_path, capsys):
  (tmp_path / 'ogbg').mkdir()
  message = _error(['--experiment_dir', str(tmp_path / 'exp'), '--data_dir',
                    str(tmp_path), '--workloads', 'ogbg', '--algoperf_dir',
                    str(tmp_path)], capsys)
  assert ('AlgoPerf is not importable' in message if not HAS_ALGOPERF
          else f'no submission_runner.py in {tmp_path}' in message)


def test_existing_logs_need_overwrite(tmp_path, monkeypatch, capsys):
  (tmp_path / 'ogbg').mkdir()
  os.makedirs(tmp_path / 'exp' / 'nadamw' / 'study_0' / 'ogbg_jax')
  monkeypatch.setattr(run_algoperf, 'find_runner', lambda *_: RUNNER)
  monkeypatch.setattr(run_algoperf, 'check_package_installed', lambda _: None)
  message = _error(['--experiment_dir', str(tmp_path / 'exp'), '--data_dir',
                    str(tmp_path), '--workloads', 'ogbg', '--submissions',
                    'nadamw'], capsys)
  assert message == (
      f'logs exist: {tmp_path}/exp/nadamw/study_0/ogbg_jax; pass --overwrite '
      'to start again, or --resume_last_run to go on.')


# ----------------------------------------------------------------------------
# The runner's pitfalls beyond the flags.


@pytest.mark.parametrize('versions, devices, refused', [
    ({'jax': '0.7.0', 'orbax-checkpoint': '0.12.8'}, 4, True),
    ({'jax': '0.7.0', 'orbax-checkpoint': '0.12.8'}, 1, False),
    ({'jax': '0.7.0', 'orbax-checkpoint': '0.11.40'}, 4, True),
    ({'jax': '0.7.0', 'orbax-checkpoint': '0.11.20'}, 4, False),
    ({'jax': '0.10.2', 'orbax-checkpoint': '0.12.8'}, 4, False),
    ({'jax': '0.7.0', 'orbax-checkpoint': None}, 4, False),
])
def test_orbax_from_0_11_40_with_jax_0_7_on_several_devices_is_refused(
    monkeypatch, versions, devices, refused):
  monkeypatch.setattr(run_algoperf, 'package_versions', lambda _: versions)
  monkeypatch.setattr(run_algoperf, 'device_count', lambda _: devices)
  if refused:
    with pytest.raises(ValueError, match=(
        rf"orbax-checkpoint {versions['orbax-checkpoint']} cannot save the "
        r"checkpoints of a 4-device "
        r"run with jax 0.7.0.*pip install 'orbax-checkpoint==0.11.20'")):
      CHECK_ORBAX('python3')
  else:
    CHECK_ORBAX('python3')


def test_package_versions_reads_this_environment():
  versions = run_algoperf.package_versions(sys.executable)
  assert versions['jax'] == importlib.metadata.version('jax')


def test_xla_flags_asking_for_host_devices_are_warned_about():
  warning = run_algoperf.xla_flags_warning(
      {'XLA_FLAGS': '--xla_force_host_platform_device_count=4'})
  assert 'set JAX_NUM_CPU_DEVICES=N' in warning
  assert run_algoperf.xla_flags_warning({'XLA_FLAGS': '--xla_dump_to=/t'}) is (
      None)
  assert run_algoperf.xla_flags_warning({}) is None


def test_resume_goes_through_the_correcting_runner(tmp_path, monkeypatch):
  (tmp_path / 'ogbg').mkdir()
  os.makedirs(tmp_path / 'exp' / 'nadamw' / 'study_0' / 'ogbg_jax')
  checked = []
  monkeypatch.setattr(run_algoperf, 'find_runner', lambda *_: RUNNER)
  monkeypatch.setattr(run_algoperf, 'check_package_installed', lambda _: None)
  monkeypatch.setattr(run_algoperf, 'check_resume',
                      lambda python, runner: checked.append(runner))
  args = run_algoperf.parse_flags(
      ['--experiment_dir', str(tmp_path / 'exp'), '--data_dir',
       str(tmp_path), '--workloads', 'ogbg', '--submissions', 'nadamw',
       '--num_studies', '1', '--resume_last_run'])
  [argv] = run_algoperf.prepare(args)  # Existing logs are what it resumes.
  assert checked == [RUNNER]
  assert argv[1:4] == ['-m', 'scripts.algoperf_runner', RUNNER]
  assert argv[-1] == '--resume_last_run'


def test_resume_on_an_unknown_algoperf_is_refused_before_launch(
    tmp_path, monkeypatch, capsys):
  (tmp_path / 'ogbg').mkdir()
  runner = tmp_path / 'submission_runner.py'
  runner.write_text('def train_once():\n  pass\n')
  monkeypatch.setattr(run_algoperf, 'find_runner', lambda *_: str(runner))
  monkeypatch.setattr(run_algoperf, 'check_package_installed', lambda _: None)
  message = _error(['--experiment_dir', str(tmp_path / 'exp'), '--data_dir',
                    str(tmp_path), '--workloads', 'ogbg', '--resume_last_run'],
                   capsys)
  assert message.startswith(
      f'--resume_last_run: AlgoPerf at {runner} is not a version whose '
      'resume faults are known here')
  assert message.endswith('rerun with --overwrite.')
