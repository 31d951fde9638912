#!/usr/bin/env python3
"""PyTorch peer of curvopt's Go benchmarks: the same MLP and CNN steps and HVPs.

Times, on CPU with 2 threads, median over repeats of N timed steps after warm-up:
  - MLP 784-128-10 ReLU, batch 128: gradient (fwd+bwd), SGD step, Adam step,
    Hessian-vector product by double backprop; float32 and float64;
  - CNN 3x32x32 -> conv 3->32 k3 p1 -> ReLU -> maxpool 2 -> conv 32->64 k3 p1 ->
    ReLU -> maxpool 2 -> linear 4096->10, batch 64: gradient, Adam step, HVP.

Run it beside the Go benchmarks in one session so that the ratio is measured
on the same machine state (the machines are noisy; quote ratios, not times):

    GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824 \
      OPENBLAS_NUM_THREADS=1 /usr/bin/python3 benchmarks/torch/peer.py --json out.json

Needs python3 with torch (Debian: apt-get install python3-torch). No Go
benchmark depends on it. The timing loop is peertime.py's, shared with peer_dag.py.
"""
import argparse

import peertime

torch = peertime.import_torch("peer.py")
import torch.nn as nn  # noqa: E402


def mlp():
    return nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))


def cnn():
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(4096, 10))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    peertime.add_flags(ap, steps=50, warmup=10)
    ap.add_argument("--dtypes", nargs="+", default=["f32", "f64"], choices=["f32", "f64"],
                    help="dtypes to time (default f32 f64)")
    a = ap.parse_args()
    clock, res = peertime.setup(torch, a)
    for tag in a.dtypes:
        dt = torch.float32 if tag == "f32" else torch.float64
        m = mlp().to(dt)
        x = torch.randn(128, 784, dtype=dt)
        y = torch.randint(0, 10, (128,))
        res["mlp_" + tag] = peertime.workloads(m, x, y, a.steps, a.repeats, a.warmup, clock, a.warmup_seconds)
        c = cnn().to(dt)
        x = torch.randn(64, 3, 32, 32, dtype=dt)
        y = torch.randint(0, 10, (64,))
        res["cnn_" + tag] = peertime.workloads(c, x, y, max(5, a.steps // 5), a.repeats, 3, clock, a.warmup_seconds)
    print("| workload | grad | SGD step | Adam step | HVP | GNB grad |")
    print("|---|---|---|---|---|---|")
    for k, v in res.items():
        if isinstance(v, dict):
            print(f"| {k} | {v['grad']:.2f} | {v['sgd_step']:.2f} | {v['adam_step']:.2f} | {v['hvp']:.2f} | {v['gnb']:.2f} |")
    if a.json:
        peertime.write_json(a.json, res)


if __name__ == "__main__":
    main()
