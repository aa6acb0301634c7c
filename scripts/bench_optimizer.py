"""One optimizer update and its state per device, as ratios to NadamW.

For a model of about 10M float32 parameters (`--sizes`), replicated over
`--num_devices` forced CPU devices as AlgoPerf lays params out, times one
jitted, donated `update + apply_updates` of NadamW, NadamW+EMA and
NadamW+LAWA with its queue on the device (L=20), each snapshotting every
step (the worst case), and reads the bytes each device holds of their states
from the arrays' addressable shards. LAWA with its queue in host memory keeps
NadamW's device state and update (its snapshots leave the jitted step; see
`scripts.bench_train_step` for their cost); its host bytes are listed too.
Rounds interleave the optimizers so machine noise hits all alike; the ratios
are of medians measured in the same run.

The EMA update is memory-bound: NadamW reads g, m, v, p and writes m, v, p
(7 parameter-sized passes); a snapshot reads p and the EMA and writes the EMA
(about 3 more), so the expected update ratio is about 10 / 7 = 1.43 and the
state ratio (2 + 1) / 2 = 1.5; LAWA's device queue makes it (2 + L) / 2.

  python -m scripts.bench_optimizer [--sizes 10] [--num_devices 4]
      [--rounds 5] [--steps 5] [--queue_length 20]
"""

import os
import statistics
import time
from typing import Optional, Sequence

from absl import flags
from absl import logging
import jax
import jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding, PartitionSpec
import optax

from localperf import cli
from submissions import optim

FLAGS = flags.FlagValues()
flags.DEFINE_list('sizes', ['10'], 'Model sizes in millions of parameters.',
                  flag_values=FLAGS)
flags.DEFINE_integer('num_devices', 4, 'CPU devices to force (XLA_FLAGS).',
                     flag_values=FLAGS)
flags.DEFINE_integer('rounds', 5, 'Rounds over the optimizers.',
                     flag_values=FLAGS)
flags.DEFINE_integer('steps', 5, 'Timed updates per round.',
                     flag_values=FLAGS)
flags.DEFINE_integer('queue_length', 20, "LAWA's L.", flag_values=FLAGS)


def make_params(millions: int, sharding):
  """Square float32 matrices totalling about `millions` * 1e6 parameters."""
  side = 1024
  count = max(1, round(millions * 1e6 / side**2))
  return {f'layer_{i}': jax.device_put(jnp.full((side, side), 0.01,
                                                jnp.float32), sharding)
          for i in range(count)}


def optimizers(queue_length: int):
  """The Optax chains timed, by name."""
  nadamw = lambda: optim.nadamw(1e-3, weight_decay=0.1)
  return {
      'nadamw': nadamw(),
      'nadamw+ema': optax.chain(nadamw(), optim.ema_params(decay=0.9)),
      f'nadamw+lawa(L={queue_length}, device)': optax.chain(
          nadamw(), optim.lawa_params(queue_length=queue_length)),
  }


def device_bytes(tree) -> int:
  """Bytes one device holds of `tree`, from the arrays' addressable shards."""
  per_device = {}
  for leaf in jax.tree_util.tree_leaves(tree):
    for shard in leaf.addressable_shards:
      per_device[shard.device] = (per_device.get(shard.device, 0)
                                  + shard.data.nbytes)
  return max(per_device.values())


def time_updates(optimizer, params, grads, steps, replicated):
  """Seconds per update after one warm-up (compilation) step; state bytes."""
  state = jax.jit(optimizer.init, out_shardings=replicated)(params)

  def step(params, state, grads):
    updates, state = optimizer.update(grads, state, params)
    return optax.apply_updates(params, updates), state

  step = jax.jit(step, donate_argnums=(0, 1), out_shardings=replicated)
  params = jax.tree_util.tree_map(jnp.copy, params)
  params, state = step(params, state, grads)
  jax.block_until_ready(params)
  start = time.perf_counter()
  for _ in range(steps):
    params, state = step(params, state, grads)
  jax.block_until_ready((params, state))
  return (time.perf_counter() - start) / steps, device_bytes(state)


def main(argv: Optional[Sequence[str]] = None) -> int:
  cli.parse(FLAGS, argv, __doc__)
  sizes = []
  for s in FLAGS.sizes:
    if not s.isdigit() or int(s) < 1:
      cli.usage_error(f'--sizes must be integers >= 1 (millions), got {s!r}')
    sizes.append(int(s))
  for name in ('num_devices', 'rounds', 'steps', 'queue_length'):
    if FLAGS[name].value < 1:
      cli.usage_error(f'--{name} must be an integer >= 1, got '
                      f'{FLAGS[name].value}')
  # Read when JAX first touches a device, which nothing above has done.
  os.environ['XLA_FLAGS'] = (
      os.environ.get('XLA_FLAGS', '') +
      f' --xla_force_host_platform_device_count={FLAGS.num_devices}')
  if jax.device_count() != FLAGS.num_devices:
    cli.usage_error(f'--num_devices={FLAGS.num_devices} needs a fresh '
                    f'process (JAX already has {jax.device_count()})')
  replicated = NamedSharding(Mesh(jax.devices(), ('batch',)), PartitionSpec())
  print(f'jax {jax.__version__} on {jax.device_count()} '
        f'{jax.devices()[0].platform} devices, params replicated, '
        f'{FLAGS.rounds} rounds x {FLAGS.steps} updates')
  for millions in sizes:
    params = make_params(millions, replicated)
    grads = jax.tree_util.tree_map(lambda p: jnp.full_like(p, 1e-3), params)
    n = sum(p.size for p in jax.tree_util.tree_leaves(params))
    chains = optimizers(FLAGS.queue_length)
    times = {name: [] for name in chains}
    state_bytes = {}
    for r in range(FLAGS.rounds):
      for name, optimizer in chains.items():
        seconds, state_bytes[name] = time_updates(
            optimizer, params, grads, FLAGS.steps, replicated)
        times[name].append(seconds)
      logging.info('%.1fM params: round %d/%d done', n / 1e6, r + 1,
                   FLAGS.rounds)
    base_time = statistics.median(times['nadamw'])
    base_bytes = state_bytes['nadamw']
    host = optim.lawa_host_init(params, FLAGS.queue_length)
    host_bytes = sum(x.nbytes for x in jax.tree_util.tree_leaves(host)
                     if x.ndim)
    print(f'{n / 1e6:.1f}M params, {device_bytes(params) / 2**20:.0f} MB per '
          f'device')
    print(f'  {"optimizer":<28}{"update ms":>10}{"ratio":>8}'
          f'{"state MB/device":>17}{"ratio":>8}{"host MB":>9}')
    for name in times:
      t = statistics.median(times[name])
      print(f'  {name:<28}{t * 1e3:>10.1f}{t / base_time:>8.2f}'
            f'{state_bytes[name] / 2**20:>17.0f}'
            f'{state_bytes[name] / base_bytes:>8.2f}{0:>9}')
    name = f'nadamw+lawa(L={FLAGS.queue_length}, host)'
    print(f'  {name:<28}{"as nadamw":>10}{"":>8}{base_bytes / 2**20:>17.0f}'
          f'{1:>8.2f}{host_bytes / 2**20:>9.0f}')
  return 0


if __name__ == '__main__':
  raise SystemExit(main())
