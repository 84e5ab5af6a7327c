#!/usr/bin/env bash
# Autoencoder training: Aegis (candle) vs PyTorch CPU on the same data, one thread each, plus a
# step-for-step parity check from identical initial weights. Installs torch + numpy into
# target/torch-venv on first use (a large download: PyPI's torch wheel bundles CUDA libraries).
#   bash benches/ae_vs_pytorch.sh
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/torch-venv
out=target/bench-data
mkdir -p "$out"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q torch numpy
fi
data="$out/iforest-200k.csv"
[ -f "$data" ] || { echo "run benches/iforest_vs_sklearn.sh first (it writes $data)"; exit 1; }
cargo build -q --release -p aegis-model --example ae_bench --example ae_parity
echo "== timing, 200k x 30, 30 epochs, one thread"
RAYON_NUM_THREADS=1 target/release/examples/ae_bench "$data"
"$venv/bin/python" benches/ae_pytorch.py "$data"
echo "== parity from identical weights and batches (first 50k rows)"
head -50001 "$data" > "$out/ae-50k.csv"
"$venv/bin/python" benches/ae_parity.py "$out/ae-50k.csv" "$out/ae-init.json"
RAYON_NUM_THREADS=1 target/release/examples/ae_parity "$out/ae-50k.csv" "$out/ae-init.json"
