#!/usr/bin/env bash
# The compatibility matrix: for each Python / Metaflow pair, a venv with that Metaflow and
# the unit + local integration tests, the Argo compile tests (Metaflow before 2.17 writes
# DAG edges as `dependencies`, 2.17+ as `depends`) and the index tests on the local store.
# The full suite runs in .venv.
#
# Then the newest Metaflow the package index serves (the dependency is a lower bound only,
# so that is what a new install gets), in a venv of its own, upgraded on every run: the
# Argo compile hook's checks of Metaflow's internals, compile and deploy, step_init
# validation and a local gate approved, rejected and retried
# (tests/integration/test_metaflow_internals.py says what the hook checks).
set -euo pipefail
cd "$(dirname "$0")/.."
PAIRS=${HITL_COMPAT_PAIRS-"3.10:2.15.21 3.12:2.17.5 3.13:2.19.39"}
LATEST_PY=${HITL_COMPAT_LATEST_PY:-3.13}

python_for() {  # the interpreter for Python version $1, or fail: it is in the table
  local py=$1 exe=""
  if command -v pyenv >/dev/null 2>&1; then   # pyenv shims refuse versions not enabled
    exe=$(ls -d "$(pyenv root)"/versions/"$py".*/bin/python"$py" 2>/dev/null | sort -V | tail -n 1 || true)
  fi
  if [ -z "$exe" ] && "python$py" -c "" >/dev/null 2>&1; then
    exe=$(command -v "python$py")
  fi
  if [ -z "$exe" ]; then
    echo "compat: python$py is not installed; it is in the compatibility table, so this fails." >&2
    return 1
  fi
  echo "$exe"
}

for pair in $PAIRS; do
  py=${pair%%:*}
  mf=${pair##*:}
  exe=$(python_for "$py")
  venv=".venv-compat-$py-$mf"
  if [ ! -x "$venv/bin/python" ]; then
    "$exe" -m venv "$venv"
  fi
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q "metaflow==$mf" -e ".[dev]"
  echo "==> compat: Python $py, Metaflow $mf"
  "$venv/bin/python" -c "import metaflow, sys; assert metaflow.__version__.startswith('$mf'), metaflow.__version__"
  "$venv/bin/python" -m pytest -q -p no:cacheprovider -n "${HITL_TEST_WORKERS:-2}" \
    --dist loadfile tests/unit \
    tests/integration/test_local_gate.py tests/integration/test_step_init_validation.py \
    tests/integration/test_argo_inject.py tests/integration/test_argo_deploy.py
  # the index of decided gates on the local store (gzip, zlib, scandir inodes per version)
  "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/contract/test_gate_reader.py -k local
done

venv=.venv-compat-latest
if [ ! -x "$venv/bin/python" ]; then
  "$(python_for "$LATEST_PY")" -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q -e ".[dev]"
"$venv/bin/python" -m pip install -q --upgrade metaflow
latest=$("$venv/bin/python" -c "import metaflow; print(metaflow.__version__)")
echo "==> compat: Python $LATEST_PY, Metaflow $latest (the newest the package index serves)"
"$venv/bin/python" -m pytest -q -p no:cacheprovider -n "${HITL_TEST_WORKERS:-2}" \
  --dist loadfile tests/integration/test_metaflow_internals.py \
  tests/integration/test_argo_inject.py tests/integration/test_argo_deploy.py \
  tests/integration/test_step_init_validation.py tests/integration/test_local_gate.py \
  -k "not test_local_gate or approve_with_input or reject_fails or retry_after_approval"
