"""Every CPU workload: registry, AlgoPerf interface, data, sharding.

Workload-specific checks (metrics against reference libraries, data
generators, models) live in tests/test_workload_<name>.py.
"""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from localperf import spec
from localperf import workloads as registry
from localperf.workloads import base


# Workloads whose batches are {'inputs': array, 'targets': class ids or
# click labels}, the ones a shared numpy loss and accuracy can check.
FLAT = ('mnist1d', 'ctr_dlrm', 'shapes_vit')
# The two that compile fast; the others' costly checks are in the slow suite.
QUICK = ('mnist1d', 'ctr_dlrm')


def quick_or_slow(names):
  """`names` as parameters, those outside QUICK marked slow."""
  return [name if name in QUICK else pytest.param(name, marks=pytest.mark.slow)
          for name in names]


def test_registry_names_and_unknown_name():
  assert registry.WORKLOAD_NAMES[:2] == ('mnist1d', 'ctr_dlrm')
  assert set(registry.PAPER_SEVEN) < set(registry.WORKLOAD_NAMES)
  assert sorted(registry.ALGOPERF_COUNTERPART.values()) == [
      'criteo1tb', 'fastmri', 'imagenet_vit', 'librispeech_conformer',
      'librispeech_deepspeech', 'ogbg', 'wmt']
  with pytest.raises(ValueError, match='nope.*mnist1d, ctr_dlrm'):
    registry.get_workload('nope')


@pytest.mark.parametrize('name', registry.WORKLOAD_NAMES)
def test_construction_generates_no_data(monkeypatch, name):
  cls = type(registry.get_workload(name))
  monkeypatch.setattr(cls, '_generate_splits',
                      lambda self: pytest.fail('data generated'))
  workload = registry.get_workload(name)
  assert workload.step_hint > 0 and workload.target_metric_name


def _perturbed(params):
  """Params moved off their init (a zero-initialised head gives zero logits
  whatever the inputs, which would hide what these tests look for)."""
  leaves, tree = jax.tree.flatten(params)
  keys = jax.random.split(jax.random.PRNGKey(7), len(leaves))
  return jax.tree.unflatten(tree, [
      x + 0.05 * jax.random.normal(k, x.shape, x.dtype)
      for x, k in zip(leaves, keys)])


@pytest.fixture(scope='module', params=registry.WORKLOAD_NAMES)
def initialised(request):
  workload = registry.get_workload(request.param)
  params, model_state = workload.init_model_fn(jax.random.PRNGKey(0))
  return workload, params, model_state


def test_param_shapes_and_types(initialised):
  workload, params, model_state = initialised
  shapes = jax.tree.leaves(workload.param_shapes,
                           is_leaf=lambda x: isinstance(x, spec.ShapeTuple))
  assert [s.shape_tuple for s in shapes] == [
      p.shape for p in jax.tree.leaves(params)]
  types = jax.tree.leaves(workload.model_params_types)
  assert len(types) == len(shapes)
  assert all(isinstance(t, spec.ParameterType) for t in types)
  for leaf in jax.tree.leaves((params, model_state)):
    assert leaf.sharding.is_fully_replicated


def test_param_types_follow_flax_names():
  attention = {p: {'kernel': 1, 'bias': 1}
               for p in ('query', 'key', 'value', 'out')}
  shapes = {'Conv_0': {'kernel': 1, 'bias': 1}, 'Dense_0': {'kernel': 1,
                                                           'bias': 1},
            'embedding': {'embedding': 1}, 'LayerNorm_0': {'scale': 1,
                                                           'bias': 1},
            'BatchNorm_0': {'scale': 1, 'bias': 1},
            'Block_0': {'MultiHeadDotProductAttention_0': attention}}
  t = spec.ParameterType
  assert base.param_types_from_shapes(shapes) == {
      'Conv_0': {'kernel': t.CONV_WEIGHT, 'bias': t.BIAS},
      'Dense_0': {'kernel': t.WEIGHT, 'bias': t.BIAS},
      'embedding': {'embedding': t.EMBEDDING},
      'LayerNorm_0': {'scale': t.LAYER_NORM_SCALE, 'bias': t.LAYER_NORM_BIAS},
      'BatchNorm_0': {'scale': t.BATCH_NORM_SCALE, 'bias': t.BATCH_NORM_BIAS},
      'Block_0': {'MultiHeadDotProductAttention_0': {
          'query': {'kernel': t.ATTENTION_Q, 'bias': t.ATTENTION_BIAS},
          'key': {'kernel': t.ATTENTION_K, 'bias': t.ATTENTION_BIAS},
          'value': {'kernel': t.ATTENTION_V, 'bias': t.ATTENTION_BIAS},
          'out': {'kernel': t.ATTENTION_OUT, 'bias': t.ATTENTION_BIAS}}}}


