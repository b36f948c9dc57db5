#!/usr/bin/env bash
# Set up everything the suite needs and run it: lint, types, tests.
set -euo pipefail
. "$(dirname "$0")/setup-env.sh" test
if [ -f package.json ]; then
    # Azurite (the Azure Blob emulator) comes from npm, into ./node_modules.
    if [ ! -x node_modules/.bin/azurite-blob ] || [ package.json -nt node_modules/.btar-stamp ]; then
        if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --loglevel=error
        else npm install --no-audit --no-fund --loglevel=error; fi
        touch node_modules/.btar-stamp
    fi
fi
echo "== ruff"
ruff check .
echo "== mypy"
mypy
echo "== pytest"
exec pytest "$@"
