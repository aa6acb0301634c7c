"""scripts.export_submission: leaderboard folders that run without this package.

An exported folder is placed as the leaderboard places it,
`submissions/<ruleset>_tuning/<name>/` under a temporary root whose
`submissions` is a namespace package; a subprocess that refuses every import
of this package's `submissions` runs it in localperf's runner, and its
metrics must equal, bit for bit, those of the original submission run here.
"""

import ast
import contextlib
import importlib
import importlib.util
import json
import os
import subprocess
import sys

import pytest

from localperf import runner
from localperf import workloads as registry
from scripts import export_submission

REPO = str(export_submission.REPO_DIR)
RULESET_DIR = {'external': 'external_tuning', 'self': 'self_tuning'}
# tests/fixtures/tiny_workload.py, registered as AlgoPerf's `mnist`, whose
# batch size the submissions know.
WORKLOAD = 'mnist'
SETTINGS = runner.TrialSettings(max_global_steps=24, eval_every_n_steps=12,
                                save_checkpoints=False)
SEED = 3
TIMING_KEYS = {'score', 'total_duration', 'accumulated_submission_time',
               'accumulated_eval_time', 'accumulated_logging_time'}
# Modules an exported folder may import, besides its own (relative) ones.
ALLOWED_TOP_LEVEL = {'jax', 'flax', 'optax', 'chex', 'numpy', 'algoperf',
                     'absl', *sys.stdlib_module_names}


def _importable(name):
  try:
    importlib.import_module(f'submissions.{name}.submission')
  except ImportError:
    return False
  return True


SUBMISSIONS = [n for n in export_submission.submission_names()
               if _importable(n)]


def _export(tmp_path, name, ruleset, **info):
  out = tmp_path / 'submissions' / RULESET_DIR[ruleset] / name
  export_submission.export_submission(name, ruleset, str(out), info)
  return out


def _metrics(results):
  """[(trial, global_step, {metric: value})] without the timing fields."""
  return [[r.index, r.global_step,
           [[step, {k: v for k, v in m.items() if k not in TIMING_KEYS}]
            for step, m in r.eval_results]] for r in results]


