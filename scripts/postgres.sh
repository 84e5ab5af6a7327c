# Sourced by scripts/test.sh (and usable by hand): starts and stops a throwaway PostgreSQL
# cluster for tests and benchmarks.
#
#   . scripts/postgres.sh; pg_start target/pg-test; echo "$PG_URL"; …; pg_stop
#
# Installs Debian's `postgresql` package if no server binaries are found. The cluster gets its
# own data directory (recreated), listens on a free port on 127.0.0.1 only (no Unix socket),
# trusts local connections as the user `aegis`, and is stopped with `pg_stop`. As root, the
# server runs as the unprivileged `postgres` user (initdb refuses root); if that user cannot
# reach the given directory, a private directory under /tmp is used instead.

pg_bin() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

pg_start() {
  local want=$1
  if [ -z "$(pg_bin)" ]; then
    echo "   installing postgresql (Debian package)"
    local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  local bin; bin=$(pg_bin)
  PG_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  PG_AS=()
  mkdir -p "$want"
  PG_DATA="$(cd "$want" && pwd)/data"
  if [ "$(id -u)" -eq 0 ]; then
    PG_AS=(runuser -u postgres --)
    chown postgres "$(dirname "$PG_DATA")"
    if ! "${PG_AS[@]}" test -w "$(dirname "$PG_DATA")"; then
      PG_DATA="$(mktemp -d /tmp/aegis-pg.XXXXXX)/data"
      chown postgres "$(dirname "$PG_DATA")"
    fi
  fi
  rm -rf "$PG_DATA"
  "${PG_AS[@]}" "$bin/initdb" -D "$PG_DATA" -U aegis --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  "${PG_AS[@]}" "$bin/pg_ctl" -D "$PG_DATA" -l "$PG_DATA/server.log" -w -t 60 \
    -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c max_connections=400" \
    start >/dev/null
  PG_BIN=$bin
  PG_URL="postgres://aegis@127.0.0.1:$PG_PORT/postgres"
  export PG_URL PG_DATA PG_BIN
  echo "   PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT (data $PG_DATA)"
}

pg_stop() {
  [ -n "${PG_DATA:-}" ] && [ -d "$PG_DATA" ] || return 0
  "${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null 2>&1 || true
}
