r"""Click-through prediction with a DLRM-small-like model (criteo1tb analogue).

Data: synthetic click logs drawn from a hidden teacher (numpy, fixed seed).
Each example has 13 dense features (standard normal, like Criteo's
log-transformed counts) and 8 categorical features, each an id in a vocabulary
of 100 drawn from a Zipf-like law (p(k) ~ (k + 1)^-1.1, so many ids are
rare, as in click logs). The teacher's click logit is

  z = b + w.x + sum_f a_f[id_f] + sum_{f<g} <u_f[id_f], u_g[id_g]>
        + sum_f <V x, u_f[id_f]>

(per-id effects `a`, 4-d id vectors `u`, a dense projection `V`), and the
label is Bernoulli(sigmoid(z)). A DLRM's dot interactions can express z, so
the gap to the teacher is what the data leaves unlearnt (rare ids).
`bayes_validation_loss` is the teacher's own log loss on the validation
labels: the floor no model can beat on average, reported beside the target.

Model: DLRM-small's shape, scaled down: bottom MLP 13 -> 64 -> 16 on the dense
features, one embedding table (8 x 100 rows, width 16) for the ids, dot
products between all pairs of the 9 resulting vectors (upper triangle), the
bottom output concatenated, top MLP 52 -> 64 -> 32 -> 1 with dropout before
the output. Metric: mean sigmoid cross-entropy ('loss'), minimised.

Calibration (`localperf/lab/calibration.py` states the checks):
reference point 4 of `submissions/nadamw/tuning_search_space.json`
(learning_rate 0.004958, one_minus_beta1 0.1363, so a momentum memory of 7.3
steps; beta2 0.6292, weight_decay 0.1147, warmup_factor 0.02), batch 256,
step_hint 3000 (1.5 epochs), rng_seed 0, an eval every 60 steps (2%). With
gradients this noisy the late phase is noise-dominated: the cosine run ends
at validation loss 0.3112, warmup then a constant learning rate hovers at
0.333-0.346 and never reaches the target 0.3162 (R1), the EMA (0.9) and LAWA
(L=20) over 30 steps (4.1 memories, R3) beat the raw weights at 50% (0.3261,
0.3275 vs 0.3300) and 70% of step_hint (0.3165, 0.3173 vs 0.3173; EMA only)
(R2), and the cosine run first meets 0.3162 at step 2340 (0.3157; 0.3163 at
2220), 0.78 of step_hint, where the paper's NadamW met criteo1tb's at 0.77
(R4), on jax 0.10.2 and on the pinned 0.7.0 alike; the test loss there is
0.3083 (test target 0.3085). The teacher's floor is 0.2926 (validation) and
0.2849 (test); the base click rate 0.364. 3000 steps with their raw evals
took 63-93 s wall on 2 cores shared with load average 15-20, 11.9 s of CPU
time (single-threaded XLA). Reproduce:

  python -m scripts.calibrate --workload=ctr_dlrm

The figures above are from 2 XLA threads, before every run was pinned to one
core; on one core their last digits differ. R4 and R5 as `scripts/calibrate`
checks them, each run in a process of its own on one core (2026-12-03, jax
0.10.2): the cosine runs of seeds 0-4 first meet the target 0.3162 at 0.78,
0.86, 0.72, 0.76, 0.76 of `step_hint`, median 0.76 (paper's criteo1tb 0.77),
every seed within a spread of 0.14 (R5); R1-R3 pass, and the cosine run took
14.8 s of CPU.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from localperf import spec
from localperf.workloads import base

_NUM_DENSE = 13
_NUM_SPARSE = 8
_VOCAB_PER_FEATURE = 100
_EMBED_DIM = 16
_TEACHER_DIM = 4
_SPLIT_SIZES = {'train': 500_000, 'validation': 20_000, 'test': 20_000}
_DATA_SEED = 1


class _DlrmSmall(nn.Module):
  """Bottom MLP + embeddings -> pairwise dot interactions -> top MLP."""

  @nn.compact
  def __call__(self, x, train: bool, dropout_rate: float = 0.0):
    dense = x[:, :_NUM_DENSE]
    ids = x[:, _NUM_DENSE:].astype(jnp.int32)
    ids = ids + _VOCAB_PER_FEATURE * jnp.arange(_NUM_SPARSE)
    bottom = nn.relu(nn.Dense(64)(dense))
    bottom = nn.relu(nn.Dense(_EMBED_DIM)(bottom))
    embedded = nn.Embed(_NUM_SPARSE * _VOCAB_PER_FEATURE, _EMBED_DIM,
                        name='embedding')(ids)
    vectors = jnp.concatenate([bottom[:, None, :], embedded], axis=1)
    gram = jnp.einsum('bid,bjd->bij', vectors, vectors)
    rows, cols = np.triu_indices(_NUM_SPARSE + 1, k=1)
    top = jnp.concatenate([bottom, gram[:, rows, cols]], axis=1)
    top = nn.relu(nn.Dense(64)(top))
    top = nn.relu(nn.Dense(32)(top))
    top = base.Dropout()(top, dropout_rate, train)
    return nn.Dense(1)(top)


class CtrDlrmWorkload(base.LocalWorkload):
  """Reach a validation log loss on teacher-drawn click logs."""

  target_metric_name = 'loss'
  minimize_target_metric = True
  validation_target_value = 0.3162
  test_target_value = 0.3085
  loss_type = spec.LossType.SIGMOID_CROSS_ENTROPY
  step_hint = 3000
  reference_point = 4  # Of submissions/nadamw/tuning_search_space.json.
  max_allowed_runtime_sec = 120
  eval_period_time_sec = 1
  eval_batch_size = 10_000
  num_train_examples = _SPLIT_SIZES['train']
  num_validation_examples = _SPLIT_SIZES['validation']
  num_test_examples = _SPLIT_SIZES['test']
  input_shape = (_NUM_DENSE + _NUM_SPARSE,)

  def _generate_splits(self) -> base.Splits:
    return _teacher_splits()[0]

  @property
  def bayes_validation_loss(self) -> float:
    """The teacher's log loss on the validation labels (the floor)."""
    return _teacher_splits()[1]['validation']

  @property
  def bayes_test_loss(self) -> float:
    return _teacher_splits()[1]['test']

  def _build_model(self) -> nn.Module:
    return _DlrmSmall()

  def is_output_params(self, param_key: spec.ParameterKey) -> bool:
    return param_key == 'Dense_4'

  def loss_fn(self, label_batch, logits_batch, mask_batch=None,
              label_smoothing: float = 0.0):
    """Sigmoid cross-entropy per example (no label smoothing, as criteo1tb)."""
    del label_smoothing
    logits = jnp.reshape(logits_batch, (-1,))
    labels = jnp.reshape(label_batch, (-1,))
    per_example = -(labels * jax.nn.log_sigmoid(logits)
                    + (1.0 - labels) * jax.nn.log_sigmoid(-logits))
    if mask_batch is not None:
      mask_batch = jnp.reshape(mask_batch, (-1,))
    return base.masked_loss(per_example, mask_batch)


