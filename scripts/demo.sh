#!/usr/bin/env bash
# The README demo: a local run pauses at its gate, a reviewer approves it with structured
# input from the CLI, the run finishes, and the decision shows in `hitl audit`.
set -euo pipefail
cd "$(dirname "$0")/.."
# The package alone, without the [dev] extra the tests need: what a user installs. A venv of
# its own, so the tests' .venv (which has every extra) cannot hide a missing dependency.
VENV=${HITL_DEMO_VENV:-.venv-demo}
echo "==> setting up $VENV (pip install -e ., no extras)"
BOOT_LOG=$(mktemp)
{
  [ -x "$VENV/bin/python" ] || "${PYTHON:-python3}" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e .
} > "$BOOT_LOG" 2>&1 || { cat "$BOOT_LOG"; exit 1; }
rm -f "$BOOT_LOG"
. "$VENV/bin/activate"
# Metaflow needs a user name (it refuses "root"): the person who starts the run.
if [ -z "${METAFLOW_USER:-}" ] && { [ -z "${USER:-}" ] || [ "${USER}" = root ]; }; then
  export METAFLOW_USER=alice
fi
FLOW=examples/train_and_deploy.py
LOG=$(mktemp)

echo "==> python $FLOW run   (in the background; it will wait at the gate)"
python "$FLOW" --no-pylint run > "$LOG" 2>&1 &
RUN_PID=$!
trap 'kill $RUN_PID 2>/dev/null || true' EXIT

for _ in $(seq 1 300); do
  grep -q "is waiting for approval" "$LOG" && break
  kill -0 $RUN_PID 2>/dev/null || { cat "$LOG"; echo "the run stopped early" >&2; exit 1; }
  sleep 0.2
done
grep "@hitl" "$LOG"

echo
echo "==> python $FLOW hitl list"
python "$FLOW" hitl list

REVIEW=.metaflow/_hitl/review.git
BRANCH=$(git --git-dir "$REVIEW" for-each-ref --sort=-creatordate --count=1 --format='%(refname:short)' refs/heads/hitl/)
echo
echo "==> the approval file on $BRANCH of the local review repo ($REVIEW):"
git --git-dir "$REVIEW" show "$BRANCH:approvals/${BRANCH#hitl/}.md" | sed -n '2,12p'
echo "    ..."

echo
echo "==> python $FLOW hitl approve --latest --as reviewer --input '{\"deploy_target\": \"staging\"}'"
python "$FLOW" hitl approve --latest --as reviewer --input '{"deploy_target": "staging"}'

wait $RUN_PID
trap - EXIT
echo
echo "==> the run finished:"
tail -n 8 "$LOG"

echo
echo "==> the decision commit, merged into main (the gate's branch is deleted once merged):"
echo "    git --git-dir $REVIEW log -1 --no-merges main"
git --git-dir "$REVIEW" log -1 --no-merges main

echo
echo "==> python $FLOW hitl audit   (from the review repo's history, checked against the store)"
python "$FLOW" hitl audit
rm -f "$LOG"
