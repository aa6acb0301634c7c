"""The memory model of the real workloads, its table and the plan check."""

import importlib
import json
import math
import os
import pathlib
import subprocess
import sys

import pytest

from localperf import memory
from localperf import runner
from scripts import memory_table

REPO = pathlib.Path(__file__).resolve().parent.parent
SHARED_SHAPES = REPO.parent / 'shared' / 'algoperf' / 'param_shapes_v06.json'
LAWA = 'submissions/nadamw_lawa/submission.py'


def _lawa(**overrides):
  submission = importlib.import_module('submissions.nadamw_lawa.submission')
  return submission, {**submission.SELF_TUNING_HYPERPARAMETERS, **overrides}


def test_param_shapes_say_where_they_come_from():
  with open(memory.SHAPES_FILE, encoding='utf-8') as f:
    ours = json.load(f)
  assert '_command' in ours and ours['algoperf_commit'] == '2c90454f'


def test_param_shapes_are_the_shared_facts_of_algoperf():
  if not SHARED_SHAPES.is_file():
    pytest.skip(f'no shared facts at {SHARED_SHAPES}')
  with open(memory.SHAPES_FILE, encoding='utf-8') as f:
    ours = json.load(f)
  with open(SHARED_SHAPES, encoding='utf-8') as f:
    assert ours['workloads'] == json.load(f)


def test_param_counts_include_criteos_embedding_table():
  counts = memory.load_param_counts()
  assert len(counts) == 8
  with open(memory.SHAPES_FILE, encoding='utf-8') as f:
    criteo = json.load(f)['workloads']['criteo1tb']['shapes']
  assert criteo['embedding_table'] == [4_194_304, 128]  # 2.1 GB in float32.
  assert counts['criteo1tb'] == 539_267_457
  assert counts['wmt'] == 133_521_408


@pytest.mark.parametrize('name, overrides, expected', [
    # NadamW: m and v. EMA: one average. LAWA: L snapshots, on the device
    # or in host memory (float32) with a float64 sum, and one snapshot in
    # flight on the device.
    ('nadamw', {}, (2, 0, 0)),
    ('nadamw_ema', {}, (3, 0, 0)),
    ('nadamw_lawa', {}, (2, 1, 20 + 2)),
    ('nadamw_lawa', {'lawa_queue_length': 5}, (2, 1, 5 + 2)),
    ('nadamw_lawa', {'lawa_queue_location': 'device'}, (2 + 20, 0, 0)),
])
def test_state_copies_of_each_submission(name, overrides, expected):
  submission = importlib.import_module(f'submissions.{name}.submission')
  copies = memory.state_copies(
      submission.init_optimizer_state,
      {**submission.SELF_TUNING_HYPERPARAMETERS, **overrides})
  assert copies == pytest.approx(expected, abs=1e-9)


def test_criteo_device_queue_needs_43_gb_more_per_device():
  submission, hparams = _lawa(lawa_queue_location='device')
  count = memory.load_param_counts()['criteo1tb']
  need = memory.workload_bytes(
      count, memory.state_copies(submission.init_optimizer_state, hparams))
  assert need.optimizer - 2 * 4 * count == 20 * 4 * count
  assert 43e9 < 20 * 4 * count < 43.2e9  # The "about 43 GB".
  with pytest.raises(ValueError, match=r'criteo1tb .* 48\.2 GiB per device'):
    memory.check_fits(submission.init_optimizer_state, hparams, 'criteo1tb')
  submission, hparams = _lawa()
  memory.check_fits(submission.init_optimizer_state, hparams, 'criteo1tb')


def test_table_flags_only_the_device_queue_on_criteo(capsys):
  assert memory_table.main([]) == 0
  lines = capsys.readouterr().out.splitlines()
  rows = [l for l in lines if l.split()[:1] and l.split()[0] in
          memory.load_param_counts()]
  labels = {l[24:52].strip() for l in rows}
  assert {'nadamw', 'nadamw_ema', 'nadamw_lawa',
          'nadamw_lawa (device queue)'} <= labels
  assert len(rows) == 8 * len(labels)
  over = [l for l in rows if ' OVER ' in l]
  assert len(over) == 1
  assert over[0].startswith('criteo1tb') and '(device queue)' in over[0]


def test_table_rejects_bad_flags(capsys):
  with pytest.raises(SystemExit, match='2'):
    memory_table.main(['--device_memory_gib=0'])
  assert '--device_memory_gib must be a number > 0' in capsys.readouterr().err
  with pytest.raises(SystemExit, match='2'):
    memory_table.main(['--submissions=nadamw,no_such'])
  assert 'no_such' in capsys.readouterr().err


def test_plan_names_a_device_queue_that_cannot_fit(tmp_path):
  _, hparams = _lawa(lawa_queue_location='device')
  space = tmp_path / 'space.json'
  space.write_text(json.dumps([hparams]))
  with pytest.raises(ValueError, match=r"trial 1 of search space .*"
                     r"AlgoPerf's criteo1tb .* GiB per device"):
    runner.plan_trials('ctr_dlrm', LAWA, tuning_search_space=str(space),
                       rng_seed=1)
  # The same point fits the analogue of wmt, and the default fits criteo.
  runner.plan_trials('seq2seq_transformer', LAWA,
                     tuning_search_space=str(space), rng_seed=1)
  runner.plan_trials('ctr_dlrm', LAWA, tuning_ruleset='self', rng_seed=1)


_FOUR_DEVICES = '''
import importlib, json
import jax
from localperf import memory
assert jax.device_count() == 4
out = {}
for name, overrides in [('nadamw', {}), ('nadamw_lawa', {}),
                        ('nadamw_lawa', {'lawa_queue_location': 'device'})]:
  s = importlib.import_module(f'submissions.{name}.submission')
  c = memory.state_copies(s.init_optimizer_state,
                          {**s.SELF_TUNING_HYPERPARAMETERS, **overrides})
  out[name + str(overrides)] = list(c)
print(json.dumps(out))
'''


@pytest.mark.slow
def test_per_device_bytes_on_four_devices():
  """Replicated states: each of 4 devices holds the same copies as one."""
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=4',
             JAX_PLATFORMS='cpu', PYTHONPATH=str(REPO))
  result = subprocess.run([sys.executable, '-c', _FOUR_DEVICES], env=env,
                          cwd=REPO, capture_output=True, text=True,
                          timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  out = json.loads(result.stdout.strip().splitlines()[-1])
  assert out == {'nadamw{}': [2, 0, 0], 'nadamw_lawa{}': [2, 1, 22],
                 "nadamw_lawa{'lawa_queue_location': 'device'}": [22, 0, 0]}
  assert math.isclose(out['nadamw_lawa{}'][0], out['nadamw{}'][0])
