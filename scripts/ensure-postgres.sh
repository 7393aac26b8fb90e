#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers on 127.0.0.1:5432, installing and
# starting one on Debian/Ubuntu when needed. Prints the admin URL to use in
# .aerofn/database-url when it had to create a password-protected admin role.
set -euo pipefail
host=127.0.0.1 port=5432
sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
as_postgres() { if [ "$(id -u)" = 0 ]; then su postgres -c "$*"; else sudo -u postgres sh -c "$*"; fi; }

if ! command -v pg_isready >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  echo "installing PostgreSQL (apt-get)..." >&2
  sudo_ apt-get update -qq
  DEBIAN_FRONTEND=noninteractive sudo_ apt-get install -y -qq postgresql postgresql-contrib >/dev/null
fi
ready() { pg_isready -q -h "$host" -p "$port" 2>/dev/null; }
if ! ready; then
  echo "starting PostgreSQL..." >&2
  if command -v pg_ctlcluster >/dev/null 2>&1 && ls /etc/postgresql/ >/dev/null 2>&1; then
    for v in $(ls /etc/postgresql); do sudo_ pg_ctlcluster --skip-systemctl-redirect "$v" main start 2>/dev/null || true; done
  fi
  ready || sudo_ service postgresql start >/dev/null 2>&1 || true
  for _ in $(seq 1 30); do ready && break; sleep 1; done
fi
ready || { echo "PostgreSQL does not answer on $host:$port" >&2; exit 1; }
