#!/usr/bin/python3
"""Reference data for the end-to-end model tests (hessian TestDAGModelsAgainstTorch).

Interprets the DAG JSON files written by nn's TestDAGSpecFiles (dag_*.json) in
PyTorch, with deterministic parameters, inputs and directions given by
formulas that the Go test evaluates too (so nothing large is stored):

  param k (model order), element i: s = sin(0.61 i + 1.13 k + 0.2)
      conv/linear weight: s / sqrt(fan_in); bias: 0.1 s; norm weight: 1 + 0.1 s;
      norm bias: 0.1 s; embedding: 0.5 s
  direction v_k[i] = cos(0.37 i + 0.91 k); probe r_k[i] = sin(0.23 i + 0.5 k + 1)

and stores the training-mode loss (mean cross-entropy over all logit rows),
and per parameter <g, r_k> and |g| for the gradient, H v (double backprop)
and the gradient of the cross-entropy against labels sampled from the
model's softmax (the labels and their probabilities stored), in float64.
Run with /usr/bin/python3 (python3-torch); writes torch_models.json.
"""
import json
import math
import os

import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
HERE = os.path.dirname(os.path.abspath(__file__))


def formula(n, k, a, b, c):
    i = torch.arange(n, dtype=torch.float64)
    return torch.sin(a * i + b * k + c)


