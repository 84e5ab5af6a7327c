#!/usr/bin/env bash
# Aegis's Isolation Forest vs scikit-learn's on the same 200k x 30 data set, side by side.
# Installs numpy + scikit-learn into a local venv (target/bench-venv) on first use.
#   bash benches/iforest_vs_sklearn.sh [seeds...]
# Both sides get the same number of threads: THREADS (default: every core) is Aegis's rayon
# pool and scikit-learn's n_jobs.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/bench-venv
out=target/bench-data
mkdir -p "$out"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q numpy scikit-learn scipy
fi
data="$out/iforest-200k.csv"
[ -f "$data" ] || "$venv/bin/python" benches/iforest_vs_sklearn.py "$data" 0 generate
cargo build -q --release -p aegis-model --example iforest_bench
"$venv/bin/python" -c "import sklearn; print('scikit-learn', sklearn.__version__)"
threads=${THREADS:-$(nproc)}
export RAYON_NUM_THREADS=$threads N_JOBS=$threads
echo "threads on each side: $threads"
for seed in "${@:-0 1 2}"; do
  echo "-- seed $seed"
  target/release/examples/iforest_bench "$data" "$seed" "$out/aegis-$seed.txt"
  "$venv/bin/python" benches/iforest_vs_sklearn.py "$data" "$seed" "$out/sklearn-$seed.txt"
  "$venv/bin/python" -c "
import numpy as np; from scipy.stats import spearmanr
a = np.loadtxt('$out/aegis-$seed.txt'); s = np.loadtxt('$out/sklearn-$seed.txt')
print(f'rank agreement (Spearman) aegis vs sklearn: {spearmanr(a, s).statistic:.3f}')"
done
