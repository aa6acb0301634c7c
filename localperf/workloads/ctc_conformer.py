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

Calibration (issue 12: NadamW in the real workloads' regime, where averaging
can be measured): reference point 4 of
`submissions/nadamw/tuning_search_space.json` (learning_rate 0.004958,
one_minus_beta1 0.1363, beta2 0.6292, weight_decay 0.1147, warmup_factor
0.02, dropout 0; CTC ignores label smoothing), batch 32, step_hint 2400,
rng_seed 0, validation WER every 48 steps (2%). Cosine run: 0.0739 at 50%,
0.0589 at 70%, 0.0516 at 2256, 0.0520 at 2400 (seed 0 never meets the target
0.0499; R4 below takes the median over seeds). Test target 0.0577: the
median over seeds 0-4 of the test WER where each first meets the validation
target (0.0567 to 0.0582). R1: warmup then constant LR never reaches 0.0499
(final 0.0695 vs cosine 0.0520). R2: EMA 0.9 / LAWA L=20 over 24 steps beat
the raw weights at 50% (0.0664 / 0.0686 vs 0.0739) and 70% (0.0571 / 0.0584
vs 0.0589). R3: 24 steps = 3.27 momentum memories (7.3). Speed: the cosine
run's steps and raw evals took 69-76 s of CPU in two earlier runs (single-
threaded XLA; 227-529 s of wall time at load averages ~14-18 on the 2 shared
cores); 47.1 s wall on 2 unloaded cores (79.5 s of CPU, 2026-12-02).
Reproduce (exit status 0 when every check passes):

  python -m scripts.calibrate --workload=ctc_conformer

R4 as `scripts/calibrate` checks it, over seeds 0-4 on 2 cores (the
trajectories depend on the cores XLA sees; see the README): the cosine runs
first meet the target 0.0499 at never, 0.86, 0.94, 0.86, 0.92 of
`step_hint`, median 0.92 (paper's librispeech_conformer 0.94). An earlier
run of the same seeds, under another load, read never, 0.86, 0.96, 0.88,
0.94 (median 0.94): this workload's trajectories also differ between runs.
The seeds end further apart than the last tenth of training moves them, so a
late target is met early by some seeds and never by others.
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

  validation_target_value = 0.0499
  test_target_value = 0.0577
  reference_point = 4  # Of submissions/nadamw/tuning_search_space.json.
  step_hint = 2400
  max_allowed_runtime_sec = 150
  eval_period_time_sec = 5
  eval_batch_size = 512
  # The first 2048 of the 8192 validation utterances: the Conformer's eval
  # costs 4x the BiLSTM's, and on 8192 its seeds still disagreed by more
  # than its curve falls after 80% of step_hint (see the calibration above).
  num_validation_examples = 2048

  def _build_model(self) -> nn.Module:
    return _Conformer()

  def is_output_params(self, param_key: spec.ParameterKey) -> bool:
    return param_key == 'Dense_0'
