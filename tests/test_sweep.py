"""The co-design sweep: paired ratios, summaries, saved curves, flags."""

import json
import math

import jax.numpy as jnp
import numpy as np
import pytest

from localperf.lab import calibration as cal
from localperf.lab import sweep
from localperf import scoring
from localperf import workloads as registry
from scripts import sweep_codesign

TARGET = registry.get_workload('ctr_dlrm').validation_target_value  # Minimized.


def _curve(values, every=100):
  return cal.Curve(np.arange(1, len(values) + 1) * every, np.asarray(values))


def _trajectory(schedule, seed, **curves):
  return sweep.Trajectory('ctr_dlrm', schedule, seed,
                          {k: _curve(v) for k, v in curves.items()})


def test_summarize_pairs_each_candidate_with_the_same_seeds_cosine_raw():
  above, below = TARGET + 0.01, TARGET - 0.01
  trajectories = [
      # Seed 1: nadamw meets at step 400, the EMA at 200.
      _trajectory('cosine', 1, raw=[above] * 3 + [below],
                  ema=[above, below, below, below]),
      # Seed 2: nadamw meets at 200, the EMA never.
      _trajectory('cosine', 2, raw=[above, below], ema=[above, above]),
      # Seed 3: nadamw never meets it, the EMA at 200.
      _trajectory('cosine', 3, raw=[above, above], ema=[above, below]),
      # Seed 5: neither meets it.
      _trajectory('cosine', 5, raw=[above], ema=[above]),
      # Another schedule: meets at 300 (seed 1), 100 (seed 2).
      _trajectory('wsd', 1, raw=[above, above, below]),
      _trajectory('wsd', 2, raw=[below]),
      # No cosine run at seed 4: nothing to pair with.
      _trajectory('wsd', 4, raw=[below]),
  ]
  summary = sweep.summarize(trajectories)
  assert summary.seeds == {'ctr_dlrm': [1, 2, 3, 5]}
  assert summary.ratios[('cosine', 'raw')]['ctr_dlrm'][:2] == [1.0, 1.0]
  ema = summary.ratios[('cosine', 'ema')]['ctr_dlrm']
  # As AlgoPerf's times: 200 / inf = 0 where only nadamw misses; a seed
  # where both miss has no ratio.
  assert ema[:3] == [0.5, math.inf, 0.0] and math.isnan(ema[3])
  assert summary.ratios[('wsd', 'raw')]['ctr_dlrm'] == [0.75, 0.5]
  # Median over the seeds where either met it: (0.5, inf, 0) -> 0.5.
  assert scoring.median_ratio(ema) == 0.5
  assert scoring.median_ratio([0.75, 0.5]) == 0.625
  table = sweep.format_summary(summary, ['ctr_dlrm'])
  assert 'cosine/ema' in table and '3/4' in table
  assert 'wsd/raw' in table and '0.62 (0.50-0.75)' in table


def test_trajectories_round_trip_through_json(tmp_path):
  path = sweep.trajectory_path(tmp_path, 'ctr_dlrm', 'cosine', 7)
  path.write_text('{"raw": {"steps": [10, 20], "values": [0.5, 0.4]}}')
  (loaded,) = sweep.load_trajectories(tmp_path)
  assert (loaded.workload, loaded.schedule, loaded.seed) == (
      'ctr_dlrm', 'cosine', 7)
  np.testing.assert_array_equal(loaded.curves['raw'].values, [0.5, 0.4])


def test_averagers_ride_along_without_changing_the_trajectory():
  """Same raw curve with and without averagers; select_* is raw or EMA."""
  every, steps = 60, 300
  with_averagers = cal.train_trajectory(
      'ctr_dlrm', schedule_fn=sweep.SCHEDULES['cosine'],
      averagers_fn=lambda lr, hparams, hint: {
          'ema_lr10': sweep.AVERAGERS['ema_lr10'](lr, hparams, hint,
                                                    'ctr_dlrm')},
      eval_every=every, num_steps=steps, rng_seed=1, select_every=16)
  plain = cal.train(
      'ctr_dlrm', constant=False, eval_every=every, num_steps=steps,
      rng_seed=1, average=False)
  curves = with_averagers.curves
  np.testing.assert_array_equal(curves['raw'].values,
                                plain.curves['raw'].values)
  assert not np.array_equal(curves['ema_lr10'].values, curves['raw'].values)
  for picked, raw, ema in zip(curves['select_ema_lr10'].values,
                              curves['raw'].values,
                              curves['ema_lr10'].values):
    assert picked in (raw, ema)