@contextlib.contextmanager
def _tiny_workload():
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures',
                      'tiny_workload.py')
  module_spec = importlib.util.spec_from_file_location('tiny_workload', path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  # pylint: disable-next=protected-access
  registry._WORKLOADS[WORKLOAD] = module.TinyWorkload
  try:
    yield
  finally:
    del registry._WORKLOADS[WORKLOAD]  # pylint: disable=protected-access


def _run(submission_path, ruleset, search_space):
  with _tiny_workload():
    plan = runner.plan_trials(WORKLOAD, submission_path, ruleset,
                              search_space if ruleset == 'external' else None,
                              1, SEED)
    return _metrics(runner.run_trials(plan, None, SETTINGS))


# Runs in a fresh process, in the temporary root: `submissions` there is the
# leaderboard's namespace package; any other `submissions.*` import fails.
_DRIVER = '''
import importlib.abc, importlib.util, json, os, sys
LEADERBOARD = ('submissions', 'submissions.external_tuning',
               'submissions.self_tuning')

class RefuseOurPackage(importlib.abc.MetaPathFinder):
  def find_spec(self, name, path=None, target=None):
    parts = name.split('.')
    if parts[0] == 'submissions' and '.'.join(parts[:2]) not in LEADERBOARD:
      raise ModuleNotFoundError(f'{name}: this package is not importable here')
    return None

sys.meta_path.insert(0, RefuseOurPackage())
helpers = importlib.util.spec_from_file_location('export_test', sys.argv[1])
t = importlib.util.module_from_spec(helpers)
helpers.loader.exec_module(t)
path, ruleset, space = sys.argv[2:]
metrics = t._run(path, ruleset, space)
root = os.path.realpath(os.getcwd())
for name, module in sys.modules.items():
  if name.split('.')[0] == 'submissions':
    for f in [getattr(module, '__file__', None),
              *getattr(module, '__path__', [])]:
      assert f is None or os.path.realpath(f).startswith(root), (name, f)
print(json.dumps(metrics))
'''


def _run_exported(tmp_path, out, ruleset):
  relative = os.path.relpath(out / 'submission.py', tmp_path)
  env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
  result = subprocess.run(
      [sys.executable, '-c', _DRIVER, os.path.abspath(__file__), relative,
       ruleset,
       os.path.relpath(out / 'tuning_search_space.json', tmp_path)],
      cwd=tmp_path, env=env,
      capture_output=True, text=True, timeout=900, check=False)
  assert result.returncode == 0, result.stderr[-4000:]
  return json.loads(result.stdout.strip().splitlines()[-1])


def _assert_same_run(tmp_path, name, ruleset):
  out = _export(tmp_path, name, ruleset)
  exported = _run_exported(tmp_path, out, ruleset)
  cwd = os.getcwd()
  try:
    os.chdir(REPO)
    original = _run(f'submissions/{name}/submission.py', ruleset,
                    f'submissions/{name}/tuning_search_space.json')
  finally:
    os.chdir(cwd)
  # JSON keeps a float's repr, so equality here is equality of the bits.
  assert exported == json.loads(json.dumps(original))
  assert exported[0][1] == SETTINGS.max_global_steps
  assert [step for step, _ in exported[0][2]] == [12, 24]


# ----------------------------------------------------------------------------
# The exported run equals the original.


def test_exported_lawa_runs_without_our_package_and_matches(tmp_path):
  _assert_same_run(tmp_path, 'nadamw_lawa', 'external')


@pytest.mark.slow
@pytest.mark.parametrize('ruleset', ['external', 'self'])
@pytest.mark.parametrize('name', SUBMISSIONS)
def test_every_exported_submission_matches(tmp_path, name, ruleset):
  _assert_same_run(tmp_path, name, ruleset)


# ----------------------------------------------------------------------------
# The folder.


def _imports(tree):
  """(top-level module, inside an `except ImportError`) of absolute imports."""
  handled = {id(n) for h in ast.walk(tree) if isinstance(h, ast.ExceptHandler)
             and getattr(h.type, 'id', None) == 'ImportError'
             for n in ast.walk(h)}
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      for alias in node.names:
        yield alias.name.split('.')[0], id(node) in handled
    elif isinstance(node, ast.ImportFrom) and node.level == 0:
      yield node.module.split('.')[0], id(node) in handled


@pytest.mark.parametrize('name', export_submission.submission_names())
def test_folder_imports_only_itself_and_the_allowed_packages(tmp_path, name):
  out = _export(tmp_path, name, 'external')
  for path in out.rglob('*.py'):
    for module, fallback in _imports(ast.parse(path.read_text())):
      assert module in ALLOWED_TOP_LEVEL or (
          module == 'localperf' and fallback), (path, module)
  assert (out / '__init__.py').is_file()
  assert (out / 'submission.py').is_file()


def test_lawa_folder_layout_and_info(tmp_path):
  out = _export(tmp_path, 'nadamw_lawa', 'external', authors='A. B, C. D',
                affiliations='Somewhere')
  files = sorted(str(p.relative_to(out)) for p in out.rglob('*')
                 if p.is_file())
  assert {'__init__.py', 'submission.py', 'common/__init__.py',
          'common/api.py', 'common/eval_params.py', 'common/host_lawa.py',
          'common/hyperparameters.py', 'common/train_step.py',
          'optim/__init__.py', 'optim/averaging.py', 'nadamw/__init__.py',
          'nadamw/submission.py', 'tuning_search_space.json',
          'submission_info.yml'} <= set(files)
  assert 'requirements.txt' not in files
  with open(os.path.join(REPO, 'submissions', 'nadamw_lawa',
                         'tuning_search_space.json'), encoding='utf-8') as f:
    assert json.loads((out / 'tuning_search_space.json').read_text()) == (
        json.load(f))
  info = dict(line.split(': ', 1)
              for line in (out / 'submission_info.yml').read_text()
              .splitlines())
  info = {k: json.loads(v) for k, v in info.items()}
  assert info == {
      'submission_name': 'nadamw_lawa', 'submission_folder': 'nadamw_lawa',
      'authors': 'A. B, C. D', 'affiliations': 'Somewhere', 'version': '1.0',
      'ruleset': 'external', 'framework': 'JAX',
      'description': "NadamW (AlgoPerf's baseline) with LAWA, the mean of the "
                     'latest snapshots.'}


def test_self_tuning_folder_has_no_search_space_and_keeps_the_pin(tmp_path):
  out = _export(tmp_path, 'schedule_free_adamw', 'self')
  assert not (out / 'tuning_search_space.json').exists()
  assert (out / 'requirements.txt').read_text() == 'optax==0.2.6\n'
  assert '"self-tuning"' in (out / 'submission_info.yml').read_text()


def test_import_rewriting_by_depth():
  rewrite = export_submission.rewrite_imports
  source = ('"""Doc."""\n'
            'from submissions import common\n'
            'try:\n'
            '  from submissions.optim.nadamw import (nadamw,\n'
            '                                        scale_by_nadam)\n'
            'except ImportError:\n'
            '  pass\n'
            'import submissions.optim.schedules as schedules\n')
  assert rewrite(source, ('submission.py',), 'nadamw_lawa') == (
      '"""Doc."""\n'
      'from . import common\n'
      'try:\n'
      '  from .optim.nadamw import (nadamw,\n'
      '                                        scale_by_nadam)\n'
      'except ImportError:\n'
      '  pass\n'
      'from .optim import schedules as schedules\n')
  assert rewrite('from submissions.nadamw.submission import x\n',
                 ('optim', 'averaging.py'), 'nadamw_lawa') == (
                     'from ..nadamw.submission import x\n')
  with pytest.raises(ValueError, match='cannot become a relative import'):
    rewrite('import submissions.common\n', ('submission.py',), 'nadamw')


# ----------------------------------------------------------------------------
# The command line.


def test_command_line_writes_the_folder(tmp_path, capsys):
  out = tmp_path / 'nadamw'
  assert export_submission.main(
      ['--submission=nadamw', '--ruleset=self', f'--out={out}',
       '--authors=X', '--affiliations=Y']) == 0
  printed = capsys.readouterr().out.split()
  assert str(out / 'submission.py') in printed
  assert not (out / 'tuning_search_space.json').exists()


@pytest.mark.parametrize('argv, message', [
    (['--submission=adamw'], "--submission must be one of nadamw, nadamw_codesign, nadamw_ema"),
    (['--submission=nadamw', '--tuning_ruleset=both'],
     "flag --tuning_ruleset=both: value should be one of <external|self>"),
    ([], '--submission is required.'),
])
def test_bad_flags_exit_2_naming_the_flag(tmp_path, capsys, argv, message):
  with pytest.raises(SystemExit) as e:
    export_submission.main([*argv, f'--out={tmp_path / "x"}'])
  assert e.value.code == 2
  assert message in capsys.readouterr().err


def test_non_empty_out_is_refused(tmp_path, capsys):
  (tmp_path / 'keep.txt').write_text('mine')
  with pytest.raises(SystemExit):
    export_submission.main(['--submission=nadamw', f'--out={tmp_path}'])
  assert '--out must be a new or empty folder' in capsys.readouterr().err
  assert [p.name for p in tmp_path.iterdir()] == ['keep.txt']


def test_out_naming_a_file_or_under_one_is_one_line(tmp_path, capsys):
  a_file = tmp_path / 'a_file'
  a_file.write_text('mine')
  for out, message in ((a_file, f'got {a_file} (a file)'),
                       (a_file / 'x', 'Not a directory')):
    with pytest.raises(SystemExit) as e:
      export_submission.main(['--submission=nadamw', f'--out={out}'])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
  assert a_file.read_text() == 'mine'


@pytest.mark.skipif(os.geteuid() == 0, reason='root writes anywhere')
def test_out_in_a_read_only_folder_is_one_line(tmp_path, capsys):
  tmp_path.chmod(0o500)
  try:
    with pytest.raises(SystemExit) as e:
      export_submission.main(['--submission=nadamw',
                              f'--out={tmp_path / "x"}'])
  finally:
    tmp_path.chmod(0o700)
  assert e.value.code == 2
  assert 'Permission denied' in capsys.readouterr().err
