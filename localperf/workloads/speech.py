"""What the two CTC speech workloads share: utterances, CTC loss, greedy WER.

Data: synthetic utterances, the LibriSpeech analogue, drawn with numpy from a
fixed seed. A "voice" drawn first gives each of the 12 tokens (ids 1..12; 0
is the CTC blank) an onset and an offset vector u B in 16 feature dimensions,
u ~ N(0, I_6) and B a random 6 x 16 basis with N(0, 4/6) entries, so tokens
differ only within a 6-d subspace. An utterance is 2..6 tokens, uniform, no
token repeated back to back; each token lasts 4..6 frames, sliding linearly
from its onset to its offset, with 1..3 frames of silence (zeros) at either
end. Neighbouring frames are then blurred together (coarticulation, a
[1/4, 1/2, 1/4] filter over time), each utterance gets its own speaker gain
and channel offset, and every frame Gaussian noise:

  x_t = g * sum_k w_k c_{t+k} + o + n_t,  g ~ U(0.8, 1.25),
  o ~ N(0, 0.5^2 I),  n_t ~ N(0, 1.6^2 I).

Utterances are padded to 48 frames, `input_paddings` 1.0 on padded frames,
targets to 6 tokens with `target_paddings`, as AlgoPerf lays them out:
batch['inputs'] = (frames, input_paddings), batch['targets'] = (tokens,
target_paddings). Each token has at least 4 frames and each utterance 2 of
silence, so after the models' 2x subsampling an utterance of L tokens keeps
at least 2L + 1 frames, more than CTC needs. 32768 training, 8192
validation and 2048 test utterances. The validation split is the larger so
that its WER, which decides the steps to target, varies less with the finite
sample than the seeds' WERs do with training (at 2048 utterances, two evals
a tenth of training apart could reverse).

Loss: CTC (blank 0) per utterance, summed; as in AlgoPerf's librispeech
workloads, `n_valid_examples` counts the valid target tokens, so the train
loss and the reported eval 'loss' are per target token. Metric: word error
rate of greedy CTC decoding (argmax per frame, repeats merged, blanks
dropped, padded frames ignored), each token a word: edit distances summed
over a whole split over reference words summed, minimised.
"""

import functools
from typing import Any, Dict, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from localperf import spec
from localperf.workloads import base

BLANK_ID = 0
VOCAB_SIZE = 12  # Token ids 1..VOCAB_SIZE.
NUM_CLASSES = VOCAB_SIZE + 1
NUM_FEATURES = 16
MAX_FRAMES = 48
MAX_TOKENS = 6
SUBSAMPLING = 2  # Frame rate reduction of both models' front ends.

_MIN_TOKENS = 2
_DURATION_FRAMES = (4, 6)  # Inclusive range per token.
_SILENCE_FRAMES = (1, 3)  # Inclusive range at each end.
_VOICE_RANK = 6
_VOICE_SCALE = 2.0
_COARTICULATION = np.array([0.25, 0.5, 0.25])
_NOISE_STDDEV = 1.6
_SPLIT_SIZES = {'train': 32768, 'validation': 8192, 'test': 2048}
_DATA_SEED = 7


# --- Data ---------------------------------------------------------------------


@functools.lru_cache(maxsize=1)  # Both workloads of a process share it.
def generate_splits(seed: int = _DATA_SEED) -> base.Splits:
  """A voice, then every split's utterances, from one numpy seed."""
  rng = np.random.default_rng(seed)
  basis = rng.standard_normal((_VOICE_RANK, NUM_FEATURES)) * (
      _VOICE_SCALE / np.sqrt(_VOICE_RANK))
  onsets, offsets = rng.standard_normal((2, VOCAB_SIZE + 1, _VOICE_RANK)
                                        ) @ basis
  return {name: draw_utterances(rng, onsets, offsets, size)
          for name, size in _SPLIT_SIZES.items()}


