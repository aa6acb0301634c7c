"""AlgoPerf's contract on one CPU machine: spec, runner, workloads, scoring."""
