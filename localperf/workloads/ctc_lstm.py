"""CTC speech recognition with a DeepSpeech-like BiLSTM: the deepspeech analog.

Data, loss and metric: `localperf.workloads.speech` (synthetic utterances of
2..6 tokens from a 12-token vocabulary, up to 48 frames of 16 features, CTC
loss per target token, greedy-decoding WER with each token a word).

Model: AlgoPerf's DeepSpeech shape, scaled down: a stride-2 convolution front
end (16 -> 64 channels, width 3) with BatchNorm and ReLU, dropout, then 2
residual BatchRNN layers of width 64,

  x += BiLSTM(BatchNorm(x))   (32 units each way, outputs concatenated),

each direction running over the unpadded frames only (`seq_lengths`), and a
dense projection to the 12 tokens + blank. Every BatchNorm (momentum 0.99)
takes its statistics over the unpadded frames only; they are the model
state; 54k parameters.

Calibration (NadamW in the real workloads' regime, where averaging can be
measured; `localperf/lab/calibration.py` states the checks): reference point 4
of `submissions/nadamw/tuning_search_space.json` (learning_rate 0.004958,
one_minus_beta1 0.1363, beta2 0.6292, weight_decay 0.1147, warmup_factor
0.02, dropout 0; CTC ignores label smoothing), batch 32, step_hint 2400,
validation WER (8192 utterances) every 48 steps (2%), each run on one core
with one XLA thread (2026-12-04, jax 0.10.2). Cosine run at seed 0: 0.0736
at 50%, 0.0658 at 70%, 0.0582 at 2400. The target 0.0586 is first met at
0.94, 0.82, 0.94, 0.94, 0.82 of step_hint over seeds 0-4, median 0.94 (R4:
the paper's librispeech_deepspeech 0.95), every seed within a spread of 0.12
(R5). Test target 0.0578: the median over seeds 0-4 of the test WER where
each first meets the validation target (0.0553 to 0.0584). R1: warmup then
constant LR never reaches 0.0586 (best 0.0702; final 0.0732 vs cosine
0.0582). R2: EMA 0.9 / LAWA L=20 over 24 steps beat the raw weights at 50%
(0.0686 / 0.0704 vs 0.0736) and 70% (0.0633 / 0.0644 vs 0.0658). R3: 24
steps = 3.27 momentum memories (7.3). Speed: the cosine run's steps and raw
evals took 62.2 s of CPU (120.6 s wall beside two other runs on 2 cores).
At batch 16 on 2048 validation utterances (until 2026-12-03) the seeds ended
0.065 to 0.070, further apart than the curve fell over its last fifth, so
no target was met by every seed; at batch 32 on 8192 they end 0.0574 to
0.0587. Reproduce (exit status 0 when every check passes):

  python -m scripts.calibrate --workload=ctc_lstm
"""

import flax.linen as nn
import jax.numpy as jnp

from localperf import spec
from localperf.workloads import base
from localperf.workloads import speech

_WIDTH = 64
_NUM_LSTM_LAYERS = 2
_BATCH_NORM_MOMENTUM = 0.99


def _masked_batch_norm(x, valid, train: bool):
  """BatchNorm whose batch statistics skip padded frames."""
  return nn.BatchNorm(use_running_average=not train,
                      momentum=_BATCH_NORM_MOMENTUM)(
                          x, mask=valid[..., None] > 0)


class _BatchRnn(nn.Module):
  """Masked BatchNorm, then a bidirectional LSTM over each unpadded prefix."""

  @nn.compact
  def __call__(self, x, valid, train: bool):
    x = _masked_batch_norm(x, valid, train)
    forward, backward = (nn.OptimizedLSTMCell(x.shape[-1] // 2, name=name)
                         for name in ('ForwardLstm', 'BackwardLstm'))
    lengths = jnp.sum(valid, axis=1).astype(jnp.int32)
    y = nn.Bidirectional(nn.RNN(forward), nn.RNN(backward))(
        x, seq_lengths=lengths)
    return y * valid[..., None]


class _DeepSpeech(nn.Module):
  """(frames, paddings) -> (logits, logit paddings), 2x fewer frames."""

  @nn.compact
  def __call__(self, inputs, train: bool, dropout_rate: float = 0.0):
    frames, paddings = inputs
    x = frames * (1.0 - paddings)[..., None]
    x = nn.Conv(_WIDTH, (3,), strides=(speech.SUBSAMPLING,),
                use_bias=False)(x)  # BatchNorm brings the bias.
    paddings = speech.subsample_paddings(paddings)
    valid = 1.0 - paddings
    x = _masked_batch_norm(x, valid, train)
    x = nn.relu(x) * valid[..., None]
    x = base.Dropout()(x, dropout_rate, train)
    for i in range(_NUM_LSTM_LAYERS):
      x = x + _BatchRnn(name=f'BatchRnn_{i}')(x, valid, train)
    return nn.Dense(speech.NUM_CLASSES)(x), paddings


class CtcLstmWorkload(speech.CtcWorkload):
  """Reach a validation WER with a BiLSTM, CTC and batch norm."""

  validation_target_value = 0.0586
  test_target_value = 0.0578
  reference_point = 4  # Of submissions/nadamw/tuning_search_space.json.
  step_hint = 2400
  max_allowed_runtime_sec = 150
  eval_period_time_sec = 5
  eval_batch_size = 512

  def _build_model(self) -> nn.Module:
    return _DeepSpeech()

  def is_output_params(self, param_key: spec.ParameterKey) -> bool:
    return param_key == 'Dense_0'
