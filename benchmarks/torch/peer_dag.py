#!/usr/bin/env python3
"""PyTorch peer of curvopt's BenchmarkDAG: ResNet-20 and gpt-tiny.

Same architectures as nn.ResNet(20, 3, 32, 10) (He et al. CIFAR ResNet,
option-B projection shortcuts, batch norm in training mode) at batch 128, and
nn.GPT(GPTConfig{Vocab: 65}) (4 pre-norm blocks, 4 heads, width 128,
context 64, GELU-tanh MLP, separate q/k/v projections, untied head) at batch
16, float32, on CPU with 2 threads. Times the gradient (forward+backward),
the Hessian-vector product by double backprop, the sampled-label (GNB)
gradient, and SGD and Adam steps: the median over repeats of N timed steps.

    OPENBLAS_NUM_THREADS=1 /usr/bin/python3 benchmarks/torch/peer_dag.py --json out.json

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


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    peertime.add_flags(ap, steps=5, warmup=2)
    ap.add_argument("--only", default="", choices=["resnet20", "gpt-tiny"], help="time only this model (default both)")
    a = ap.parse_args()
    clock, res = peertime.setup(torch, a)
    if a.only in ("", "resnet20"):
        res["resnet20"] = peertime.workloads(ResNet(), torch.rand(128, 3, 32, 32), torch.randint(0, 10, (128,)),
                                             a.steps, a.repeats, a.warmup, clock)
    if a.only in ("", "gpt-tiny"):
        res["gpt-tiny"] = peertime.workloads(GPT(), torch.randint(0, 65, (16, 64)), torch.randint(0, 65, (16 * 64,)),
                                             a.steps, a.repeats, a.warmup, clock)
    for k, v in res.items():
        if isinstance(v, dict):
            print(k, " ".join(f"{q} {ms:.1f}" for q, ms in v.items()))
    if a.json:
        peertime.write_json(a.json, res)


if __name__ == "__main__":
    main()
