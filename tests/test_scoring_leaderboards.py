"""The published AlgoPerf leaderboards, scored from their logs as they are.

The reference is each tree's EXPECTED_SCORES.md (the published scores to 6
decimals, as AlgoPerf's own scorer gives them), packed with the logs in
workloads_config/leaderboards/ and unpacked by tests/conftest.py. The v0.5
external-tuning tree holds stray `trial_*` folders beside
schedule_free_adamw's workload folders. A tree whose folders are symbolic
links scores the same, as AlgoPerf's `os.listdir` walk reads it.
"""

import pathlib
import re
import time

import pytest

from localperf import leaderboards
from localperf import scoring
from scripts import pack_leaderboard
from scripts import score as score_script

# Each base workload and the held-out variant sampled for it.
V05_WORKLOADS = 14
SHARED = pathlib.Path(__file__).resolve().parents[2] / 'shared' / 'algoperf'


def published_v05(root: pathlib.Path, section: str) -> dict[str, float]:
  """`| name | published | 6 decimals |` rows of one EXPECTED_SCORES section."""
  text = (root / 'EXPECTED_SCORES.md').read_text()
  table = text.split(f'## {section}\n', 1)[1].split('\n## ', 1)[0]
  rows = re.findall(r'^\| (\w+) \| [\d.]+ \| (\d\.\d{6}) \|$', table,
                    flags=re.MULTILINE)
  return {name: float(value) for name, value in rows}


def published_v06(root: pathlib.Path) -> dict[str, float]:
  """`| name | framework | 0.xxxxxx (shown ...) |` rows of EXPECTED_SCORES."""
  rows = re.findall(r'^\| (\w+) +\| \w+ +\| (\d\.\d{6}) ',
                    (root / 'EXPECTED_SCORES.md').read_text(),
                    flags=re.MULTILINE)
  return {name: float(value) for name, value in rows}


def rounded(scores: scoring.Scores) -> dict[str, float]:
  return {name: round(value, 6) for name, value in scores.scores.items()}


