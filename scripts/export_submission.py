r"""Writes a submission as a self-contained folder for AlgoPerf's leaderboard.

  python -m scripts.export_submission --submission=nadamw_lawa \
      --tuning_ruleset=external --out=DIR [--authors="A, B"] \
      [--affiliations="X"] [--submission_name="NadamW + LAWA"] [--version=1.0]

The leaderboard (mlcommons/submissions_algorithms) takes a submission as
`submissions/external_tuning/<name>/` or `submissions/self_tuning/<name>/`;
DIR becomes that folder (`--ruleset` is an alias of `--tuning_ruleset`):

  __init__.py, submission.py   the submission's own folder
  common/, optim/, ...         every module of this package it imports,
                               transitively, at its path under submissions/
  tuning_search_space.json     external ruleset (the self-tuning point is the
                               submission's SELF_TUNING_HYPERPARAMETERS)
  submission_info.yml          the fields the leaderboard's entries carry
  requirements.txt             if submissions/<name>/requirements.txt pins one

Each `from submissions.x import y` becomes relative (`from .x import y`, one
dot more per level of depth), so the folder imports nothing of this package:
the leaderboard's own top-level `submissions` is a namespace package that an
installed `submissions` would shadow. What remains is jax, flax, optax (chex,
numpy) and `algoperf.spec` (with localperf's stand-in only as the fallback
where algoperf is not installed).
"""

import ast
import json
import os
import pathlib
import re
import sys
from typing import Dict, List, Optional, Sequence, Tuple

from absl import flags
from absl import logging

from localperf import cli

REPO_DIR = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = 'submissions'
RULESETS = ('external', 'self')
# submission_info.yml's `ruleset` values.
INFO_RULESET = {'external': 'external', 'self': 'self-tuning'}
INFO_FIELDS = ('submission_name', 'submission_folder', 'authors',
               'affiliations', 'version', 'ruleset', 'framework',
               'description')

FLAGS = flags.FlagValues()
flags.DEFINE_string('submission', None,
                    'Submission to export (a folder of submissions/).',
                    flag_values=FLAGS)
flags.DEFINE_enum('tuning_ruleset', 'external', RULESETS,
                  'external: ships tuning_search_space.json; self: the '
                  "submission's self-tuning point.", flag_values=FLAGS)
flags.DEFINE_alias('ruleset', 'tuning_ruleset', flag_values=FLAGS)
flags.DEFINE_string('out', None,
                    'Folder to write; its name is the leaderboard folder '
                    'name. Must not exist or be empty.', flag_values=FLAGS)
flags.DEFINE_string('submission_name', None,
                    'Name on the leaderboard (default: the folder name).',
                    flag_values=FLAGS)
flags.DEFINE_string('authors', '', 'Authors, comma-separated.',
                    flag_values=FLAGS)
flags.DEFINE_string('affiliations', '', 'Affiliations, comma-separated.',
                    flag_values=FLAGS)
flags.DEFINE_string('version', '1.0', 'Version of the submission.',
                    flag_values=FLAGS)
flags.DEFINE_string('description', None,
                    "Short description (default: the first line of the "
                    "submission's docstring).", flag_values=FLAGS)


def submission_names(repo_dir: pathlib.Path = REPO_DIR) -> List[str]:
  """Every `submissions/<name>/submission.py` of this checkout."""
  return sorted(p.parent.name
                for p in (repo_dir / PACKAGE).glob('*/submission.py'))


# ----------------------------------------------------------------------------
# Modules: which ones, where they go, how their imports change.


def _module_file(module: str, repo_dir: pathlib.Path) -> Optional[pathlib.Path]:
  """`submissions.a.b` -> submissions/a/b.py or submissions/a/b/__init__.py."""
  base = repo_dir.joinpath(*module.split('.'))
  for path in (base.with_suffix('.py'), base / '__init__.py'):
    if path.is_file():
      return path
  return None


def _imported_modules(tree: ast.AST, repo_dir: pathlib.Path) -> List[str]:
  """The modules of this package that `tree` imports (submodules included)."""
  found = []
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      found += [a.name for a in node.names
                if a.name.split('.')[0] == PACKAGE]
    elif (isinstance(node, ast.ImportFrom) and node.level == 0
          and node.module.split('.')[0] == PACKAGE):
      found.append(node.module)
      found += [f'{node.module}.{a.name}' for a in node.names
                if _module_file(f'{node.module}.{a.name}', repo_dir)]
  return found