@pytest.mark.parametrize('workload, every_k', [
    ('ctr_dlrm', 18),  # round(64 x 3000 / 10666), criteo1tb's step_hint.
    ('kspace_unet', 8),  # round(64 x 2400 / 18094), fastmri's.
])
@pytest.mark.parametrize('name', ['ema_nu64', 'lawa_nu64'])
def test_paper_as_run_snapshots_every_64_counterpart_steps(workload, every_k,
                                                           name):
  """With theta_t = t, the average of theta_{t+1} at t = 0, k, 2k: the EMA
  (decay 0.9, the first snapshot taken whole) or their mean (LAWA)."""
  num_steps = 2 * every_k + 1
  snapshots = np.arange(1.0, num_steps + 1)[::every_k]
  ema = snapshots[0]
  for theta in snapshots[1:]:
    ema = 0.9 * ema + 0.1 * theta
  averager = sweep.AVERAGERS[name](None, {}, 0, workload)
  params = jnp.zeros(())
  state = averager.init(params)
  for _ in range(num_steps):
    _, state = averager.update(jnp.ones(()), state, params)
    params = params + 1.0
  if name == 'ema_nu64':
    np.testing.assert_allclose(state.ema, ema, rtol=1e-6)
  else:
    assert int(state.num_snapshots) == len(snapshots)
    np.testing.assert_allclose(state.queue[:len(snapshots)].mean(),
                               snapshots.mean(), rtol=1e-6)


@pytest.mark.parametrize('flag,name', [
    ('--workloads=nope', '--workloads'),
    ('--schedules=cosine,linear', '--schedules'),
    ('--averagers=swa', '--averagers'),
    ('--rng_seeds=1,1', '--rng_seeds'),
    ('--select_every=0', '--select_every'),
    ('--eval_every_fraction=0.013', '--eval_every_fraction'),
])
def test_bad_flags_exit_2_naming_the_flag(flag, name, capsys):
  with pytest.raises(SystemExit) as e:
    sweep_codesign.main([flag])
  assert e.value.code == 2
  assert name in capsys.readouterr().err


def test_summarize_only_needs_a_cosine_run(tmp_path, capsys):
  with pytest.raises(SystemExit) as e:
    sweep_codesign.main([f'--output_dir={tmp_path}', '--summarize_only'])
  assert e.value.code == 2
  assert 'cosine' in capsys.readouterr().err


def test_export_writes_the_candidates_median_ratios(tmp_path, capsys):
  above, below = TARGET + 0.01, TARGET - 0.01
  for seed, ema_meets in ((1, 2), (2, 4), (3, 1)):  # nadamw meets at 4.
    curves = {'raw': [above] * 3 + [below],
              'ema': [above] * (ema_meets - 1) + [below] * (5 - ema_meets)}
    sweep.trajectory_path(tmp_path, 'ctr_dlrm', 'cosine', seed).write_text(
        json.dumps({k: {'steps': list(range(100, 100 * len(v) + 1, 100)),
                        'values': v} for k, v in curves.items()}))
  out = tmp_path / 'ratios.json'
  assert sweep_codesign.main([
      f'--output_dir={tmp_path}', '--summarize_only', '--workloads=ctr_dlrm',
      '--averagers=ema', '--export_candidate=cosine/ema',
      f'--export_path={out}']) == 0
  assert json.loads(out.read_text()) == {'ctr_dlrm': 0.5}  # 0.5, 1, 0.25.
  assert '0.50 (0.25-1.00)' in capsys.readouterr().out


@pytest.mark.parametrize('flags,message', [
    (['--export_candidate=cosine/ema'], 'go together'),
    (['--export_candidate=cosine/swa', '--export_path=x.json'],
     '--export_candidate must be'),
])
def test_bad_export_flags_exit_2(flags, message, capsys):
  with pytest.raises(SystemExit) as e:
    sweep_codesign.main(flags)
  assert e.value.code == 2
  assert message in capsys.readouterr().err
