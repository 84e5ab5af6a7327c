"""A Python reference pipeline for `aegis train`'s wall time and memory on the same file.

What a data scientist would write (the fraud-detection handbook's recipe): pandas rolling
features per card (count and mean amount over 1, 7, 30 days) and per merchant (count and fraud
rate over 1, 7, 30 days, with labels delayed 7 days), an IsolationForest and LightGBM, trained on
the first 80% of rows (labels known by the end of it) and evaluated on the last 20%.

    /usr/bin/time -v python python_pipeline.py tx.csv [--card card_num --time timestamp ...]
"""

import argparse
import time

import numpy as np
import pandas as pd


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--card", default="card_num")
    ap.add_argument("--time", default="timestamp")
    ap.add_argument("--amount", default="amount")
    ap.add_argument("--merchant", default="merchant")
    ap.add_argument("--label", default="label")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    t0 = time.perf_counter()
    df = pd.read_csv(a.data, usecols=[a.card, a.time, a.amount, a.merchant, a.label], dtype={a.card: str})
    df["ts"] = pd.to_datetime(df[a.time], utc=True)
    df = df.sort_values("ts", kind="stable").reset_index(drop=True)
    df["n"] = 1
    feats = ["log_amount"]
    df["log_amount"] = np.log1p(df[a.amount])
    for days in (1, 7, 30):
        roll = df.set_index("ts").groupby(a.card)[[a.amount, "n"]].rolling(f"{days}D").sum()
        roll = roll.reset_index(level=0, drop=True).sort_index(kind="stable")
        df[f"card_n_{days}"] = roll["n"].to_numpy()
        df[f"card_mean_{days}"] = (roll[a.amount] / roll["n"]).to_numpy()
        feats += [f"card_n_{days}", f"card_mean_{days}"]
    delay = pd.Timedelta(days=7)
    for days in (1, 7, 30):
        # Merchant counts and frauds over (t - delay - days, t - delay]: labels known by t.
        m = df.set_index("ts").groupby(a.merchant)[["n", a.label]]
        late = m.rolling(f"{7 + days}D").sum().reset_index(level=0, drop=True).sort_index(kind="stable")
        recent = m.rolling("7D").sum().reset_index(level=0, drop=True).sort_index(kind="stable")
        n = (late["n"] - recent["n"]).to_numpy()
        f = (late[a.label] - recent[a.label]).to_numpy()
        df[f"merchant_n_{days}"] = n
        df[f"merchant_risk_{days}"] = np.where(n > 0, f / np.maximum(n, 1), 0)
        feats += [f"merchant_n_{days}", f"merchant_risk_{days}"]
    t_feat = time.perf_counter() - t0

    n_train = int(len(df) * 0.8)
    train_end = df["ts"].iloc[n_train]
    known = df["ts"].iloc[:n_train] + delay < train_end
    x = df[feats].to_numpy(np.float32)
    y = df[a.label].to_numpy()

    from sklearn.ensemble import IsolationForest

    t1 = time.perf_counter()
    forest = IsolationForest(n_estimators=200, max_samples=256, random_state=0, n_jobs=a.threads).fit(x[:n_train])
    if_score = -forest.score_samples(x)
    t_if = time.perf_counter() - t1

    import lightgbm as lgb
    from sklearn.metrics import average_precision_score, roc_auc_score

    xs = np.column_stack([x, if_score])
    t2 = time.perf_counter()
    idx = np.flatnonzero(known.to_numpy())
    model = lgb.LGBMClassifier(n_estimators=200, learning_rate=0.1, num_leaves=31, n_jobs=a.threads, verbose=-1)
    model.fit(xs[idx], y[idx])
    t_gbdt = time.perf_counter() - t2
    p = model.predict_proba(xs[n_train:])[:, 1]
    total = time.perf_counter() - t0
    print(f"{len(df)} rows; features {t_feat:.1f}s, isolation forest {t_if:.1f}s, lightgbm {t_gbdt:.1f}s, "
          f"total {total:.1f}s; holdout ROC AUC {roc_auc_score(y[n_train:], p):.4f} "
          f"AP {average_precision_score(y[n_train:], p):.4f}")


if __name__ == "__main__":
    main()
