"""molgraph_gnn: motif labels, padding, loss and mAP against references."""

import collections

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn import metrics

from localperf import spec
from localperf import workloads as registry
from localperf.workloads import molgraph_gnn as mg


def _molecules(num, seed):
  rng = np.random.default_rng(seed)
  return [mg.grow_molecule(lambda: float(rng.random()), int(n))
          for n in rng.integers(5, 31, num)]


def _graph(inputs, g):
  """(atom types, {(u, v): bond type}) of graph g, read from padded arrays."""
  atoms = np.argmax(inputs['node_features'][g, :, :6], -1)[
      inputs['node_mask'][g]]
  edges = inputs['edge_mask'][g]
  bonds = {}
  for u, v, kind in zip(inputs['senders'][g][edges],
                        inputs['receivers'][g][edges],
                        np.argmax(inputs['edge_features'][g][edges], -1)):
    bonds[(int(u), int(v))] = int(kind)
  return atoms, bonds


def _distances(neighbours, start, skip=()):
  """BFS path lengths from `start`, not crossing the bond `skip`."""
  seen, queue = {start: 0}, collections.deque([start])
  while queue:
    u = queue.popleft()
    for v in neighbours[u]:
      if {u, v} != set(skip) and v not in seen:
        seen[v] = seen[u] + 1
        queue.append(v)
  return seen


def _rings(bonds):
  """The rings' atom sets: a bond is on a cycle iff its ends stay connected
  without it; in these graphs (no fused rings) its ring is the shortest."""
  neighbours = collections.defaultdict(set)
  for u, v in bonds:
    neighbours[u].add(v)
  rings = set()
  for u, v in bonds:
    path = _shortest_path(neighbours, u, v, skip=(u, v))
    if path is not None:
      rings.add(frozenset(path))
  return rings


def _counts_by_graph_search(atoms, bonds):
  """Every pattern's count from the graph alone: bridges, BFS rings."""
  neighbours = collections.defaultdict(set)
  for u, v in bonds:
    neighbours[u].add(v)
  undirected = {tuple(sorted(e)) for e in bonds}
  rings = _rings(bonds)
  on_ring = set().union(*rings)
  counts = collections.Counter()
  for u, v in undirected:
    low, high = sorted((atoms[u], atoms[v]))
    counts[('bond', low, high, bonds[(u, v)])] += 1
  for a in range(len(atoms)):
    counts[('atom', atoms[a], len(neighbours[a]), a in on_ring)] += 1
    for x in neighbours[a]:
      for y in neighbours[a]:
        if x < y:
          low, high = sorted((atoms[x], atoms[y]))
          counts[('path', low, atoms[a], high)] += 1
  for ring in rings:
    kinds = {bonds[(u, v)] for u in ring for v in ring if (u, v) in bonds}
    counts[('ring', len(ring), kinds == {mg.AROMATIC})] += 1
    for kind in {atoms[a] for a in ring} - {mg.C}:
      counts[('ring_with', len(ring), kind)] += 1
  return counts


def _shortest_path(neighbours, start, end, skip):
  """The atoms of a shortest path start..end not crossing the bond `skip`."""
  parent, queue = {start: None}, collections.deque([start])
  while queue:
    u = queue.popleft()
    for v in neighbours[u]:
      if {u, v} != set(skip) and v not in parent:
        parent[v] = u
        queue.append(v)
  if end not in parent:
    return None
  path = [end]
  while parent[path[-1]] is not None:
    path.append(parent[path[-1]])
  return path


def _labels_by_graph_search(atoms, bonds):
  counts = _counts_by_graph_search(atoms, bonds)
  return [counts[pattern] >= k for pattern, k in mg.TASKS]


