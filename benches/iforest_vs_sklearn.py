"""Isolation Forest: scikit-learn on the same data as Aegis's forest.

Generates (or reuses) 200,000 x 30 rows with 1% subtle planted anomalies, fits and scores
scikit-learn's IsolationForest with the classic defaults (200 trees, 256 samples per tree), and
reports times and ROC AUC. Run through benches/iforest_vs_sklearn.sh.
"""
import os, sys, time
import numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score

path, seed = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 0
rows, dims = 200_000, 30
if len(sys.argv) > 3 and sys.argv[3] == "generate":
    rng = np.random.default_rng(12345)
    x = rng.standard_normal((rows, dims)).astype(np.float32)
    y = np.zeros(rows, dtype=np.int8)
    anomalies = rng.choice(rows, rows // 100, replace=False)
    y[anomalies] = 1
    for i in anomalies:  # a subtle shift on 5 random features
        cols = rng.choice(dims, 5, replace=False)
        x[i, cols] += rng.choice([-2.5, 2.5], 5).astype(np.float32)
    header = ",".join([f"f{j}" for j in range(dims)] + ["label"])
    np.savetxt(path, np.column_stack([x, y]), delimiter=",", header=header, comments="",
               fmt=["%.6f"] * dims + ["%d"])
    sys.exit(0)

data = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float32)
x, y = data[:, :-1], data[:, -1].astype(int)
# As many workers as Aegis's threads (N_JOBS, set by the script): the same cores on both sides.
n_jobs = int(os.environ.get("N_JOBS", "1"))
forest = IsolationForest(n_estimators=200, max_samples=256, random_state=seed, n_jobs=n_jobs)
t = time.perf_counter(); forest.fit(x); fit = time.perf_counter() - t
t = time.perf_counter(); scores = -forest.score_samples(x); batch = time.perf_counter() - t
t = time.perf_counter()
for i in range(20):
    forest.score_samples(x[i:i + 1])
single_ms = (time.perf_counter() - t) * 1000 / 20
auc = roc_auc_score(y, scores)
print(f"sklearn fit {fit:.3f} s  score {len(x)} rows {batch:.3f} s ({len(x) / batch:.0f} rows/s, n_jobs={n_jobs})  "
      f"one row {single_ms:.2f} ms  ROC AUC {auc:.4f}")
if len(sys.argv) > 3:
    np.savetxt(sys.argv[3], scores, fmt="%.6f")
