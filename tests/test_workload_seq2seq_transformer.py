"""seq2seq_transformer: generator, loss, causality, decoding, BLEU, eval.

References: sacrebleu for corpus BLEU, numpy for the loss, a word-by-word
Python restatement of the translation rules, and a step-by-step argmax over
the model's own teacher-forced logits for greedy decoding.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import sacrebleu

from localperf import spec
from localperf.workloads import seq2seq_transformer as s2s

EVAL = spec.ForwardPassMode.EVAL


def _classes(words, start):
  """{id: (class, index within class)} for classes laid out from `start`."""
  table = {}
  for name, size in words:
    for index in range(size):
      table[start + index] = (name, index)
    start += size
  return table


SOURCE = _classes(s2s.SOURCE_WORDS, 2)
TARGET_ID = {v: k for k, v in _classes(
    s2s.TARGET_WORDS, 2 + len(SOURCE)).items()}


class _SmallEval(s2s.Seq2seqTransformerWorkload):
  """The same data and model, evaluated on 40 examples in batches of 16."""
  num_validation_examples = 40
  num_test_examples = 40
  num_eval_train_examples = 40
  eval_batch_size = 16

  def _generate_splits(self):
    return s2s.Seq2seqTransformerWorkload().splits


@pytest.fixture(scope='module')
def workload():
  return _SmallEval()


@pytest.fixture(scope='module')
def trained(workload):
  """Params after 100 Adam steps (batch 32): decodes that are partly right."""
  params, _ = workload.init_model_fn(jax.random.PRNGKey(0))
  opt = optax.adam(5e-3)

  @jax.jit
  def step(params, opt_state, batch):
    def loss(p):
      logits, _ = workload.model_fn(p, batch, None, EVAL, None, False)
      out = workload.loss_fn(batch['targets'], logits, batch['weights'])
      return out['summed'] / out['n_valid_examples']
    updates, opt_state = opt.update(jax.grad(loss)(params), opt_state)
    return optax.apply_updates(params, updates), opt_state

  opt_state = opt.init(params)
  queue = workload._build_input_queue(  # pylint: disable=protected-access
      jax.random.PRNGKey(1), 'train', '', 32)
  for _ in range(100):
    params, opt_state = step(params, opt_state, next(queue))
  return params


@pytest.fixture(scope='module')
def logits_fn(workload):
  """Jitted teacher-forced logits: (params, sources, targets) -> numpy."""
  run = jax.jit(lambda params, sources, targets: workload.model_fn(
      params, {'inputs': sources, 'targets': targets}, None, EVAL, None,
      False)[0])
  return lambda *args: np.asarray(run(*args))


# --- Data ---------------------------------------------------------------------


def _noun_phrase(words):
  """det [adj] noun [plural] -> (target ids, plural?, words used)."""
  (_, det), rest = words[0], words[1:]
  adj = rest.pop(0)[1] if rest[0][0] == 'adj' else None
  noun = rest.pop(0)[1]
  plural = bool(rest) and rest[0][0] == 'plural'
  lex = s2s.lexicon()
  out = [TARGET_ID['det', lex.det[det, int(plural)]],
         TARGET_ID['noun', 2 * lex.noun[noun]]]  # Synonym 0; see _base.
  if adj is not None:
    out.append(TARGET_ID['adj', lex.adj[adj]])
  return out, plural, 2 + (adj is not None) + plural


def _phrase_with_pp(words):
  """NP [prep NP] -> [NP2' prep'] NP1' and the head's number."""
  head, plural, used = _noun_phrase(words)
  if used == len(words):
    return head, plural
  assert words[used][0] == 'prep'
  inner, _, inner_used = _noun_phrase(words[used + 1:])
  assert used + 1 + inner_used == len(words)
  prep = TARGET_ID['prep', s2s.lexicon().prep[words[used][1]]]
  return inner + [prep] + head, plural


def _translate(source_ids):
  """The rules of the module docstring, restated word by word."""
  words = [SOURCE[i] for i in source_ids if i > s2s.EOS]
  clauses, current = [], []
  for word in words:
    if word[0] == 'and':
      clauses.append(current)
      current = []
    else:
      current.append(word)
  clauses.append(current)
  lex, out = s2s.lexicon(), []
  for clause in reversed(clauses):
    verb_at = [w[0] for w in clause].index('verb')
    subject, plural = _phrase_with_pp(clause[:verb_at])
    obj = clause[verb_at + 1:]
    translated = subject + (_phrase_with_pp(obj)[0] if obj else [])
    translated += [TARGET_ID['verb', lex.verb[clause[verb_at][1]]],
                   TARGET_ID['agree', lex.agree[int(plural), int(bool(obj))]]]
    out += ([TARGET_ID['and', 0]] if out else []) + translated
  return out


def _base(target_ids):
  """Target ids with every noun as its synonym 0."""
  first = TARGET_ID['noun', 0]
  return [i - (i - first) % 2 if first <= i < first + 2 * s2s.NUM_NOUNS
          else i for i in target_ids]


def test_translations_follow_the_rules(workload):
  split = workload.splits['validation']
  kinds = {'two clauses': 0, 'prep': 0, 'plural': 0, 'no object': 0}
  for source, target in zip(split['inputs'][:300], split['targets'][:300]):
    expected = _translate(source)
    assert _base(list(target)) == expected + [s2s.EOS] + [0] * (
        s2s.TARGET_LENGTH - len(expected) - 1)
    names = [SOURCE[i][0] for i in source if i > s2s.EOS]
    kinds['two clauses'] += 'and' in names
    kinds['prep'] += 'prep' in names
    kinds['plural'] += 'plural' in names
    kinds['no object'] += names[-1] == 'verb'
  assert min(kinds.values()) > 20, kinds


def test_nouns_take_the_synonym_their_verb_prefers_70_percent(workload):
  """In one-clause sentences, the share of nouns written as the synonym
  `preferred[noun, verb_class[verb]]`, against 0.7 (binomial, 5 sigma)."""
  lex, split = s2s.lexicon(), workload.splits['train']
  noun_of_base = np.argsort(lex.noun)
  first = TARGET_ID['noun', 0]
  hits = total = 0
  for source, target in zip(split['inputs'][:5000], split['targets'][:5000]):
    words = [SOURCE[i] for i in source if i > s2s.EOS]
    if any(kind == 'and' for kind, _ in words):
      continue
    verb = next(index for kind, index in words if kind == 'verb')
    for i in target:
      if first <= i < first + 2 * s2s.NUM_NOUNS:
        base, synonym = divmod(i - first, 2)
        preferred = lex.preferred[noun_of_base[base], lex.verb_class[verb]]
        hits += synonym == preferred
        total += 1
  assert total > 3000
  assert abs(hits / total - 0.7) < 5 * np.sqrt(0.21 / total)


def test_splits_are_padded_sentences_with_token_weights(workload):
  for split in workload.splits.values():
    for ids, length in ((split['inputs'], s2s.SOURCE_LENGTH),
                        (split['targets'], s2s.TARGET_LENGTH)):
      assert ids.shape[1] == length
      count = (ids > s2s.EOS).sum(1)
      assert count.min() >= 3
      np.testing.assert_array_equal(ids[np.arange(len(ids)), count], s2s.EOS)
      assert np.all(ids[np.arange(length) > count[:, None]] == s2s.PAD)
    assert (split['inputs'] > s2s.EOS).sum(1).max() <= s2s.MAX_WORDS
    np.testing.assert_array_equal(split['weights'], split['targets'] > 0)
  train = workload.splits['train']['inputs']
  assert len(np.unique(train, axis=0)) > 0.9 * len(train)


# --- Loss and model -----------------------------------------------------------


@pytest.mark.parametrize('smoothing', [0.0, 0.1])
def test_loss_is_label_smoothed_token_cross_entropy(workload, smoothing):
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(3, 5, s2s.VOCAB_SIZE)).astype(np.float32)
  labels = rng.integers(s2s.VOCAB_SIZE, size=(3, 5))
  weights = (rng.random((3, 5)) < 0.7).astype(np.float32)
  log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  smoothed = np.full(logits.shape, smoothing / s2s.VOCAB_SIZE)
  smoothed[np.arange(3)[:, None], np.arange(5), labels] += 1 - smoothing
  per_token = -(smoothed * log_p).sum(-1) * weights
  out = workload.loss_fn(jnp.asarray(labels), jnp.asarray(logits),
                         jnp.asarray(weights), smoothing)
  np.testing.assert_allclose(out['per_example'], per_token, rtol=1e-5,
                             atol=1e-6)
  np.testing.assert_allclose(out['summed'], per_token.sum(), rtol=1e-5)
  assert float(out['n_valid_examples']) == weights.sum()


def test_decoder_is_causal_and_reads_the_source(workload, trained,
                                                logits_fn):
  sources = workload.splits['validation']['inputs'][:40]
  targets = workload.splits['validation']['targets'][:40]
  before = logits_fn(trained, sources, targets)
  for t in (0, 3, 7):
    changed = targets.copy()
    changed[:, t] = (changed[:, t] + 5) % s2s.VOCAB_SIZE
    after = logits_fn(trained, sources, changed)
    np.testing.assert_array_equal(after[:, :t + 1], before[:, :t + 1])
    assert np.abs(after[:, t + 1] - before[:, t + 1]).max() > 1e-3
  changed = sources.copy()
  changed[:, 0] = np.where(sources[:, 0] == s2s.SOURCE_IDS['det'],
                           s2s.SOURCE_IDS['det'] + 1, s2s.SOURCE_IDS['det'])
  assert np.abs(logits_fn(trained, changed, targets)[:, 0]
                - before[:, 0]).max() > 1e-3


def _argmax_decode(logits_fn, params, sources):
  """Greedy decoding restated: one teacher-forced pass per output token."""
  tokens = np.zeros((len(sources), s2s.TARGET_LENGTH), np.int32)
  for t in range(s2s.TARGET_LENGTH):
    tokens[:, t] = logits_fn(params, sources, tokens)[:, t].argmax(-1)
  return tokens


def _cut(row):
  """Ids up to and including the first EOS or PAD."""
  stops = np.flatnonzero((row == s2s.EOS) | (row == s2s.PAD))
  return list(row[:stops[0] + 1] if len(stops) else row)


def test_greedy_decoding_is_stepwise_argmax(workload, trained, logits_fn):
  sources = workload.splits['validation']['inputs'][:40]
  decode = jax.jit(lambda p, s: s2s.greedy_decode(s2s.Seq2seqTransformer(),
                                                  p, s))
  decoded = np.asarray(decode(trained, sources))
  expected = _argmax_decode(logits_fn, trained, sources)
  for got, want in zip(decoded, expected):
    assert _cut(got) == _cut(want)
    assert not got[len(_cut(want)):].any()
  assert np.mean([len(_cut(row)) > 4 for row in decoded]) > 0.5


# --- BLEU ---------------------------------------------------------------------


def _corpora():
  rng = np.random.default_rng(0)
  refs = [list(map(str, rng.integers(40, size=rng.integers(4, 15))))
          for _ in range(30)]
  noisy = [[w if rng.random() < 0.8 else str(rng.integers(40)) for w in r]
           for r in refs]
  return {
      'perfect': (refs, refs),
      'noisy': (noisy, refs),
      'short (brevity penalty)': ([r[:max(1, len(r) // 2)] for r in noisy],
                                  refs),
      'long': ([r + r[:3] for r in noisy], refs),
      'no 4-gram match': ([['a', 'b', 'c', 'x', 'b', 'c', 'd']],
                          [['a', 'b', 'c', 'd', 'e']]),
      'some empty': ([[]] + noisy[1:], refs),
  }


@pytest.mark.parametrize('name', list(_corpora()))
def test_corpus_bleu_matches_sacrebleu(name):
  hyps, refs = _corpora()[name]
  expected = sacrebleu.corpus_bleu([' '.join(h) for h in hyps],
                                   [[' '.join(r) for r in refs]],
                                   tokenize='none')
  assert s2s.corpus_bleu(hyps, refs) == pytest.approx(expected.score,
                                                      rel=1e-6, abs=1e-9)
  if name.startswith('short'):
    assert expected.bp < 0.9
  if name == 'no 4-gram match':
    assert expected.counts[3] == 0 and expected.score > 0


def test_corpus_bleu_without_matches_is_zero():
  assert s2s.corpus_bleu([['1', '2']], [['3', '4', '5']]) == 0.0
  assert s2s.corpus_bleu([[]], [['3']]) == 0.0


# --- Evaluation ---------------------------------------------------------------


def _sentence(ids):
  """The words before the first EOS or PAD, space-separated."""
  return ' '.join(str(i) for i in itertools.takewhile(lambda i: i > s2s.EOS,
                                                      ids))


def test_eval_metrics_match_a_direct_computation(workload, trained,
                                                 logits_fn):
  result = workload.eval_model(workload.eval_batch_size, trained, None,
                               jax.random.PRNGKey(0), '', None, 0)
  for prefix, split in (('train', 'train'), ('validation', 'validation'),
                        ('test', 'test')):
    data = {k: v[:40] for k, v in workload.splits[split].items()}
    logits = logits_fn(trained, data['inputs'],
                       data['targets']).astype(np.float64)
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    w = data['weights']
    nll = -np.take_along_axis(log_p, data['targets'][..., None], -1)[..., 0]
    assert result[f'{prefix}/loss'] == pytest.approx(
        (nll * w).sum() / w.sum(), rel=1e-5)
    assert result[f'{prefix}/accuracy'] == pytest.approx(
        ((logits.argmax(-1) == data['targets']) * w).sum() / w.sum())
    hyps = [_sentence(row)
            for row in _argmax_decode(logits_fn, trained, data['inputs'])]
    refs = [_sentence(row) for row in data['targets']]
    bleu = sacrebleu.corpus_bleu(hyps, [refs], tokenize='none').score
    assert result[f'{prefix}/bleu'] == pytest.approx(bleu, rel=1e-6)
  assert result['validation/bleu'] > 5.0
  assert result['validation/num_examples'] == 40
