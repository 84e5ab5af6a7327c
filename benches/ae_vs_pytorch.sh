#!/usr/bin/env bash
# Autoencoder training: Aegis (hand-written backpropagation) vs PyTorch CPU on the same data.
# (The step-for-step parity check drove candle's training step from PyTorch's initial weights; it
# went with candle. The gradients are now checked against finite differences in the unit tests.) Installs torch + numpy into
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
cargo build -q --release -p aegis-model --example ae_bench
echo "== timing, 200k x 30, 30 epochs"
target/release/examples/ae_bench "$data"
"$venv/bin/python" benches/ae_pytorch.py "$data"
