#!/usr/bin/env bash
# `POST /predict/batch` throughput (BENCHMARKS.md, "session 7"): a fresh `aegis serve`, then
# COUNT (100,000) generated transactions over 50,000 cards sent as batches of BATCH (1,000), with
# PARALLEL (2) requests in flight; prints transactions/s from the first request to the last
# answer. The bundle is trained on three days at the same volume (see latency.sh).
#
#   cargo build --release && bash benches/http_batch.sh      (AEGIS=path/to/aegis to compare a build)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
aegis=${AEGIS:-$root/target/release/aegis}
[ -x "$aegis" ] || { echo "build first: cargo build --release" >&2; exit 1; }
count=${COUNT:-100000}
batch=${BATCH:-1000}
parallel=${PARALLEL:-2}
port=${PORT:-18091}
work=$(mktemp -d)
server=
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$work"
"$aegis" generate --rows $((count * 3)) --days 3 --cards 50000 --out train.csv >/dev/null
"$aegis" train --data train.csv --out models >/dev/null 2>&1
"$aegis" generate --rows "$count" --days 1 --cards 50000 --seed 7 --out day.csv >/dev/null
# The day's rows as JSON arrays of `batch` transactions, one file each.
python3 - "$batch" <<'PY'
import csv, json, sys
size = int(sys.argv[1])
rows = list(csv.DictReader(open("day.csv")))
for n, start in enumerate(range(0, len(rows), size)):
    items = [{"txn_id": r["txn_id"], "timestamp": r["timestamp"], "amount": float(r["amount"]),
              "country": r["country"], "merchant": r["merchant"],
              "merchant_category": r["merchant_category"], "card_num": r["card_num"]}
             for r in rows[start:start + size]]
    json.dump(items, open(f"batch-{n:05d}.json", "w"))
PY
"$aegis" serve --models models/current --db results.db --addr "127.0.0.1:$port" --log warn >/dev/null 2>&1 &
server=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.2; done
started=$(date +%s.%N)
ls batch-*.json | xargs -P "$parallel" -I{} curl -sf -o /dev/null -H 'content-type: application/json' \
  --data-binary @{} "http://127.0.0.1:$port/predict/batch"
ended=$(date +%s.%N)
stored=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^aegis_store_write_seconds_count/ {print $2}')
awk -v n="$count" -v s="$started" -v e="$ended" -v b="$batch" -v p="$parallel" -v st="${stored:-?}" \
  'BEGIN { printf "%d transactions in batches of %d, %d in flight: %.2f s, %.0f transactions/s (stored: %s)\n", n, b, p, e - s, n / (e - s), st }'
