"""AlgoPerf's log layout and files, written without pandas or absl.

  <experiment_dir>/<experiment_name>/<workload>_jax/trial_<k>/
      hparams.json            the trial's hyperparameters (reused on resume)
      meta_data_<p>.json      workload.* properties, system, rng_seed
      flags_<p>.json          the command's flags
      measurements.csv        every eval row, then the final score row
      eval_measurements.csv   every eval row
      checkpoint_<step>       see `localperf.checkpoints`

`<p>` is the preemption count (0, then 1 after a first resume, ...). CSV
columns are those AlgoPerf's `logger_utils.write_to_csv` produces: the first
row's keys sorted, later new keys appended in order of appearance.
"""

import collections
import csv
import json
import os
import platform
import shutil
from typing import Any, Dict, List, Optional, Tuple

import numpy as np


def get_log_dir(experiment_dir: str, workload_name: str,
                experiment_name: Optional[str], resume_last_run: bool,
                overwrite: bool) -> str:
  """Makes and returns `<experiment_dir>/<experiment_name>/<workload>_jax`.

  An existing directory is removed with `overwrite`, reused with
  `resume_last_run`, and otherwise an error (AlgoPerf asks on stdin instead).
  """
  path = os.path.join(os.path.expanduser(experiment_dir),
                      experiment_name or '', f'{workload_name}_jax')
  if os.path.exists(path):
    if overwrite:
      shutil.rmtree(path)
    elif not resume_last_run:
      raise ValueError(f'experiment directory {path} exists: pass '
                       '--overwrite to replace it or --resume_last_run to '
                       'continue it.')
  os.makedirs(path, exist_ok=True)
  return path


def write_json(path: str, value: Any) -> None:
  with open(path, 'w', encoding='utf-8') as f:
    f.write(json.dumps(value, indent=2))


def write_hparams(hyperparameters: Any, trial_dir: str) -> Any:
  """Writes hparams.json, or reads it back if present (as AlgoPerf does)."""
  path = os.path.join(trial_dir, 'hparams.json')
  if os.path.exists(path):
    with open(path, encoding='utf-8') as f:
      saved = json.load(f)
    return collections.namedtuple('Hyperparameters', saved)(**saved)
  write_json(path, hyperparameters._asdict())
  return hyperparameters


def meta_data(workload: Any, rng_seed: Optional[int]) -> Dict[str, Any]:
  """`workload.<property>` for every public primitive property, system info."""
  import flax  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  info = {}
  for key in dir(workload):
    if key.startswith('_') or key in ('param_shapes', 'model_params_types'):
      continue
    value = getattr(workload, key)
    if isinstance(value, (bool, int, float, str)):
      info[f'workload.{key}'] = value
  info.update({
      'os_platform': platform.platform(),
      'python_version': platform.python_version(),
      'python_compiler': platform.python_compiler(),
      'cpu_count': os.cpu_count(),
      'jax_version': jax.__version__,
      'flax_version': flax.__version__,
      'optax_version': optax.__version__,
      'devices': [str(d) for d in jax.devices()],
  })
  if rng_seed is not None:
    info['rng_seed'] = rng_seed
  return info


def append_csv_row(path: str, row: Dict[str, Any]) -> None:
  """Appends `row` as AlgoPerf's pandas-based writer lays it out."""
  rows: List[Dict[str, str]] = []
  columns = sorted(row)
  if os.path.exists(path) and os.path.getsize(path) > 0:
    columns, rows = _read_table(path)
    columns += [key for key in row if key not in columns]
  rows.append(row)
  _write_rows(path, rows, columns)


def _read_table(path: str) -> Tuple[List[str], List[Dict[str, str]]]:
  """(column names, rows as strings) of a CSV file."""
  with open(path, newline='', encoding='utf-8') as f:
    reader = csv.DictReader(f)
    rows = list(reader)
    return list(reader.fieldnames or []), rows


def _write_rows(path: str, rows: List[Dict[str, Any]],
                columns: List[str]) -> None:
  """Writes the whole CSV to a temporary file, then renames it over `path`."""
  tmp = f'{path}.tmp'
  with open(tmp, 'w', newline='', encoding='utf-8') as f:
    writer = csv.DictWriter(f, fieldnames=columns, restval='')
    writer.writeheader()
    writer.writerows({k: _csv_value(v) for k, v in row.items()}
                     for row in rows)
  os.replace(tmp, path)


def _csv_value(value: Any) -> Any:
  if isinstance(value, (np.generic, np.ndarray)):
    return value.item()
  return value


class MetricsLogger:
  """measurements.csv and eval_measurements.csv of one trial."""

  def __init__(self, trial_dir: str):
    self.csv_path = os.path.join(trial_dir, 'measurements.csv')
    self.eval_csv_path = os.path.join(trial_dir, 'eval_measurements.csv')

  def append_scalar_metrics(self, metrics: Dict[str, Any], global_step: int,
                            preemption_count: Optional[int] = None,
                            is_eval: bool = False) -> None:
    metrics['global_step'] = global_step
    if preemption_count is not None:
      metrics['preemption_count'] = preemption_count
    append_csv_row(self.csv_path, metrics)
    if is_eval:
      append_csv_row(self.eval_csv_path, metrics)


def roll_back(trial_dir: str, global_step: int) -> None:
  """Rewinds a trial's CSV logs to the checkpoint it resumes from.

  A killed run may have logged past its last checkpoint (taken right after
  the eval at `global_step`); those rows are dropped, so the resumed run logs
  each step once. With no checkpoint (`global_step` 0) the trial starts
  over and its CSV logs are removed.
  """
  for name in ('measurements.csv', 'eval_measurements.csv'):
    path = os.path.join(trial_dir, name)
    if not os.path.exists(path):
      continue
    if global_step == 0:
      os.remove(path)
      continue
    columns, rows = _read_table(path)
    last_eval = max((i for i, row in enumerate(rows)
                     if row['global_step'] == str(global_step)
                     and row.get('accumulated_eval_time')),
                    default=len(rows) - 1)
    _write_rows(path, rows[:last_eval + 1], columns)


def read_csv(path: str) -> List[Dict[str, str]]:
  """The rows of a measurements file, as strings."""
  return _read_table(path)[1]