def test_motif_labels_match_a_graph_search():
  molecules = _molecules(150, seed=3)
  inputs = mg.pad_graphs(molecules)
  for g, molecule in enumerate(molecules):
    atoms, bonds = _graph(inputs, g)
    assert 5 <= len(atoms) <= 30
    neighbours = collections.defaultdict(set)
    for u, v in bonds:
      neighbours[u].add(v)
    assert len(_distances(neighbours, 0)) == len(atoms)  # Connected.
    degree = np.bincount([u for u, _ in bonds], minlength=len(atoms))
    assert np.all(degree <= np.array([4, 3, 2, 2, 1, 1])[atoms])
    features = inputs['node_features'][g, :len(atoms)]
    np.testing.assert_array_equal(np.argmax(features[:, 6:10], -1) + 1,
                                  degree)
    expected = _counts_by_graph_search(atoms, bonds)
    on_ring = set().union(*_rings(bonds))
    np.testing.assert_array_equal(
        features[:, 10], [a in on_ring for a in range(len(atoms))])
    counts = mg.motif_counts(molecule)
    assert {k: v for k, v in counts.items() if v} == expected, g
    assert mg.motif_labels(molecule) == _labels_by_graph_search(atoms, bonds)


def test_tasks_are_distinct_with_a_spread_of_rare_base_rates():
  assert len(mg.TASKS) == 128 and len(set(mg.TASKS)) == 128
  labels = np.array([mg.motif_labels(m) for m in _molecules(2000, seed=4)])
  rates = labels.mean(0)
  assert 0.001 < rates.min() < 0.01 and 0.2 < rates.max() < 0.4
  assert 0.025 < np.median(rates) < 0.06
  assert len({tuple(column) for column in labels.T}) == 128


def test_split_has_missing_and_noisy_labels():
  split = mg.make_split(1000, seed=5)
  clean = np.array([_labels_by_graph_search(*_graph(split['inputs'], g))
                    for g in range(1000)], bool)
  weights = split['weights']
  targets = split['targets']
  assert set(np.unique(weights)) == {0.0, 1.0}
  assert np.all(targets[weights == 0] == 0)
  assert 1 - weights.mean() == pytest.approx(0.1, abs=0.015)
  valid = weights > 0
  assert targets[valid & clean].mean() == pytest.approx(0.9, abs=0.015)
  assert targets[valid & ~clean].mean() == pytest.approx(0.002, abs=0.0005)


def test_mean_average_precision_matches_sklearn():
  rng = np.random.default_rng(0)
  labels = (rng.random((300, 5)) < 0.3).astype(np.float32)
  labels[:, 3] = 0.0  # No positives: left out of the mean.
  scores = np.round(rng.random((300, 5)) + 0.4 * labels, 1)  # Many ties.
  mask = (rng.random((300, 5)) > 0.2).astype(np.float32)
  labels[mask == 0] = 1.0  # Missing labels must not count.
  expected = np.mean([metrics.average_precision_score(
      labels[mask[:, t] > 0, t], scores[mask[:, t] > 0, t])
                      for t in (0, 1, 2, 4)])
  assert mg.mean_average_precision(scores, labels, mask) == pytest.approx(
      expected, rel=1e-12)
  assert np.isnan(mg.mean_average_precision(scores, labels * 0, mask))


@pytest.mark.parametrize('smoothing', [0.0, 0.1])
def test_loss_matches_numpy(smoothing):
  rng = np.random.default_rng(1)
  logits = rng.normal(0, 3, (6, 128)).astype(np.float32)
  labels = (rng.random((6, 128)) < 0.4).astype(np.float32)
  mask = (rng.random((6, 128)) > 0.3).astype(np.float32)
  smoothed = (1 - smoothing) * labels + smoothing / 128
  p = 1 / (1 + np.exp(-logits.astype(np.float64)))
  per_label = -(smoothed * np.log(p) + (1 - smoothed) * np.log(1 - p))
  out = mg.MolgraphGnnWorkload().loss_fn(
      jnp.asarray(labels), jnp.asarray(logits), jnp.asarray(mask), smoothing)
  np.testing.assert_allclose(out['per_example'], per_label * mask, rtol=1e-5,
                             atol=1e-6)
  assert float(out['summed']) == pytest.approx((per_label * mask).sum(),
                                               rel=1e-5)
  assert float(out['n_valid_examples']) == mask.sum()
  unmasked = mg.MolgraphGnnWorkload().loss_fn(labels, logits,
                                               label_smoothing=smoothing)
  assert unmasked['n_valid_examples'] == 768
  assert float(unmasked['summed']) == pytest.approx(per_label.sum(), rel=1e-5)
  with pytest.raises(ValueError, match='one per label'):
    mg.MolgraphGnnWorkload().loss_fn(labels, logits, mask[:, 0])


