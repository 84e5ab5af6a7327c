"""Same-run reference learners on exactly Aegis's supervised inputs.

`aegis train --export-supervised DIR` writes fit.csv (features, IF score, AE error, label,
weight), valid.csv and holdout.csv. This fits LightGBM and scikit-learn's
HistGradientBoostingClassifier on the same rows and weights, with early stopping on the same
validation rows, and reports holdout ROC AUC / average precision and fit time, to set beside
Aegis's `supervised` row for the same run.

    python reference.py DIR [--threads 2]
"""

import argparse
import time

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score


def load(path):
    data = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float32)
    header = open(path).readline().strip().split(",")
    has_w = header[-1] == "weight"
    if has_w:
        return data[:, :-2], data[:, -2].astype(int), data[:, -1]
    return data[:, :-1], data[:, -1].astype(int), None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    x, y, w = load(f"{a.dir}/fit.csv")
    vx, vy, _ = load(f"{a.dir}/valid.csv")
    hx, hy, _ = load(f"{a.dir}/holdout.csv")
    print(f"fit {x.shape}, {y.sum()} frauds; valid {vx.shape}; holdout {hx.shape}, {hy.sum()} frauds")

    import lightgbm as lgb

    t = time.perf_counter()
    model = lgb.LGBMClassifier(n_estimators=400, learning_rate=0.1, num_leaves=31, min_child_samples=20,
                               reg_lambda=1.0, n_jobs=a.threads, verbose=-1)
    model.fit(x, y, sample_weight=w, eval_set=[(vx, vy)],
              callbacks=[lgb.early_stopping(30, verbose=False)])
    secs = time.perf_counter() - t
    p = model.predict_proba(hx)[:, 1]
    print(f"lightgbm        AUC {roc_auc_score(hy, p):.4f}  AP {average_precision_score(hy, p):.4f}  "
          f"fit {secs:.1f}s  trees {model.best_iteration_}")

    from sklearn.ensemble import HistGradientBoostingClassifier

    t = time.perf_counter()
    hgb = HistGradientBoostingClassifier(max_iter=400, learning_rate=0.1, max_leaf_nodes=31, l2_regularization=1.0,
                                         early_stopping=True, validation_fraction=0.2, n_iter_no_change=30,
                                         random_state=0)
    hgb.fit(x, y, sample_weight=w)
    secs = time.perf_counter() - t
    p = hgb.predict_proba(hx)[:, 1]
    print(f"hist_gradient   AUC {roc_auc_score(hy, p):.4f}  AP {average_precision_score(hy, p):.4f}  "
          f"fit {secs:.1f}s  trees {hgb.n_iter_}")


if __name__ == "__main__":
    main()
