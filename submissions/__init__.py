"""AlgoPerf submissions: NadamW and NadamW with EMA or LAWA weight averaging."""
