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
benchmark depends on it.
"""
import argparse
import json
import statistics
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:  # pragma: no cover
    print("peer.py: torch is not installed (apt-get install python3-torch)", file=sys.stderr)
    sys.exit(2)


def mlp():
    return nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))


def cnn():
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(4096, 10))


CLOCK = time.perf_counter  # --cpu: time.process_time (this process's CPU time)


def timeit(fn, steps, repeats, warmup):
    for _ in range(warmup):
        fn()
    meds = []
    for _ in range(repeats):
        t0 = CLOCK()
        for _ in range(steps):
            fn()
        meds.append((CLOCK() - t0) / steps * 1e3)
    return statistics.median(meds)


def workloads(name, model, x, y, steps, repeats, warmup):
    params = list(model.parameters())
    out = {}

    def grad():
        for p in params:
            p.grad = None
        F.cross_entropy(model(x), y).backward()

    out["grad"] = timeit(grad, steps, repeats, warmup)

    for oname, opt in (("sgd", torch.optim.SGD(params, lr=0.01, momentum=0.9)),
                       ("adam", torch.optim.Adam(params, lr=1e-3))):
        def step(opt=opt):
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            opt.step()
        out[oname + "_step"] = timeit(step, steps, repeats, warmup)

    v = [torch.randn_like(p) for p in params]

    def hvp():
        loss = F.cross_entropy(model(x), y)
        gs = torch.autograd.grad(loss, params, create_graph=True)
        s = sum((g * vi).sum() for g, vi in zip(gs, v))
        torch.autograd.grad(s, params)

    out["hvp"] = timeit(hvp, steps, repeats, warmup)

    def gnb():
        with torch.no_grad():
            logits = model(x)
        yy = torch.multinomial(F.softmax(logits, dim=1), 1).squeeze(1)
        for p in params:
            p.grad = None
        F.cross_entropy(model(x), yy).backward()

    out["gnb"] = timeit(gnb, steps, repeats, warmup)
    return {name: out}


def blas_library():
    """Returns the path of the BLAS library this process loaded (Linux), or ""."""
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1]
                if "blas" in path.rsplit("/", 1)[-1]:
                    return path
    except OSError:
        pass
    return ""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=50, help="timed steps per repeat (default 50)")
    ap.add_argument("--repeats", type=int, default=3, help="repeats; the median is reported (default 3)")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", help="also write the results as JSON to this file")
    ap.add_argument("--cpu", action="store_true",
                    help="time the process's CPU time instead of wall time (robust to other load; use with --threads 1)")
    ap.add_argument("--dtypes", nargs="+", default=["f32", "f64"], choices=["f32", "f64"],
                    help="dtypes to time (default f32 f64)")
    a = ap.parse_args()
    global CLOCK
    if a.cpu:
        CLOCK = time.process_time
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    res = {"torch": torch.__version__, "threads": a.threads,
           "unit": "CPU ms per step" if a.cpu else "ms per step",
           "blas": blas_library()}
    for tag in a.dtypes:
        dt = torch.float32 if tag == "f32" else torch.float64
        m = mlp().to(dt)
        x = torch.randn(128, 784, dtype=dt)
        y = torch.randint(0, 10, (128,))
        res.update(workloads("mlp_" + tag, m, x, y, a.steps, a.repeats, a.warmup))
        c = cnn().to(dt)
        x = torch.randn(64, 3, 32, 32, dtype=dt)
        y = torch.randint(0, 10, (64,))
        res.update(workloads("cnn_" + tag, c, x, y, max(5, a.steps // 5), a.repeats, 3))
    print("| workload | grad | SGD step | Adam step | HVP | GNB grad |")
    print("|---|---|---|---|---|---|")
    for k, v in res.items():
        if isinstance(v, dict):
            print(f"| {k} | {v['grad']:.2f} | {v['sgd_step']:.2f} | {v['adam_step']:.2f} | {v['hvp']:.2f} | {v['gnb']:.2f} |")
    if a.json:
        with open(a.json + ".tmp", "w") as f:
            json.dump(res, f, indent=1)
        import os
        os.replace(a.json + ".tmp", a.json)


if __name__ == "__main__":
    main()
