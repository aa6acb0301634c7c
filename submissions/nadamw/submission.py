"""AlgoPerf's JAX NadamW baseline: warmup, cosine decay to 0 at `step_hint`.

Behaves as `algorithms/baselines/external_tuning/jax_nadamw_full_budget.py`
of AlgoPerf v0.6: the same optimizer, schedule, gradient clipping, label
smoothing and batch sizes. Under the self-tuning ruleset
(`hyperparameters=None`) it uses `SELF_TUNING_HYPERPARAMETERS`, the fifth point
of the baseline's published search space.
"""

import functools

from submissions import common
from submissions import optim
from submissions.common import data_selection  # noqa: F401
from submissions.common import get_batch_size  # noqa: F401
from submissions.common import prepare_for_eval  # noqa: F401
from submissions.common import spec
from submissions.common import update_params  # noqa: F401

# Self-tuning values; see `common.OPTIONAL_HYPERPARAMETERS` for optional ones.
SELF_TUNING_HYPERPARAMETERS = {
    'learning_rate': 0.0017486387539278373,
    'one_minus_beta1': 0.06733926164,
    'beta2': 0.9955159689799007,
    'weight_decay': 0.08121616522670176,
    'warmup_factor': 0.02,
    'dropout_rate': 0.1,
    'label_smoothing': 0.0,
    'grad_clip': None,
}
# localperf checks every trial's point with this before training.
check_hyperparameters = functools.partial(
    common.check_hyperparameters,
    self_tuning=SELF_TUNING_HYPERPARAMETERS)


def nadamw_from_hyperparameters(hparams, step_hint, schedule=None):
  """The baseline's NadamW, on its warmup-cosine schedule by default."""
  if schedule is None:
    schedule = optim.warmup_cosine_decay(
        peak_value=hparams['learning_rate'], step_hint=step_hint,
        warmup_factor=hparams['warmup_factor'])
  return optim.nadamw(
      learning_rate=schedule,
      b1=1.0 - hparams['one_minus_beta1'],
      b2=hparams['beta2'],
      eps=1e-8,
      weight_decay=hparams['weight_decay'])


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
  optimizer = nadamw_from_hyperparameters(hparams, workload.step_hint)
  return common.init_optimizer_state(workload, model_params, optimizer, hparams)
