# Sourced by scripts/test.sh (and usable by hand): starts and stops a throwaway PostgreSQL
# cluster for tests and benchmarks.
#
#   . scripts/postgres.sh; pg_start target/pg-test; echo "$PG_URL"; …; pg_stop
#   pg_at "$PG_DATA" stop; pg_at "$PG_DATA" start     # an outage, for tests
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
  # In the configuration file, so that a plain `pg_ctl start` (pg_at DATA start) restarts it as it was.
  printf "port = %s\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\nmax_connections = 400\n" \
    "$PG_PORT" | "${PG_AS[@]}" tee -a "$PG_DATA/postgresql.conf" >/dev/null
  PG_BIN=$bin
  pg_at "$PG_DATA" start
  PG_URL="postgres://aegis@127.0.0.1:$PG_PORT/postgres"
  export PG_URL PG_DATA PG_BIN
  echo "   PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT (data $PG_DATA)"
}

pg_stop() {
  [ -n "${PG_DATA:-}" ] && [ -d "$PG_DATA" ] || return 0
  pg_at "$PG_DATA" stop >/dev/null 2>&1 || true
}

# pg_at DATA start|stop: starts or stops (fast: clients are disconnected) the cluster in DATA.
pg_at() {
  local as=() bin; bin=$(pg_bin)
  [ "$(id -u)" -eq 0 ] && as=(runuser -u postgres --)
  case $2 in
    start) "${as[@]}" "$bin/pg_ctl" -D "$1" -l "$1/server.log" -w -t 60 start >/dev/null ;;
    stop) "${as[@]}" "$bin/pg_ctl" -D "$1" -m fast -w stop >/dev/null ;;
  esac
}
