"""kspace_unet: k-space data, masks, U-Net, MAE loss and SSIM vs skimage."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from skimage.metrics import structural_similarity as skimage_ssim

from localperf import spec
from localperf import workloads as registry
from localperf.workloads import kspace_unet as ku

SIZE = 32
T = spec.ParameterType


@pytest.fixture(scope='module')
def workload():
  return registry.get_workload('kspace_unet')


@pytest.fixture(scope='module')
def params(workload):
  return workload.init_model_fn(jax.random.PRNGKey(0))[0]


def _predict(workload, params, inputs):
  """The model's output in EVAL mode (jitted: eager flax is slow)."""
  return jax.jit(lambda p, x: workload.model_fn(
      p, {'inputs': x}, None, spec.ForwardPassMode.EVAL, None, False)[0])(
          params, jnp.asarray(inputs))


def _skimage(target, prediction):
  """fastmri's SSIM: skimage with a 7x7 uniform window, range = target max."""
  return skimage_ssim(
      np.float64(target), np.float64(prediction), win_size=7,
      data_range=float(target.max()), K1=0.01, K2=0.03,
      use_sample_covariance=True, gaussian_weights=False)


def test_ssim_matches_skimage():
  rng = np.random.default_rng(0)
  targets = ku.phantoms(rng, 6)
  noise = rng.normal(size=targets.shape) * rng.uniform(0.01, 0.3, (6, 1, 1))
  predictions = targets + noise
  predictions[0] = rng.uniform(0.0, 1.0, (SIZE, SIZE))  # Unrelated.
  predictions[1] = targets[1]  # Identical.
  predictions[2] = 0.5 * targets[2] + 0.2  # Contrast and offset.
  predictions = predictions.astype(np.float32)
  ours = ku.structural_similarity(jnp.asarray(predictions),
                                  jnp.asarray(targets),
                                  jnp.asarray(targets.max(axis=(1, 2))))
  expected = [_skimage(t, p) for t, p in zip(targets, predictions)]
  np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-6)
  assert expected[1] == pytest.approx(1.0) and abs(expected[0]) < 0.2


def test_ssim_per_example_unnormalises_and_survives_padding(workload):
  """The zero-filled inputs as predictions; a zero (padding) row last."""
  split = {k: np.concatenate([v[:3], np.zeros_like(v[:1])])
           for k, v in workload.splits['validation'].items()}
  ours = ku.ssim_per_example(jnp.asarray(split['inputs']),
                             jax.tree.map(jnp.asarray, split))
  scale, shift = split['std'][:, None, None], split['mean'][:, None, None]
  expected = [_skimage(t * s + m, p * s + m) for t, p, s, m in
              zip(split['targets'][:3], split['inputs'][:3], scale, shift)]
  np.testing.assert_allclose(ours[:3], expected, rtol=1e-4)
  assert 0.3 < min(expected) and max(expected) < 0.95
  assert np.isfinite(ours[3])


def test_loss_is_masked_mean_absolute_error(workload):
  rng = np.random.default_rng(1)
  labels = rng.normal(size=(4, SIZE, SIZE)).astype(np.float32)
  logits = rng.normal(size=(4, SIZE, SIZE)).astype(np.float32)
  mask = np.array([1.0, 0.0, 1.0, 1.0], np.float32)
  expected = np.array([np.abs(a - b).sum() / SIZE**2
                       for a, b in zip(logits, labels)]) * mask
  out = workload.loss_fn(jnp.asarray(labels), jnp.asarray(logits),
                         jnp.asarray(mask))
  np.testing.assert_allclose(out['per_example'], expected, rtol=1e-5)
  np.testing.assert_allclose(out['summed'], expected.sum(), rtol=1e-5)
  assert float(out['n_valid_examples']) == 3.0
  unmasked = workload.loss_fn(jnp.asarray(labels), jnp.asarray(logits))
  assert unmasked['n_valid_examples'] == 4
  assert float(unmasked['per_example'][1]) > 0.5


