#!/usr/bin/env bash
# The README demo: a local run pauses at its gate, a reviewer approves it with structured
# input from the CLI, the run finishes, and the decision shows in `hitl audit`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
. .venv/bin/activate
export USER="${USER:-$(id -un)}"          # Metaflow needs a user name; this is the run starter
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

echo
echo "==> python $FLOW hitl approve --latest --as reviewer --input '{\"deploy_target\": \"staging\"}'"
python "$FLOW" hitl approve --latest --as reviewer --input '{"deploy_target": "staging"}'

wait $RUN_PID
trap - EXIT
echo
echo "==> the run finished:"
tail -n 8 "$LOG"

echo
echo "==> python $FLOW hitl audit"
python "$FLOW" hitl audit
rm -f "$LOG"
