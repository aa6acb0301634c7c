"""shapes_vit: drawn shapes, ViT shapes and types, loss and accuracy."""
# pylint: disable=protected-access

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from localperf import spec
from localperf import workloads as registry
from localperf.workloads import shapes_vit as sv

T = spec.ParameterType


@pytest.fixture(scope='module')
def workload():
  return registry.get_workload('shapes_vit')


@pytest.fixture(scope='module')
def initial(workload):
  return workload.init_model_fn(jax.random.PRNGKey(0))[0]


@pytest.fixture(scope='module')
def params(initial):
  """Initial params with a random head (the initial one is zero)."""
  head = jax.random.normal(jax.random.PRNGKey(1), (64, 10))
  return {**initial, 'head': {**initial['head'], 'kernel': head}}


def _log_softmax(logits):
  shifted = logits - logits.max(-1, keepdims=True)
  return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


@pytest.mark.parametrize('label_smoothing', [0.0, 0.2])
def test_loss_is_masked_smoothed_softmax_cross_entropy(workload,
                                                       label_smoothing):
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(6, 10)).astype(np.float32) * 3
  labels = np.array([0, 3, 9, 3, 5, 7])
  mask = np.array([1, 1, 0, 1, 0, 1], np.float32)
  targets = np.full((6, 10), label_smoothing / 10)
  targets[np.arange(6), labels] += 1 - label_smoothing
  expected = -(targets * _log_softmax(logits.astype(np.float64))).sum(-1)
  out = workload.loss_fn(jnp.asarray(labels), jnp.asarray(logits),
                         jnp.asarray(mask), label_smoothing)
  np.testing.assert_allclose(out['per_example'], expected * mask, rtol=1e-5)
  np.testing.assert_allclose(out['summed'], (expected * mask).sum(),
                             rtol=1e-5)
  assert float(out['n_valid_examples']) == 4.0
  unmasked = workload.loss_fn(jnp.asarray(labels), jnp.asarray(logits),
                              label_smoothing=label_smoothing)
  np.testing.assert_allclose(unmasked['summed'], expected.sum(), rtol=1e-5)
  assert unmasked['n_valid_examples'] == 6


@pytest.mark.slow  # Compiles the eval of all 4000 test images.
def test_eval_accuracy_and_loss_match_numpy(workload, params):
  """In batches of 384, the last of the 4000 test examples padded."""
  result = workload._eval_model_on_split(
      'test', 4000, 384, params, None, jax.random.PRNGKey(0), '')
  data = workload.splits['test']
  logits = np.asarray(workload._model.apply(
      {'params': params}, data['inputs'], train=False), np.float64)
  labels = data['targets']
  accuracy = np.mean(np.argmax(logits, -1) == labels)
  assert 0.02 < accuracy < 0.98
  assert result['accuracy'] == pytest.approx(accuracy, abs=1e-9)
  loss = -_log_softmax(logits)[np.arange(len(labels)), labels].mean()
  assert result['loss'] == pytest.approx(loss, rel=1e-4)


def test_head_starts_at_zero_and_is_the_output(workload, initial):
  inputs = workload.splits['train']['inputs'][:4]
  logits = workload._model.apply({'params': initial}, inputs, train=False)
  np.testing.assert_array_equal(logits, np.zeros((4, 10)))
  assert [k for k in initial if workload.is_output_params(k)] == ['head']


def test_patch_embedding_tokens_and_output_shapes(workload, params):
  inputs = workload.splits['train']['inputs'][:5]
  assert inputs.shape == (5, 16, 16, 3)
  logits, state = workload._model.apply(
      {'params': params}, inputs, train=False, capture_intermediates=True)
  seen = state['intermediates']
  assert params['conv_patch_extract']['kernel'].shape == (4, 4, 3, 64)
  assert seen['conv_patch_extract']['__call__'][0].shape == (5, 4, 4, 64)
  for block in ('encoderblock_0', 'encoderblock_1'):
    assert seen[block]['__call__'][0].shape == (5, 16, 64)
  assert seen['pre_logits']['__call__'][0].shape == (5, 64)
  assert logits.shape == (5, 10)
  # Patches are disjoint 4x4 squares: a change in one pixel moves one token.
  changed = inputs.copy()
  changed[:, 5, 9, :] += 1.0  # Row 5, column 9: patch (1, 2), token 6.
  patches = lambda x: workload._model.apply(
      {'params': params}, x, train=False, capture_intermediates=True)[1][
          'intermediates']['conv_patch_extract']['__call__'][0]
  moved = np.any(np.asarray(patches(changed) != patches(inputs)), (0, 3))
  assert np.argwhere(moved).tolist() == [[1, 2]]


def test_sincos_position_embedding_matches_its_formula():
  table = sv.sincos_position_embedding(4, 4, 64)
  assert table.shape == (1, 16, 64)
  for token in range(16):
    y, x = token // 4, token % 4
    for k in range(16):
      w = 10_000.0 ** (-k / 15)
      np.testing.assert_allclose(
          table[0, token, [k, 16 + k, 32 + k, 48 + k]],
          [np.sin(x * w), np.cos(x * w), np.sin(y * w), np.cos(y * w)],
          atol=1e-6)


