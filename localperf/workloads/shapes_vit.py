r"""Drawn shapes classified by a tiny ViT: the imagenet_vit analogue.

Data: 16x16 RGB images drawn with numpy from a fixed seed, ten balanced
classes, one shape each (disk, ring, square, square frame, triangle, plus,
three stripes, bar, L, 2x2 checker), at a random centre, size (half-size 3.2
to 6.4 pixels) and rotation, with soft edges, on a random background colour,
the shape brighter by a random colour of random strength, plus Gaussian
pixel noise (stddev 0.1). 40,000 train, 4,000 validation and 4,000 test
images; the test images are noisier (0.13), a held-out shift as ImageNet-v2
is for ImageNet, so the test target sits below the validation one. Inputs
are normalised per channel by `train_mean` and `train_stddev`, as AlgoPerf's
image pipelines do (no mixup or RandAugment here).

Model: AlgoPerf's ViT (S/16, 'gap' head) scaled down: a strided 4x4
convolution embeds 16 patches of width 64, fixed 2-D sincos position
embeddings are added, then 2 pre-LayerNorm encoder blocks (4-head self
attention, GELU MLP of 128; dropout after the embedding, the attention, inside
and after the MLP), a final LayerNorm, global average pooling, a tanh
`pre_logits` layer and a zero-initialised `head` (75k parameters). Loss:
softmax cross-entropy with optional label smoothing. Metric: accuracy,
maximised. A nearest-class-mean classifier on position-blind Fourier
magnitudes gets about 0.37, raw-pixel class means about chance.

Calibration (NadamW in the real workloads' regime, where averaging can be
measured; `localperf/lab/calibration.py` states the checks, docs/analogues.md
has the figures): reference point 4 of
`submissions/nadamw/tuning_search_space.json` (learning_rate 0.004958,
one_minus_beta1 0.1363, beta2 0.6292, weight_decay 0.1147, warmup_factor
0.02, label smoothing and dropout 0), batch 64, step_hint 6600 (10.5
epochs), validation accuracy every 132 steps (2%), each run on one core with
one XLA thread (2026-12-06, jax 0.10.2). step_hint went from 2400 to 6600 on
2026-12-06 so that the paper's snapshot every 64 of imagenet_vit's steps is 3
steps here (R3: a 30-step EMA window, 4.1 momentum memories). The target
0.8984 is first met at 0.90, 0.86, 0.92, 0.84, 0.90 of step_hint over seeds
0-4, median 0.90 (R4: the paper's imagenet_vit 0.89), spread 0.08 (R5); the
seeds end at 0.900 to 0.904. Test target 0.7533: the median over seeds 0-4 of
the test accuracy where each first meets the validation target (0.746 to
0.761). R1: warmup then constant LR never reaches it (final 0.7933 vs cosine
0.9015). Speed: 139-153 s of CPU per run on a loaded machine. Response: the
EMA is worth 1.26x the steps at half the budget (R2), but at the target the
EMA's steps over the raw weights' are 0.96 in median (imagenet_vit 0.80).
At batch 32 (until 2026-12-03) the seeds ended further apart than the curve
rose over its last fifth, so no target was met by every seed.
Reproduce (exit status 0 when the regime checks hold):

  python -m scripts.calibrate --workload=shapes_vit
"""

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from localperf import spec
from localperf.workloads import base

_IMAGE_SIZE = 16
_NUM_CHANNELS = 3
_NUM_CLASSES = 10
_PATCH_SIZE = 4
_WIDTH = 64
_DEPTH = 2
_NUM_HEADS = 4
_MLP_DIM = 128
_SPLIT_SIZES = {'train': 40_000, 'validation': 4000, 'test': 4000}
# The test split is noisier: a held-out shift, as ImageNet-v2 is for imagenet.
_NOISE_STDDEV = {'train': 0.1, 'validation': 0.1, 'test': 0.13}
_EDGE_PIXELS = 0.5
_DATA_SEED = 2


# --- Data --------------------------------------------------------------------


