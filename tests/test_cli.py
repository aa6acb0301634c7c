"""The command lines take absl flags as AlgoPerf's scripts do."""

import json

import pytest

from localperf import runner
from localperf import workloads as registry
from scripts import calibrate
from scripts import run_local
from scripts import score


def test_flagfile_and_negated_booleans(tmp_path):
  flagfile = tmp_path / 'run.flags'
  flagfile.write_text('--workload=ctr_dlrm\n--num_studies=3\n'
                      '--nosave_checkpoints\n')
  args = run_local.parse_flags([f'--flagfile={flagfile}', '--rng_seed=7'])
  assert (args.workload, args.num_studies, args.rng_seed) == ('ctr_dlrm', 3, 7)
  assert args.save_checkpoints is False


def test_a_second_parse_starts_from_the_defaults():
  run_local.parse_flags(['--num_studies=3', '--overwrite'])
  args = run_local.parse_flags([])
  assert (args.num_studies, args.overwrite) == (5, False)


def test_space_separated_values_and_absl_logging_flags():
  args = run_local.parse_flags(['--workload', 'kspace_unet', '--verbosity=0'])
  assert args.workload == 'kspace_unet'


@pytest.mark.parametrize('argv, message', [
    (['--num_studies=two'], "--num_studies=two: invalid literal for int()"),
    (['--overwrite=maybe'], '--overwrite=maybe'),
    (['--worklaod=mnist1d'], "Unknown command line flag 'worklaod'"),
])
def test_bad_flags_exit_2_naming_the_flag(argv, message, capsys):
  with pytest.raises(SystemExit) as e:
    run_local.parse_flags(argv)
  assert e.value.code == 2
  err = capsys.readouterr().err
  assert 'error: ' in err and message in err
  assert len(err.strip().splitlines()) == 1


def test_help_lists_the_flags_and_exits_0(capsys):
  with pytest.raises(SystemExit) as e:
    run_local.parse_flags(['--help'])
  assert e.value.code == 0
  out = capsys.readouterr().out
  assert '--[no]resume_last_run' in out and '--eval_every_n_steps' in out


def test_helpfull_lists_each_flag_once(capsys):
  with pytest.raises(SystemExit) as e:
    score.main(['--helpfull'])
  assert e.value.code == 0
  out = capsys.readouterr().out
  assert out.count('--flagfile:') == 1 and out.count('absl.flags:') == 1
  assert '-v,--verbosity:' in out


def test_flag_help_names_what_sets_it():
  """No flag's help points at a setting no flag sets; --overwrite says
  what it replaces."""
  assert 'eval_period_time_sec' not in run_local.FLAGS[
      'eval_every_n_steps'].help
  assert "0: AlgoPerf's timed evals" in run_local.FLAGS[
      'eval_every_fraction'].help
  assert ("The experiment's other logs stay"
          in run_local.FLAGS['overwrite'].help)


def test_calibrate_without_a_workload_lists_only_the_analogues(capsys):
  with pytest.raises(SystemExit) as e:
    calibrate.main([])
  assert e.value.code == 2
  err = capsys.readouterr().err
  assert 'one of ctr_dlrm, kspace_unet' in err and 'mnist1d' not in err


def test_trial_point_reference_is_the_workloads_own_point():
  name = 'shapes_vit'
  expected = registry.get_workload(name).reference_point
  assert run_local.trial_point('reference', name) == expected
  assert run_local.trial_point('2', name) == 2
  assert run_local.trial_point(None, name) is None


def test_trial_point_runs_that_point_of_the_list_as_its_trial():
  space = 'submissions/nadamw/tuning_search_space.json'
  plan = runner.plan_trials('mnist1d', 'submissions/nadamw/submission.py',
                            'external', space, rng_seed=0, trial_point=4)
  with open(space, encoding='utf-8') as f:
    fourth = json.load(f)[3]
  [trial] = plan.trials
  assert trial.index == 4 and trial.hyperparameters._asdict() == fourth


def test_evals_default_to_every_2_percent_and_0_means_timed():
  mnist1d = registry.get_workload('mnist1d')
  assert run_local.eval_every_n_steps(run_local.parse_flags([]),
                                      mnist1d) == 40
  args = run_local.parse_flags(['--eval_every_fraction=0'])
  assert run_local.eval_every_n_steps(args, mnist1d) is None
  args = run_local.parse_flags(['--eval_every_n_steps=7'])
  assert args.eval_every_fraction is None  # As flags_0.json records it.


def test_eval_every_fraction_is_that_share_of_each_step_hint():
  args = run_local.parse_flags(['--eval_every_fraction=0.02'])
  for name, every in (('ctr_dlrm', 60), ('molgraph_gnn', 120),
                      ('seq2seq_transformer', 46)):
    assert registry.get_workload(name).step_hint * 0.02 == every
    workload = registry.get_workload(name)
    assert run_local.eval_every_n_steps(args, workload) == every
  args = run_local.parse_flags(['--eval_every_n_steps=7'])
  mnist1d = registry.get_workload('mnist1d')
  assert run_local.eval_every_n_steps(args, mnist1d) == 7


def test_max_steps_fraction_is_that_share_of_each_step_hint():
  args = run_local.parse_flags(['--max_steps_fraction=1.25'])
  assert run_local.max_global_steps(
      args, registry.get_workload('molgraph_gnn')) == 7500  # 6000 steps.
  args = run_local.parse_flags(['--max_global_steps=9'])
  assert run_local.max_global_steps(args, registry.get_workload('mnist1d')) == 9
