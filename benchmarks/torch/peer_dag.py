#!/usr/bin/env python3
"""PyTorch peer of curvopt's BenchmarkDAG: ResNet-20 and gpt-tiny.

Same architectures as nn.ResNet(20, 3, 32, 10) (He et al. CIFAR ResNet,
option-B projection shortcuts, batch norm in training mode) at batch 128, and
nn.GPT(GPTConfig{Vocab: 65}) (4 pre-norm blocks, 4 heads, width 128,
context 64, GELU-tanh MLP, separate q/k/v projections, untied head) at batch
16, float32, on CPU with 2 threads. Times the gradient (forward+backward),
the Hessian-vector product by double backprop, the sampled-label (GNB)
gradient, and SGD and Adam steps: the median over repeats of N timed steps.

Each workload gets its own copy of the model (and optimizer) and is warmed
on its own until its time per call settles (peertime.warm: at least
--warmup calls), so the order the workloads run in does not move a figure.
--order reverse runs them the other way round (gpt-tiny first, Adam step
first); --order both runs both orders, each in a fresh process, and prints
each figure in both and their difference, the check that the order does not
matter.

    /usr/bin/python3 benchmarks/torch/peer_dag.py --json out.json
    /usr/bin/python3 benchmarks/torch/peer_dag.py --order both

Run it in the same session as the Go benchmarks (benchmarks/torch/ratio_dag.sh)
and compare ratios: the machines are shared and noisy. The timing loop is
peertime.py's, shared with peer.py.
"""
import argparse
import math

import peertime

torch = peertime.import_torch("peer_dag.py")
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(h)) + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, depth=20, classes=10):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        layers, cin = [], 16
        for s, w in enumerate((16, 32, 64)):
            for b in range(n):
                layers.append(Block(cin, w, 2 if s > 0 and b == 0 else 1))
                cin = w
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        h = self.layers(F.relu(self.bn1(self.conv1(x))))
        return self.fc(h.mean(dim=(2, 3)))


class GPTBlock(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.ln_1, self.ln_2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.q, self.k, self.v, self.proj = (nn.Linear(d, d) for _ in range(4))
        self.fc, self.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x):
        n, t, d = x.shape
        h = self.ln_1(x)

        def split(z):
            return z.view(n, t, self.heads, d // self.heads).transpose(1, 2)
        s = split(self.q(h)) @ split(self.k(h)).transpose(-1, -2) / math.sqrt(d // self.heads)
        mask = torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1)
        a = torch.softmax(s.masked_fill(mask, float("-inf")), -1) @ split(self.v(h))
        x = x + self.proj(a.transpose(1, 2).reshape(n, t, d))
        return x + self.fc2(F.gelu(self.fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, vocab=65, ctx=64, layers=4, heads=4, d=128):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, d), nn.Parameter(torch.zeros(ctx, d))
        self.blocks = nn.Sequential(*[GPTBlock(d, heads) for _ in range(layers)])
        self.ln_f, self.head = nn.LayerNorm(d), nn.Linear(d, vocab)

    def forward(self, idx):
        h = self.blocks(self.wte(idx) + self.wpe)
        return self.head(self.ln_f(h)).reshape(-1, self.head.out_features)


def jobs(only):
    """Returns the workloads to time, in the default order: each model's
    five (peertime.NAMES), ResNet-20 first, as (model key, workload, model,
    x, y, steps) with one fixed random batch per model."""
    out = []
    if only in ("", "resnet20"):
        m, x, y = ResNet(), torch.rand(128, 3, 32, 32), torch.randint(0, 10, (128,))
        out += [("resnet20", w, m, x, y, None) for w in peertime.NAMES]
    if only in ("", "gpt-tiny"):
        m, x, y = GPT(), torch.randint(0, 65, (16, 64)), torch.randint(0, 65, (16 * 64,))
        out += [("gpt-tiny", w, m, x, y, None) for w in peertime.NAMES]
    return out


def both(a, res):
    """Runs this script twice, each in a fresh process (what ratio_dag.sh
    runs: nothing warmed before the first workload), with the workloads in
    the default order and reversed; prints each figure in both orders and
    their difference, and sets res's figures to the mean of the two."""
    import json
    import os
    import subprocess
    import sys
    import tempfile

    runs = {}
    with tempfile.TemporaryDirectory() as d:
        for o in ("forward", "reverse"):
            path = os.path.join(d, o + ".json")
            cmd = [sys.executable, os.path.abspath(__file__), "--order", o, "--json", path,
                   "--steps", str(a.steps), "--repeats", str(a.repeats), "--warmup", str(a.warmup),
                   "--warmup-seconds", str(a.warmup_seconds), "--threads", str(a.threads)]
            if a.only:
                cmd += ["--only", a.only]
            if a.cpu:
                cmd.append("--cpu")
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            with open(path) as f:
                runs[o] = json.load(f)
    models = [k for k in ("resnet20", "gpt-tiny") if k in runs["forward"]]
    print("| workload | forward ms | reverse ms | reverse / forward |")
    print("|---|---|---|---|")
    worst = 0.0
    for k in models:
        res[k] = {}
        for w, f in runs["forward"][k].items():
            r = runs["reverse"][k][w]
            res[k][w] = (f + r) / 2
            worst = max(worst, abs(r / f - 1))
            print(f"| {k} {w} | {f:.1f} | {r:.1f} | {r / f:.3f} ({100 * (r / f - 1):+.1f}%) |")
    print(f"largest difference between the orders: {100 * worst:.1f}%")
    res["order"] = "both"
    res["orders"] = {o: {k: runs[o][k] for k in models} for o in runs}
    res["warmup_calls"] = {o: runs[o]["warmup_calls"] for o in runs}
    res["order_max_diff"] = worst


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    peertime.add_flags(ap, steps=5, warmup=3)
    ap.add_argument("--only", default="", choices=["resnet20", "gpt-tiny"], help="time only this model (default both)")
    ap.add_argument("--order", default="forward", choices=["forward", "reverse", "both"],
                    help="run the workloads in the default order, reversed, or both, each in a fresh process "
                         "(then print both figures and their difference; the results are their mean)")
    a = ap.parse_args()
    clock, res = peertime.setup(torch, a)
    if a.order == "both":
        both(a, res)
    else:
        first, res["warmup_calls"] = peertime.run_workloads(jobs(a.only), a.steps, a.repeats, a.warmup, clock,
                                                            reverse=a.order == "reverse",
                                                            warmup_seconds=a.warmup_seconds)
        res["order"] = a.order
        res.update(first)
        for k in first:
            print(k, " ".join(f"{q} {ms:.1f}" for q, ms in first[k].items()))
    if a.json:
        peertime.write_json(a.json, res)


if __name__ == "__main__":
    main()
