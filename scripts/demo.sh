#!/usr/bin/env bash
# Set up btar and run the live demo on local folders (the embedded default backend).
set -euo pipefail
. "$(dirname "$0")/setup-env.sh"
if [ "$#" -eq 0 ]; then set -- --duration 30; fi
exec btar demo "$@"
