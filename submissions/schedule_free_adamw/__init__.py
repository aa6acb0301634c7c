"""AlgoPerf submission folder."""
