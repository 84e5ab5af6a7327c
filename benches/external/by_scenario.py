"""Per-scenario ROC AUC and recall at the block action from an `aegis evaluate --scores` file,
joined by txn_id with the data's scenario column: for bundles (or older versions of Aegis)
whose report has no per-scenario table.

    python by_scenario.py SCORES.csv DATA.csv [--id txn_id --scenario fraud_scenario]
"""

import argparse
import csv

from sklearn.metrics import roc_auc_score


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("scores")
    ap.add_argument("data")
    ap.add_argument("--id", default="txn_id")
    ap.add_argument("--scenario", default="fraud_scenario")
    a = ap.parse_args()
    scenario = {}
    with open(a.data) as f:
        for row in csv.DictReader(f):
            scenario[row[a.id]] = row[a.scenario]
    rows = list(csv.DictReader(open(a.scores)))
    genuine = [r for r in rows if r["label"] == "0"]
    names = sorted({scenario[r["txn_id"]] for r in rows if r["label"] == "1"})
    print(f"{'scenario':<10} {'frauds':>7} {'ROC AUC':>8} {'recall@block':>13}")
    for s in names:
        frauds = [r for r in rows if r["label"] == "1" and scenario[r["txn_id"]] == s]
        subset = genuine + frauds
        auc = roc_auc_score([int(r["label"]) for r in subset], [float(r["score"]) for r in subset])
        recall = sum(r["action"] == "block" for r in frauds) / len(frauds)
        print(f"{s:<10} {len(frauds):>7} {auc:>8.3f} {recall:>13.3f}")


if __name__ == "__main__":
    main()
