"""localperf's CPU workloads by name.

`get_workload(name)` returns a fresh workload instance; construction is cheap
(a workload's module is imported on first request, its data generated on
first use and kept in memory for the process).

`PAPER_SEVEN` are the CPU analogues of the seven AlgoPerf workloads of
"When, Where and Why to Average Weights?", keyed as `ALGOPERF_COUNTERPART`
names them. On an analogue, a setting counted in steps means the
counterpart's steps: `in_analogue_steps` scales it by the ratio of their
step_hints, so it is the same fraction of the budget on both.
"""

import functools
import importlib
import json
import pathlib
from typing import Any, Callable, Dict

from localperf.workloads.base import LocalWorkload


def _lazy(module: str, cls: str) -> Callable[[], LocalWorkload]:
  """A constructor that imports localperf.workloads.<module> when called."""
  def make() -> LocalWorkload:
    return getattr(importlib.import_module(f'localperf.workloads.{module}'),
                   cls)()
  return make


_WORKLOADS: Dict[str, Callable[[], LocalWorkload]] = {
    'mnist1d': _lazy('mnist1d', 'Mnist1dWorkload'),
    'ctr_dlrm': _lazy('ctr_dlrm', 'CtrDlrmWorkload'),
    'kspace_unet': _lazy('kspace_unet', 'KspaceUnetWorkload'),
    'shapes_vit': _lazy('shapes_vit', 'ShapesVitWorkload'),
    'ctc_conformer': _lazy('ctc_conformer', 'CtcConformerWorkload'),
    'ctc_lstm': _lazy('ctc_lstm', 'CtcLstmWorkload'),
    'molgraph_gnn': _lazy('molgraph_gnn', 'MolgraphGnnWorkload'),
    'seq2seq_transformer': _lazy('seq2seq_transformer',
                                 'Seq2seqTransformerWorkload'),
}
WORKLOAD_NAMES = tuple(_WORKLOADS)
DEFAULT_WORKLOAD = 'mnist1d'

ALGOPERF_COUNTERPART = {
    'ctr_dlrm': 'criteo1tb',
    'kspace_unet': 'fastmri',
    'shapes_vit': 'imagenet_vit',
    'ctc_conformer': 'librispeech_conformer',
    'ctc_lstm': 'librispeech_deepspeech',
    'molgraph_gnn': 'ogbg',
    'seq2seq_transformer': 'wmt',
}
PAPER_SEVEN = tuple(ALGOPERF_COUNTERPART)
ALGOPERF_WORKLOADS_FILE = (pathlib.Path(__file__).resolve().parents[2] /
                           'workloads_config' / 'algoperf_workloads_v06.json')
# Hyperparameters counted in steps (of the counterpart, on an analogue).
STEP_COUNTED_HYPERPARAMETERS = ('averaging_every_steps', 'select_every_steps')
# Names `--workloads` accepts for a group of workloads.
WORKLOAD_GROUPS = {'paper_seven': PAPER_SEVEN}


def get_workload(name: str) -> LocalWorkload:
  """The workload called `name`; ValueError naming the valid ones otherwise."""
  if name not in _WORKLOADS:
    raise ValueError(f'Unknown workload {name!r}; valid workloads: '
                     f'{", ".join(WORKLOAD_NAMES)}.')
  return _WORKLOADS[name]()


@functools.lru_cache(maxsize=None)
def counterpart_step_hint(name: str) -> int:
  """The step_hint of the AlgoPerf workload the analogue `name` stands for."""
  with open(ALGOPERF_WORKLOADS_FILE, encoding='utf-8') as f:
    facts = json.load(f)['workloads']
  return facts[ALGOPERF_COUNTERPART[name]]['step_hint']


def in_analogue_steps(steps: int, name: str) -> int:
  """`steps` of the counterpart of `name` at the same fraction of the
  budget: max(1, round(steps * H / H_counterpart)); `steps` elsewhere."""
  if name not in ALGOPERF_COUNTERPART:
    return steps
  step_hint = get_workload(name).step_hint
  return max(1, round(steps * step_hint / counterpart_step_hint(name)))


def with_analogue_steps(hyperparameters: Any, name: str) -> Any:
  """A trial's hyperparameters (namedtuple or None) with each of
  `STEP_COUNTED_HYPERPARAMETERS` it sets in `name`'s steps."""
  if hyperparameters is None:
    return None
  scaled = {k: in_analogue_steps(getattr(hyperparameters, k), name)
            for k in STEP_COUNTED_HYPERPARAMETERS
            if getattr(hyperparameters, k, None) is not None}
  return hyperparameters._replace(**scaled) if scaled else hyperparameters