def test_zero_filled_is_the_inverse_dft_of_masked_kspace():
  """|F^-1 (m . F x)| from DFT matrices, with the mask's centre at DC."""
  rng = np.random.default_rng(2)
  images = ku.phantoms(rng, 3)
  masks = ku.column_masks(rng, 3)
  n = np.arange(SIZE)
  dft = np.exp(-2j * np.pi * np.outer(n, n) / SIZE)  # F[k, j]
  for image, mask in zip(images, masks):
    # Centred column c holds frequency c - SIZE // 2.
    keep = np.zeros(SIZE)
    keep[(np.flatnonzero(mask) - SIZE // 2) % SIZE] = 1.0
    kspace = dft @ np.float64(image) @ dft.T
    restored = np.conj(dft) @ (kspace * keep) @ np.conj(dft).T / SIZE**2
    np.testing.assert_allclose(ku.zero_filled(image[None], mask[None])[0],
                               np.abs(restored), atol=1e-5)
  full = np.ones((3, SIZE), bool)
  np.testing.assert_allclose(ku.zero_filled(images, full), images, atol=1e-5)


def test_column_masks_keep_the_centre_and_a_quarter():
  masks = ku.column_masks(np.random.default_rng(3), 4000)
  assert masks.shape == (4000, SIZE) and masks.dtype == bool
  # The centre 4 columns (12.5% of 32) around DC are always sampled.
  assert masks[:, SIZE // 2 - 2:SIZE // 2 + 2].all()
  others = np.delete(masks, np.arange(SIZE // 2 - 2, SIZE // 2 + 2), axis=1)
  assert others.mean() == pytest.approx((SIZE / 4 - 4) / (SIZE - 4),
                                        abs=0.01)
  assert masks.mean() == pytest.approx(0.25, abs=0.01)  # 4x acceleration.
  assert len({m.tobytes() for m in masks[:100]}) > 90


def test_normalisation_by_the_zero_filled_statistics():
  rng = np.random.default_rng(4)
  inputs = rng.uniform(0.0, 1.0, (3, SIZE, SIZE)).astype(np.float32)
  images = rng.uniform(0.0, 1.0, (3, SIZE, SIZE)).astype(np.float32)
  images[0, 0, 0] = 50.0  # Beyond 6 standard deviations: clipped.
  out = ku.normalised_example(inputs, images)
  for i in range(3):
    mean = np.mean(np.float64(inputs[i]))
    std = np.sqrt(np.mean((np.float64(inputs[i]) - mean)**2))
    np.testing.assert_allclose(out['inputs'][i], (inputs[i] - mean) / std,
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        out['targets'][i], np.clip((images[i] - mean) / std, -6, 6),
        rtol=1e-4, atol=1e-5)
    assert out['mean'][i] == pytest.approx(mean, rel=1e-5)
    assert out['std'][i] == pytest.approx(std, rel=1e-5)
    assert out['volume_max'][i] == images[i].max()
  assert out['targets'][0, 0, 0] == 6.0


def test_splits_hold_phantoms_and_their_statistics(workload):
  split = workload.splits['validation']
  assert split['inputs'].shape == (workload.num_validation_examples, SIZE,
                                   SIZE)
  assert set(split) == {'inputs', 'targets', 'mean', 'std', 'volume_max'}
  images = split['targets'] * split['std'][:, None, None] + split['mean'][
      :, None, None]
  np.testing.assert_allclose(images.max(axis=(1, 2)), split['volume_max'],
                             rtol=1e-5)
  assert images.min() > -1e-5  # Phantoms are non-negative.
  zero_filled = split['inputs'] * split['std'][:, None, None]
  np.testing.assert_allclose(zero_filled.std(axis=(1, 2)), split['std'],
                             rtol=1e-4)


def test_transposed_conv_equals_flax():
  rng = np.random.default_rng(5)
  x = rng.normal(size=(2, 4, 5, 3)).astype(np.float32)
  variables = {'params': {'kernel': rng.normal(size=(2, 2, 3, 6)).astype(
      np.float32)}}
  ours = ku._ConvTranspose2x2(6)  # pylint: disable=protected-access
  flax_layer = nn.ConvTranspose(6, (2, 2), strides=(2, 2), use_bias=False)
  shapes = lambda layer: jax.tree.map(jnp.shape, jax.eval_shape(
      layer.init, jax.random.PRNGKey(0), x))
  assert shapes(ours) == shapes(flax_layer)
  np.testing.assert_allclose(jax.jit(ours.apply)(variables, x),
                             jax.jit(flax_layer.apply)(variables, x),
                             atol=1e-5)


def test_kernel_init_is_lecun_normal():
  """Truncated normal at +-2 sigma, scaled to variance 1 / fan_in."""
  shape = (3, 3, 64, 128)
  init = ku._kernel_init  # pylint: disable=protected-access
  kernel = np.asarray(init(jax.random.PRNGKey(0), shape))
  reference = np.asarray(nn.initializers.lecun_normal()(
      jax.random.PRNGKey(1), shape))
  fan_in = 3 * 3 * 64
  assert kernel.shape == shape
  assert kernel.std() == pytest.approx(fan_in**-0.5, rel=0.02)
  assert kernel.std() == pytest.approx(reference.std(), rel=0.02)
  assert np.abs(kernel).max() <= 2 * fan_in**-0.5 / 0.8796 + 1e-6
  assert abs(kernel.mean()) < 0.02 * fan_in**-0.5


def test_model_output_and_replicated_params(workload, params):
  for leaf in jax.tree.leaves(params):
    assert leaf.sharding.is_fully_replicated
  logits = _predict(workload, params,
                    workload.splits['validation']['inputs'][:5])
  assert logits.shape == (5, SIZE, SIZE)
  types = workload.model_params_types
  assert types['Conv_0'] == {'kernel': T.CONV_WEIGHT, 'bias': T.BIAS}
  assert workload.is_output_params('Conv_0')
  assert {t for t in jax.tree.leaves(types)} == {T.CONV_WEIGHT, T.BIAS}
  # The 1x1 conv out reads the first level's 16 channels.
  assert params['Conv_0']['kernel'].shape == (1, 1, 16, 1)


def test_eval_metrics_match_a_direct_computation(workload, params):
  """40 examples: two batches of 32, the second padded with 24 zeros."""
  num = 40
  result = workload._eval_model_on_split(  # pylint: disable=protected-access
      'validation', num, 32, params, None, jax.random.PRNGKey(0), '')
  split = {k: v[:num] for k, v in workload.splits['validation'].items()}
  logits = np.float64(_predict(workload, params, split['inputs']))
  scale, shift = split['std'][:, None, None], split['mean'][:, None, None]
  expected_ssim = np.mean([
      _skimage(t * s + m, p * s + m) for t, p, s, m in
      zip(split['targets'], logits, scale, shift)])
  expected_loss = np.mean(np.abs(logits - split['targets']))
  assert result['ssim'] == pytest.approx(expected_ssim, rel=1e-4)
  assert result['loss'] == pytest.approx(expected_loss, rel=1e-4)