def test_v05_external_tuning_cli_reproduces_published_scores(
    leaderboard_v05, capsys):
  expected = published_v05(leaderboard_v05, 'External tuning')
  assert len(expected) == 11
  start, cpu_start = time.perf_counter(), time.process_time()
  status = score_script.main([
      f'--submission_directory={leaderboard_v05 / "external_tuning"}',
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


def test_v05_stray_trial_folders_are_not_workloads(leaderboard_v05):
  submission = leaderboard_v05 / 'external_tuning' / 'schedule_free_adamw'
  assert (submission / 'study_0' / 'trial_1' /
          'eval_measurements.csv').is_file()  # The strays are there.
  logs = scoring.load_submission(submission)
  assert len(logs) == V05_WORKLOADS
  assert {study: len(trials) for study, trials in logs['wmt'].items()} == {
      f'study_{k}': 5 for k in range(5)}


def test_v05_self_tuning_reproduces_published_scores(leaderboard_v05):
  expected = published_v05(leaderboard_v05, 'Self-tuning')
  assert len(expected) == 6
  scores = scoring.score_submissions(leaderboard_v05 / 'self_tuning',
                                     benchmark_version='0.5',
                                     self_tuning_ruleset=True)
  assert rounded(scores) == expected


# Symbolic links.


def link_tree(source: pathlib.Path, destination: pathlib.Path,
              depth: int) -> pathlib.Path:
  """`destination` with real folders down to `depth` below it, then links.

  Depth 1 links each submission's study folders; depth 2 each folder of a
  study (its workload folders, and any stray ones) into real study folders.
  """
  for path in source.iterdir():
    if depth == 0:
      (destination / path.name).symlink_to(path, path.is_dir())
    elif path.is_dir():
      (destination / path.name).mkdir(parents=True)
      link_tree(path, destination / path.name, depth - 1)
  return destination


@pytest.mark.parametrize('depth', [1, 2], ids=['studies', 'workloads'])
def test_v06_linked_folders_score_as_published(leaderboard_v06, tmp_path,
                                               depth):
  source = leaderboard_v06 / 'external_tuning'
  logs = link_tree(source, tmp_path, depth)
  assert (logs / 'baseline' / 'study_0').is_symlink() == (depth == 1)
  scores = scoring.score_submissions(logs)
  assert rounded(scores) == published_v06(leaderboard_v06)
  # The same warnings (imagenet_vit's missing trials), none of a drop.
  assert [w.replace(str(logs), str(source)) for w in scores.warnings] == (
      scoring.score_submissions(source).warnings)


def test_v05_linked_workload_folders_score_as_published(leaderboard_v05,
                                                        tmp_path):
  logs = link_tree(leaderboard_v05 / 'external_tuning', tmp_path, 2)
  stray = logs / 'schedule_free_adamw' / 'study_0' / 'trial_1'
  assert stray.is_symlink() and stray.is_dir()
  scores = scoring.score_submissions(logs, benchmark_version='0.5')
  assert rounded(scores) == published_v05(leaderboard_v05, 'External tuning')


# The archives against the logs as published, where they lie beside the
# repository (CI lays ../shared/algoperf there).


@pytest.mark.parametrize('version', ['0.5', '0.6'])
def test_archive_holds_the_published_logs(version, request):
  published = SHARED / f'leaderboard_v{version.replace(".", "")}'
  if not published.is_dir():
    pytest.skip(f'no published logs at {published}')
  packed = request.getfixturevalue(
      f'leaderboard_v{version.replace(".", "")}')
  files = sorted(p.relative_to(published) for p in published.rglob('*')
                 if p.is_file())
  assert sorted(p.relative_to(packed) for p in packed.rglob('*')
                if p.is_file()) == files
  for relative in files:
    ours = (packed / relative).read_text().splitlines()
    theirs = (published / relative).read_text().splitlines()
    if ours == theirs:
      continue
    # A column subset: the same rows, each kept cell as published.
    assert version == '0.5' and relative.name == 'eval_measurements.csv'
    header = theirs[0].split(',')
    kept = [header.index(c) for c in ours[0].split(',')]
    assert ours == [','.join(row.split(',')[i] for i in kept)
                    for row in theirs if row], relative
    assert ours[0].split(',')[:2] == ['global_step', 'score']
    assert ours[0].split(',')[2].startswith('validation/')


def test_pack_keeps_every_file_and_cuts_only_workload_csvs(tmp_path):
  source = tmp_path / 'leaderboard_v06'
  files = {
      'EXPECTED_SCORES.md': '| a | JAX | 0.500000 |\n',
      'external_tuning/a/study_0/ogbg_jax/trial_1/eval_measurements.csv':
          'global_step,total_duration,validation/mean_average_precision,'
          'score,test/loss\n1,9.5,0.1,2.25,\n20,19.5,,4.0,0.3\n',
      'external_tuning/a/study_0/trial_1/eval_measurements.csv':
          'global_step,score,x\n1,2,3\n',  # A stray: kept whole.
  }
  for name, text in files.items():
    (source / name).parent.mkdir(parents=True, exist_ok=True)
    (source / name).write_text(text)
  (source / 'external_tuning' / 'empty').mkdir()
  archive = tmp_path / 'packed.tar.xz'
  leaderboards.pack(source, archive, '0.6', scored_columns=True)
  packed = leaderboards.unpack(archive, tmp_path / 'out')
  assert packed == tmp_path / 'out' / 'leaderboard_v06'
  assert (packed / 'external_tuning' / 'empty').is_dir()
  files[next(iter(k for k in files if 'ogbg_jax' in k))] = (
      'global_step,score,validation/mean_average_precision\n'
      '1,2.25,0.1\n20,4.0,\n')
  assert {str(p.relative_to(packed)): p.read_text()
          for p in packed.rglob('*') if p.is_file()} == files


def test_pack_cli_names_a_missing_source(tmp_path, capsys):
  with pytest.raises(SystemExit) as exit_info:
    pack_leaderboard.main([f'--source={tmp_path / "nowhere"}',
                           f'--output={tmp_path / "packed.tar.xz"}'])
  assert exit_info.value.code == 2
  assert '--source must be a leaderboard folder' in capsys.readouterr().err
  assert not (tmp_path / 'packed.tar.xz').exists()
