"""CTC speech recognition with a small Conformer: librispeech_conformer here.

Data, loss and metric: `localperf.workloads.speech` (synthetic utterances of
2..6 tokens from a 12-token vocabulary, up to 48 frames of 16 features, CTC
loss per target token, greedy-decoding WER with each token a word).

Model: a Conformer as AlgoPerf's, scaled down to fit a CPU: a stride-2
convolution front end (16 -> 48 channels, width 3, swish) plus sinusoidal
positions, then 2 Conformer blocks of width 48, each

  x += FFN(x) / 2;  x += MHSA(x);  x += ConvModule(x);  x += FFN(x) / 2;
  x = LayerNorm(x)

(FFN: LayerNorm, 48 -> 192 -> 48 with swish; MHSA: LayerNorm, 4 heads
without biases that never attend to padded frames; ConvModule: LayerNorm,
pointwise 48 -> 96 with GLU, depthwise convolution of width 7 without bias,
BatchNorm over the unpadded frames, swish, pointwise 48 -> 48), residual
dropout after each branch, and a dense projection to the 12 tokens + blank.
Padded frames are zeroed before every convolution. The batch statistics
(momentum 0.99) are the model state; 112k parameters.

Calibration (`localperf/lab/calibration.py` states the checks): reference
point 4 of `submissions/nadamw/tuning_search_space.json` (learning_rate
0.004958, one_minus_beta1 0.1363, beta2 0.6292, weight_decay 0.1147,
warmup_factor 0.02, dropout 0; CTC ignores label smoothing), batch 32,
step_hint 2400, validation WER (the first 2048 of the 8192 utterances) every
48 steps (2%), each run on one core with one XLA thread (2026-12-04, jax
0.10.2). Cosine run at seed 0: 0.0725 at 50%, 0.0639 at 70%, 0.0523 at 2400.
The target 0.0527, set from the five cosine curves alone, is first met at
0.94, never, 0.88, 0.86, 0.94 of step_hint over seeds 0-4, median 0.94 (R4:
the paper's librispeech_conformer 0.94); seed 1 ends at 0.0540, so R5
fails. Test target 0.0495: the median over the seeds that meet the
validation target of the test WER where each first does (0.0474 to 0.0512).
R1: warmup then constant LR never reaches 0.0527 (final 0.0731 vs cosine
0.0523). R2: EMA 0.9 / LAWA L=20 over 24 steps beat the raw weights at 50%
(0.0641 / 0.0666 vs 0.0725) and 70% (0.0607 / 0.0621 vs 0.0639). R3: 24
steps = 3.27 momentum memories (7.3). Speed: the cosine run's steps and raw
evals took 88.2 s of CPU (181 s wall beside other runs on 2 cores).
The WER stops falling after about 0.85 of step_hint while the seeds end
0.002-0.003 apart; neither all 8192 validation utterances (the seeds end at
0.0500-0.0520, 132 s of CPU) nor batch 16 on them (0.0558-0.0591) left a
target that every seed meets within a spread of 0.15 (docs/analogues.md has the
figures). Reproduce (exit status 1 while R5 fails):

  python -m scripts.calibrate --workload=ctc_conformer
"""

import flax.linen as nn
import jax.numpy as jnp

from localperf import spec
from localperf.workloads import base
from localperf.workloads import speech

_WIDTH = 48
_NUM_BLOCKS = 2
_NUM_HEADS = 4
_FFN_MULTIPLIER = 4
_KERNEL_SIZE = 7
_BATCH_NORM_MOMENTUM = 0.99


class _FeedForward(nn.Module):
  """LayerNorm -> Dense(4w) -> swish -> Dense(w) -> dropout."""

  @nn.compact
  def __call__(self, x, train: bool, dropout_rate: float):
    y = nn.LayerNorm()(x)
    y = nn.swish(nn.Dense(_FFN_MULTIPLIER * x.shape[-1])(y))
    y = nn.Dense(x.shape[-1])(y)
    return base.Dropout()(y, dropout_rate, train)


class _SelfAttention(nn.Module):
  """LayerNorm -> multi-head self-attention over unpadded frames -> dropout."""

  @nn.compact
  def __call__(self, x, valid, train: bool, dropout_rate: float):
    y = nn.LayerNorm()(x)
    # No biases: a key bias cancels in the softmax, so its gradient would be
    # rounding noise that Adam turns into full-sized steps.
    y = nn.MultiHeadDotProductAttention(num_heads=_NUM_HEADS, use_bias=False)(
        y, y, mask=nn.make_attention_mask(valid, valid))
    return base.Dropout()(y, dropout_rate, train)


