#!/usr/bin/env bash
# Run a command with a throwaway PostgreSQL cluster and ONCALL_TEST_POSTGRES_URL pointing at it.
#
#   bash scripts/with-postgres.sh cargo test -p oncall-core
#
# Why a private cluster: tests must never touch a real database, and a cluster in a temp dir
# listening only on 127.0.0.1 (plus a unix socket inside that dir) needs no system config and
# disappears afterwards, even if the command fails (trap).
#
# PostgreSQL refuses to run as root, so when we are root the cluster is owned by the
# `postgres` system user (created by the Debian package) and its binaries run through runuser.
set -euo pipefail

if [ "$#" -eq 0 ]; then
    echo "usage: $0 COMMAND [ARGS...]" >&2
    exit 2
fi

find_bindir() {
    local d
    for d in /usr/lib/postgresql/*/bin; do
        if [ -x "$d/initdb" ]; then echo "$d"; fi
    done | sort -V | tail -n 1
}

BINDIR="$(find_bindir)"
if [ -z "$BINDIR" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "PostgreSQL is not installed and we are not root: install the 'postgresql' package" >&2
        exit 1
    fi
    echo "with-postgres: installing postgresql (Debian package)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2 \
        || { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2; }
    BINDIR="$(find_bindir)"
fi

PORT="${ONCALL_PG_PORT:-}"
if [ -z "$PORT" ]; then
    # First free port from 55432 upwards; /dev/tcp connect failing means nobody listens.
    PORT=55432
    while (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; do PORT=$((PORT + 1)); done
fi

TMP="$(mktemp -d /tmp/oncall-pg.XXXXXX)"
DATA="$TMP/data"

if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$TMP"
    as_pg() { runuser -u postgres -- "$@"; }
else
    as_pg() { "$@"; }
fi

cleanup() {
    as_pg "$BINDIR/pg_ctl" -D "$DATA" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

# fsync off: the cluster is disposable, and it makes tests noticeably faster.
as_pg "$BINDIR/initdb" -D "$DATA" -U oncall --auth=trust -E UTF8 --locale=C >"$TMP/initdb.log" 2>&1 \
    || { cat "$TMP/initdb.log" >&2; exit 1; }
as_pg "$BINDIR/pg_ctl" -D "$DATA" -l "$TMP/server.log" -w -t 30 \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -k $TMP -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >/dev/null || { cat "$TMP/server.log" >&2; exit 1; }
as_pg "$BINDIR/createdb" -h 127.0.0.1 -p "$PORT" -U oncall oncall_test

export ONCALL_TEST_POSTGRES_URL="postgres://oncall@127.0.0.1:$PORT/oncall_test"
echo "with-postgres: $ONCALL_TEST_POSTGRES_URL" >&2

# Not exec: the trap must run after the command to stop the cluster and delete the dir.
set +e
"$@"
STATUS=$?
set -e
exit "$STATUS"
