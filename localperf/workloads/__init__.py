"""localperf's CPU workloads by name.

`get_workload(name)` returns a fresh workload instance; construction is cheap
(a workload's module is imported on first request, its data generated on
first use and kept in memory for the process).

`PAPER_SEVEN` are the CPU analogues of the seven AlgoPerf workloads of
"When, Where and Why to Average Weights?", keyed as `ALGOPERF_COUNTERPART`
names them.
"""

import importlib
from typing import Callable, Dict

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
# Names `--workloads` accepts for a group of workloads.
WORKLOAD_GROUPS = {'paper_seven': PAPER_SEVEN}


def get_workload(name: str) -> LocalWorkload:
  """The workload called `name`; ValueError naming the valid ones otherwise."""
  if name not in _WORKLOADS:
    raise ValueError(f'Unknown workload {name!r}; valid workloads: '
                     f'{", ".join(WORKLOAD_NAMES)}.')
  return _WORKLOADS[name]()
