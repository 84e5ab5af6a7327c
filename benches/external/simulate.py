"""An independent check on data Aegis was not designed with.

Writes a transaction file built the way the public fraud-detection handbook describes its
simulator (Le Borgne et al., "Reproducible Machine Learning for Credit Card Fraud Detection"),
implemented here from that description: customers and terminals on a 100x100 grid, each
customer shopping at terminals within radius 5, amounts from a per-customer normal, a daily
Poisson number of transactions, and three fraud scenarios:

  1. any amount above 220 is fraud;
  2. compromised terminals: each day 2 terminals are drawn, and every transaction at them in
     the next 28 days is fraud (each one looks normal for its customer);
  3. compromised customers: each day 3 customers are drawn, and over the next 14 days a third
     of their transactions have 5x the amount and are fraud.

Column names are deliberately not Aegis's (CUSTOMER_ID, TERMINAL_ID, TX_DATETIME, ...), and there
is no country or category column. Use it with --columns, never by special-casing it.

    python simulate.py --out tx.csv [--customers 5000 --terminals 10000 --days 120 --seed 0]
"""

import argparse
import datetime as dt

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--customers", type=int, default=5000)
    ap.add_argument("--terminals", type=int, default=10000)
    ap.add_argument("--days", type=int, default=120)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--start", default="2018-04-01")
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)

    cx, cy = rng.uniform(0, 100, a.customers), rng.uniform(0, 100, a.customers)
    mean_amount = rng.uniform(5, 100, a.customers)
    std_amount = mean_amount / 2
    rate = rng.uniform(0, 4, a.customers)
    tx_, ty_ = rng.uniform(0, 100, a.terminals), rng.uniform(0, 100, a.terminals)
    # Terminals within radius 5 of each customer.
    near = []
    for c in range(a.customers):
        d2 = (tx_ - cx[c]) ** 2 + (ty_ - cy[c]) ** 2
        near.append(np.flatnonzero(d2 < 25))

    cust, term, secs, amount = [], [], [], []
    for c in range(a.customers):
        if len(near[c]) == 0:
            continue
        n_per_day = rng.poisson(rate[c], a.days)
        total = int(n_per_day.sum())
        if total == 0:
            continue
        day = np.repeat(np.arange(a.days), n_per_day)
        t = rng.normal(86400 / 2, 20000, total).astype(np.int64)
        keep = (t > 0) & (t < 86400)
        day, t = day[keep], t[keep]
        amt = rng.normal(mean_amount[c], std_amount[c], len(t))
        neg = amt < 0
        amt[neg] = rng.uniform(0, 2 * mean_amount[c], neg.sum())
        cust.append(np.full(len(t), c))
        term.append(rng.choice(near[c], len(t)))
        secs.append(day * 86400 + t)
        amount.append(np.round(amt, 2))
    cust, term = np.concatenate(cust), np.concatenate(term)
    secs, amount = np.concatenate(secs), np.concatenate(amount)
    order = np.argsort(secs, kind="stable")
    cust, term, secs, amount = cust[order], term[order], secs[order], amount[order]
    day = secs // 86400
    fraud = np.zeros(len(secs), dtype=np.int8)
    scenario = np.zeros(len(secs), dtype=np.int8)

    big = amount > 220
    fraud[big], scenario[big] = 1, 1
    for d in range(a.days):
        for t in rng.choice(a.terminals, 2, replace=False):
            hit = (term == t) & (day >= d) & (day < d + 28) & (fraud == 0)
            fraud[hit], scenario[hit] = 1, 2
        for c in rng.choice(a.customers, 3, replace=False):
            idx = np.flatnonzero((cust == c) & (day >= d) & (day < d + 14) & (fraud == 0))
            if len(idx) == 0:
                continue
            pick = rng.choice(idx, len(idx) // 3, replace=False)
            amount[pick] = np.round(amount[pick] * 5, 2)
            fraud[pick], scenario[pick] = 1, 3

    start = dt.datetime.fromisoformat(a.start)
    with open(a.out, "w") as f:
        f.write("TRANSACTION_ID,TX_DATETIME,CUSTOMER_ID,TERMINAL_ID,TX_AMOUNT,TX_FRAUD,TX_FRAUD_SCENARIO\n")
        for i in range(len(secs)):
            ts = (start + dt.timedelta(seconds=int(secs[i]))).strftime("%Y-%m-%d %H:%M:%S")
            f.write(f"{i},{ts},{cust[i]},{term[i]},{amount[i]:.2f},{fraud[i]},{scenario[i]}\n")
    print(f"{len(secs)} transactions, {fraud.sum()} fraud ({100 * fraud.mean():.2f}%), "
          f"by scenario {np.bincount(scenario, minlength=4).tolist()}")


if __name__ == "__main__":
    main()
