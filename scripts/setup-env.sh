# Sourced by the other scripts: a project virtualenv in .venv with btar installed.
# Usage: . scripts/setup-env.sh [EXTRAS]   (EXTRAS e.g. "test")
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
SPEC="."
if [ -n "${1:-}" ]; then SPEC=".[$1]"; fi
# Reinstall only when the project metadata changed since the last install.
STAMP=".venv/.btar-installed-${1:-runtime}"
if [ ! -f "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e "$SPEC"
    touch "$STAMP"
fi
export PATH="$ROOT/.venv/bin:$PATH"
