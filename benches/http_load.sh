#!/usr/bin/env bash
# HTTP load benchmark (BENCHMARKS.md, "Scoring service"): /health vs /predict with wrk at the same
# connections, then the latency of /predict at a fixed 1,000 requests/s with `aegis produce`.
#
#   cargo build --release && bash benches/http_load.sh [connections...]
#
# Needs `wrk` (Debian: apt-get install wrk). Traffic stays on 127.0.0.1.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
aegis="$root/target/release/aegis"
[ -x "$aegis" ] || { echo "build first: cargo build --release" >&2; exit 1; }
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }
conns=("${@:-16 64}")
duration=${DURATION:-15s}
port=${PORT:-18080}
work=$(mktemp -d)
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$work"' EXIT

cd "$work"
# Trained at about the volume it is then sent (wrk replays a generated day over 50,000 cards and
# 500 merchants): a bundle trained on a thinner stream flags most of it (BENCHMARKS.md).
"$aegis" generate --rows 200000 --days 2 --cards 50000 --out tx.csv >/dev/null
"$aegis" train --data tx.csv --out models >/dev/null
# What wrk sends: for each connection count, its own generated day (the training volume,
# 100,000 transactions; 3, 2, 1 days ago; another seed each), so that no run replays another's
# card history.
"$aegis" serve --models models/current --db results.db --addr "127.0.0.1:$port" --log warn &
server=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.2; done

# Fixed rate first, on a fresh store.
echo "== POST /predict at a fixed 1,000 requests/s for 30 s (aegis produce: client-side latency)"
"$aegis" produce --target "http://127.0.0.1:$port" --count 30000 --cards 10000 --rate 1000 --concurrency 64 --quiet | tail -3
echo "-- server-side: share of /predict answered within each histogram bucket"
curl -s "http://127.0.0.1:$port/metrics" \
  | grep -E '^aegis_http_request_duration_seconds_(bucket|count)\{.*route="/predict",method="POST",status="200"' \
  | awk -F'[ "]' '/_count/ {n=$NF} /_bucket/ {le[++k]=$2; c[k]=$NF}
      END {for (i=1;i<=k;i++) if (c[i]>0) printf "   <= %s s: %.2f%%\n", le[i], 100*c[i]/n}' | head -8

wrk -t2 -c16 -d3s "http://127.0.0.1:$port/health" >/dev/null # warm-up
day=${#conns[@]}
for c in ${conns[@]}; do
  "$aegis" generate --rows 100000 --days 1 --cards 50000 --start "$(date -u -d "$day days ago" +%F)" \
    --seed "$((7 + day))" --out live.csv >/dev/null
  day=$((day - 1))
  echo "== $c connections, $duration each"
  echo "-- GET /health"
  wrk -t2 -c"$c" -d"$duration" --latency "http://127.0.0.1:$port/health" | grep -E "Requests/sec|99%|50%"
  echo "-- POST /predict (new txn_id each)"
  wrk -t2 -c"$c" -d"$duration" --latency -s "$root/benches/http/predict.lua" "http://127.0.0.1:$port" -- "c$c-$RANDOM" live.csv 2 \
    | grep -E "Requests/sec|99%|50%|non-2xx"
done
echo "flagged: $(curl -s "http://127.0.0.1:$port/metrics" | grep -E '^aegis_decisions_total\{action="(review|block)"' | awk '{s+=$2} END {print s}') of \
$(curl -s "http://127.0.0.1:$port/metrics" | grep -E '^aegis_decisions_total' | awk '{s+=$2} END {print s}')"
echo "stored: $(curl -s "http://127.0.0.1:$port/metrics" | grep -E '^aegis_decisions_total' | awk '{s+=$2} END {print s}') results"