def draw_utterances(rng: np.random.Generator, onsets: np.ndarray,
                    offsets: np.ndarray, num: int) -> Dict[str, Any]:
  """`num` noisy utterances; `onsets[k]`, `offsets[k]` voice token k."""
  lengths = rng.integers(_MIN_TOKENS, MAX_TOKENS + 1, num)
  slots = np.arange(MAX_TOKENS)
  token_valid = slots < lengths[:, None]
  steps = rng.integers(1, VOCAB_SIZE, (num, MAX_TOKENS))  # Never a repeat.
  steps[:, 0] = rng.integers(0, VOCAB_SIZE, num)
  tokens = np.where(token_valid, np.cumsum(steps, 1) % VOCAB_SIZE + 1, 0)
  durations = np.where(token_valid, rng.integers(
      _DURATION_FRAMES[0], _DURATION_FRAMES[1] + 1, (num, MAX_TOKENS)), 0)
  lead, trail = rng.integers(_SILENCE_FRAMES[0], _SILENCE_FRAMES[1] + 1,
                             (2, num))
  ends = lead[:, None] + np.cumsum(durations, 1)  # (num, MAX_TOKENS)
  num_frames = ends[:, -1] + trail
  t = np.arange(MAX_FRAMES)[None, :, None]
  # Frame t belongs to the first token that ends after it.
  slot = np.minimum((t >= ends[:, None, :]).sum(-1), MAX_TOKENS - 1)
  speech = (t[..., 0] >= lead[:, None]) & (t[..., 0] < ends[:, -1:])
  token = np.take_along_axis(tokens, slot, 1)
  duration = np.take_along_axis(durations, slot, 1)
  start = np.take_along_axis(ends, slot, 1) - duration
  frac = ((t[..., 0] - start + 0.5) / np.maximum(duration, 1))[..., None]
  clean = np.where(speech[..., None],
                   (1 - frac) * onsets[token] + frac * offsets[token], 0.0)
  clean = _smooth_in_time(clean)
  frame_valid = t[..., 0] < num_frames[:, None]
  gain = rng.uniform(0.8, 1.25, (num, 1, 1))
  offset = rng.normal(0.0, 0.5, (num, 1, NUM_FEATURES))
  noise = rng.normal(0.0, _NOISE_STDDEV, clean.shape)
  frames = np.where(frame_valid[..., None], gain * clean + offset + noise, 0.)
  return {
      'inputs': (frames.astype(np.float32),
                 (~frame_valid).astype(np.float32)),
      'targets': (tokens.astype(np.int32),
                  (~token_valid).astype(np.float32)),
  }


def _smooth_in_time(x: np.ndarray) -> np.ndarray:
  """sum_k w_k x_{t+k} along axis 1, zero beyond the ends."""
  half = len(_COARTICULATION) // 2
  padded = np.pad(x, [(0, 0), (half, half), (0, 0)])
  return sum(w * padded[:, k:k + x.shape[1]]
             for k, w in enumerate(_COARTICULATION))


def subsample_paddings(paddings: jax.Array) -> jax.Array:
  """Paddings of a stride-`SUBSAMPLING` 'SAME' conv: every kept frame's."""
  return paddings[:, ::SUBSAMPLING]


# --- Loss, decoding, WER ------------------------------------------------------


def ctc_loss(label_batch: Tuple[jax.Array, jax.Array],
             logits_batch: Tuple[jax.Array, jax.Array],
             mask_batch: Optional[jax.Array] = None
             ) -> Dict[str, jax.Array]:
  """CTC per utterance, summed, and the number of valid target tokens.

  per_example_i = -log sum_{a in B^-1(y_i)} prod_t softmax(z_it)[a_t] over
  the alignments a of the unpadded frames that collapse to the unpadded
  targets y_i; masked utterances count 0 and add no tokens.
  """
  logits, logit_paddings = logits_batch
  labels, label_paddings = label_batch
  per_example = optax.ctc_loss(logits, logit_paddings, labels,
                               label_paddings, blank_id=BLANK_ID)
  tokens = 1.0 - label_paddings
  if mask_batch is not None:
    per_example = jnp.where(mask_batch > 0, per_example, 0.0)
    tokens = tokens * mask_batch[:, None]
  return {'summed': per_example.sum(),
          'n_valid_examples': jnp.maximum(tokens.sum(), 1.0),
          'per_example': per_example}


def greedy_decode(logits: jax.Array,
                  paddings: jax.Array) -> Tuple[jax.Array, jax.Array]:
  """(ids, lengths): per-frame argmax, repeats merged, blanks dropped.

  ids[i, :lengths[i]] is utterance i's hypothesis, zeros after it.
  """
  best = jnp.argmax(logits, -1)
  previous = jnp.pad(best[:, :-1], ((0, 0), (1, 0)),
                     constant_values=BLANK_ID)
  keep = (paddings == 0) & (best != BLANK_ID) & (best != previous)
  slot = jnp.where(keep, jnp.cumsum(keep, 1) - 1, best.shape[1])
  rows = jnp.arange(best.shape[0])[:, None]
  ids = jnp.zeros_like(best).at[rows, slot].set(best, mode='drop')
  return ids, keep.sum(1)


