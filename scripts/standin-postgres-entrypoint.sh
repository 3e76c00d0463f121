#!/bin/sh
# What the official image's entrypoint does, as far as docker-compose.yml uses it: initialise
# PGDATA once with POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB, then run the server.
set -e
mkdir -p "$PGDATA" && chown -R postgres "$PGDATA" && chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pw=$(mktemp) && echo "$POSTGRES_PASSWORD" > "$pw" && chown postgres "$pw"
  runuser -u postgres -- initdb -D "$PGDATA" -U "$POSTGRES_USER" -E UTF8 --locale=C.UTF-8 --pwfile="$pw" --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pw"
  echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  runuser -u postgres -- pg_ctl -D "$PGDATA" -w start -o "-c listen_addresses=''" >/dev/null
  [ "$POSTGRES_DB" = postgres ] || runuser -u postgres -- psql -q -U "$POSTGRES_USER" -d postgres -c "CREATE DATABASE \"$POSTGRES_DB\""
  runuser -u postgres -- pg_ctl -D "$PGDATA" -w stop >/dev/null
fi
[ "$1" = postgres ] && shift && exec runuser -u postgres -- postgres -D "$PGDATA" "$@"
exec "$@"
