#!/usr/bin/env bash
# The whole test suite: unit, contract and integration tests (real Metaflow runs, real
# local servers), plus lint. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
if [ -f package.json ]; then
  npm ci --silent --no-audit --no-fund
fi
. .venv/bin/activate
ruff check .
ruff format --check .
mypy
# Two workers, one test file per worker at a time (files share module-level servers).
python -m pytest -n "${HITL_TEST_WORKERS:-2}" --dist loadfile "$@"
# The compatibility matrix (README) runs with the full suite, not with a pytest subset.
if [ "$#" -eq 0 ] || [ "$*" = "-q" ]; then
  bash scripts/compat.sh
fi
