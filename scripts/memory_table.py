"""Per-device memory of each submission on AlgoPerf v0.6's eight base workloads.

For every workload (parameter shapes from AlgoPerf's own models,
workloads_config/algoperf_param_shapes_v06.json) and submission (its
self-tuning defaults; nadamw_lawa also with its queue on the device), prints
what each device holds, all replicated as AlgoPerf's JAX workloads lay them
out: params, gradients, NadamW's state (m and v), the averaging state (the
submission's optimizer state beyond NadamW's, plus a snapshot on its way to
host memory), their total against the device memory (flagged when over: a
lower bound, activations excluded), what stays in host memory, and the
size of one checkpoint AlgoPerf's runner saves (`ckpt`: the runner's
params and the optimizer state's first element, host queue included). The
states are measured, in param copies, from each submission's own
`init_optimizer_state` on a probe model (`localperf.memory`).

  python -m scripts.memory_table [--submissions nadamw,nadamw_ema,nadamw_lawa]
      [--device_memory_gib 16] [--num_devices 8]
"""

import importlib
from typing import Dict, List, Optional, Sequence, Tuple

from absl import flags
from absl import logging

from localperf import cli
from localperf import memory

DEFAULT_SUBMISSIONS = ('nadamw', 'nadamw_ema', 'nadamw_lawa',
                       'schedule_free_adamw', 'nadamw_codesign')
# Variants beyond each submission's defaults: (label, submission, overrides).
VARIANTS = (('nadamw_lawa (device queue)', 'nadamw_lawa',
             {'lawa_queue_location': 'device'}),
            ('nadamw_codesign (select)', 'nadamw_codesign',
             {'select_every_steps': 64}))

FLAGS = flags.FlagValues()
flags.DEFINE_list('submissions', list(DEFAULT_SUBMISSIONS),
                  'Submissions (folders of submissions/), at their '
                  'self-tuning defaults.', flag_values=FLAGS)
flags.DEFINE_float('device_memory_gib', memory.DEVICE_BYTES / 2**30,
                   'Memory of one device (AlgoPerf: V100, 16 GB).',
                   flag_values=FLAGS)
flags.DEFINE_integer('num_devices', memory.NUM_DEVICES,
                     'Devices (AlgoPerf: 8); the states are replicated, so '
                     'per-device bytes do not depend on it.',
                     flag_values=FLAGS)


def measured_copies(names: Sequence[str]
                    ) -> List[Tuple[str, memory.StateCopies]]:
  """(label, state copies) per submission at its defaults, and variants.

  A submission that cannot load here (schedule_free_adamw under optax 0.2.2)
  is left out with a line on stderr saying why.
  """
  rows = []
  for name in names:
    try:
      submission = importlib.import_module(f'submissions.{name}.submission')
    except ImportError as e:
      logging.warning('%s left out of the table: %s', name, e)
      continue
    defaults = submission.SELF_TUNING_HYPERPARAMETERS
    rows.append((name, memory.state_copies(submission.init_optimizer_state,
                                           dict(defaults))))
    for label, base, overrides in VARIANTS:
      if base == name:
        rows.append((label, memory.state_copies(
            submission.init_optimizer_state, {**defaults, **overrides})))
  return rows


def format_table(counts: Dict[str, int],
                 copies: Sequence[Tuple[str, memory.StateCopies]],
                 nadamw_copies: float, device_bytes: float) -> str:
  """One row per workload and submission, GiB per device and on the host."""
  gib = lambda b: f'{b / 2**30:.2f}'
  head = (f'{"workload":<24}{"submission":<28}{"params":>8}{"grads":>8}'
          f'{"NadamW":>8}{"averaging":>11}{"total":>8}  {"fits":<6}'
          f'{"host":>8}{"ckpt":>8}')
  lines = [head, '-' * len(head)]
  for workload, count in counts.items():
    for label, c in copies:
      b = memory.workload_bytes(count, c)
      nadamw = round(nadamw_copies * b.params)
      averaging = b.optimizer - nadamw + b.in_flight
      fits = 'yes' if b.device_total <= device_bytes else 'OVER'
      lines.append(
          f'{workload:<24}{label:<28}{gib(b.params):>8}{gib(b.gradients):>8}'
          f'{gib(nadamw):>8}{gib(averaging):>11}{gib(b.device_total):>8}  '
          f'{fits:<6}{gib(b.host):>8}{gib(b.checkpoint):>8}')
    lines.append('')
  return '\n'.join(lines).rstrip()


def main(argv: Optional[Sequence[str]] = None) -> int:
  cli.parse(FLAGS, argv, __doc__)
  if FLAGS.device_memory_gib <= 0:
    cli.usage_error('--device_memory_gib must be a number > 0, got '
                    f'{FLAGS.device_memory_gib}')
  if FLAGS.num_devices < 1:
    cli.usage_error(f'--num_devices must be an integer >= 1, got '
                    f'{FLAGS.num_devices}')
  unknown = [n for n in FLAGS.submissions
             if importlib.util.find_spec(f'submissions.{n}') is None]
  if unknown or not FLAGS.submissions:
    cli.usage_error(f'--submissions must name folders of submissions/, '
                    f'e.g. {",".join(DEFAULT_SUBMISSIONS)}, got '
                    f'{",".join(unknown or FLAGS.submissions) or "none"}')
  counts = memory.load_param_counts()
  copies = measured_copies(FLAGS.submissions)
  nadamw = dict(measured_copies(['nadamw']))['nadamw'].optimizer
  device_bytes = FLAGS.device_memory_gib * 2**30
  print(f'AlgoPerf v0.6 base workloads, float32 params, {FLAGS.num_devices} '
        f'devices of {FLAGS.device_memory_gib:g} GiB, states replicated. '
        f'GiB per device (a lower bound: activations excluded) and in host '
        f'memory.')
  print('State in param copies, measured on a probe model (optimizer state '
        'per device / snapshot in flight per device / host, one per '
        'machine):')
  for label, c in copies:
    print(f'  {label:<28}{c.optimizer:>6.1f} /{c.in_flight:>4.1f} /'
          f'{c.host:>5.1f}')
  print(f'NadamW: its m and v ({nadamw:g} copies; schedule_free_adamw holds '
        'z and v instead). averaging: the optimizer state beyond NadamW\'s, '
        'plus the snapshot in flight.')
  print()
  print(format_table(counts, copies, nadamw, device_bytes))
  return 0


if __name__ == '__main__':
  raise SystemExit(main())
