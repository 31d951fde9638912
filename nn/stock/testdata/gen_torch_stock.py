#!/usr/bin/python3
"""Reference data for TestStockModelsAgainstTorch: a stock-Gorgonia MLP and
convnet (as nn/stock's tests build them) in PyTorch, float64: the loss
-mean_n sum_c y log softmax(z), its gradient and H v by double backprop.
Run with /usr/bin/python3 (python3-torch); writes torch_stock.json here.
"""
import json
import os

import torch
import torch.nn.functional as F

torch.manual_seed(41)
torch.set_default_dtype(torch.float64)


def onehot(n, c):
    y = torch.zeros(n, c)
    for r in range(n):
        y[r, (2 * r + 1) % c] = 1
    return y


def nll(z, y):
    return -(y * torch.log_softmax(z, dim=1)).sum(dim=1).mean()


def mlp(x, y, w1, b1, w2, b2):
    h = torch.tanh(x @ w1 + b1)
    return nll(h @ w2 + b2, y)


def convnet(x, y, w0, w1, w3):
    h = F.max_pool2d(torch.relu(F.conv2d(x, w0, padding=1)), 2, 2)
    h = torch.sigmoid(F.conv2d(h, w1, stride=2))
    return nll(h.reshape(h.shape[0], -1) @ w3, y)


models = {
    "mlp": (mlp, {"x": torch.randn(4, 5)}, {"y": onehot(4, 3)},
            {"w1": torch.randn(5, 6) * 0.5, "b1": torch.randn(6) * 0.1, "w2": torch.randn(6, 3) * 0.5, "b2": torch.randn(3) * 0.1}),
    "convnet": (convnet, {"x": torch.randn(2, 1, 6, 6)}, {"y": onehot(2, 3)},
                {"w0": torch.randn(2, 1, 3, 3) * 0.5, "w1": torch.randn(3, 2, 2, 2) * 0.5, "w3": torch.randn(3 * 1 * 1, 3) * 0.5}),
}


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


out = []
for name, (f, xs, ys, ps) in models.items():
    params = {k: v.clone().requires_grad_(True) for k, v in ps.items()}
    loss = f(*xs.values(), *ys.values(), *params.values())
    grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
    vs = [torch.randn(p.shape) for p in params.values()]
    dot = sum((g * v).sum() for g, v in zip(grads, vs))
    hv = torch.autograd.grad(dot, list(params.values()))
    rec = {"name": name, "loss": float(loss), "tensors": {}, "params": list(params.keys())}
    for k, v in list(xs.items()) + list(ys.items()):
        rec["tensors"][k] = {"shape": list(v.shape), "data": flat(v)}
    for i, (k, v) in enumerate(ps.items()):
        rec["tensors"][k] = {"shape": list(v.shape), "data": flat(v), "v": flat(vs[i]), "grad": flat(grads[i]), "hv": flat(hv[i])}
    out.append(rec)

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_stock.json")
with open(path, "w") as fh:
    json.dump({"cases": out}, fh, separators=(",", ":"))
print("wrote", path, os.path.getsize(path), "bytes;", torch.__version__)
