#!/usr/bin/python3
"""Reference data for nn's ops (TestOpsAgainstTorch): PyTorch double backprop.

For every case: inputs x (some differentiable), a weight c of the output's
shape and directions v; the loss L = sum(c * y * y) with y = op(x) (squared
so that even linear ops have a non-zero Hessian), its gradient and the
Hessian-vector products H v by double backprop, all in float64.
Run with /usr/bin/python3 (python3-torch); writes nn/testdata/torch_ops.json.
"""
import json
import math
import os

import torch
import torch.nn.functional as F

torch.manual_seed(13)
torch.set_default_dtype(torch.float64)


def rnd(*shape, scale=1.0):
    return torch.randn(*shape) * scale


def split_heads(x, n, t, h):
    d = x.shape[1] // h
    return x.reshape(n, t, h, d).permute(0, 2, 1, 3).reshape(n * h, t, d)


def merge_heads(x, n, h):
    t, d = x.shape[1], x.shape[2]
    return x.reshape(n, h, t, d).permute(0, 2, 1, 3).reshape(n * t, h * d)


def causal_softmax(s):
    t = s.shape[1]
    mask = torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1)
    return torch.softmax(s.masked_fill(mask, float("-inf")), dim=-1)


# name: (inputs [(name, tensor, differentiable)], f)
cases = {
    "exp": ([("x", rnd(3, 4, scale=0.5), True)], lambda x: torch.exp(x)),
    "log": ([("x", torch.rand(3, 4) + 0.5, True)], lambda x: torch.log(x)),
    "sigmoid": ([("x", rnd(3, 4, scale=2), True)], lambda x: torch.sigmoid(x)),
    "gelu_erf": ([("x", rnd(3, 4, scale=2), True)], lambda x: F.gelu(x)),
    "gelu_tanh": ([("x", rnd(3, 4, scale=2), True)], lambda x: F.gelu(x, approximate="tanh")),
    "softmax_axis1": ([("x", rnd(2, 3, 4), True)], lambda x: torch.softmax(x, dim=1)),
    "softmax_last": ([("x", rnd(3, 5), True)], lambda x: torch.softmax(x, dim=-1)),
    "layernorm": ([("x", rnd(4, 6), True), ("gamma", rnd(6), True), ("beta", rnd(6), True)],
                  lambda x, g, b: F.layer_norm(x, (6,), g, b, 1e-5)),
    "embedding": ([("table", rnd(7, 3), True), ("idx", torch.tensor([[0., 3., 6.], [3., 1., 0.]]), False)],
                  lambda t, i: F.embedding(i.long(), t).reshape(6, 3)),
    "bmm_nn": ([("a", rnd(2, 3, 4), True), ("b", rnd(2, 4, 5), True)], lambda a, b: torch.bmm(a, b)),
    "bmm_nt": ([("a", rnd(2, 3, 4), True), ("b", rnd(2, 5, 4), True)], lambda a, b: torch.bmm(a, b.transpose(1, 2))),
    "bmm_tn": ([("a", rnd(2, 4, 3), True), ("b", rnd(2, 4, 5), True)], lambda a, b: torch.bmm(a.transpose(1, 2), b)),
    "bmm_tt": ([("a", rnd(2, 4, 3), True), ("b", rnd(2, 5, 4), True)], lambda a, b: torch.bmm(a.transpose(1, 2), b.transpose(1, 2))),
    "split_heads": ([("x", rnd(6, 4), True)], lambda x: split_heads(x, 2, 3, 2)),
    "merge_heads": ([("x", rnd(4, 3, 2), True)], lambda x: merge_heads(x, 2, 2)),
    "causal_softmax": ([("s", rnd(2, 4, 4), True)], causal_softmax),
    "avgpool_k2s2": ([("x", rnd(2, 2, 5, 5), True)], lambda x: F.avg_pool2d(x, 2, 2)),
    "avgpool_k3s1": ([("x", rnd(1, 2, 5, 4), True)], lambda x: F.avg_pool2d(x, 3, 1)),
    "global_avgpool": ([("x", rnd(2, 3, 4, 4), True)], lambda x: x.mean(dim=(2, 3))),
    "conv1x1_s2": ([("x", rnd(2, 3, 6, 6), True), ("w", rnd(4, 3, 1, 1), True)], lambda x, w: F.conv2d(x, w, stride=2)),
    "conv3x3_s2": ([("x", rnd(2, 3, 6, 6), True), ("w", rnd(4, 3, 3, 3), True)], lambda x, w: F.conv2d(x, w, stride=2, padding=1)),
    "add_row_vector": ([("x", rnd(5, 3), True), ("b", rnd(3), True)], lambda x, b: x + b),
    "chan_mul": ([("x", rnd(2, 3, 2, 2), True), ("s", rnd(3), True)], lambda x, s: x * s.reshape(1, 3, 1, 1)),
    "chan_dot": ([("a", rnd(2, 3, 2, 2), True), ("b", rnd(2, 3, 2, 2), True)], lambda a, b: (a * b).sum(dim=(0, 2, 3))),
    "batchnorm_train": ([("x", rnd(3, 2, 2, 3), True), ("g", rnd(2), True), ("b", rnd(2), True)],
                        lambda x, g, b: F.batch_norm(x, None, None, g, b, training=True, eps=1e-5)),
    "residual": ([("x", rnd(2, 2, 4, 4), True), ("w", rnd(2, 2, 3, 3, scale=0.5), True)],
                 lambda x, w: x + torch.relu(F.conv2d(x, w, padding=1))),
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

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_ops.json")
with open(path, "w") as fh:
    json.dump(out, fh, separators=(",", ":"))
print("wrote", path, os.path.getsize(path), "bytes;", torch.__version__)
