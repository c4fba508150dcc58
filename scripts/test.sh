#!/usr/bin/env bash
# The whole test suite: unit, contract and integration tests (real Metaflow runs, real
# local servers), plus lint. Extra arguments go to pytest.
#
#   bash scripts/test.sh                  everything: bootstrap, npm, ruff, mypy, pytest, compat
#   bash scripts/test.sh tests/unit -x    the same checks, pytest on what you name
#   bash scripts/test.sh --fast [ARGS]    the inner loop: no bootstrap, npm or mypy; ruff, then
#                                         only the pure tier (tests/unit, marker `pure`)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--fast" ]; then
  shift
  if [ ! -x .venv/bin/python ]; then
    echo "test.sh --fast: no .venv here; run 'bash scripts/test.sh' (or scripts/bootstrap.sh) once" >&2
    exit 1
  fi
  . .venv/bin/activate
  ruff check .
  ruff format --check .
  # The tier is the marker: with no arguments, tests/unit; with paths, the pure tests in them.
  exec python -m pytest -q -m pure -n "${HITL_TEST_WORKERS:-2}" "${@:-tests/unit}"
fi
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
