#!/usr/bin/env bash
# README's test command, and what .ci/run calls: set up with the dev tools, then lint, type-check
# and run the whole test suite. Extra arguments go to pytest.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/setup.sh" --dev
cd "$root"
echo "[test] ruff";  .venv/bin/ruff check .
echo "[test] mypy";  .venv/bin/mypy
echo "[test] pytest"; .venv/bin/python -m pytest -q "$@"
