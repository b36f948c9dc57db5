"""``python -m simulator ARGS``: the same as ``btar simulate ARGS``."""

import sys

from simulator.cli import main

raise SystemExit(main(sys.argv[1:], sys.stdout, sys.stderr))
