"""AlgoPerf's submission API, for machines without `algoperf` installed.

When `algoperf` is importable its own `spec` module is re-exported instead, so
enums, exceptions and the `Workload` base class are the very same objects in
the runner, the workloads and the submissions. The stand-in mirrors
`algoperf/spec.py` of AlgoPerf v0.6 member for member (the PyTorch branch of
`output_activation_fn` aside).
"""

try:  # pragma: no cover - exercised only where AlgoPerf is installed.
  from algoperf.spec import *  # noqa: F401,F403
  USING_ALGOPERF = True
except ImportError:
  USING_ALGOPERF = False
  from localperf._spec_standin import *  # noqa: F401,F403