def _with_parents(module: str) -> List[str]:
  """`a.b.c` -> [a.b, a.b.c]: Python runs each parent's __init__ first."""
  parts = module.split('.')
  return ['.'.join(parts[:i]) for i in range(2, len(parts) + 1)]


def module_closure(name: str, repo_dir: pathlib.Path = REPO_DIR) -> List[str]:
  """Every module of this package that `submissions.<name>.submission` needs.

  The top-level `submissions/__init__.py` is not among them (the exported
  folder is the root); it must hold no code.
  """
  top = ast.parse(_module_file(PACKAGE, repo_dir).read_text(encoding='utf-8'))
  if any(not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))
         for n in top.body):
    raise ValueError(f'{PACKAGE}/__init__.py must hold only a docstring: '
                     'an exported folder does not carry it.')
  todo = _with_parents(f'{PACKAGE}.{name}.submission')
  seen = []
  while todo:
    module = todo.pop()
    if module in seen:
      continue
    path = _module_file(module, repo_dir)
    if path is None:
      raise ValueError(f'{module} is imported but no file of {repo_dir} '
                       'holds it.')
    seen.append(module)
    tree = ast.parse(path.read_text(encoding='utf-8'), str(path))
    for imported in _imported_modules(tree, repo_dir):
      todo += [m for m in _with_parents(imported) if m not in seen]
  return sorted(seen)


def export_path(module: str, name: str, repo_dir: pathlib.Path = REPO_DIR
                ) -> Tuple[str, ...]:
  """Where `module` goes in the exported folder, as path parts.

  The submission's own folder becomes the root; every other module keeps
  its path under submissions/: `submissions.nadamw_lawa.submission` ->
  submission.py, `submissions.optim` -> optim/__init__.py.
  """
  parts = module.split('.')[1:]
  if parts[:1] == [name]:
    parts = parts[1:]
  is_package = _module_file(module, repo_dir).name == '__init__.py'
  if is_package:
    return (*parts, '__init__.py')
  return (*parts[:-1], parts[-1] + '.py')


def _relative_module(target: str, exported: Tuple[str, ...], name: str,
                     repo_dir: pathlib.Path) -> str:
  """`target` as seen from the exported file at `exported`: `..optim.x`."""
  dots = '.' * len(exported)  # One per package level, one for the root.
  parts = export_path(target, name, repo_dir)
  parts = parts[:-1] if parts[-1] == '__init__.py' else (
      *parts[:-1], parts[-1][:-3])
  return dots + '.'.join(parts)


_FROM = re.compile(rf'from\s+({PACKAGE}(?:\.\w+)*)')


def rewrite_imports(source: str, exported: Tuple[str, ...], name: str,
                    repo_dir: pathlib.Path = REPO_DIR) -> str:
  """`source` with every import of this package made folder-relative.

  `from submissions.a import b` -> `from <dots>a import b`;
  `import submissions.a.b as c` -> `from <dots>a import b as c`. A plain
  `import submissions.a` (it binds the name `submissions`) is refused.
  """
  lines = source.splitlines(keepends=True)
  edits = []  # (line index, start column, end column, new text).
  for node in ast.walk(ast.parse(source)):
    if (isinstance(node, ast.ImportFrom) and node.level == 0
        and node.module.split('.')[0] == PACKAGE):
      line = lines[node.lineno - 1]
      match = _FROM.match(line, node.col_offset)
      if match is None:
        raise ValueError(f'line {node.lineno}: cannot rewrite this import; '
                         f'write it as `from {node.module} import ...` on '
                         'one line.')
      relative = _relative_module(node.module, exported, name, repo_dir)
      edits.append((node.lineno - 1, match.start(), match.end(),
                    f'from {relative}'))
    elif isinstance(node, ast.Import) and any(
        a.name.split('.')[0] == PACKAGE for a in node.names):
      [alias] = node.names if len(node.names) == 1 else [None]
      if (alias is None or alias.asname is None or '.' not in alias.name
          or node.lineno != node.end_lineno):
        raise ValueError(
            f'line {node.lineno}: `import {PACKAGE}...` cannot become a '
            f'relative import; write `from {PACKAGE}.x import y`.')
      package, leaf = alias.name.rsplit('.', 1)
      relative = _relative_module(package, exported, name, repo_dir)
      edits.append((node.lineno - 1, node.col_offset, node.end_col_offset,
                    f'from {relative} import {leaf} as {alias.asname}'))
  for index, start, end, text in sorted(edits, reverse=True):
    lines[index] = lines[index][:start] + text + lines[index][end:]
  return ''.join(lines)


