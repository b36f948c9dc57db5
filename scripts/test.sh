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
# Debian packages that tests drive for real (tmux for the terminal UI test).
if ! command -v tmux >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 \
        && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tmux >/dev/null
fi
# Debian packages the disaster-recovery drills drive (tests/drills; skipped without them).
if { [ ! -x /usr/lib/postgresql/15/bin/initdb ] || ! command -v pgbackrest >/dev/null 2>&1 \
        || ! command -v mariadb-backup >/dev/null 2>&1 || ! command -v mariadbd >/dev/null 2>&1 \
        || ! command -v barman-cloud-backup >/dev/null 2>&1; } \
        && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        postgresql pgbackrest mariadb-server mariadb-backup barman-cli-cloud >/dev/null
fi
echo "== ruff"
ruff check .
echo "== mypy"
mypy
echo "== import boundaries"
lint-imports --no-cache
echo "== pytest"
# Two workers or more: most of the suite waits on servers and subprocesses, so it runs in
# about half the time even on 2 cores. A file stays on one worker (its servers and fixtures
# are module-scoped); each worker starts its own emulators on free ports.
exec pytest --numprocesses=auto --maxprocesses=4 --dist=loadfile "$@"
