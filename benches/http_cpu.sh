#!/usr/bin/env bash
# CPU time per request, server and load generator apart (BENCHMARKS.md, performance issue,
# target 1): wrk sends GET /health, then POST /predict (benches/http/predict.lua, a generated day
# replayed), at the same connections, against one `aegis serve` on a fresh store. For each it
# prints requests/s and the CPU microseconds per request spent by the server (utime + stime
# from /proc) and by wrk (GNU time), so the two endpoints' costs can be compared on a machine
# whose cores the server shares with its load generator.
#
#   cargo build --release && bash benches/http_cpu.sh [connections]     (default 256)
#   AEGIS=path/to/aegis …                                             (another build)
#   SCHEMA=examples/schema.toml …       (a bundle with the generator's declared fields, sent too)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
aegis=${AEGIS:-$root/target/release/aegis}
[ -x "$aegis" ] || { echo "build first: cargo build --release" >&2; exit 1; }
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }
conns=${1:-256}
duration=${DURATION:-10s}
port=${PORT:-18080}
work=$(mktemp -d)
server=
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$work"
# The same bundle and traffic as benches/http_load.sh: trained at the volume it is then sent.
"$aegis" generate --rows 200000 --days 2 --cards 50000 --out tx.csv >/dev/null
schema=${SCHEMA:+$(cd "$root" && realpath "$SCHEMA")}
"$aegis" train --data tx.csv --out models ${schema:+--schema "$schema"} >/dev/null
"$aegis" generate --rows 100000 --days 1 --cards 50000 --start "$(date -u -d "1 days ago" +%F)" \
  --seed 8 --out live.csv >/dev/null
"$aegis" serve --models models/current --db results.db --addr "127.0.0.1:$port" --log warn >/dev/null &
server=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.2; done
wrk -t2 -c16 -d3s "http://127.0.0.1:$port/health" >/dev/null # warm-up

ticks=$(getconf CLK_TCK)
cpu_seconds() { awk -v t="$ticks" '{print ($14 + $15) / t}' "/proc/$server/stat"; }
measure() { # label, then wrk's arguments
  local label=$1; shift
  local before after
  before=$(cpu_seconds)
  /usr/bin/time -f "%U %S" -o wrk.cpu wrk -t2 -c"$conns" -d"$duration" "$@" >wrk.out
  after=$(cpu_seconds)
  awk -v label="$label" -v s0="$before" -v s1="$after" '
    FNR == 1 && FILENAME ~ /cpu$/ {wrk = $1 + $2}
    /Requests\/sec/ {rate = $2}
    /requests in/ {n = $1}
    END {printf "%-16s %9.0f req/s   server %5.1f us/request   wrk %5.1f us/request\n",
      label, rate, 1e6 * (s1 - s0) / n, 1e6 * wrk / n}' wrk.cpu wrk.out
  grep -h "non-2xx" wrk.out || true
}
echo "== $conns connections, $duration each"
measure "GET /health" "http://127.0.0.1:$port/health"
measure "POST /predict" -s "$root/benches/http/predict.lua" "http://127.0.0.1:$port" -- "cpu-$RANDOM" live.csv 2 \
  ${schema:+${SEND_FIELDS-fields}}
