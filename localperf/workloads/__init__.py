"""localperf's CPU workloads by name.

`get_workload(name)` returns a fresh workload instance; construction is cheap
(data is generated on first use and kept in memory for the process).
"""

from typing import Callable, Dict

from localperf.workloads.base import LocalWorkload
from localperf.workloads.ctr_dlrm import CtrDlrmWorkload
from localperf.workloads.mnist1d import Mnist1dWorkload

_WORKLOADS: Dict[str, Callable[[], LocalWorkload]] = {
    'mnist1d': Mnist1dWorkload,
    'ctr_dlrm': CtrDlrmWorkload,
}
WORKLOAD_NAMES = tuple(_WORKLOADS)
DEFAULT_WORKLOAD = 'mnist1d'


def get_workload(name: str) -> LocalWorkload:
  """The workload called `name`; ValueError naming the valid ones otherwise."""
  if name not in _WORKLOADS:
    raise ValueError(f'Unknown workload {name!r}; valid workloads: '
                     f'{", ".join(WORKLOAD_NAMES)}.')
  return _WORKLOADS[name]()
