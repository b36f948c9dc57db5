#!/usr/bin/env bash
# On-demand benchmarks of btar against its peers (issue 8): `make bench` or
# `bash scripts/bench.sh [--quick] [--repeat N] [--cases a,b] [--json FILE]`.
# Sets up .venv like scripts/test.sh, installs the peers (Debian's rclone when root, the AWS CLI
# from PyPI into its own venv .venv-peers: it pins botocore, .venv must not see it), then runs
# tests.benchmarks.run, which prints a table and writes bench-results.json. Never part of pytest.
set -euo pipefail
. "$(dirname "$0")/setup-env.sh" test

# rclone (Debian package). Without root or apt-get the rclone peers are skipped.
if ! command -v rclone >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        echo "bench: installing rclone (apt-get)" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rclone >/dev/null
    else
        echo "bench: rclone missing and cannot be installed here (needs root and apt-get):" \
             "rclone cases are skipped" >&2
    fi
fi

# The AWS CLI (v1, PyPI) in a separate venv: it pins its own botocore.
AWSCLI_SPEC="${BENCH_AWSCLI_SPEC:-awscli>=1.40,<2}"
if [ ! -x .venv-peers/bin/aws ]; then
    echo "bench: installing the AWS CLI into .venv-peers" >&2
    "${PYTHON:-python3}" -m venv .venv-peers
    .venv-peers/bin/python -m pip install --quiet --upgrade pip
    .venv-peers/bin/python -m pip install --quiet "$AWSCLI_SPEC"
fi

exec .venv/bin/python -m tests.benchmarks.run "$@"
