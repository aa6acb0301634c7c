"""localperf.lab.held_out: the held-out figures on hand-made curves, and one
workload's runs against the calibration's own trajectory."""

import math

import numpy as np
import pytest

from localperf.lab import calibration as cal
from localperf.lab import held_out
from scripts import held_out as held_out_script


def _run(steps, **curves):
  return cal.Run({k: cal.Curve(np.asarray(steps), np.asarray(v, float))
                  for k, v in curves.items()}, 0.0, 0.0)


def test_recovered_share_of_the_short_decays_gain():
  # Maximised metric: raw 0.70, the short decay 0.80, the EMA 0.75.
  assert held_out.recovered(0.70, 0.75, 0.80, minimize=False) == (
      pytest.approx((0.75 - 0.70) / (0.80 - 0.70)))
  # Minimised: a lower short-decay loss is the gain; an EMA past it > 1.
  assert held_out.recovered(0.33, 0.31, 0.32, minimize=True) == (
      pytest.approx(2.0))
  # A shorter decay that gains nothing has no share to recover.
  assert math.isnan(held_out.recovered(0.33, 0.32, 0.35, minimize=True))
  assert math.isnan(held_out.recovered(0.7, 0.8, 0.7, minimize=False))


def test_short_cosine_ends_at_its_fraction():
  hparams = {'learning_rate': 0.01, 'warmup_factor': 0.1}
  schedule = held_out._short_cosine(hparams, 2400, 0.5)
  assert float(schedule(240)) == pytest.approx(0.01)  # End of warmup.
  assert float(schedule(1200)) == pytest.approx(0.0, abs=1e-12)
  # Halfway through its decay (240 -> 1200), the cosine is at half the peak.
  assert float(schedule(720)) == pytest.approx(0.005, rel=1e-5)


def test_eval_steps_need_a_step_hint_divisible_by_four():
  assert held_out.eval_steps(2300) == [1150, 1725, 2300]
  with pytest.raises(ValueError, match='divisible by 4'):
    held_out.eval_steps(2302)


def test_table_counts_and_shares():
  steps = [100, 200, 300, 400]
  seeds = []
  for ema_end, cosine_end in ((0.30, 0.31), (0.32, 0.31), (0.36, 0.31)):
    cosine = _run(steps, raw=[0.5, 0.4, 0.35, cosine_end],
                  ema=[0.5, 0.38, 0.34, 0.30])
    constant = _run(steps, raw=[0.5, 0.4, 0.37, 0.35],
                    ema=[0.5, 0.39, 0.36, ema_end],
                    lawa=[0.5, 0.39, 0.36, ema_end])
    shorts = {0.5: _run([200], raw=[0.36]), 0.75: _run([300], raw=[0.33])}
    seeds.append(held_out.seed_figures(cosine, constant, shorts, 400))
  assert seeds[0].at_fraction[0.5] == {'raw': 0.4, 'ema': 0.38,
                                       'short': 0.36}
  table = held_out.format_table('kspace_unet', seeds, minimize=True)
  # Constant EMA beats its raw 0.35 at two seeds; reaches 0.31 at one.
  assert 'EMA beats constant raw at 2/3 seeds, reaches the cosine at 1/3' in (
      table)
  assert 'falls short of the cosine' in table
  # (0.38 - 0.4) / (0.36 - 0.4) = 0.5 at 0.5 H; (0.34 - 0.35) / -0.02 at .75.
  assert table.count('beats the long one at 3/3 seeds; there the EMA '
                     'recovers 0.5 (0.5-0.5) of its gain') == 2


def test_cosine_run_is_the_calibrations_trajectory():
  cosine = held_out.train('ctr_dlrm', kind='cosine', rng_seed=0)
  reference = cal.train('ctr_dlrm', constant=False, eval_every=750,
                        rng_seed=0)
  for name in ('raw', 'ema', 'lawa'):
    np.testing.assert_array_equal(cosine.curves[name].values,
                                  reference.curves[name].values)


def test_bad_flags_exit_2(capsys):
  for argv in ([], ['--workloads=nope'], ['--workloads=ctr_dlrm', '--nu=0'],
               ['--workloads=ctr_dlrm', '--rng_seeds=0,0']):
    with pytest.raises(SystemExit) as e:
      held_out_script.main(argv)
    assert e.value.code == 2
    assert '--' in capsys.readouterr().err
