"""A toy AlgoPerf workload for driving submissions in tests and benchmarks.

Classification through one tanh hidden layer with dropout and a
batch-norm-like running mean as model state, on a fixed random dataset; sizes
are arguments, so the same model serves tests (tiny) and benchmarks (10M+
parameters). Batches are global arrays sharded along the batch axis, as
AlgoPerf's JAX pipelines yield them.
"""

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from localperf import spec

NUM_EXAMPLES = 256


class ToyWorkload(spec.Workload):
  """Just enough of `spec.Workload` for a submission to train and evaluate."""

  def __init__(self, step_hint=100, num_features=8, num_hidden=16,
               num_classes=4):
    super().__init__()
    self._step_hint = step_hint
    self.sizes = (num_features, num_hidden, num_classes)

  target_metric_name = 'loss'
  validation_target_value = 0.0
  test_target_value = 0.0
  loss_type = spec.LossType.SOFTMAX_CROSS_ENTROPY
  num_train_examples = NUM_EXAMPLES
  eval_batch_size = 64
  num_eval_train_examples = 64
  num_validation_examples = 64
  num_test_examples = None
  train_mean = 0.0
  train_stddev = 1.0
  max_allowed_runtime_sec = 60
  eval_period_time_sec = 1

  @property
  def step_hint(self):
    return self._step_hint

  def has_reached_validation_target(self, eval_result):
    return eval_result['validation/loss'] < self.validation_target_value

  def has_reached_test_target(self, eval_result):
    return False

  def is_output_params(self, param_key):
    return param_key == 'out'

  def init_model_fn(self, rng):
    num_features, num_hidden, num_classes = self.sizes
    k1, k2 = jax.random.split(rng)
    params = {
        'hidden': {'w': jax.random.normal(k1, (num_features, num_hidden))
                        * num_features**-0.5,
                   'b': jnp.zeros(num_hidden)},
        'out': {'w': jax.random.normal(k2, (num_hidden, num_classes)) * 0.3,
                'b': jnp.zeros(num_classes)},
    }
    self._param_shapes = jax.tree_util.tree_map(
        lambda p: spec.ShapeTuple(p.shape), params)
    self._param_types = jax.tree_util.tree_map(
        lambda p: spec.ParameterType.WEIGHT, params)
    replicated = NamedSharding(_mesh(), PartitionSpec())
    model_state = {'mean': jnp.zeros(num_hidden)}
    return jax.device_put((params, model_state), replicated)

  def model_fn(self, params, batch, model_state, mode, rng, update_batch_norm,
               dropout_rate=0.0):
    h = jnp.tanh(batch['inputs'] @ params['hidden']['w'] + params['hidden']['b'])
    if update_batch_norm:
      model_state = {'mean': 0.9 * model_state['mean'] + 0.1 * h.mean(0)}
    h = h - model_state['mean']
    # The rate may be traced (AlgoPerf's train steps pass it as an argument).
    if mode == spec.ForwardPassMode.TRAIN and not (
        isinstance(dropout_rate, (int, float)) and dropout_rate == 0):
      keep = jax.random.bernoulli(rng, 1.0 - dropout_rate, h.shape)
      h = jnp.where(keep, h / (1.0 - dropout_rate), 0.0)
    return h @ params['out']['w'] + params['out']['b'], model_state

  def loss_fn(self, label_batch, logits_batch, mask_batch=None,
              label_smoothing=0.0):
    num_classes = logits_batch.shape[-1]
    one_hot = jax.nn.one_hot(label_batch, num_classes)
    smoothed = one_hot * (1 - label_smoothing) + label_smoothing / num_classes
    per_example = -(smoothed * jax.nn.log_softmax(logits_batch)).sum(-1)
    if mask_batch is None:
      mask_batch = jnp.ones_like(per_example)
    per_example = per_example * mask_batch
    return {'summed': per_example.sum(), 'n_valid_examples': mask_batch.sum(),
            'per_example': per_example}

  def _build_input_queue(self, data_rng, split, data_dir, global_batch_size,
                         cache=None, repeat_final_dataset=None,
                         num_batches=None):
    del data_rng, split, data_dir, cache, repeat_final_dataset, num_batches
    inputs, targets = self.dataset()
    sharded = NamedSharding(_mesh(), PartitionSpec('batch'))
    step = 0
    while True:
      idx = np.arange(step * global_batch_size,
                      (step + 1) * global_batch_size) % len(targets)
      yield jax.device_put({'inputs': inputs[idx], 'targets': targets[idx]},
                           sharded)
      step += 1

  def _eval_model_on_split(self, split, num_examples, global_batch_size,
                           params, model_state, rng, data_dir, global_step=0):
    inputs, targets = self.dataset()
    logits, _ = self.model_fn(params, {'inputs': inputs}, model_state,
                              spec.ForwardPassMode.EVAL, rng, False)
    return {'loss': float(self.loss_fn(targets, logits)['summed'] / len(targets))}




  def dataset(self):
    """Fixed inputs; the label is the largest of the first `classes` features."""
    num_features, _, num_classes = self.sizes
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(NUM_EXAMPLES, num_features)).astype(np.float32)
    targets = inputs[:, :num_classes].argmax(1).astype(np.int32)
    return inputs, targets


def _mesh():
  return Mesh(jax.devices(), ('batch',))
