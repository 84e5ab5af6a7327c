"""The same autoencoder in PyTorch (CPU, one thread), for timing against ae_bench.

30 -> 64 -> 32 -> 15 -> 32 -> 64 -> 30, ReLU, linear output, MSE, Adam 1e-3, batch 256,
30 epochs, 10% validation, standardised inputs. Usage: python ae_pytorch.py data.csv
"""
import sys, time
import numpy as np
import torch

torch.set_num_threads(1)
torch.manual_seed(0)
data = np.loadtxt(sys.argv[1], delimiter=",", skiprows=1, dtype=np.float32)[:, :-1]
data = (data - data.mean(0)) / data.std(0)
rng = np.random.default_rng(0)
idx = rng.permutation(len(data))
n_val = len(data) // 10
val, train = torch.from_numpy(data[idx[:n_val]]), torch.from_numpy(data[idx[n_val:]])
d, b = data.shape[1], min(16, data.shape[1] // 2)
widths = [d, 64, 32, b, 32, 64, d]
layers = []
for i in range(len(widths) - 1):
    layers.append(torch.nn.Linear(widths[i], widths[i + 1]))
    if i + 2 < len(widths):
        layers.append(torch.nn.ReLU())
model = torch.nn.Sequential(*layers)
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
loss_fn = torch.nn.MSELoss()
t = time.perf_counter()
for epoch in range(30):
    perm = torch.randperm(len(train))
    total = 0.0
    for s in range(0, len(train), 256):
        xb = train[perm[s:s + 256]]
        opt.zero_grad()
        loss = loss_fn(model(xb), xb)
        loss.backward()
        opt.step()
        total += loss.item() * len(xb)
    with torch.no_grad():
        v = loss_fn(model(val), val).item()
    if len(sys.argv) > 2:
        print(f"epoch {epoch}: train {total / len(train):.4f}", file=sys.stderr)
elapsed = time.perf_counter() - t
print(f"pytorch {torch.__version__}  train {len(train) + len(val)} x {d} for 30 epochs: {elapsed:.1f} s, "
      f"final train loss {total / len(train):.4f}, validation {v:.4f}")
