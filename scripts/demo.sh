#!/usr/bin/env bash
# Set up btar and run the live demo on local folders (the embedded default backend):
# the terminal UI on a terminal (q quits), 30 s of status lines otherwise.
set -euo pipefail
# The empty argument: sourced without one, setup-env.sh would take demo's own options
# (--headless) for pip extras.
. "$(dirname "$0")/setup-env.sh" ""
if [ "$#" -eq 0 ] && ! { [ -t 0 ] && [ -t 1 ]; }; then set -- --headless --duration 30; fi
exec btar demo "$@"
