#!/usr/bin/env bash
# Times what compiled-artifact sharing is for, on the real binary: deploy of
# examples/hello on node A, the first call on node B right after (B loads
# the artifact A stored), and the first call on B restarted with an empty
# data directory. Also the CPU seconds each node spent (from /proc).
#
#   scripts/artifact-timing.sh [BINARY] [WASM]
#
# Defaults: bin/aerofn and bin/examples/hello.wasm (`make build examples`).
# Needs PostgreSQL at 127.0.0.1:5432 (user postgres, trust); creates and
# drops a database of its own.
set -euo pipefail
BIN=${1:-bin/aerofn}
WASM=${2:-bin/examples/hello.wasm}
export AEROFN_JWT_SECRET=artifact-timing-jwt-secret-0123456789abcdef
export AEROFN_SECRETS_KEY=artifact-timing-secrets-key-0123456789abcdef
eval "$("$BIN" keys)"
DB=aerofn_artifact_timing_$$
PSQL=(psql -q -h 127.0.0.1 -U postgres)
"${PSQL[@]}" -c "CREATE DATABASE $DB" >/dev/null
export AEROFN_DATABASE_URL=postgres://postgres@127.0.0.1:5432/$DB
W=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  "${PSQL[@]}" -c "DROP DATABASE IF EXISTS $DB" >/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT

start() { # name port
  AEROFN_LISTEN=127.0.0.1:$2 AEROFN_DATA_DIR=$W/$1 "$BIN" serve >"$W/$1.log" 2>&1 &
  echo $! >"$W/$1.pid"; PIDS+=("$(cat "$W/$1.pid")")
  for _ in $(seq 1 600); do curl -sf "http://127.0.0.1:$2/healthz" >/dev/null && return; sleep 0.1; done
  echo "node $1 did not start" >&2; exit 1
}
stop() { local p; p=$(cat "$W/$1.pid"); kill "$p"; wait "$p" 2>/dev/null || true; }
cpu() { awk '{printf "%.2f", ($14+$15)/100}' "/proc/$(cat "$W/$1.pid")/stat"; }
call() { # port [function]
  curl -s -o /dev/null -w "%{http_code} in %{time_total}s" -H "Authorization: Bearer $AEROFN_SERVICE_KEY" \
  -H 'Content-Type: application/json' -d '{"name":"x"}' "http://127.0.0.1:$1/functions/v1/${2:-hello}"; }

start a 18181; start b 18182
ca=$(cpu a); cb=$(cpu b)
curl -s -o /dev/null -w "deploy on A: %{http_code} in %{time_total}s" -H "Authorization: Bearer $AEROFN_SERVICE_KEY" \
  -F name=hello -F "wasm=@$WASM" http://127.0.0.1:18181/functions/v1/deploy
echo ", A's CPU $(echo "$(cpu a) - $ca" | bc) s"
echo "first call on B right after the deploy: $(call 18182), B's CPU $(echo "$(cpu b) - $cb" | bc) s"
echo "second call on B: $(call 18182)"
# A second module, called on B a few seconds after its deploy: B has loaded
# it in the background by then.
ECHO=$(dirname "$WASM")/echo.wasm
if [ -f "$ECHO" ]; then
  curl -s -o /dev/null -w "deploy of echo on A: %{http_code} in %{time_total}s\n" -H "Authorization: Bearer $AEROFN_SERVICE_KEY" \
    -F name=echo -F "wasm=@$ECHO" http://127.0.0.1:18181/functions/v1/deploy
  sleep 3
  echo "first call on B 3 s after that deploy: $(call 18182 echo)"
fi
stop b; rm -rf "$W/b"
t0=$(date +%s.%N); start b 18182; t1=$(date +%s.%N)
echo "B restarted with an empty data dir, listening after $(echo "$t1 - $t0" | bc) s"
echo "first call on restarted B: $(call 18182), B's CPU since start $(cpu b) s"
grep -h '"modules warmed"' "$W/b.log" | tail -1 || true
