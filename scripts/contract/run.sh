#!/usr/bin/env bash
# The API contract: schemathesis (PyPI) with every check against a real `aegis serve`, so that
# /openapi.json keeps stating exactly what the server accepts and answers. Run by
# scripts/test.sh after `cargo test` (which builds target/debug/aegis); bounded to 150 examples
# per operation with a fixed seed. hooks.py makes generated data satisfy the two rules JSON
# Schema cannot state (Luhn, "not after tomorrow"); schemathesis.toml counts 413 as a rejection.
set -euo pipefail
cd "$(dirname "$0")/../.."

bin=target/debug/aegis
[ -x "$bin" ] || cargo build --locked
venv=target/contract-venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check "schemathesis==4.32.5"

work=$(mktemp -d "$PWD/target/contract.XXXXXX")
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT
"$bin" generate --rows 3000 --cards 200 --days 20 --out "$work/tx.csv" >/dev/null
# With the generator's declared fields: the document then states them, and they are checked too.
"$bin" train --data "$work/tx.csv" --out "$work/models" --epochs 2 --trees 50 --schema examples/schema.toml >/dev/null
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$bin" serve --models "$work/models" --db "$work/results.db" --addr "127.0.0.1:$port" --log warn >"$work/serve.log" 2>&1 &
server=$!
for _ in $(seq 100); do
  python3 -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1])" "http://127.0.0.1:$port/health" 2>/dev/null && break
  sleep 0.2
done

cd scripts/contract
SCHEMATHESIS_HOOKS=hooks "../../$venv/bin/st" --no-color --config-file schemathesis.toml run \
  "http://127.0.0.1:$port/openapi.json" --checks all --max-examples 150 --seed 1 --generation-database none
