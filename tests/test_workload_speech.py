"""The CTC speech workloads: CTC loss, greedy decoding, WER, data, batch norm.

References: a numpy log-space CTC forward recursion, a plain-Python greedy
decoder, `jiwer` for word error rates.
"""

import functools
import itertools

import jax
import jax.numpy as jnp
import jiwer
import numpy as np
import pytest

from localperf import spec
from localperf import workloads as registry
from localperf.workloads import speech

TRAIN, EVAL = spec.ForwardPassMode.TRAIN, spec.ForwardPassMode.EVAL


def numpy_ctc(logits: np.ndarray, labels: np.ndarray) -> float:
  """-log p(labels | logits) by the alpha recursion over blank-extended labels.

  alpha_t(s) = logsumexp(alpha_{t-1}(s), alpha_{t-1}(s-1), alpha_{t-1}(s-2)
  if z_s is no blank and differs from z_{s-2}) + log y_t(z_s).
  """
  log_probs = logits - np.logaddexp.reduce(logits, axis=-1, keepdims=True)
  extended = [speech.BLANK_ID]
  for label in labels:
    extended += [int(label), speech.BLANK_ID]
  alpha = np.full(len(extended), -np.inf)
  alpha[:2] = log_probs[0, extended[:2]]
  for t in range(1, len(log_probs)):
    previous = alpha.copy()
    for s, z in enumerate(extended):
      terms = [previous[s]] + ([previous[s - 1]] if s >= 1 else [])
      if s >= 2 and z != speech.BLANK_ID and z != extended[s - 2]:
        terms.append(previous[s - 2])
      alpha[s] = np.logaddexp.reduce(terms) + log_probs[t, z]
  return -float(np.logaddexp(alpha[-1], alpha[-2]))


def python_greedy(best_per_frame, num_frames):
  """Merge repeated frame labels, then drop blanks."""
  merged = [k for k, _ in itertools.groupby(best_per_frame[:num_frames])]
  return [k for k in merged if k != speech.BLANK_ID]


def as_sentence(ids):
  return ' '.join(f'w{i}' for i in ids)


@functools.lru_cache(maxsize=None)
def jitted_model_fn(workload, mode, update_batch_norm):
  """`workload.model_fn` compiled once per mode (eager RNN scans recompile)."""
  return jax.jit(lambda params, batch, state, rng: workload.model_fn(
      params, batch, state, mode, rng, update_batch_norm))


# ctc_lstm's share of these checks runs in the slow suite (it compiles slowly).
@pytest.fixture(scope='module', params=[
    'ctc_conformer', pytest.param('ctc_lstm', marks=pytest.mark.slow)])
def initialised(request):
  workload = registry.get_workload(request.param)
  params, model_state = workload.init_model_fn(jax.random.PRNGKey(0))
  return workload, params, model_state


@pytest.fixture(scope='module')
def splits():
  return speech.generate_splits()


def test_ctc_loss_matches_a_numpy_forward_recursion():
  rng = np.random.default_rng(0)
  batch, frames, max_labels = 5, 9, 4
  logits = rng.normal(0.0, 2.0, (batch, frames, speech.NUM_CLASSES))
  num_frames = np.array([9, 7, 5, 9, 6])
  num_labels = np.array([4, 2, 1, 3, 2])
  labels = rng.integers(1, speech.NUM_CLASSES, (batch, max_labels))
  labels[3, :3] = [4, 4, 2]  # A repeat needs a blank between.
  label_paddings = (np.arange(max_labels) >= num_labels[:, None]) * 1.0
  logit_paddings = (np.arange(frames) >= num_frames[:, None]) * 1.0
  labels = np.where(label_paddings == 0, labels, 0)
  expected = np.array([numpy_ctc(logits[i, :num_frames[i]],
                                 labels[i, :num_labels[i]])
                       for i in range(batch)])
  mask = np.array([1.0, 1.0, 0.0, 1.0, 1.0])
  as_pair = lambda a, p: (jnp.asarray(a), jnp.asarray(p, jnp.float32))
  out = jax.jit(registry.get_workload('ctc_conformer').loss_fn)(
      as_pair(labels.astype(np.int32), label_paddings),
      as_pair(logits.astype(np.float32), logit_paddings), jnp.asarray(mask))
  np.testing.assert_allclose(out['per_example'], expected * mask, rtol=1e-4)
  np.testing.assert_allclose(out['summed'], (expected * mask).sum(),
                             rtol=1e-4)
  # As AlgoPerf: the normaliser is the number of valid target tokens.
  assert float(out['n_valid_examples']) == (num_labels * mask).sum()