def test_eval_over_fewer_examples_than_the_split():
  """num_examples below the split size: only those examples are scored."""
  workload = registry.get_workload('mnist1d')
  params, model_state = workload.init_model_fn(jax.random.PRNGKey(0))
  params = _perturbed(params)
  result = workload._eval_model_on_split(  # pylint: disable=protected-access
      'validation', 300, 128, params, model_state, None, '')
  data = workload.splits['validation']
  logits, _ = workload.model_fn(params, {'inputs': data['inputs'][:300]},
                                model_state, spec.ForwardPassMode.EVAL, None,
                                False)
  assert result['accuracy'] == pytest.approx(
      np.mean(np.argmax(logits, -1) == data['targets'][:300]))


def test_train_queue_yields_sharded_global_batches(initialised):
  workload = initialised[0]
  queue = workload._build_input_queue(jax.random.PRNGKey(1), 'train', '', 64)  # pylint: disable=protected-access
  batch = next(queue)
  for leaf in jax.tree.leaves(batch):
    assert leaf.shape[0] == 64
    assert leaf.sharding.spec == jax.sharding.PartitionSpec('batch')
  again = next(workload._build_input_queue(  # pylint: disable=protected-access
      jax.random.PRNGKey(1), 'train', '', 64))
  jax.tree.map(np.testing.assert_array_equal, batch, again)
  assert not np.array_equal(jax.tree.leaves(batch)[0],
                            jax.tree.leaves(next(queue))[0])


@pytest.mark.parametrize('name', quick_or_slow(registry.WORKLOAD_NAMES))
def test_model_fn_dropout_only_in_training(name):
  workload = registry.get_workload(name)
  params, model_state = workload.init_model_fn(jax.random.PRNGKey(0))
  params = _perturbed(params)
  batch = next(workload._build_input_queue(  # pylint: disable=protected-access
      jax.random.PRNGKey(1), 'train', '', 32))
  run = lambda mode, rate, seed: jax.tree.leaves(workload.model_fn(
      params, batch, model_state, mode, jax.random.PRNGKey(seed), False,
      rate)[0])[0]
  train, evaluate = spec.ForwardPassMode.TRAIN, spec.ForwardPassMode.EVAL
  np.testing.assert_array_equal(run(evaluate, 0.5, 0), run(evaluate, 0.5, 1))
  np.testing.assert_array_equal(run(train, 0.0, 0), run(train, 0.0, 1))
  if model_state is None:  # Batch norm uses batch statistics in training.
    np.testing.assert_array_equal(run(train, 0.0, 0), run(evaluate, 0.0, 0))
  assert not np.allclose(run(train, 0.5, 0), run(train, 0.5, 1))


@pytest.mark.parametrize('name', quick_or_slow(registry.WORKLOAD_NAMES))
def test_batch_norm_statistics_update_only_when_asked(name):
  workload = registry.get_workload(name)
  params, model_state = workload.init_model_fn(jax.random.PRNGKey(0))
  batch = next(workload._build_input_queue(  # pylint: disable=protected-access
      jax.random.PRNGKey(1), 'train', '', 32))
  train = spec.ForwardPassMode.TRAIN
  run = lambda update: workload.model_fn(
      params, batch, model_state, train, jax.random.PRNGKey(0), update)[1]
  if model_state is None:
    assert run(True) is None
    return
  changed = jax.tree.leaves(jax.tree.map(
      lambda a, b: bool(np.any(np.asarray(a) != np.asarray(b))),
      run(True), model_state))
  assert any(changed)
  jax.tree.map(np.testing.assert_array_equal, run(False), model_state)


@pytest.mark.parametrize('name', FLAT)
def test_loss_fn_against_numpy(name):
  workload = registry.get_workload(name)
  rng = np.random.default_rng(0)
  mask = np.array([1.0, 1.0, 0.0, 1.0], np.float32)
  if workload.loss_type == spec.LossType.SOFTMAX_CROSS_ENTROPY:
    logits = rng.normal(size=(4, 10)).astype(np.float32)
    labels = np.array([3, 1, 4, 1])
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = -log_p[np.arange(4), labels]
  else:
    logits = rng.normal(size=(4, 1)).astype(np.float32)
    labels = np.array([1.0, 0.0, 1.0, 0.0], np.float32)
    p = 1 / (1 + np.exp(-logits[:, 0]))
    expected = -(labels * np.log(p) + (1 - labels) * np.log(1 - p))
  out = workload.loss_fn(jnp.asarray(labels), jnp.asarray(logits),
                         jnp.asarray(mask))
  np.testing.assert_allclose(out['per_example'], expected * mask, rtol=1e-5)
  np.testing.assert_allclose(out['summed'], (expected * mask).sum(),
                             rtol=1e-5)
  assert float(out['n_valid_examples']) == 3.0


