#!/usr/bin/env bash
# Makes sure wrk, the load generator of the benchmark's server-under-load
# section, is installed, with apt-get on Debian/Ubuntu. When it cannot be
# installed the benchmark still runs, with a slower Go load generator, and
# says so in its report; this script then only warns.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
command -v wrk >/dev/null 2>&1 && exit 0
sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"; else return 1; fi; }
if command -v apt-get >/dev/null 2>&1; then
  echo "installing wrk (apt-get)..." >&2
  if sudo_ apt-get install -y -qq wrk >/dev/null 2>&1 \
    || { sudo_ apt-get update -qq >/dev/null 2>&1 && sudo_ apt-get install -y -qq wrk >/dev/null 2>&1; }; then
    command -v wrk >/dev/null 2>&1 && exit 0
  fi
fi
echo "warning: wrk is not installed and could not be installed; the benchmark falls back to a Go load generator" >&2