def test_greedy_decode_matches_plain_python():
  rng = np.random.default_rng(1)
  batch, frames = 16, 20
  # Long runs of each label, so that repeats and blanks both occur.
  best = np.repeat(rng.integers(0, 4, (batch, frames // 2)), 2, axis=1)
  logits = (np.eye(speech.NUM_CLASSES)[best] * 3.0
            + rng.uniform(0, 1, (batch, frames, speech.NUM_CLASSES)))
  num_frames = rng.integers(0, frames + 1, batch)
  paddings = (np.arange(frames) >= num_frames[:, None]).astype(np.float32)
  ids, lengths = jax.jit(speech.greedy_decode)(logits, paddings)
  for i in range(batch):
    expected = python_greedy(best[i].tolist(), num_frames[i])
    assert lengths[i] == len(expected)
    assert np.asarray(ids[i, :lengths[i]]).tolist() == expected
    assert not np.any(ids[i, lengths[i]:])


def test_word_error_rate_matches_jiwer():
  rng = np.random.default_rng(2)
  num, width = 40, 7
  refs = rng.integers(1, 6, (num, width))
  hyps = rng.integers(1, 6, (num, width + 3))
  ref_lengths = rng.integers(1, width + 1, num)
  hyp_lengths = rng.integers(0, width + 4, num)
  hyps[:5] = np.pad(refs[:5], [(0, 0), (0, 3)])  # Some exact hypotheses.
  hyp_lengths[:5] = ref_lengths[:5]
  ref_text = [as_sentence(r[:n]) for r, n in zip(refs, ref_lengths)]
  hyp_text = [as_sentence(h[:n]) for h, n in zip(hyps, hyp_lengths)]
  distances = speech.edit_distances(refs, ref_lengths, hyps, hyp_lengths)
  for i in range(num):
    assert distances[i] == round(jiwer.wer(ref_text[i], hyp_text[i])
                                 * ref_lengths[i])
  assert speech.word_error_rate(refs, ref_lengths, hyps, hyp_lengths) == (
      pytest.approx(jiwer.wer(ref_text, hyp_text), rel=1e-12))


def test_utterances_are_padded_consistently(splits):
  for split in splits.values():
    frames, input_paddings = split['inputs']
    tokens, target_paddings = split['targets']
    assert frames.shape[1:] == (speech.MAX_FRAMES, speech.NUM_FEATURES)
    for paddings in (input_paddings, target_paddings):
      assert set(np.unique(paddings)) <= {0.0, 1.0}
      # Padding only at the end: 0 ... 0 1 ... 1.
      assert np.all(np.diff(paddings, axis=1) >= 0)
    assert np.all(frames[input_paddings == 1] == 0)
    assert np.all((tokens > 0) == (target_paddings == 0))
    assert tokens.max() == speech.VOCAB_SIZE
    num_tokens = (target_paddings == 0).sum(1)
    assert num_tokens.min() >= 2
    # Enough frames for CTC after the models' subsampling, with room.
    kept = (speech.subsample_paddings(input_paddings) == 0).sum(1)
    assert np.all(kept >= 2 * num_tokens + 1)
    # No token directly repeats, so no alignment needs a separating blank.
    assert not np.any((tokens[:, 1:] == tokens[:, :-1]) & (tokens[:, 1:] > 0))


def test_utterance_draws_are_reproducible():
  voice = np.random.default_rng(5).normal(size=(2, speech.NUM_CLASSES,
                                                speech.NUM_FEATURES))
  draw = lambda: speech.draw_utterances(np.random.default_rng(3), *voice, 50)
  jax.tree.map(np.testing.assert_array_equal, draw(), draw())


def _rows(workload, split, start, stop):
  return jax.tree.map(lambda x: x[start:stop], workload.splits[split])


def test_padded_frames_change_nothing(initialised):
  workload, params, model_state = initialised
  batch = _rows(workload, 'train', 0, 16)
  frames, paddings = batch['inputs']
  noise = np.random.default_rng(4).normal(size=frames.shape) * paddings[
      ..., None]
  moved = dict(batch, inputs=(frames + noise, paddings))
  run = lambda b: jitted_model_fn(workload, TRAIN, True)(
      params, b, model_state, jax.random.PRNGKey(0))
  (logits, logit_paddings), stats = run(batch)
  (moved_logits, _), moved_stats = run(moved)
  valid = np.asarray(logit_paddings) == 0
  np.testing.assert_allclose(np.asarray(moved_logits)[valid],
                             np.asarray(logits)[valid], atol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6),
               moved_stats, stats)


def test_batch_norm_statistics_and_eval_mode(initialised):
  workload, params, model_state = initialised
  batches = [_rows(workload, 'train', 16 * k, 16 * (k + 1))
             for k in range(3)]

  def train_steps(update):
    state = model_state
    for batch in batches:
      _, state = jitted_model_fn(workload, TRAIN, update)(
          params, batch, state, jax.random.PRNGKey(0))
    return state

  moved = train_steps(True)
  assert all(not np.allclose(a, b) for a, b in zip(
      jax.tree.leaves(moved), jax.tree.leaves(model_state)))
  jax.tree.map(np.testing.assert_array_equal, train_steps(False),
               model_state)
  evaluate = lambda batch, state, seed: np.asarray(jitted_model_fn(
      workload, EVAL, False)(params, batch, state, jax.random.PRNGKey(seed)
                             )[0][0])
  # Deterministic, and the running statistics, not the batch's, normalise:
  # an utterance's logits do not depend on the rest of its batch.
  first = evaluate(batches[0], moved, 0)
  np.testing.assert_array_equal(first, evaluate(batches[0], moved, 1))
  within_other = evaluate(jax.tree.map(
      lambda a, b: jnp.concatenate([a[:4], b[4:]]), batches[0], batches[1]),
                          moved, 0)
  np.testing.assert_allclose(within_other[:4], first[:4], atol=1e-5)
  assert not np.allclose(evaluate(batches[0], model_state, 0), first)
  train_logits = np.asarray(jitted_model_fn(workload, TRAIN, False)(
      params, batches[0], moved, jax.random.PRNGKey(0))[0][0])
  assert not np.allclose(train_logits, first, atol=1e-3)


def test_every_parameter_gets_a_real_gradient(initialised):
  """No leaf whose gradient is rounding noise alone, as a bias that the next
  BatchNorm or softmax cancels (~1e-9 here): Adam would scale that noise up
  to full-sized steps, and runs on 1 and 4 devices would drift apart."""
  workload, params, model_state = initialised
  batch = _rows(workload, 'train', 0, 16)

  def loss(p):
    outputs, _ = workload.model_fn(p, batch, model_state, TRAIN,
                                   jax.random.PRNGKey(0), True)
    losses = workload.loss_fn(batch['targets'], outputs)
    return losses['summed'] / losses['n_valid_examples']

  grads = jax.jit(jax.grad(loss))(params)
  rms = [float(jnp.sqrt(jnp.mean(g ** 2))) for g in jax.tree.leaves(grads)]
  assert min(rms) > 1e-6


def test_eval_matches_a_direct_computation(initialised):
  workload, params, model_state = initialised
  num = 40  # Three eval batches of 16, the last one half padding.
  metrics = workload._eval_model_on_split(  # pylint: disable=protected-access
      'validation', num, 16, params, model_state, jax.random.PRNGKey(0), '')
  run = jitted_model_fn(workload, EVAL, False)
  outputs = [run(params, _rows(workload, 'validation', k, k + 16),
                 model_state, jax.random.PRNGKey(0))[0]
             for k in range(0, num, 16)]
  logits, logit_paddings = (np.concatenate(parts)[:num]
                            for parts in zip(*outputs))
  tokens, target_paddings = _rows(workload, 'validation', 0, num)['targets']
  num_frames = (logit_paddings == 0).sum(1)
  num_tokens = (target_paddings == 0).sum(1)
  losses = [numpy_ctc(logits[i, :num_frames[i]].astype(np.float64),
                      tokens[i, :num_tokens[i]]) for i in range(num)]
  assert metrics['loss'] == pytest.approx(sum(losses) / num_tokens.sum(),
                                          rel=1e-4)
  hyps = [as_sentence(python_greedy(np.argmax(logits[i], -1).tolist(),
                                    num_frames[i])) for i in range(num)]
  refs = [as_sentence(tokens[i, :num_tokens[i]]) for i in range(num)]
  assert metrics['wer'] == pytest.approx(jiwer.wer(refs, hyps), rel=1e-9)


def test_workload_constants(initialised):
  workload = initialised[0]
  assert workload.target_metric_name == 'wer'
  assert workload.minimize_target_metric
  assert workload.loss_type == spec.LossType.CTC_LOSS
  assert 0 < workload.validation_target_value < 1
  assert workload.is_output_params('Dense_0')
  assert workload.param_shapes['Dense_0']['kernel'].shape_tuple[-1] == (
      speech.NUM_CLASSES)