_TEACHER_CACHE = {}


def _teacher_splits():
  """(splits, {split: teacher log loss}), drawn once per process."""
  if not _TEACHER_CACHE:
    _TEACHER_CACHE['value'] = _draw_click_logs(np.random.default_rng(_DATA_SEED))
  return _TEACHER_CACHE['value']


def _draw_click_logs(rng: np.random.Generator):
  """Draws the hidden teacher, then every split's features and labels."""
  zipf = 1.0 / np.arange(1, _VOCAB_PER_FEATURE + 1) ** 1.1
  zipf /= zipf.sum()
  effects = rng.normal(0.0, 0.5, (_NUM_SPARSE, _VOCAB_PER_FEATURE))
  vectors = rng.normal(0.0, 0.45,
                       (_NUM_SPARSE, _VOCAB_PER_FEATURE, _TEACHER_DIM))
  dense_weights = rng.normal(0.0, 0.3, _NUM_DENSE)
  dense_projection = rng.normal(0.0, 0.3, (_NUM_DENSE, _TEACHER_DIM))
  bias = -1.2
  splits, bayes = {}, {}
  for name, size in _SPLIT_SIZES.items():
    dense = rng.standard_normal((size, _NUM_DENSE))
    ids = rng.choice(_VOCAB_PER_FEATURE, (size, _NUM_SPARSE), p=zipf)
    u = vectors[np.arange(_NUM_SPARSE), ids]  # (size, sparse, dim)
    summed = u.sum(1)
    pairwise = 0.5 * ((summed ** 2).sum(-1) - (u ** 2).sum((1, 2)))
    logit = (bias + dense @ dense_weights
             + effects[np.arange(_NUM_SPARSE), ids].sum(1) + pairwise
             + ((dense @ dense_projection) * summed).sum(-1))
    prob = 1.0 / (1.0 + np.exp(-logit))
    clicks = (rng.random(size) < prob).astype(np.float32)
    splits[name] = {
        'inputs': np.concatenate([dense, ids], 1).astype(np.float32),
        'targets': clicks}
    bayes[name] = float(-np.mean(clicks * np.log(prob)
                                 + (1 - clicks) * np.log1p(-prob)))
  return splits, bayes