def test_eval_model_reports_every_split(initialised):
  workload, params, model_state = initialised
  result = workload.eval_model(workload.eval_batch_size, params, model_state,
                               jax.random.PRNGKey(0), '', None, 0)
  name = workload.target_metric_name
  assert {f'{s}/{m}' for s in ('train', 'validation', 'test')
          for m in {name, 'loss'}} <= set(result)
  assert result['validation/num_examples'] == workload.num_validation_examples
  assert all(np.isfinite(v) for v in result.values())


@pytest.mark.parametrize('name', quick_or_slow(FLAT))
def test_eval_model_matches_a_direct_computation(name):
  workload = registry.get_workload(name)
  params, model_state = workload.init_model_fn(jax.random.PRNGKey(0))
  params = _perturbed(params)
  result = workload.eval_model(workload.eval_batch_size, params, model_state,
                               jax.random.PRNGKey(0), '', None, 0)
  data = workload.splits['validation']
  logits, _ = workload.model_fn(params, {'inputs': data['inputs']},
                                model_state, spec.ForwardPassMode.EVAL, None,
                                False)
  loss = workload.loss_fn(data['targets'], logits)
  assert result['validation/loss'] == pytest.approx(
      float(loss['summed']) / len(data['targets']), rel=1e-4)
  if workload.target_metric_name == 'accuracy':
    assert result['validation/accuracy'] == pytest.approx(
        np.mean(np.argmax(logits, -1) == data['targets']))


def test_targets_compare_in_the_metric_direction(initialised):
  workload = initialised[0]
  target = workload.validation_target_value
  better = target - 0.01 if workload.minimize_target_metric else target + 0.01
  worse = target + 0.01 if workload.minimize_target_metric else target - 0.01
  key = f'validation/{workload.target_metric_name}'
  assert workload.has_reached_validation_target({key: better})
  assert not workload.has_reached_validation_target({key: worse})
  assert not workload.has_reached_validation_target({key: target})


def test_split_sizes_match_the_declared_counts(initialised):
  workload = initialised[0]
  splits = workload.splits
  for split, size in (('train', workload.num_train_examples),
                      ('validation', workload.num_validation_examples),
                      ('test', workload.num_test_examples)):
    assert {len(leaf) for leaf in jax.tree.leaves(splits[split])} == {size}


def test_mnist1d_leaves_global_random_state_alone():
  np.random.seed(123)
  before = np.random.get_state()[1].copy()
  from localperf.workloads import mnist1d  # pylint: disable=g-import-not-at-top
  mnist1d._make_mnist1d(200)  # pylint: disable=protected-access
  np.testing.assert_array_equal(np.random.get_state()[1], before)


def test_mnist1d_labels_cover_ten_digits():
  splits = registry.get_workload('mnist1d').splits
  counts = np.bincount(splits['train']['targets'], minlength=10)
  assert len(counts) == 10 and counts.min() > 0.08 * counts.sum()


def test_ctr_bayes_floor_is_below_target_and_base_rate_loss():
  workload = registry.get_workload('ctr_dlrm')
  labels = workload.splits['validation']['targets']
  rate = labels.mean()
  base_rate_loss = -(rate * np.log(rate) + (1 - rate) * np.log(1 - rate))
  assert 0 < workload.bayes_validation_loss < workload.validation_target_value
  assert workload.validation_target_value < base_rate_loss


_SHARDED = r'''
import json, jax, numpy as np
from localperf import spec, workloads
w = workloads.get_workload('ctr_dlrm')
params, state = w.init_model_fn(jax.random.PRNGKey(0))
batch = next(w._build_input_queue(jax.random.PRNGKey(1), 'train', '', 64))
r = w.eval_model(w.eval_batch_size, params, state, jax.random.PRNGKey(0), '',
                 None, 0)
print(json.dumps({'devices': jax.device_count(),
                  'shards': [s.data.shape[0] for s in
                             batch['inputs'].addressable_shards],
                  'loss': r['validation/loss']}))
'''


@pytest.mark.slow  # The default suite's 4-device case is in test_submissions.
def test_four_devices_split_batches_and_agree_with_one():
  """Checked on ctr_dlrm, whose loss the script compares."""
  workload = registry.get_workload('ctr_dlrm')
  params, model_state = workload.init_model_fn(jax.random.PRNGKey(0))
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=4')
  out = subprocess.run([sys.executable, '-c', _SHARDED], env=env, check=True,
                       capture_output=True, text=True,
                       cwd=os.path.dirname(os.path.dirname(__file__)))
  report = json.loads(out.stdout.strip().splitlines()[-1])
  assert report['devices'] == 4
  assert report['shards'] == [16, 16, 16, 16]
  one_device = workload.eval_model(workload.eval_batch_size, params,
                                   model_state, jax.random.PRNGKey(0), '',
                                   None, 0)
  assert report['loss'] == pytest.approx(one_device['validation/loss'],
                                         rel=1e-5)