def param_list(dag):
    """(name, shape, kind, fan) in model order, as nn.DAG.Check."""
    shapes = {"input": list(dag["input_shape"])}
    out = []
    for n in dag["nodes"]:
        x = shapes[n["inputs"][0]]
        op, nm = n["op"], n["name"]
        if op == "conv2d":
            k, s, p = n["kernel"], n.get("stride", 1) or 1, n.get("pad", 0)
            fan = x[0] * k * k
            out.append((nm + ".weight", [n["out"], x[0], k, k], "weight", fan))
            if not n.get("no_bias"):
                out.append((nm + ".bias", [n["out"]], "bias", fan))
            shapes[nm] = [n["out"], (x[1] + 2 * p - k) // s + 1, (x[2] + 2 * p - k) // s + 1]
        elif op in ("batchnorm2d", "layernorm"):
            c = x[0] if op == "batchnorm2d" else x[-1]
            out += [(nm + ".weight", [c], "norm_weight", 1), (nm + ".bias", [c], "norm_bias", 1)]
            shapes[nm] = x
        elif op == "linear":
            out.append((nm + ".weight", [x[-1], n["out"]], "weight", x[-1]))
            if not n.get("no_bias"):
                out.append((nm + ".bias", [n["out"]], "bias", x[-1]))
            shapes[nm] = x[:-1] + [n["out"]]
        elif op == "embedding":
            out.append((nm + ".weight", [dag["tokens"], n["out"]], "embedding", 1))
            shapes[nm] = [x[0], n["out"]]
        elif op == "pos_embedding":
            out.append((nm + ".weight", list(x), "embedding", 1))
            shapes[nm] = x
        elif op == "global_avgpool":
            shapes[nm] = [x[0]]
        elif op in ("avgpool2d", "maxpool2d"):
            k = n["kernel"]
            s = n.get("stride") or k
            shapes[nm] = [x[0], (x[1] - k) // s + 1, (x[2] - k) // s + 1]
        elif op == "flatten":
            shapes[nm] = [math.prod(x)]
        else:
            shapes[nm] = x
    return out


def make_params(dag):
    ps = {}
    for k, (name, shape, kind, fan) in enumerate(param_list(dag)):
        s = formula(math.prod(shape), k, 0.61, 1.13, 0.2).reshape(shape)
        v = {"weight": s / math.sqrt(fan), "bias": 0.1 * s, "norm_weight": 1 + 0.1 * s,
             "norm_bias": 0.1 * s, "embedding": 0.5 * s}[kind]
        ps[name] = v.clone().requires_grad_(True)
    return ps


def forward(dag, ps, x):
    n = x.shape[0]
    vals = {"input": x}
    for node in dag["nodes"]:
        op, nm = node["op"], node["name"]
        ins = [vals[i] for i in node["inputs"]]
        h = ins[0]
        W, B = ps.get(nm + ".weight"), ps.get(nm + ".bias")
        if op == "conv2d":
            y = F.conv2d(h, W, B, stride=node.get("stride", 1) or 1, padding=node.get("pad", 0))
        elif op == "batchnorm2d":
            y = F.batch_norm(h, None, None, W, B, training=True, eps=node.get("eps") or 1e-5)
        elif op == "linear":
            y = h @ W + (B if B is not None else 0)
        elif op == "layernorm":
            y = F.layer_norm(h, (h.shape[-1],), W, B, node.get("eps") or 1e-5)
        elif op == "embedding":
            y = F.embedding(h.long(), W).reshape(-1, W.shape[1])
        elif op == "pos_embedding":
            t = W.shape[0]
            y = h + W.repeat(n, 1)
        elif op == "attention":
            q, k, v = ins
            heads = node["heads"]
            t = dag["input_shape"][0]
            d = q.shape[1]
            dh = d // heads

            def split(z):
                return z.reshape(n, t, heads, dh).permute(0, 2, 1, 3)
            s = split(q) @ split(k).transpose(-1, -2) / math.sqrt(dh)
            if not node.get("no_causal"):
                mask = torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1)
                s = s.masked_fill(mask, float("-inf"))
            y = (torch.softmax(s, -1) @ split(v)).permute(0, 2, 1, 3).reshape(n * t, d)
        elif op == "add":
            y = sum(ins[1:], ins[0])
        elif op == "relu":
            y = torch.relu(h)
        elif op == "tanh":
            y = torch.tanh(h)
        elif op == "sigmoid":
            y = torch.sigmoid(h)
        elif op == "gelu":
            y = F.gelu(h)
        elif op == "gelu_tanh":
            y = F.gelu(h, approximate="tanh")
        elif op == "global_avgpool":
            y = h.mean(dim=(2, 3))
        elif op == "avgpool2d":
            y = F.avg_pool2d(h, node["kernel"], node.get("stride") or node["kernel"])
        elif op == "maxpool2d":
            y = F.max_pool2d(h, node["kernel"], node.get("stride") or node["kernel"])
        elif op == "flatten":
            y = h.reshape(n, -1)
        elif op == "dropout":
            raise ValueError("dropout is not part of the reference models")
        else:
            raise ValueError("unknown op " + op)
        vals[nm] = y
    return vals[dag["output"]]


def reductions(ts, names):
    out = {}
    for k, (nm, t) in enumerate(zip(names, ts)):
        r = formula(t.numel(), k, 0.23, 0.5, 1.0)
        t = t.detach().reshape(-1)
        out[nm] = [float((t * r).sum()), float(t.norm())]
    return out


def case(name, batch, x, labels):
    with open(os.path.join(HERE, "dag_" + name + ".json")) as fh:
        dag = json.load(fh)
    ps = make_params(dag)
    names = list(ps.keys())
    plist = [ps[k] for k in names]
    z = forward(dag, ps, x)
    loss = F.cross_entropy(z, torch.tensor(labels))
    g = torch.autograd.grad(loss, plist, create_graph=True)
    vs = [formula(p.numel(), k, 0.37, 0.91, math.pi / 2).reshape(p.shape) for k, p in enumerate(plist)]
    hv = torch.autograd.grad(sum((gi * vi).sum() for gi, vi in zip(g, vs)), plist)
    probs = torch.softmax(z.detach(), -1)
    gen = torch.Generator().manual_seed(7)
    sampled = torch.multinomial(probs, 1, generator=gen).reshape(-1)
    sg = torch.autograd.grad(F.cross_entropy(forward(dag, ps, x), sampled), plist)
    return {"name": name, "batch": batch, "x": [float(v) for v in x.reshape(-1)], "labels": labels,
            "loss": float(loss), "grad": reductions(g, names), "hv": reductions(hv, names),
            "sampled_labels": [int(v) for v in sampled],
            "sampled_probs": [float(probs[r, int(l)]) for r, l in enumerate(sampled)],
            "sampled_grad": reductions(sg, names), "params": names}


cases = []
# resnet8 on 3x8x8 images, batch 4: x[i] = sin(0.37 i) + 0.2 cos(1.3 i).
i = torch.arange(4 * 3 * 8 * 8, dtype=torch.float64)
cases.append(case("resnet8", 4, (torch.sin(0.37 * i) + 0.2 * torch.cos(1.3 * i)).reshape(4, 3, 8, 8), [3, 0, 9, 5]))
# small GPT: 3 sequences of 8 tokens over 11 symbols; labels are the next tokens.
seq = [(7 * j + 3) % 11 if j % 5 else (j * j) % 11 for j in range(3 * 9)]
tok, lab = [], []
for s in range(3):
    w = seq[s * 9:(s + 1) * 9]
    tok += w[:8]
    lab += w[1:]
cases.append(case("gpt_small", 3, torch.tensor(tok, dtype=torch.float64).reshape(3, 8), lab))
path = os.path.join(HERE, "torch_models.json")
with open(path, "w") as fh:
    json.dump({"cases": cases}, fh, separators=(",", ":"))
print("wrote", path, os.path.getsize(path), "bytes;", torch.__version__)
