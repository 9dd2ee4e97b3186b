#!/usr/bin/env bash
# Installs and starts what the test suite needs, idempotently: the PostgreSQL server the
# multi-replica tests use, Debian packages, npm packages for the SDK, MCP and browser
# tests, and Go modules. `make test` runs it first, so a fresh machine needs nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[test-deps] %s\n' "$*" >&2; }

# PostgreSQL at 127.0.0.1:5432 (trust auth, database "test").
if command -v pg_isready >/dev/null 2>&1; then
  if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
    log "starting PostgreSQL"
    if [ -d /etc/postgresql ]; then
      pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    fi
    for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
  fi
  pg_isready -h 127.0.0.1 -p 5432 -q || { log "PostgreSQL is not running at 127.0.0.1:5432"; exit 1; }
  psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='test'" | grep -q 1 ||
    psql -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE test" >/dev/null
else
  log "pg_isready not found: install PostgreSQL or set VIGIL_TEST_POSTGRES to a reachable server"
fi

# Debian packages.
need=()
for pkg in sqlite3 chromium; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
fi

# npm packages for the end-to-end tests with real clients and servers.
for dir in $(git ls-files '*package-lock.json' | xargs -r -n1 dirname); do
  if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    log "npm ci in $dir"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
done

go mod download