class _SmallWorkload(mg.MolgraphGnnWorkload):
  num_train_examples = 384
  num_validation_examples = 300  # Not a multiple of the eval batch.
  num_test_examples = 130
  eval_batch_size = 128


@pytest.fixture(scope='module')
def small():
  workload = _SmallWorkload()
  params, model_state = workload.init_model_fn(jax.random.PRNGKey(0))
  return workload, params, model_state


def _logits(workload, params, inputs):
  forward = jax.jit(lambda p, x: workload.model_fn(
      p, {'inputs': x}, None, spec.ForwardPassMode.EVAL, None, False)[0])
  return np.asarray(forward(params, inputs))


def test_message_passing_ignores_padding(small):
  workload, params, _ = small
  inputs = workload.splits['validation']['inputs']
  inputs = jax.tree.map(lambda x: x[:16], inputs)
  expected = _logits(workload, params, inputs)
  rng = np.random.default_rng(2)
  grow = lambda x, n: np.concatenate(
      [x, np.zeros((16, n) + x.shape[2:], x.dtype)], 1)
  garbage = {key: grow(value, 5 if 'node' in key else 9)
             for key, value in inputs.items()}
  nodes, edges = ~garbage['node_mask'], ~garbage['edge_mask']
  garbage['node_features'][nodes] = rng.normal(0, 1e3, (nodes.sum(), 11))
  garbage['edge_features'][edges] = rng.normal(0, 1e3, (edges.sum(), 4))
  for key in ('senders', 'receivers'):
    garbage[key][edges] = rng.integers(0, 35, edges.sum())
  np.testing.assert_allclose(_logits(workload, params, garbage), expected,
                             rtol=1e-5, atol=1e-5)
  assert np.abs(expected - expected[:1]).max() > 1e-3  # Graphs differ.


def test_eval_metrics_match_a_direct_computation(small):
  workload, params, model_state = small
  result = workload.eval_model(workload.eval_batch_size, params, model_state,
                               jax.random.PRNGKey(0), '', None, 0)
  for split, prefix in (('validation', 'validation'), ('test', 'test'),
                        ('train', 'train')):
    data = workload.splits[split]
    size = getattr(workload, f'num_{split}_examples', None)
    size = size if split != 'train' else workload.num_eval_train_examples
    data = jax.tree.map(lambda x, n=size: x[:n], data)
    logits = _logits(workload, params, data['inputs']).astype(np.float64)
    labels, mask = data['targets'], data['weights']
    p = 1 / (1 + np.exp(-logits))
    loss = -(labels * np.log(p) + (1 - labels) * np.log(1 - p))
    assert result[f'{prefix}/loss'] == pytest.approx(
        (loss * mask).sum() / mask.sum(), rel=1e-4)
    ap = [metrics.average_precision_score(labels[mask[:, t] > 0, t],
                                          p[mask[:, t] > 0, t])
          for t in range(len(mg.TASKS))
          if 0 < labels[mask[:, t] > 0, t].sum() < (mask[:, t] > 0).sum()]
    assert 20 < len(ap) < len(mg.TASKS)  # Rare tasks without positives.
    assert result[f'{prefix}/mean_average_precision'] == pytest.approx(
        np.mean(ap), abs=1e-4)


def test_registry_and_constants():
  workload = registry.get_workload('molgraph_gnn')
  assert isinstance(workload, mg.MolgraphGnnWorkload)
  assert workload.target_metric_name == 'mean_average_precision'
  assert not workload.minimize_target_metric
  assert workload.has_reached_validation_target(
      {'validation/mean_average_precision':
       workload.validation_target_value + 1e-3})
  assert workload.is_output_params('decoder')