# ----------------------------------------------------------------------------
# The folder.


def _docstring_line(path: pathlib.Path) -> str:
  doc = ast.get_docstring(ast.parse(path.read_text(encoding='utf-8'))) or ''
  return doc.strip().split('\n', 1)[0]


def submission_info(fields: Dict[str, str]) -> str:
  """submission_info.yml: one `key: "value"` line per field.

  Values are JSON strings, which YAML reads as double-quoted scalars.
  """
  return ''.join(f'{key}: {json.dumps(fields[key], ensure_ascii=False)}\n'
                 for key in INFO_FIELDS)


def export_submission(name: str, tuning_ruleset: str, out: str,
                      info: Optional[Dict[str, str]] = None,
                      repo_dir: pathlib.Path = REPO_DIR) -> List[str]:
  """Writes the folder; returns the files written, relative to `out`.

  Raises:
    ValueError: naming the unknown submission or ruleset, an existing file
      or non-empty folder `out`, a missing search space, or an import that
      cannot be made relative.
    OSError: if `out` cannot be created or written.
  """
  valid = submission_names(repo_dir)
  if name not in valid:
    raise ValueError(f'--submission must be one of {", ".join(valid)}, got '
                     f'{name!r}.')
  if tuning_ruleset not in RULESETS:
    raise ValueError(f'--tuning_ruleset must be one of {", ".join(RULESETS)}'
                     f', got {tuning_ruleset!r}.')
  out_dir = pathlib.Path(out)
  if out_dir.exists() and not out_dir.is_dir():
    raise ValueError(f'--out must be a new or empty folder, got {out} (a '
                     'file).')
  if out_dir.exists() and any(out_dir.iterdir()):
    raise ValueError(f'--out must be a new or empty folder, got {out} (not '
                     'empty).')
  folder = repo_dir / PACKAGE / name
  space = folder / 'tuning_search_space.json'
  if tuning_ruleset == 'external' and not space.is_file():
    raise ValueError(f'--tuning_ruleset external needs {space}, which does '
                     'not exist.')

  files: Dict[Tuple[str, ...], str] = {}
  for module in module_closure(name, repo_dir):
    exported = export_path(module, name, repo_dir)
    if exported in files:
      raise ValueError(f'{module} and another module both export to '
                       f'{"/".join(exported)}.')
    source = _module_file(module, repo_dir).read_text(encoding='utf-8')
    files[exported] = rewrite_imports(source, exported, name, repo_dir)
  if tuning_ruleset == 'external':
    files[('tuning_search_space.json',)] = space.read_text(encoding='utf-8')
  requirements = folder / 'requirements.txt'
  if requirements.is_file():
    files[('requirements.txt',)] = requirements.read_text(encoding='utf-8')
  fields = {
      'submission_name': out_dir.resolve().name,
      'submission_folder': out_dir.resolve().name,
      'authors': '',
      'affiliations': '',
      'version': '1.0',
      'ruleset': INFO_RULESET[tuning_ruleset],
      'framework': 'JAX',
      'description': _docstring_line(folder / 'submission.py'),
      **{k: v for k, v in (info or {}).items() if v is not None},
  }
  files[('submission_info.yml',)] = submission_info(fields)

  for parts, text in sorted(files.items()):
    path = out_dir.joinpath(*parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding='utf-8')
  return sorted('/'.join(parts) for parts in files)


def main(argv: Optional[Sequence[str]] = None) -> int:
  cli.parse(FLAGS, argv, __doc__)
  for flag in ('submission', 'out'):
    if not FLAGS[flag].value:
      cli.usage_error(f'--{flag} is required.')
  info = {'submission_name': FLAGS.submission_name, 'authors': FLAGS.authors,
          'affiliations': FLAGS.affiliations, 'version': FLAGS.version,
          'description': FLAGS.description}
  try:
    written = export_submission(FLAGS.submission, FLAGS.tuning_ruleset,
                                FLAGS.out, info)
  except ValueError as e:
    cli.usage_error(str(e))
  except OSError as e:
    cli.usage_error(f'--out {FLAGS.out}: cannot write '
                    f'{e.filename or FLAGS.out}: {e.strerror}.')
  for field in ('authors', 'affiliations'):
    if not info[field]:
      logging.warning('submission_info.yml: %s is empty; the leaderboard '
                      'asks for it (--%s).', field, field)
  print('\n'.join(os.path.join(FLAGS.out, f) for f in written))
  return 0


if __name__ == '__main__':
  sys.exit(main())
