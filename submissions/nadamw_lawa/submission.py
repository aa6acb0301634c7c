"""NadamW (AlgoPerf's baseline) with LAWA, the mean of the latest snapshots.

Training continues from the raw weights; `prepare_for_eval` hands AlgoPerf
the mean of the last `lawa_queue_length` snapshots once that many exist. The
snapshot rule is workload-agnostic, in fractions of `step_hint`:

  start_step = round(averaging_start_fraction * step_hint)
  every_k = averaging_every_steps, or
            max(1, round(averaging_window_fraction * step_hint / lawa_queue_length))

so the queue spans the window. The self-tuning defaults are the paper's
recommendation: L = 20 and a window of 1% of the budget (arXiv 2502.06761).

`lawa_queue_location` says where the snapshots live. 'host' (the default):
in host memory with a running sum, so a device holds no copy of them between
snapshots and one while a snapshot is on its way; the host holds L float32
copies of the params and one float64. 'device': L float32 copies in the
optimizer state on every device (no host traffic; only for models small
enough, see `python -m scripts.memory_table`).
"""

import functools
import optax

from submissions import common
from submissions import optim
from submissions.common import data_selection  # noqa: F401
from submissions.common import get_batch_size  # noqa: F401
from submissions.common import prepare_for_eval  # noqa: F401
from submissions.common import spec
from submissions.common import update_params  # noqa: F401
from submissions.nadamw.submission import nadamw_from_hyperparameters
from submissions.nadamw.submission import SELF_TUNING_HYPERPARAMETERS as _NADAMW

SELF_TUNING_HYPERPARAMETERS = {
    **_NADAMW,
    'averaging_start_fraction': 0.0,
    'averaging_window_fraction': 0.01,
    'lawa_queue_length': 20,
    'averaging_every_steps': None,
    'lawa_queue_location': 'host',
}
# localperf checks every trial's point with this before training.
check_hyperparameters = functools.partial(
    common.check_hyperparameters,
    self_tuning=SELF_TUNING_HYPERPARAMETERS)


def lawa_every_k(hparams, step_hint):
  """Steps between LAWA snapshots (see the module docstring)."""
  if hparams['averaging_every_steps'] is not None:
    return int(hparams['averaging_every_steps'])
  window_steps = hparams['averaging_window_fraction'] * step_hint
  return max(1, round(window_steps / hparams['lawa_queue_length']))


def init_optimizer_state(
    workload: spec.Workload,
    model_params: spec.ParameterContainer,
    model_state: spec.ModelAuxiliaryState,
    hyperparameters: spec.Hyperparameters,
    rng: spec.RandomState,
) -> spec.OptimizerState:
  del model_state, rng
  hparams = common.read_hyperparameters(
      hyperparameters, SELF_TUNING_HYPERPARAMETERS)
  step_hint = workload.step_hint
  queue_length = int(hparams['lawa_queue_length'])
  every_k = lawa_every_k(hparams, step_hint)
  start_step = common.averaging_start_step(hparams, step_hint)
  optimizer = nadamw_from_hyperparameters(hparams, step_hint)
  host_lawa = None
  if hparams['lawa_queue_location'] == 'device':
    optimizer = optax.chain(
        optimizer,
        optim.lawa_params(queue_length=queue_length, every_k=every_k,
                          start_step=start_step))
  else:
    host_lawa = common.HostLawa(queue_length, every_k, start_step)
  return common.init_optimizer_state(
      workload, model_params, optimizer, hparams,
      eval_params=common.averaged_params, host_lawa=host_lawa)
