"""The lab: instruments that study the local analogues and project results.

`calibration` checks that an analogue workload is in the real workloads'
regime (R1-R6), `sweep` sweeps schedule x averager candidates on the
analogues, and `projection` time-scales a submission's logs into a
projection of the real benchmark. They are built on the runtime (the rest
of `localperf`: spec, runner, workloads, scoring, plots); nothing in the
runtime imports them.
"""
