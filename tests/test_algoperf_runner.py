"""scripts.algoperf_runner's corrections, without AlgoPerf.

AlgoPerf's own runner exercises them in tests/test_algoperf_resume.py; here
each piece is checked against what it must reproduce: the state a
checkpoint held, the batches an uninterrupted process would draw next.
"""

import types

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import serialization

from scripts import algoperf_runner

EVAL_RESULTS = [(1, {'validation/loss': 0.5, 'score': 1.25}),
                (2, {'validation/loss': 0.25, 'score': 2.5})]
TRAIN_STATE = {'validation_goal_reached': False, 'test_goal_reached': False,
               'is_time_remaining': True, 'last_eval_time': 12.5,
               'training_complete': False, 'accumulated_submission_time': 3.0,
               'accumulated_eval_time': 1.0, 'accumulated_logging_time': 0.5,
               'last_step_end_time': 13.0}


def _batches(rng, split):
  """A fake input queue: (rng, split, i) for i = 0, 1, ..."""
  i = 0
  while True:
    yield (int(np.asarray(rng)[-1]), split, i)
    i += 1


def test_eval_results_come_back_as_the_runners_pairs():
  saved = serialization.msgpack_restore(serialization.msgpack_serialize(
      serialization.to_state_dict(tuple(EVAL_RESULTS))))
  assert algoperf_runner.restored_eval_results(saved) == EVAL_RESULTS
  assert algoperf_runner.restored_eval_results({}) == []


def test_empty_nodes_restored_as_none_are_put_back():
  fresh = (optax.EmptyState(), {'w': jnp.ones(2)}, None)
  template = serialization.to_state_dict(fresh)
  saved = {'0': None, '1': {'w': np.full(2, 3.0, np.float32)}, '2': None}
  restored = serialization.from_state_dict(
      fresh, algoperf_runner.with_empty_nodes(template, saved))
  assert restored[0] == optax.EmptyState() and restored[2] is None
  np.testing.assert_array_equal(restored[1]['w'], [3.0, 3.0])


def test_queues_resume_where_an_uninterrupted_process_would_be():
  train_rng, eval_rng, later_eval_rng = (jnp.array([0, k], jnp.uint32)
                                         for k in (1, 2, 3))
  whole = algoperf_runner.InputQueues()
  train = whole.build(_batches, train_rng, 'train')
  [next(train) for _ in range(5)]
  evals = whole.build(_batches, eval_rng, 'eval_train')
  [next(evals) for _ in range(3)]
  positions = whole.positions()

  resumed = algoperf_runner.InputQueues()  # A new process, built afresh.
  train2 = resumed.build(_batches, train_rng, 'train')
  resumed.restore(positions)
  assert next(train2) == next(train) == (1, 'train', 5)
  # The eval queue is built at the first eval after the resume, with that
  # eval's rng; it must continue the saved one instead.
  evals2 = resumed.build(_batches, later_eval_rng, 'eval_train')
  assert next(evals2) == next(evals) == (2, 'eval_train', 3)


def _restore_fn(saved):
  fake_flax = types.SimpleNamespace(
      restore_checkpoint=lambda checkpoint_dir, target: saved)
  original = lambda *args: pytest.fail('the JAX path must not call this')
  return algoperf_runner.make_maybe_restore_checkpoint(
      original, fake_flax, serialization)


@pytest.fixture(name='queues')
def _fresh_queues(monkeypatch):
  """The process's InputQueues, as a new process starts with them."""
  queues = algoperf_runner.InputQueues()
  monkeypatch.setattr(algoperf_runner, '_QUEUES', queues)
  queues.build(_batches, jnp.array([0, 1], jnp.uint32), 'train')
  return queues


def test_restore_lays_arrays_out_as_the_fresh_state_without_a_device_axis(
    queues):
  replicated = jax.sharding.NamedSharding(
      jax.sharding.Mesh(jax.devices(), ('batch',)),
      jax.sharding.PartitionSpec())
  params = {'w': jax.device_put(jnp.zeros((3, 2)), replicated)}
  opt_state = optax.adam(0.1).init(params)
  saved_params = {'w': np.arange(6, dtype=np.float32).reshape(3, 2)}
  saved_opt = serialization.to_state_dict(
      jax.tree.map(lambda x: np.asarray(x) + 1, opt_state))
  saved = {
      'model_params': saved_params, 'optimizer_state': saved_opt,
      'model_state': None, 'eval_results': serialization.to_state_dict(
          tuple(EVAL_RESULTS)),
      'train_state': dict(TRAIN_STATE, input_positions={
          'drawn': {'train': np.int64(7)},
          'rng': {'train': np.array([0, 1], np.uint32)}}),
      'global_step': 7, 'preemption_count': 0}
  update_fn = object()
  (opt, fn), got_params, model_state, train_state, eval_results, step, count = (
      _restore_fn(saved)('jax', (opt_state, update_fn), params, None,
                         {}, [], 0, 0, '/ckpt'))
  assert fn is update_fn and model_state is None
  assert got_params['w'].shape == (3, 2)
  assert got_params['w'].sharding == replicated
  np.testing.assert_array_equal(got_params['w'], saved_params['w'])
  np.testing.assert_array_equal(opt[0].count, np.asarray(opt_state[0].count)
                                + 1)
  assert train_state == TRAIN_STATE
  assert eval_results == EVAL_RESULTS
  assert (step, count) == (7, 1)
  assert next(queues.queues['train']) == (1, 'train', 7)


def test_restore_of_a_finished_trial_leaves_the_queue_alone(queues):
  saved = {'model_params': {}, 'optimizer_state': {}, 'model_state': None,
           'eval_results': {},
           'train_state': dict(TRAIN_STATE, training_complete=True,
                               input_positions={
                                   'drawn': {'train': 9},
                                   'rng': {'train': np.array([0, 1])}}),
           'global_step': 9, 'preemption_count': 2}
  _restore_fn(saved)('jax', ({}, None), {}, None, {}, [], 0, 0, '/ckpt')
  assert next(queues.queues['train']) == (1, 'train', 0)


def test_no_checkpoint_returns_the_fresh_state():
  fresh = ('jax', ({}, None), {'w': 1}, None, {'a': 1}, [], 0, 0, '/ckpt')
  assert _restore_fn(None)(*fresh) == fresh[1:-1]


def test_resume_on_an_unknown_algoperf_is_refused(tmp_path, monkeypatch):
  runner = tmp_path / 'submission_runner.py'
  runner.write_text('def train_once():\n  pass\n')
  monkeypatch.setattr(algoperf_runner, 'fingerprint',
                      lambda _: ('0' * 16, '1' * 16))
  with pytest.raises(SystemExit) as e:
    algoperf_runner.run(str(runner), ['--resume_last_run'])
  assert 'is not a version whose resume faults are known here' in str(
      e.value)
  assert 'checkpoint_utils.py 0000000000000000' in str(e.value)
  assert algoperf_runner.main(['--check', str(runner)]) == 1


def test_train_once_source_is_read_without_running_the_file(tmp_path):
  runner = tmp_path / 'submission_runner.py'
  runner.write_text('raise SystemExit\n\ndef train_once(a):\n  return a\n')
  assert algoperf_runner.train_once_source(str(runner)) == (
      'def train_once(a):\n  return a')
