#!/usr/bin/env python3
"""PyTorch reference for the Fashion-MNIST target of cmd/train.

MLP 784-128-10 ReLU, Adam lr 1e-3, batch 128 (last partial batch kept), pixels/255,
1 epoch; prints test accuracy and training wall time per seed.

    /usr/bin/python3 benchmarks/torch/fashion_mnist.py --seeds 0 1 2

Needs python3-torch and dataset-fashion-mnist (Debian packages).
"""
import argparse
import gzip
import statistics
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

D = "/usr/share/datasets/fashion-mnist/"


def idx(path, offset):
    with gzip.open(D + path) as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    xtr = torch.tensor(idx("train-images-idx3-ubyte.gz", 16).reshape(-1, 784), dtype=torch.float32) / 255
    ytr = torch.tensor(idx("train-labels-idx1-ubyte.gz", 8), dtype=torch.long)
    xte = torch.tensor(idx("t10k-images-idx3-ubyte.gz", 16).reshape(-1, 784), dtype=torch.float32) / 255
    yte = torch.tensor(idx("t10k-labels-idx1-ubyte.gz", 8), dtype=torch.long)
    accs = []
    for s in a.seeds:
        torch.manual_seed(s)
        m = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
        opt = torch.optim.Adam(m.parameters(), lr=1e-3)
        perm = torch.randperm(len(xtr))
        t0 = time.perf_counter()
        for i in range(0, len(xtr), 128):
            j = perm[i:i + 128]
            opt.zero_grad()
            F.cross_entropy(m(xtr[j]), ytr[j]).backward()
            opt.step()
        wall = time.perf_counter() - t0
        with torch.no_grad():
            acc = (m(xte).argmax(1) == yte).float().mean().item()
        accs.append(acc)
        print(f"seed {s}: test accuracy {100 * acc:.2f}%  training {wall:.2f}s")
    if len(accs) > 1:
        print(f"mean {100 * statistics.mean(accs):.2f}% ± {100 * statistics.stdev(accs):.2f} over {len(accs)} seeds")


if __name__ == "__main__":
    main()
