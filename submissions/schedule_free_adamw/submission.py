"""Schedule-Free AdamW from `optax.contrib`, evaluated at its averaged point.

The self-tuning winner of AlgoPerf v0.5, here as a peer to compare against in
the same runs. Training continues from the raw iterate `y`; `prepare_for_eval`
hands AlgoPerf `x = (y - (1 - b1) * z) / b1`
(`optax.contrib.schedule_free_eval_params`). Self-tuning defaults are those of
the v0.5 JAX entry, whose warmup is `0.75 * warmup_factor * step_hint`.
Needs optax >= 0.2.3: AlgoPerf v0.6 pins optax 0.2.2, which lacks it.
"""

try:
  from optax.contrib import schedule_free_adamw
  from optax.contrib import schedule_free_eval_params
except ImportError as e:
  raise ImportError(
      'schedule_free_adamw needs optax.contrib.schedule_free_adamw, which '
      'optax 0.2.2 (AlgoPerf v0.6 pin) lacks; install optax >= 0.2.3 to run '
      'this submission.') from e

import functools

from submissions import common
from submissions.common import data_selection  # noqa: F401
from submissions.common import get_batch_size  # noqa: F401
from submissions.common import prepare_for_eval  # noqa: F401
from submissions.common import spec
from submissions.common import update_params  # noqa: F401

SELF_TUNING_HYPERPARAMETERS = {
    'learning_rate': 0.0025,
    'one_minus_beta1': 0.1,
    'beta2': 0.9955159689799007,
    'weight_decay': 0.08121616522670176,
    'warmup_factor': 0.02,
    'weight_lr_power': 2.0,
    'dropout_rate': 0.1,
    'label_smoothing': 0.2,
    'grad_clip': None,
}
# localperf checks every trial's point with this before training.
check_hyperparameters = functools.partial(
    common.check_hyperparameters,
    self_tuning=SELF_TUNING_HYPERPARAMETERS)
_WARMUP_SHARE = 0.75


def _eval_params(state: common.TrainState):
  return schedule_free_eval_params(state.opt_state, state.params)


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
  optimizer = schedule_free_adamw(
      learning_rate=hparams['learning_rate'],
      # optax reads 0 warmup steps as a learning rate of 0 for good.
      warmup_steps=int(
          _WARMUP_SHARE * hparams['warmup_factor'] * workload.step_hint)
      or None,
      b1=1.0 - hparams['one_minus_beta1'],
      b2=hparams['beta2'],
      eps=1e-8,
      weight_decay=hparams['weight_decay'],
      weight_lr_power=hparams['weight_lr_power'])
  return common.init_optimizer_state(
      workload, model_params, optimizer, hparams, eval_params=_eval_params)
