#!/usr/bin/env bash
# The compatibility matrix: for each Python / Metaflow pair, a venv with that Metaflow and
# the unit + local integration tests, the Argo compile tests (Metaflow before 2.17 writes
# DAG edges as `dependencies`, 2.17+ as `depends`) and the index tests on the local store.
# The full suite runs in .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
PAIRS=${HITL_COMPAT_PAIRS:-"3.10:2.15.21 3.12:2.17.5 3.13:2.19.39"}
for pair in $PAIRS; do
  py=${pair%%:*}
  mf=${pair##*:}
  exe=""
  if command -v pyenv >/dev/null 2>&1; then   # pyenv shims refuse versions not enabled
    exe=$(ls -d "$(pyenv root)"/versions/"$py".*/bin/python"$py" 2>/dev/null | sort -V | tail -n 1 || true)
  fi
  if [ -z "$exe" ] && "python$py" -c "" >/dev/null 2>&1; then
    exe=$(command -v "python$py")
  fi
  if [ -z "$exe" ]; then
    echo "compat: python$py is not installed; it is in the compatibility table, so this fails." >&2
    exit 1
  fi
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
