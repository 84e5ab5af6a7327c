#!/usr/bin/env bash
# /predict latency at a fixed rate (BENCHMARKS.md, "p99 at 1,000 requests/s"): RUNS runs (5), each
# against a fresh `aegis serve` on a fresh results.db, `aegis produce` sending COUNT (30,000)
# generated transactions over 10,000 cards at RATE (1,000) per second. Prints per run the
# client-side p50/p99 (produce's summary) and, from the server's own histograms, the share of
# /predict answers and of store commits (submit → commit acknowledged) slower than 1.6 ms (the histogram bucket nearest 2 ms), and
# the fsync calls of the run that took longer than 1 ms (perf trace on the server), and the
# megabytes the store wrote (WAL and database files).
#
#   cargo build --release && bash benches/latency.sh      (AEGIS=path/to/aegis to compare a build)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
aegis=${AEGIS:-$root/target/release/aegis}
[ -x "$aegis" ] || { echo "build first: cargo build --release" >&2; exit 1; }
runs=${RUNS:-5}
count=${COUNT:-30000}
rate=${RATE:-1000}
port=${PORT:-18090}
work=$(mktemp -d)
server=
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$work"
# Trained at the volume it is then sent (a day of COUNT transactions over 10,000 cards): a
# bundle trained on a thinner stream flags most of a fresh server's traffic (BENCHMARKS.md).
"$aegis" generate --rows $((count * 3)) --days 3 --cards 10000 --out tx.csv >/dev/null
"$aegis" train --data tx.csv --out models >/dev/null 2>&1

# Share of observations above 2 ms in a Prometheus histogram (cumulative buckets).
above_2ms() {
  awk -v name="$1" -v filter="$2" '
    index($0, name "_bucket") == 1 && index($0, filter) { split($0, a, "le=\""); split(a[2], b, "\""); le = b[1] + 0; if (le <= 0.0016) under = $NF }
    index($0, name "_count") == 1 && index($0, filter) { n = $NF }
    END { if (n > 0) printf "%.3f%%", 100 * (n - under) / n; else printf "-" }'
}

for run in $(seq "$runs"); do
  rm -f results.db*
  "$aegis" serve --models models/current --db results.db --addr "127.0.0.1:$port" --log warn &
  server=$!
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.2; done
  tracer=
  if command -v perf >/dev/null; then
    perf trace -p "$server" -e fsync,fdatasync --duration 1 -o fsync.txt 2>/dev/null &
    tracer=$!
  fi
  out=$("$aegis" produce --target "http://127.0.0.1:$port" --count "$count" --rate "$rate" \
    --concurrency 64 --cards 10000 --seed "$run" --quiet)
  summary=$(grep "latency p50" <<<"$out")
  flagged=$(grep -o "^flagged [0-9.]*%" <<<"$out" || echo "flagged ?")
  metrics=$(curl -s "http://127.0.0.1:$port/metrics")
  [ -n "$tracer" ] && { kill -INT "$tracer" 2>/dev/null || true; wait "$tracer" 2>/dev/null || true; }
  slow_fsync=$( [ -f fsync.txt ] && grep -c "fsync\|fdatasync" fsync.txt || echo "-")
  written=$(awk '/^write_bytes/ {printf "%.0f", $2 / 1e6}' "/proc/$server/io" 2>/dev/null || echo "-")
  kill "$server"; wait "$server" 2>/dev/null || true; server=
  echo "run $run: ${summary#*latency }, $flagged; server: /predict > 1.6 ms: $(above_2ms aegis_http_request_duration_seconds 'route="/predict"' <<<"$metrics"), store commit > 1.6 ms: $(above_2ms aegis_store_write_seconds '' <<<"$metrics"); fsyncs > 1 ms: $slow_fsync; written: $written MB"
  rm -f fsync.txt
done
