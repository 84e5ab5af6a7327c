#!/usr/bin/env bash
# `aegis consume` throughput on SQLite and on PostgreSQL, with one and two workers, in one run
# (BENCHMARKS.md, "PostgreSQL").
#
#   cargo build --release && bash benches/consume_stores.sh [count]      (default 200,000)
#   WORKERS="1" CARDS=50000 bash benches/consume_stores.sh 300000      (the performance issue's case)
#   AEGIS=path/to/aegis …                                          (another build)
#
# Starts a Tansu broker (../shared/kafka-broker.md) and a throwaway PostgreSQL cluster
# (scripts/postgres.sh), both on free 127.0.0.1 ports, and stops them at the end. Each case gets
# a fresh topic (4 partitions) and a fresh store; the rate is measured from the first stored
# result to the last (received_at), so model loading and group joins are not counted.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
aegis=${AEGIS:-$root/target/release/aegis}
[ -x "$aegis" ] || { echo "build first: cargo build --release" >&2; exit 1; }
count=${1:-200000}
worker_counts=${WORKERS:-1 2}
cards=()
[ -n "${CARDS:-}" ] && cards=(--cards "$CARDS")
work=$(mktemp -d)
chmod 755 "$work"
# shellcheck source=scripts/tansu.sh
. "$root/scripts/tansu.sh"
tansu_start "$work/broker.log"
broker=$TANSU_PID
tansu=$TANSU
# shellcheck source=scripts/postgres.sh
. "$root/scripts/postgres.sh"
pg_start "$root/target/pg-bench"
workers=()
trap 'kill $broker "${workers[@]}" 2>/dev/null || true; pg_stop; rm -rf "$work"' EXIT
brokers=$TANSU_BROKERS
opts=(--kafka-option session.timeout.ms=6000 --kafka-option heartbeat.interval.ms=1000)
export AEGIS_CARD_KEY
AEGIS_CARD_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))')

cd "$work"
# Trained at the volume it is then sent (a day of `count`): a bundle trained on a thinner
# stream flags most of it (BENCHMARKS.md).
"$aegis" generate --rows $((count * 2)) --days 2 --cards "${CARDS:-10000}" --out tx.csv >/dev/null
"$aegis" train --data tx.csv --out models >/dev/null 2>&1

# rows DB: the stored count (SQLite file or postgres:// URL); span DB: seconds first → last.
sql() {
  case $1 in
    postgres://*) psql "$1" -Atc "$2" 2>/dev/null || echo 0 ;;
    *) python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])' "$1" "$2" 2>/dev/null || echo 0 ;;
  esac
}

case_no=0
for store in sqlite postgres; do
  for n in $worker_counts; do
    case_no=$((case_no + 1))
    topic="t$case_no"
    "$tansu" topic create --broker "tcp://$brokers" --partitions 4 "$topic" >/dev/null
    if [ $store = sqlite ]; then db="$work/results-$case_no.db"; else
      psql "$PG_URL" -qc "CREATE DATABASE bench_$case_no"; db="${PG_URL%/*}/bench_$case_no"; fi
    "$aegis" produce --target "kafka://$brokers/$topic" --count "$count" --rate 0 --concurrency 4096 \
      --quiet --seed "$case_no" "${cards[@]}" "${opts[@]}" >/dev/null
    workers=()
    for _ in $(seq "$n"); do
      "$aegis" consume --brokers "$brokers" --topic "$topic" --group "g$case_no" --models models/current \
        --db "$db" --log warn "${opts[@]}" >>"worker-$case_no.log" 2>&1 &
      workers+=($!)
    done
    stored=0
    while [ "$stored" -lt "$count" ]; do sleep 1; stored=$(sql "$db" "SELECT COUNT(*) FROM results"); done
    span=$(sql "$db" "SELECT (MAX(received_at) - MIN(received_at)) / 1000.0 FROM results")
    kill -TERM "${workers[@]}"; wait "${workers[@]}" || true; workers=()
    python3 -c "import sys; n, t = int(sys.argv[1]), float(sys.argv[2]); print(f'{sys.argv[3]:8} {sys.argv[4]} worker(s): {n} stored in {t:.1f} s (first to last result): {n / t:,.0f} transactions/s')" \
      "$stored" "$span" "$store" "$n"
  done
done
