"""The published AlgoPerf v0.5 leaderboards, scored from their logs as is.

The reference is each tree's EXPECTED_SCORES.md (the published scores to 6
decimals, as AlgoPerf's own scorer gives them). The v0.5 external-tuning tree
holds stray `trial_*` folders beside schedule_free_adamw's workload folders;
v0.6's tree is scored in tests/test_scoring.py.
"""

import pathlib
import re
import time

from localperf import scoring
from scripts import score as score_script

V05 = (pathlib.Path(__file__).resolve().parents[2] / 'shared' / 'algoperf' /
       'leaderboard_v05')
# Each base workload and the held-out variant sampled for it.
V05_WORKLOADS = 14


def published_scores(section: str) -> dict[str, float]:
  """`| name | published | 6 decimals |` rows of one EXPECTED_SCORES section."""
  text = (V05 / 'EXPECTED_SCORES.md').read_text()
  table = text.split(f'## {section}\n', 1)[1].split('\n## ', 1)[0]
  rows = re.findall(r'^\| (\w+) \| [\d.]+ \| (\d\.\d{6}) \|$', table,
                    flags=re.MULTILINE)
  return {name: float(value) for name, value in rows}


def test_v05_external_tuning_cli_reproduces_published_scores(capsys):
  expected = published_scores('External tuning')
  assert len(expected) == 11
  start, cpu_start = time.perf_counter(), time.process_time()
  status = score_script.main([
      f'--submission_directory={V05 / "external_tuning"}',
      '--benchmark_version=0.5', '--strict'])
  elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
  out, err = capsys.readouterr()
  print(f'scored v0.5 external tuning in {elapsed:.2f} s ({cpu:.2f} s CPU)')
  scores = dict(re.findall(r'^(\w+) (\d\.\d{6})$', out, flags=re.MULTILINE))
  assert {k: float(v) for k, v in scores.items()} == expected
  # The published logs miss trials and workloads: AlgoPerf's --strict fails.
  assert status == 1 and '--strict' in err
  warnings = out.split('warnings (each may change a score): ')[1]
  assert 'warning: caspr_adaptive: no criteo1tb logs' in warnings
  assert 'amos/study_0/criteo1tb_jax: expected 5 trials, found 1.' in warnings
  assert 'schedule_free_adamw' not in warnings
  assert cpu < 5


def test_v05_stray_trial_folders_are_not_workloads():
  submission = V05 / 'external_tuning' / 'schedule_free_adamw'
  assert (submission / 'study_0' / 'trial_1' /
          'eval_measurements.csv').is_file()  # The strays are there.
  logs = scoring.load_submission(submission)
  assert len(logs) == V05_WORKLOADS
  assert {study: len(trials) for study, trials in logs['wmt'].items()} == {
      f'study_{k}': 5 for k in range(5)}


def test_v05_self_tuning_reproduces_published_scores():
  expected = published_scores('Self-tuning')
  assert len(expected) == 6
  scores = scoring.score_submissions(V05 / 'self_tuning',
                                     benchmark_version='0.5',
                                     self_tuning_ruleset=True)
  assert {k: round(v, 6) for k, v in scores.scores.items()} == expected

