#!/usr/bin/env bash
# `make run`: start PostgreSQL if needed, start aerofn in the background,
# deploy the examples and print how to call them. `make stop` stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
state=.aerofn
mkdir -p "$state"
pidfile=$state/aerofn.pid

if [ "${1:-}" = stop ]; then
  if [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null; then echo "stopped aerofn"; else echo "aerofn is not running"; fi
  rm -f "$pidfile"; exit 0
fi

./scripts/ensure-postgres.sh

# The admin connection: trust auth as postgres where the machine allows it,
# else a superuser role made over the local socket (peer auth).
if [ ! -f "$state/env" ]; then
  url="postgres://postgres@127.0.0.1:5432/aerofn?sslmode=disable"
  if ! psql "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable" -Atqc 'select 1' >/dev/null 2>&1; then
    pw=$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')
    sql="DO \$\$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname='aerofn_admin') THEN CREATE ROLE aerofn_admin LOGIN SUPERUSER; END IF; END\$\$; ALTER ROLE aerofn_admin PASSWORD '$pw';"
    if [ "$(id -u)" = 0 ]; then su postgres -c "psql -qc \"$sql\""; else sudo -u postgres psql -qc "$sql"; fi
    url="postgres://aerofn_admin:$pw@127.0.0.1:5432/aerofn?sslmode=disable"
  fi
  rand() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
  umask 077
  cat > "$state/env" <<ENV
AEROFN_DATABASE_URL=$url
AEROFN_JWT_SECRET=$(rand)
AEROFN_SECRETS_KEY=$(rand)
AEROFN_DATA_DIR=$state/data
AEROFN_LISTEN=${AEROFN_LISTEN:-127.0.0.1:8080}
ENV
fi
set -a; . "$state/env"; set +a

# Create the database if it is missing.
base=${AEROFN_DATABASE_URL%/*}
psql "$base/postgres?sslmode=disable" -Atqc "SELECT 1 FROM pg_database WHERE datname='aerofn'" | grep -q 1 \
  || psql "$base/postgres?sslmode=disable" -qc "CREATE DATABASE aerofn"

if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  echo "aerofn already running (pid $(cat "$pidfile")); restarting"
  kill "$(cat "$pidfile")"; sleep 1
fi
nohup ./bin/aerofn serve >"$state/invocations.log" 2>"$state/server.log" &
echo $! > "$pidfile"
url="http://$AEROFN_LISTEN"
for _ in $(seq 1 100); do curl -fsS "$url/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS "$url/healthz" >/dev/null || { echo "aerofn did not start; see $state/server.log"; tail -20 "$state/server.log"; exit 1; }

eval "$(./bin/aerofn keys)"
export AEROFN_URL=$url AEROFN_SERVICE_KEY
./bin/aerofn deploy hello bin/examples/hello.wasm --description "Example 1: Hello, World" >/dev/null
./bin/aerofn deploy echo bin/examples/echo.wasm --description "returns its event" >/dev/null
echo
echo "aerofn is running at $url (pid $(cat "$pidfile"); logs in $state/; stop with: make stop)"
echo "Deployed: hello, echo. Call hello:"
echo
echo "  curl -s -X POST $url/functions/v1/hello -H 'Authorization: Bearer $AEROFN_ANON_KEY' -H 'Content-Type: application/json' -d '{\"name\":\"World\"}'"
echo
echo "Manage functions with the service key (set -a; . $state/env; set +a; then ./bin/aerofn ls):"
echo "  AEROFN_SERVICE_KEY=$AEROFN_SERVICE_KEY"
