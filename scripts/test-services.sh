#!/usr/bin/env bash
# Install (with apt, where missing) and start the servers the test suite needs:
# PostgreSQL on 127.0.0.1:5432 with a `reportdesk` role, Redis on 127.0.0.1:6390, and
# Debian's Chromium for the browser tests, and promtool (Debian's prometheus package) for the
# alert-rule tests. Idempotent: safe to run before every test run.
set -euo pipefail

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

missing=()
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing+=(postgresql)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
if [ ${#missing[@]} -gt 0 ]; then
    echo "test-services: installing ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# PostgreSQL: Debian's newest installed major version, cluster "main".
pg_version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -qx "$pg_version main"; then
    $SUDO pg_createcluster "$pg_version" main >/dev/null
fi
if ! pg_lsclusters -h | awk -v v="$pg_version" '$1==v && $2=="main" {print $4}' | grep -q online; then
    $SUDO pg_ctlcluster "$pg_version" main start
fi
for _ in $(seq 1 30); do
    pg_isready -q -h 127.0.0.1 -p 5432 && break
    sleep 1
done
pg_isready -h 127.0.0.1 -p 5432
psql_admin() {
    if [ -n "$SUDO" ]; then sudo -u postgres psql -qtA "$@"; else su postgres -c "psql -qtA $(printf '%q ' "$@")"; fi
}
if [ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname='reportdesk'")" != "1" ]; then
    psql_admin -c "CREATE ROLE reportdesk LOGIN PASSWORD 'reportdesk' CREATEDB"
fi

# Redis on its own port, in memory only.
if ! redis-cli -p 6390 ping >/dev/null 2>&1; then
    redis-server --port 6390 --bind 127.0.0.1 --daemonize yes --save '' --appendonly no >/dev/null
    for _ in $(seq 1 20); do redis-cli -p 6390 ping >/dev/null 2>&1 && break; sleep 0.5; done
fi
redis-cli -p 6390 ping >/dev/null
echo "test-services: PostgreSQL $pg_version, Redis, Chromium and promtool ready"
