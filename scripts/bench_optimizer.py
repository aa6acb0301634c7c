"""Cost of weight averaging in one optimizer update, as ratios to NadamW.

For models of about 10M and 100M float32 parameters, times one jitted,
donated `update + apply_updates` of NadamW, NadamW+EMA and NadamW+LAWA(L=20),
each snapshotting every step (the worst case), and counts optimizer-state
bytes. Rounds interleave the optimizers so machine noise hits all alike; the
ratios are of medians measured in the same run.

The EMA update is memory-bound: NadamW reads g, m, v, p and writes m, v, p
(7 parameter-sized passes); a snapshot reads p and the EMA and writes the EMA
(about 3 more), so the expected update ratio is about 10 / 7 = 1.43 and the
state ratio (2 + 1) / 2 = 1.5.

  python -m scripts.bench_optimizer [--sizes 10,100] [--rounds 7]
"""

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import optax

from submissions import optim


def make_params(millions: int):
  """Square float32 matrices totalling about `millions` * 1e6 parameters."""
  side = 1024
  count = max(1, round(millions * 1e6 / side**2))
  return {f'layer_{i}': jnp.full((side, side), 0.01, jnp.float32)
          for i in range(count)}


def optimizers():
  nadamw = lambda: optim.nadamw(1e-3, weight_decay=0.1)
  return {
      'nadamw': nadamw(),
      'nadamw+ema': optax.chain(nadamw(), optim.ema_params(decay=0.9)),
      'nadamw+lawa(L=20)': optax.chain(
          nadamw(), optim.lawa_params(queue_length=20)),
  }


def tree_bytes(tree) -> int:
  return sum(x.nbytes for x in jax.tree_util.tree_leaves(tree))


def time_updates(optimizer, params, grads, steps):
  """Seconds per update, after one warm-up (compilation) step."""
  state = optimizer.init(params)

  def step(params, state, grads):
    updates, state = optimizer.update(grads, state, params)
    return optax.apply_updates(params, updates), state

  step = jax.jit(step, donate_argnums=(0, 1))
  params = jax.tree_util.tree_map(jnp.copy, params)
  params, state = step(params, state, grads)
  jax.block_until_ready(params)
  start = time.perf_counter()
  for _ in range(steps):
    params, state = step(params, state, grads)
  jax.block_until_ready((params, state))
  return (time.perf_counter() - start) / steps, tree_bytes(state)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--sizes', default='10,100',
                      help='model sizes in millions of parameters')
  parser.add_argument('--rounds', type=int, default=5)
  parser.add_argument('--steps', type=int, default=5,
                      help='timed updates per round')
  args = parser.parse_args()
  print(f'jax {jax.__version__} on {jax.devices()[0].platform}, '
        f'{args.rounds} rounds x {args.steps} updates')
  for millions in (int(s) for s in args.sizes.split(',')):
    params = make_params(millions)
    grads = jax.tree_util.tree_map(lambda p: jnp.full_like(p, 1e-3), params)
    n = sum(p.size for p in jax.tree_util.tree_leaves(params))
    times = {name: [] for name in optimizers()}
    state_bytes = {}
    for r in range(args.rounds):
      for name, optimizer in optimizers().items():
        seconds, state_bytes[name] = time_updates(
            optimizer, params, grads, args.steps)
        times[name].append(seconds)
      print(f'  {n / 1e6:.1f}M params: round {r + 1}/{args.rounds} done',
            flush=True)
    base_time = statistics.median(times['nadamw'])
    base_bytes = state_bytes['nadamw']
    print(f'{n / 1e6:.1f}M params')
    print(f'  {"optimizer":<20}{"update ms":>10}{"ratio":>8}'
          f'{"state MB":>10}{"ratio":>8}')
    for name in times:
      t = statistics.median(times[name])
      print(f'  {name:<20}{t * 1e3:>10.1f}{t / base_time:>8.2f}'
            f'{state_bytes[name] / 2**20:>10.0f}'
            f'{state_bytes[name] / base_bytes:>8.2f}')


if __name__ == '__main__':
  main()