class _DepthwiseConv(nn.Module):
  """y_tc = sum_k w_kc x_{t+k-K//2, c}, zero beyond the ends.

  A sum of shifted copies: on CPU it differentiates ~15x faster than
  `nn.Conv(feature_group_count=channels)`. No bias: BatchNorm follows.
  """

  @nn.compact
  def __call__(self, x):
    size, channels, half = _KERNEL_SIZE, x.shape[-1], _KERNEL_SIZE // 2
    # nn.Conv's depthwise kernel shape, (K, 1, C), for the same fan-in K.
    kernel = self.param('kernel', nn.initializers.lecun_normal(),
                        (size, 1, channels))[:, 0]
    padded = jnp.pad(x, [(0, 0), (half, half), (0, 0)])
    return sum(padded[:, k:k + x.shape[1]] * kernel[k] for k in range(size))


class _ConvolutionModule(nn.Module):
  """LayerNorm -> pointwise + GLU -> depthwise conv -> BatchNorm -> swish ->
  pointwise -> dropout, with padded frames out of the conv and statistics."""

  @nn.compact
  def __call__(self, x, valid, train: bool, dropout_rate: float):
    width = x.shape[-1]
    mask = valid[..., None]
    y = nn.LayerNorm()(x)
    y = nn.glu(nn.Dense(2 * width)(y)) * mask
    y = _DepthwiseConv(name='DepthwiseConv')(y)
    y = nn.BatchNorm(use_running_average=not train,
                     momentum=_BATCH_NORM_MOMENTUM)(y, mask=mask > 0)
    y = nn.Dense(width)(nn.swish(y))
    return base.Dropout()(y, dropout_rate, train)


class _ConformerBlock(nn.Module):
  """Half FFN, self-attention, convolution module, half FFN, LayerNorm."""

  @nn.compact
  def __call__(self, x, valid, train: bool, dropout_rate: float):
    x = x + 0.5 * _FeedForward(name='FeedForwardStart')(x, train,
                                                         dropout_rate)
    x = x + _SelfAttention(name='SelfAttention')(x, valid, train,
                                                 dropout_rate)
    x = x + _ConvolutionModule(name='ConvolutionModule')(x, valid, train,
                                                         dropout_rate)
    x = x + 0.5 * _FeedForward(name='FeedForwardEnd')(x, train, dropout_rate)
    return nn.LayerNorm()(x)


class _Conformer(nn.Module):
  """(frames, paddings) -> (logits, logit paddings), 2x fewer frames."""

  @nn.compact
  def __call__(self, inputs, train: bool, dropout_rate: float = 0.0):
    frames, paddings = inputs
    x = frames * (1.0 - paddings)[..., None]
    x = nn.swish(nn.Conv(_WIDTH, (3,), strides=(speech.SUBSAMPLING,))(x))
    paddings = speech.subsample_paddings(paddings)
    valid = 1.0 - paddings
    x = x + base.sinusoids(x.shape[1], _WIDTH)
    x = base.Dropout()(x, dropout_rate, train)
    for i in range(_NUM_BLOCKS):
      x = _ConformerBlock(name=f'ConformerBlock_{i}')(
          x * valid[..., None], valid, train, dropout_rate)
    return nn.Dense(speech.NUM_CLASSES)(x), paddings


class CtcConformerWorkload(speech.CtcWorkload):
  """Reach a validation WER with a Conformer, CTC and batch norm."""

  validation_target_value = 0.0527
  test_target_value = 0.0495
  reference_point = 4  # Of submissions/nadamw/tuning_search_space.json.
  step_hint = 2400
  max_allowed_runtime_sec = 150
  eval_period_time_sec = 5
  eval_batch_size = 512
  # The first 2048 of the 8192 validation utterances: on all 8192 its evals
  # take it past 90 s of CPU, and its seeds still ended further apart than
  # its curve falls late in training (see the calibration above).
  num_validation_examples = 2048

  def _build_model(self) -> nn.Module:
    return _Conformer()

  def is_output_params(self, param_key: spec.ParameterKey) -> bool:
    return param_key == 'Dense_0'