def edit_distances(refs: np.ndarray, ref_lengths: np.ndarray,
                   hyps: np.ndarray, hyp_lengths: np.ndarray) -> np.ndarray:
  """Levenshtein distance of each row's ref[:n] and hyp[:m], all at once.

  Row i of the table, D_i[j] = min(D_{i-1}[j] + 1, D_{i-1}[j-1] + [r_i !=
  h_j], D_i[j-1] + 1), takes the insertions as a running minimum:
  D_i[j] = min_{k<=j} (E_i[k] + j - k) for E_i the first two terms.
  """
  num, width = hyps.shape
  j = np.arange(width + 1)
  row = np.broadcast_to(j, (num, width + 1)).astype(np.int64)
  rows = [row]
  for i in range(refs.shape[1]):
    substitute = row[:, :-1] + (refs[:, i:i + 1] != hyps)
    first = np.full((num, 1), i + 1)
    before = np.concatenate([first, np.minimum(row[:, 1:] + 1, substitute)],
                            1)
    row = np.minimum.accumulate(before - j, axis=1) + j
    rows.append(row)
  table = np.stack(rows, 1)  # (num, ref positions + 1, width + 1)
  return table[np.arange(num), ref_lengths, hyp_lengths]


def word_error_rate(refs: np.ndarray, ref_lengths: np.ndarray,
                    hyps: np.ndarray, hyp_lengths: np.ndarray) -> float:
  """sum_i edit_distance_i / sum_i ref_length_i, each token a word."""
  distances = edit_distances(refs, ref_lengths, hyps, hyp_lengths)
  return float(distances.sum() / ref_lengths.sum())


# --- The workload half both share ---------------------------------------------


class CtcWorkload(base.LocalWorkload):
  """Data, CTC loss and greedy-decoding WER; subclasses bring the model."""

  target_metric_name = 'wer'
  minimize_target_metric = True
  loss_type = spec.LossType.CTC_LOSS
  num_train_examples = _SPLIT_SIZES['train']
  num_validation_examples = _SPLIT_SIZES['validation']
  num_test_examples = _SPLIT_SIZES['test']
  input_shape = (MAX_FRAMES, NUM_FEATURES)  # Frames; paddings beside them.

  def _generate_splits(self) -> base.Splits:
    """The shared utterances, each split cut to this workload's
    `num_<split>_examples` (its first ones)."""
    counts = {'train': self.num_train_examples,
              'validation': self.num_validation_examples,
              'test': self.num_test_examples}
    return {name: jax.tree.map(lambda x, n=counts[name]: x[:n], arrays)
            for name, arrays in generate_splits().items()}

  def _init_inputs(self) -> Tuple[jax.Array, jax.Array]:
    return (jnp.zeros((1,) + self.input_shape, jnp.float32),
            jnp.zeros((1, MAX_FRAMES), jnp.float32))

  def loss_fn(self, label_batch, logits_batch, mask_batch=None,
              label_smoothing: float = 0.0):
    """Summed CTC; as AlgoPerf, `n_valid_examples` counts target tokens."""
    del label_smoothing
    return ctc_loss(label_batch, logits_batch, mask_batch)

  def _eval_metric_sums(self, logits, batch):
    target_paddings = batch['targets'][1]
    return {'target_tokens': jnp.sum(batch['weights'][:, None]
                                     * (1.0 - target_paddings))}

  def _metrics_from_sums(self, totals, num_examples):
    """The summed CTC loss over all valid target tokens of the split."""
    del num_examples
    return {'loss': totals['loss'] / max(totals['target_tokens'], 1.0)}

  def _eval_predictions(self, params, model_state, batch, logits):
    del params, model_state, batch
    ids, lengths = greedy_decode(*logits)
    return {'decoded': ids, 'decoded_lengths': lengths}

  def _metrics_from_predictions(self, predictions, arrays):
    tokens, paddings = arrays['targets']
    lengths = np.sum(paddings == 0, axis=1)
    return {'wer': word_error_rate(tokens, lengths, predictions['decoded'],
                                   predictions['decoded_lengths'])}
