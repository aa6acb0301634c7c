"""Reproducible local runs: one core per job, jobs as parallel processes.

XLA's CPU backend sizes its thread pool by the cores the process may run on
(its affinity mask) and splits reductions by that pool: YNNPACK reductions
(jax >= 0.8), Eigen matrix products split along the contracted dimension
(every version, e.g. a weight gradient `x.T @ dy` summed over the batch), with
work handed out to whichever thread is free. A sum taken in another order
differs in its last bit, and training amplifies that bit into another
trajectory: the same seed met molgraph_gnn's target at 0.34 of step_hint on
one machine and 0.60 on another. Pinned to one core before the backend
starts, a process gets a pool of one thread, so every reduction runs in one
fixed order, whatever the machine's core count or load.

Measured (2-core machine, jax 0.10.2; molgraph_gnn, nadamw, 300 steps, the
metrics of 3 evals): plain, restricted to one core with `taskset`, and
beside two busy processes, the pinned runs are bit-identical; unpinned, the
plain and `taskset` runs differ from step 100. On jax 0.7.0 (AlgoPerf
v0.6's pin) a sum was the same on one core and two, but `x.T @ y` over
65,536 rows was not; pinned, it was.

The speed lost to one thread per run is won back by running independent
runs (trials, seeds, workloads) as parallel processes, `jobs` of them, each
pinned to its own core (`run`). The submissions and AlgoPerf's own runner are
untouched: this is how localperf's commands run them.

With `--jobs_backend=slurm` the same calls run as SLURM array tasks of one
core each instead (`localperf.slurm`), writing to the same folders: the
same seeds give the same results.
"""

import concurrent.futures
import multiprocessing
import os
import signal
from typing import Any, Callable, Iterator, List, Mapping, Optional
from typing import Sequence

from absl import flags
from absl import logging

from localperf import cli
from localperf import slurm


def allowed_cores() -> List[int]:
  """The cores this process may run on, in increasing order."""
  return sorted(os.sched_getaffinity(0))


def _backend_started() -> bool:
  from jax._src import xla_bridge  # pylint: disable=g-import-not-at-top
  return xla_bridge.backends_are_initialized()


def pin_to_core(core: int) -> None:
  """Restricts this process to `core`, so XLA's CPU pool has one thread.

  Raises:
    RuntimeError: if JAX's backend has started (its pool is already sized).
  """
  if _backend_started():
    raise RuntimeError(
        'pin_to_core must run before JAX starts its backend (its thread pool '
        'is sized then); call it before any computation or jax.devices().')
  os.sched_setaffinity(0, {core})


def pin_this_process() -> List[int]:
  """Pins this process to its first core; returns the cores it had.

  Call it before any JAX work (as the commands do, right after their flags),
  and pass what it returns to `run`, whose workers take those cores in turn. If
  JAX's backend has started already (an interactive session, a test), the
  process stays on its threads, with a warning that runs in it are not
  reproducible.
  """
  cores = allowed_cores()
  if _backend_started():
    logging.warning('JAX started before this process could be pinned to one '
                    'core: runs in it may differ on another machine or load.')
  else:
    pin_to_core(cores[0])
  return cores


def _start_worker(cores: 'multiprocessing.Queue', log_level: int) -> None:
  """A worker's set-up: its own core, logging as the parent's, and Ctrl-C
  and SIGTERM left to the parent (which stops every worker)."""
  signal.signal(signal.SIGINT, signal.SIG_IGN)
  signal.signal(signal.SIGTERM, signal.SIG_IGN)
  pin_to_core(cores.get())
  flags.FLAGS.mark_as_parsed()  # The parent parsed them; absl's defaults do.
  logging.use_absl_handler()
  logging.get_absl_logger().setLevel(log_level)


def run(fn: Callable[..., Any], calls: Sequence[Mapping[str, Any]],
        jobs: int, cores: Sequence[int],
        backend: Optional[slurm.Backend] = None) -> Iterator[Any]:
  """`fn(**call)` for each call, in up to `jobs` processes, each on one core.

  Yields the results in the order of `calls` as they become available. With
  one job (or one call) the calls run in this process, which
  `pin_this_process` pinned; otherwise each worker process takes the next of
  `cores` (those `pin_this_process` returned), in turn, so more jobs than
  cores share them. `fn` and the calls' values must pickle (a module's
  top-level function and plain data). A call's exception is raised here; on
  KeyboardInterrupt or any error, the workers are stopped. With a `backend`
  (`backend(flag_values, folder)`), the calls run as its tasks instead.
  """
  if backend is not None:
    yield from backend.map(fn, calls)
    return
  if jobs < 1:
    raise ValueError(f'jobs must be an integer >= 1, got {jobs}.')
  jobs = min(jobs, len(calls))
  if jobs <= 1:
    yield from (fn(**call) for call in calls)
    return
  context = multiprocessing.get_context('spawn')  # No fork of a JAX process.
  queue = context.Queue()
  for i in range(jobs):
    queue.put(cores[i % len(cores)])
  executor = concurrent.futures.ProcessPoolExecutor(
      jobs, mp_context=context, initializer=_start_worker,
      initargs=(queue, logging.get_absl_logger().getEffectiveLevel()))
  futures = [executor.submit(fn, **call) for call in calls]
  try:
    for future in futures:
      yield future.result()
  except BaseException:
    for process in multiprocessing.active_children():
      process.kill()  # Workers ignore SIGTERM (`_start_worker`).
    raise
  finally:
    executor.shutdown(cancel_futures=True)


BACKENDS = ('local', 'slurm')


def define_jobs_flag(flag_values: flags.FlagValues) -> None:
  """`--jobs`, `--jobs_backend` and the `--slurm_*` flags, as every local
  command that trains takes them."""
  flags.DEFINE_integer(
      'jobs', len(allowed_cores()), 'Runs trained at once, as processes of '
      'one core each (one XLA thread: bit-identical results whatever the '
      'load or core count). Default: the cores this process may use.',
      lower_bound=1, flag_values=flag_values)
  flags.DEFINE_enum(
      'jobs_backend', 'local', BACKENDS, 'local: --jobs processes on this '
      "machine's cores; slurm: one SLURM array task of one core per run, "
      'submitted with sbatch from here, results gathered when the tasks end '
      '(the cluster decides how many run at once; localperf/slurm.py).',
      flag_values=flag_values)
  slurm.define_flags(flag_values)


def backend(flag_values: flags.FlagValues,
            folder: str) -> Optional[slurm.Backend]:
  """The backend the flags name for runs writing under `folder`: None for
  local processes. Exits with status 2 and one line if SLURM cannot take
  the runs (no sbatch, an unknown partition, `folder` node-local)."""
  if flag_values.jobs_backend == 'local':
    return None
  try:
    slurm.check(flag_values.slurm_partition, {'folder of the runs': folder})
  except ValueError as e:
    cli.usage_error(f'--jobs_backend=slurm: {e}')
  return slurm.Backend(folder, flag_values.slurm_partition,
                       flag_values.slurm_account, flag_values.slurm_time)