def _shape_interior(label: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
  """How far inside shape `label` each point (u, v) lies (< 0: outside).

  (u, v) are coordinates in the shape's frame, in units of its half-size.
  """
  square = 1.0 - np.maximum(np.abs(u), np.abs(v))
  if label == 0:  # Disk.
    return 1.0 - np.hypot(u, v)
  if label == 1:  # Ring.
    return 0.25 - np.abs(np.hypot(u, v) - 0.7)
  if label == 2:  # Square.
    return square
  if label == 3:  # Square frame.
    return 0.2 - np.abs(square - 0.2)
  if label == 4:  # Triangle: inradius 0.5, circumradius 1.
    normals = np.pi / 2 + 2 * np.pi / 3 * np.arange(3)
    across = u[..., None] * np.cos(normals) + v[..., None] * np.sin(normals)
    return 0.5 - across.max(-1)
  if label == 5:  # Plus.
    return np.maximum(np.minimum(0.3 - np.abs(u), 1.0 - np.abs(v)),
                      np.minimum(0.3 - np.abs(v), 1.0 - np.abs(u)))
  if label == 6:  # Three stripes.
    return np.minimum(square, 0.2 * np.cos(2.5 * np.pi * u))
  if label == 7:  # Bar.
    return np.minimum(0.3 - np.abs(v), 1.0 - np.abs(u))
  if label == 8:  # L: a square less one quadrant.
    return np.minimum(square, np.maximum(-u, -v))
  if label == 9:  # 2x2 checker.
    return np.minimum(square, 2.0 * u * v)
  raise ValueError(f'No shape {label}.')


def draw_shapes(num_examples: int, rng: np.random.Generator,
                noise_stddev: float):
  """(images (n, 16, 16, 3), labels (n,)): balanced classes, shuffled.

  Pixel centre p maps to (u, v) = R(theta) (p - centre) / half_size in the
  shape's frame; its foreground weight is
  alpha = sigmoid(half_size * interior(u, v) / _EDGE_PIXELS), and its colour
  background + alpha * contrast * direction + noise, with `direction` a
  random unit vector of non-negative channels (the shape is the brighter).
  """
  labels = rng.permutation(np.arange(num_examples) % _NUM_CLASSES)
  per_example = lambda *dims: (num_examples,) + dims
  centre = rng.uniform(0.3, 0.7, per_example(2, 1, 1)) * _IMAGE_SIZE
  half_size = rng.uniform(0.2, 0.4, per_example(1, 1)) * _IMAGE_SIZE
  theta = rng.uniform(0.0, 2 * np.pi, per_example(1, 1))
  pixel = np.arange(_IMAGE_SIZE) + 0.5
  dx = pixel[None, None, :] - centre[:, 0]
  dy = pixel[None, :, None] - centre[:, 1]
  cos, sin = np.cos(theta), np.sin(theta)
  u = ((cos * dx + sin * dy) / half_size).astype(np.float32)
  v = ((cos * dy - sin * dx) / half_size).astype(np.float32)
  interior = np.empty_like(u)
  for label in range(_NUM_CLASSES):
    index = labels == label
    interior[index] = _shape_interior(label, u[index], v[index])
  alpha = 0.5 + 0.5 * np.tanh(0.5 * interior * half_size / _EDGE_PIXELS)
  background = rng.uniform(0.0, 0.5, per_example(1, 1, _NUM_CHANNELS))
  direction = np.abs(rng.standard_normal(per_example(1, 1, _NUM_CHANNELS)))
  direction /= np.linalg.norm(direction, axis=-1, keepdims=True)
  contrast = rng.uniform(0.3, 0.7, per_example(1, 1, 1)) * direction
  images = (background + alpha[..., None] * contrast).astype(np.float32)
  images += noise_stddev * rng.standard_normal(images.shape, np.float32)
  return images, labels.astype(np.int32)


# --- Model -------------------------------------------------------------------


def sincos_position_embedding(height: int, width: int,
                              features: int) -> np.ndarray:
  """(1, height * width, features): MoCo v3's fixed 2-D embedding.

  Row-major position (y, x) gets [sin(x w), cos(x w), sin(y w), cos(y w)]
  with w_k = 10000^(-k / (features / 4 - 1)), k = 0 .. features / 4 - 1.
  """
  quarter = features // 4
  omega = 10_000.0 ** -(np.arange(quarter) / (quarter - 1))
  y, x = np.divmod(np.arange(height * width), width)
  xw, yw = np.outer(x, omega), np.outer(y, omega)
  table = np.concatenate([np.sin(xw), np.cos(xw), np.sin(yw), np.cos(yw)], 1)
  return table[None].astype(np.float32)


class _MlpBlock(nn.Module):
  """Dense(mlp_dim) -> GELU -> dropout -> Dense(width)."""

  mlp_dim: int

  @nn.compact
  def __call__(self, x, train: bool, dropout_rate: float):
    init = {'kernel_init': nn.initializers.xavier_uniform(),
            'bias_init': nn.initializers.normal(stddev=1e-6)}
    y = nn.gelu(nn.Dense(self.mlp_dim, **init)(x))
    y = base.Dropout()(y, dropout_rate, train)
    return nn.Dense(x.shape[-1], **init)(y)


class _EncoderBlock(nn.Module):
  """x + drop(MHA(LN(x))), then x + drop(MLP(LN(x)))."""

  @nn.compact
  def __call__(self, x, train: bool, dropout_rate: float):
    y = nn.LayerNorm(name='LayerNorm_0')(x)
    y = nn.MultiHeadDotProductAttention(
        num_heads=_NUM_HEADS, kernel_init=nn.initializers.xavier_uniform(),
        deterministic=True, name='MultiHeadDotProductAttention_1')(y)
    x = x + base.Dropout()(y, dropout_rate, train)
    y = nn.LayerNorm(name='LayerNorm_2')(x)
    y = _MlpBlock(_MLP_DIM, name='MlpBlock_3')(y, train, dropout_rate)
    return x + base.Dropout()(y, dropout_rate, train)


class _ViT(nn.Module):
  """Patches -> + sincos -> encoder blocks -> LN -> mean -> tanh -> head."""

  @nn.compact
  def __call__(self, x, train: bool, dropout_rate: float = 0.0):
    x = nn.Conv(_WIDTH, (_PATCH_SIZE, _PATCH_SIZE),
                strides=(_PATCH_SIZE, _PATCH_SIZE), padding='VALID',
                name='conv_patch_extract')(x)
    n, height, width, features = x.shape
    x = jnp.reshape(x, (n, height * width, features))
    x = x + sincos_position_embedding(height, width, features)
    x = base.Dropout()(x, dropout_rate, train)
    for i in range(_DEPTH):
      x = _EncoderBlock(name=f'encoderblock_{i}')(x, train, dropout_rate)
    x = nn.LayerNorm(name='encoder_layernorm')(x)
    x = jnp.mean(x, axis=1)
    x = nn.tanh(nn.Dense(_WIDTH, name='pre_logits')(x))
    return nn.Dense(_NUM_CLASSES, kernel_init=nn.initializers.zeros,
                    name='head')(x)


# --- Workload ----------------------------------------------------------------


class ShapesVitWorkload(base.LocalWorkload):
  """Reach a validation accuracy on drawn shapes with a tiny ViT."""

  target_metric_name = 'accuracy'
  minimize_target_metric = False
  validation_target_value = 0.8984
  test_target_value = 0.7533
  loss_type = spec.LossType.SOFTMAX_CROSS_ENTROPY
  reference_point = 4  # Of submissions/nadamw/tuning_search_space.json.
  step_hint = 6600
  max_allowed_runtime_sec = 180
  eval_period_time_sec = 3
  eval_batch_size = 1000
  num_train_examples = _SPLIT_SIZES['train']
  num_validation_examples = _SPLIT_SIZES['validation']
  num_test_examples = _SPLIT_SIZES['test']
  input_shape = (_IMAGE_SIZE, _IMAGE_SIZE, _NUM_CHANNELS)
  train_mean = (0.307, 0.307, 0.307)
  train_stddev = (0.203, 0.203, 0.203)

  def _generate_splits(self) -> base.Splits:
    rng = np.random.default_rng(_DATA_SEED)
    splits = {}
    for name, size in _SPLIT_SIZES.items():
      images, labels = draw_shapes(size, rng, _NOISE_STDDEV[name])
      inputs = (images - np.float32(self.train_mean)) / np.float32(
          self.train_stddev)
      splits[name] = {'inputs': inputs, 'targets': labels}
    return splits

  def _build_model(self) -> nn.Module:
    return _ViT()

  def is_output_params(self, param_key: spec.ParameterKey) -> bool:
    return param_key == 'head'

  def loss_fn(self, label_batch, logits_batch, mask_batch=None,
              label_smoothing: float = 0.0):
    """Softmax cross-entropy against (optionally smoothed) one-hot labels."""
    return base.softmax_cross_entropy(label_batch, logits_batch, mask_batch,
                                      label_smoothing)

  def _eval_metric_sums(self, logits, batch):
    return base.accuracy_sums(logits, batch)
