"""The benchmark command lines, on small models (their figures are in
docs/memory_and_benchmarks.md)."""

import pathlib
import re
import subprocess
import sys

import pytest

from scripts import bench_optimizer
from scripts import bench_train_step

REPO = pathlib.Path(__file__).resolve().parent.parent


@pytest.mark.parametrize('main, flag, message', [
    (bench_train_step.main, '--sizes=0', '--sizes must be integers >= 1'),
    (bench_train_step.main, '--every_steps=0', '--every_steps must be'),
    (bench_optimizer.main, '--rounds=0', '--rounds must be an integer >= 1'),
    (bench_optimizer.main, '--sizes=ten', '--sizes must be integers >= 1'),
])
def test_bad_flags_are_named(capsys, main, flag, message):
  with pytest.raises(SystemExit, match='2'):
    main([flag])
  assert message in capsys.readouterr().err


def test_optimizer_state_bytes_per_device(capsys):
  """State per device: NadamW m, v; EMA one more; LAWA L more, or on the host."""
  assert bench_optimizer.main(['--sizes=1', '--num_devices=1', '--rounds=1',
                               '--steps=1', '--queue_length=3']) == 0
  out = capsys.readouterr().out
  param_mb = float(re.search(r'params, (\d+) MB per device', out).group(1))
  rows = {m.group(1).strip(): [float(x) for x in m.group(2).split()[-3:]]
          for m in re.finditer(r'^  (nadamw\S*(?: \w+\))?)(.*)$', out, re.M)}
  assert rows['nadamw'] == [2 * param_mb, 1.0, 0]
  assert rows['nadamw+ema'] == [3 * param_mb, 1.5, 0]
  assert rows['nadamw+lawa(L=3, device)'] == [5 * param_mb, 2.5, 0]
  # Host: three float32 snapshots and a float64 sum.
  assert rows['nadamw+lawa(L=3, host)'] == [2 * param_mb, 1.0, 5 * param_mb]


@pytest.mark.slow  # Twelve trials, each compiling its train step: ~1.5 min.
def test_train_step_bench_runs_every_configuration(capsys):
  assert bench_train_step.main([
      '--sizes=1', '--every_steps=2', '--steps=2', '--rounds=2',
      '--batch_size=8', '--lawa_queue_length=2']) == 0
  out = capsys.readouterr().out
  for name in ('nadamw_ema', 'nadamw_lawa (host)', 'nadamw_lawa (device)',
               'nadamw_codesign', 'nadamw_codesign (select)'):
    assert len(re.findall(rf'^  {re.escape(name)} +[\d.]+ +[\d.]+$', out,
                          re.M)) == 2, out
  assert re.search(r'^  nadamw +[\d.]+ +1\.000$', out, re.M), out


@pytest.mark.slow  # mnist1d's data, two compilations: ~30 s.
def test_runner_bench_prints_the_overhead_ratio():
  # A command of its own: it sets its process's compilation cache.
  out = subprocess.run(
      [sys.executable, '-m', 'scripts.bench_runner', '--steps=40',
       '--warmup_steps=2', '--repeats=2', '--evals=1'], cwd=REPO,
      capture_output=True, text=True, check=True).stdout
  for row in ('start-up', 'data generation', 'bare jitted step',
              'runner step (train_once)', 'eval (train, validation, test)',
              'checkpoint'):
    assert re.search(rf'^{re.escape(row)}.* [\d.]+ +[\d.]+ +\d+$', out,
                     re.M), out
  ratio = float(re.search(r'runner step / bare step \(CPU\): ([\d.]+)',
                          out).group(1))
  assert ratio > 0.5  # The runner does a bare step's work, and more.
