"""Training parity: PyTorch side of crates/aegis-model/examples/ae_parity.rs.

Writes shared initial weights (numpy, U(-1/sqrt(fan_in), 1/sqrt(fan_in))) to argv[2], trains the
30 -> 64 -> 32 -> 15 -> 32 -> 64 -> 30 ReLU autoencoder with Adam 1e-3 on unshuffled batches of 256
for 3 epochs, and prints the loss at the same steps as the Rust side.
"""
import sys, json, numpy as np, torch
torch.set_num_threads(1)
rng = np.random.default_rng(0)
w = [30, 64, 32, 15, 32, 64, 30]
init = []
for i in range(6):
    k = 1 / np.sqrt(w[i])
    init.append({"w": rng.uniform(-k, k, (w[i], w[i+1])).astype(np.float32).ravel().tolist(),
                 "b": rng.uniform(-k, k, w[i+1]).astype(np.float32).tolist()})
json.dump(init, open(sys.argv[2], "w"))
data = np.loadtxt(sys.argv[1], delimiter=",", skiprows=1, dtype=np.float32)[:, :-1]
data = (data - data.mean(0)) / data.std(0); x = torch.from_numpy(data)
params = []
for i, p in enumerate(init):
    W = torch.tensor(np.array(p["w"], dtype=np.float32).reshape(w[i], w[i+1]), requires_grad=True)
    B = torch.tensor(np.array(p["b"], dtype=np.float32), requires_grad=True)
    params += [W, B]
opt = torch.optim.Adam(params, lr=1e-3)
losses = []
for e in range(3):
    for s in range(0, len(x), 256):
        xb = x[s:s+256]; h = xb
        for i in range(6):
            h = h @ params[2*i] + params[2*i+1]
            if i < 5: h = torch.relu(h)
        l = ((h - xb)**2).mean(); opt.zero_grad(); l.backward(); opt.step(); losses.append(l.item())
print("torch steps 0,1,10,100,500,end:", [round(losses[i], 5) for i in (0, 1, 10, 100, 500, -1)])
