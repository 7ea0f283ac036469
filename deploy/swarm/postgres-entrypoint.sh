#!/bin/bash
# The entrypoint of shoplab/postgres (Dockerfile.postgres): on the first start (an empty data
# folder) initdb, then the shop's databases with the server on its Unix socket only; then the
# server on every interface with password auth. PID 1 stays this script so that SIGTERM
# becomes PostgreSQL's fast shutdown (SIGINT): on SIGTERM PostgreSQL itself would wait for
# every client to disconnect, and the shop's pools never do.
set -euo pipefail

fail() {
  echo "shoplab-postgres: $*" >&2
  exit 1
}

# As the postgres user; the entrypoint itself runs as root to own the volume first.
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }

max_connections="${POSTGRES_MAX_CONNECTIONS:-300}"
[[ "$max_connections" =~ ^[0-9]+$ ]] || fail "POSTGRES_MAX_CONNECTIONS must be a number, not '$max_connections'"

# A fresh volume, a bind mount or a volume from another image may come owned by root.
mkdir -p "$PGDATA" /run/postgresql
chown postgres:postgres "$PGDATA" /run/postgresql
chmod 700 "$PGDATA"

if [[ ! -s "$PGDATA/PG_VERSION" ]]; then
  [[ -n "${POSTGRES_PASSWORD:-}" ]] ||
    fail "POSTGRES_PASSWORD is not set: the first start needs the postgres user's password (hex, e.g. openssl rand -hex 16)"
  [[ "$POSTGRES_PASSWORD" =~ ^[0-9a-fA-F]+$ ]] ||
    fail "POSTGRES_PASSWORD must be hex (it goes into the services' URLs unescaped)"
  echo "shoplab-postgres: first start, creating the cluster in $PGDATA"
  password_file=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" >"$password_file"
  chown postgres "$password_file"
  # Local (Unix socket) connections inside the container are trusted, as pg_isready and an
  # operator's `docker exec ... psql` need; everything over the network needs the password.
  as_postgres initdb --username=postgres --pwfile="$password_file" --encoding=UTF8 \
    --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$password_file"
  {
    echo "host all all 0.0.0.0/0 scram-sha-256"
    echo "host all all ::/0 scram-sha-256"
  } >>"$PGDATA/pg_hba.conf"
  as_postgres pg_ctl --wait --silent --options "-c listen_addresses=''" start
  as_postgres psql --quiet --username=postgres --dbname=postgres --set ON_ERROR_STOP=1 \
    --file=/usr/local/share/shoplab/postgres-init.sql
  as_postgres pg_ctl --wait --silent --mode=fast stop
  echo "shoplab-postgres: databases created"
fi

# setpriv itself, not the function: a function in the background runs in a subshell, whose
# PID would be the one signalled.
setpriv --reuid=postgres --regid=postgres --init-groups \
  postgres -c listen_addresses='*' -c max_connections="$max_connections" &
server=$!
# Fast shutdown on either signal. A trapped signal ends `wait` early, so wait on until the
# server has written its checkpoint and exited, and exit with its status.
trap 'kill -INT "$server" 2>/dev/null' TERM INT
status=0
wait "$server" || status=$?
while kill -0 "$server" 2>/dev/null; do
  status=0
  wait "$server" || status=$?
done
exit "$status"
