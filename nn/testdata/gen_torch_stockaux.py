#!/usr/bin/python3
"""Reference data for the ops nn/stock needed (TestStockAuxAgainstTorch):
PyTorch double backprop, in the format of gen_torch_ops.py (loss
sum(c * y * y), its gradient and H v), float64.
Run with /usr/bin/python3 (python3-torch); writes nn/testdata/torch_stockaux.json.
"""
import json
import os

import torch
import torch.nn.functional as F

torch.manual_seed(29)
torch.set_default_dtype(torch.float64)


def rnd(*shape, scale=1.0):
    return torch.randn(*shape) * scale


cases = {
    "reciprocal": ([("x", torch.rand(3, 4) + 0.5, True)], lambda x: 1 / x),
    # sqrt(x)·x: with y = sqrt(x) alone the loss c·y² = c·x would be linear
    "sqrt": ([("x", torch.rand(3, 4) + 0.3, True)], lambda x: torch.sqrt(x) * x),
    "softplus": ([("x", rnd(3, 4, scale=3), True)], lambda x: F.softplus(x)),
    "log1p": ([("x", torch.rand(3, 4) - 0.5, True)], lambda x: torch.log1p(x)),
    "expm1": ([("x", rnd(3, 4, scale=0.5), True)], lambda x: torch.expm1(x)),
    "sin": ([("x", rnd(3, 4, scale=2), True)], lambda x: torch.sin(x)),
    "cos": ([("x", rnd(3, 4, scale=2), True)], lambda x: torch.cos(x)),
    "log_softmax_last": ([("x", rnd(3, 5, scale=2), True)], lambda x: torch.log_softmax(x, dim=-1)),
    "log_softmax_axis1": ([("x", rnd(2, 3, 4), True)], lambda x: torch.log_softmax(x, dim=1)),
    "slice_axis1": ([("x", rnd(2, 5, 3), True)], lambda x: x[:, 1:4, :]),
    "slice_axis0": ([("x", rnd(4, 3), True)], lambda x: x[1:3]),
    "concat_axis1": ([("a", rnd(2, 2, 3), True), ("b", rnd(2, 3, 3), True)], lambda a, b: torch.cat([a, b], dim=1)),
    "concat_axis0": ([("a", rnd(2, 3), True), ("b", rnd(1, 3), False)], lambda a, b: torch.cat([a, b], dim=0)),
}


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


out = {"loss": "sum(c * y * y)", "cases": []}
for name, (ins, f) in cases.items():
    xs = [t.clone().requires_grad_(d) for (_, t, d) in ins]
    y = f(*xs)
    c = torch.rand(y.shape) + 0.5
    loss = (c * y * y).sum()
    diff = [x for x, (_, _, d) in zip(xs, ins) if d]
    grads = torch.autograd.grad(loss, diff, create_graph=True)
    vs = [torch.randn(x.shape) for x in diff]
    dot = sum((g * v).sum() for g, v in zip(grads, vs))
    hv = torch.autograd.grad(dot, diff)
    rec = {"name": name, "inputs": [], "c": flat(c), "y_shape": list(y.shape), "y": flat(y),
           "loss_value": float(loss)}
    k = 0
    for x, (n, t, d) in zip(xs, ins):
        e = {"name": n, "shape": list(t.shape), "data": flat(t), "diff": d}
        if d:
            e["v"], e["grad"], e["hv"] = flat(vs[k]), flat(grads[k]), flat(hv[k])
            k += 1
        rec["inputs"].append(e)
    out["cases"].append(rec)

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_stockaux.json")
with open(path, "w") as fh:
    json.dump(out, fh, separators=(",", ":"))
print("wrote", path, os.path.getsize(path), "bytes;", torch.__version__)