def _algoperf_type(path):
  """AlgoPerf's `jax_param_types` rule for one flax path, restated."""
  parent, name = '/'.join(path[:-1]).lower(), path[-1].lower()
  if 'layernorm' in parent or 'ln' in parent:
    return T.LAYER_NORM_SCALE if name == 'scale' else T.LAYER_NORM_BIAS
  if 'conv' in parent:
    return T.BIAS if 'bias' in name else T.CONV_WEIGHT
  if 'embedding' in name:
    return T.EMBEDDING
  if 'attention' in parent:
    if name == 'bias':
      return T.ATTENTION_BIAS
    for word, kind in (('key', T.ATTENTION_K), ('query', T.ATTENTION_Q),
                       ('value', T.ATTENTION_V), ('out', T.ATTENTION_OUT)):
      if word in parent:
        return kind
    raise ValueError(path)
  return T.BIAS if 'bias' in name else T.WEIGHT


def test_param_types_are_algoperfs(workload, params):
  types = workload.model_params_types
  flat = jax.tree_util.tree_flatten_with_path(params)[0]
  for path, _ in flat:
    keys = [k.key for k in path]
    leaf = types
    for key in keys:
      leaf = leaf[key]
    assert leaf == _algoperf_type(keys), keys
  kinds = jax.tree.leaves(types)
  assert kinds.count(T.LAYER_NORM_SCALE) == kinds.count(
      T.LAYER_NORM_BIAS) == 5
  assert kinds.count(T.CONV_WEIGHT) == 1
  assert types['encoderblock_1']['MultiHeadDotProductAttention_1'][
      'query']['kernel'] == T.ATTENTION_Q
  assert types['head'] == {'kernel': T.WEIGHT, 'bias': T.BIAS}


def test_dropout_acts_only_in_training(workload, params):
  inputs = workload.splits['train']['inputs'][:8]
  run = lambda train, rate, seed: workload._model.apply(
      {'params': params}, inputs, train=train, dropout_rate=rate,
      rngs={'dropout': jax.random.PRNGKey(seed)})
  np.testing.assert_array_equal(run(False, 0.5, 0), run(False, 0.0, 0))
  np.testing.assert_array_equal(run(True, 0.0, 0), run(False, 0.0, 0))
  assert not np.allclose(run(True, 0.1, 0), run(True, 0.1, 1))


def test_splits_are_balanced_and_normalised(workload):
  splits = workload.splits
  for name, split in splits.items():
    counts = np.bincount(split['targets'], minlength=10)
    assert counts.tolist() == [len(split['targets']) // 10] * 10, name
  inputs = splits['train']['inputs']
  np.testing.assert_allclose(inputs.mean((0, 1, 2)), 0.0, atol=0.02)
  np.testing.assert_allclose(inputs.std((0, 1, 2)), 1.0, atol=0.02)
  assert not np.array_equal(splits['validation']['inputs'][:100],
                            splits['test']['inputs'][:100])


def test_drawing_is_seeded_and_each_image_shows_its_shape():
  first = sv.draw_shapes(40, np.random.default_rng(3), 0.1)
  again = sv.draw_shapes(40, np.random.default_rng(3), 0.1)
  np.testing.assert_array_equal(first[0], again[0])
  np.testing.assert_array_equal(first[1], again[1])
  images, labels = sv.draw_shapes(400, np.random.default_rng(4), 0.0)
  gray = images.mean(-1).reshape(400, -1)
  # Without noise every image holds background and brighter shape pixels.
  assert np.all(gray.max(1) - gray.min(1) > 0.1)
  assert sorted(np.bincount(labels)) == [40] * 10


def _fourier_magnitudes(images):
  """|2-D DFT| of the centred gray image: blind to the shape's position."""
  gray = images.mean(-1)
  gray = gray - gray.mean((1, 2), keepdims=True)
  return np.abs(np.fft.rfft2(gray)).reshape(len(images), -1)


def _nearest_class_mean_accuracy(train, train_labels, test, test_labels):
  means = np.stack([train[train_labels == k].mean(0) for k in range(10)])
  distances = ((test[:, None, :] - means[None]) ** 2).sum(-1)
  return np.mean(np.argmin(distances, 1) == test_labels)


def test_shapes_are_learnable_but_not_trivially():
  """Class means of position-blind features beat chance, far from 100%;
  raw-pixel class means (a template per class) stay near chance."""
  rng = np.random.default_rng(5)
  train, train_labels = sv.draw_shapes(2000, rng, 0.1)
  test, test_labels = sv.draw_shapes(1000, rng, 0.1)
  fourier = _nearest_class_mean_accuracy(
      _fourier_magnitudes(train), train_labels, _fourier_magnitudes(test),
      test_labels)
  assert 0.25 < fourier < 0.6
  pixels = _nearest_class_mean_accuracy(
      train.reshape(2000, -1), train_labels, test.reshape(1000, -1),
      test_labels)
  assert pixels < 0.25
