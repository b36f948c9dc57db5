"""Building blocks of the on-demand benchmark harness (tests/benchmarks/run.py)."""
