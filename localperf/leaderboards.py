"""The published AlgoPerf leaderboards' logs, packed in the repository.

`workloads_config/leaderboards/algoperf_v0<k>.tar.xz` holds one folder,
`leaderboard_v0<k>/`: its `EXPECTED_SCORES.md` (the published scores and
where the logs come from, verbatim) and the official `eval_measurements.csv`
files in the tree the leaderboard publishes, stray folders included. A CSV
inside a `<workload>_<framework>/` folder may keep only the columns scoring
reads (`pack(..., scored_columns=True)`): `global_step`, `score` and the
workload's validation target metric, each cell as published; every other
file is packed as it is.
"""

import csv
import io
import lzma
import pathlib
import tarfile
from typing import Optional

from localperf import scoring

ARCHIVE_DIR = scoring.CONFIG_DIR / 'leaderboards'
SCORED_COLUMNS = ('global_step', 'score')  # And the validation target metric.


def archive_path(version: str) -> pathlib.Path:
  """The packed logs of AlgoPerf `version` ('0.5' or '0.6')."""
  if version not in scoring.BENCHMARK_VERSIONS:
    raise ValueError(f'version must be one of {scoring.BENCHMARK_VERSIONS}, '
                     f'got {version!r}.')
  return ARCHIVE_DIR / f'algoperf_v{version.replace(".", "")}.tar.xz'


def unpack(archive: pathlib.Path, directory: pathlib.Path) -> pathlib.Path:
  """Extracts `archive` into `directory`; returns the leaderboard folder."""
  with tarfile.open(archive, 'r|xz') as tar:  # A stream: read once.
    tar.extractall(directory, filter='data')
    top = {pathlib.PurePosixPath(name).parts[0] for name in tar.getnames()}
  if len(top) != 1:
    raise ValueError(f'{archive}: expected one top folder, found {top}.')
  return pathlib.Path(directory) / top.pop()


def keep_columns(text: str, columns: tuple[str, ...], path: str) -> str:
  """The CSV `text` with only `columns`, in that order, cells unchanged."""
  rows = [row for row in csv.reader(io.StringIO(text)) if row]
  missing = [c for c in columns if c not in rows[0]]
  if missing:
    raise ValueError(f'{path}: no column {missing}; it has {rows[0]}.')
  if any(len(row) != len(rows[0]) for row in rows):
    raise ValueError(f'{path}: a row of more or fewer cells than the header.')
  indices = [rows[0].index(c) for c in columns]
  out = io.StringIO()
  csv.writer(out, lineterminator='\n').writerows(
      [row[i] for i in indices] for row in rows)
  return out.getvalue()


def _workload(relative: pathlib.Path) -> Optional[str]:
  """The workload of the `<workload>_<framework>/` folder holding a file."""
  names = [scoring.workload_name(part) for part in relative.parts[:-1]]
  return next((name for name in reversed(names) if name), None)


def _packed_bytes(path: pathlib.Path, relative: pathlib.Path,
                  benchmark: Optional[scoring.Benchmark]) -> bytes:
  """A file's bytes as packed: a workload's CSV cut to the scored columns."""
  workload = _workload(relative)
  if (benchmark is None or path.name != scoring.MEASUREMENTS_FILENAME
      or workload is None):
    return path.read_bytes()
  target = scoring.find_target(benchmark, workload)
  columns = SCORED_COLUMNS + (target.column,)
  return keep_columns(path.read_text(encoding='utf-8'), columns,
                      str(path)).encode()


def pack(source: pathlib.Path, archive: pathlib.Path, version: str,
         scored_columns: bool) -> None:
  """Packs the leaderboard folder `source` into `archive` (.tar.xz).

  Entries are sorted, owned by root and dated 0, so the same logs pack to
  the same tar; a folder has an entry of its own only when empty (the
  others come with their files, and unpack faster without). With
  `scored_columns`, a workload's CSVs keep only the columns scoring reads,
  by the targets of AlgoPerf `version`. `archive` appears only once
  complete.
  """
  source = pathlib.Path(source)
  benchmark = scoring.load_benchmark(version) if scored_columns else None
  partial = archive.with_name(archive.name + '.partial')
  with lzma.open(partial, 'wb', preset=9 | lzma.PRESET_EXTREME) as xz, \
      tarfile.open(fileobj=xz, mode='w', format=tarfile.PAX_FORMAT) as tar:
    for path in sorted(source.rglob('*')):
      relative = path.relative_to(source)
      info = tarfile.TarInfo(str(source.name / relative))
      if path.is_dir():
        if not any(path.iterdir()):
          info.type, info.mode = tarfile.DIRTYPE, 0o755
          tar.addfile(info)
        continue
      data = _packed_bytes(path, relative, benchmark)
      info.size, info.mode = len(data), 0o644
      tar.addfile(info, io.BytesIO(data))
  partial.replace(archive)
