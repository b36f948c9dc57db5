# `make bench` runs the on-demand benchmarks (tests/benchmarks/run.py; never part of pytest).
# Pass options with ARGS, e.g. `make bench ARGS="--quick --repeat 1"`.
ARGS ?=

.PHONY: bench
bench:
	bash scripts/bench.sh $(ARGS)
