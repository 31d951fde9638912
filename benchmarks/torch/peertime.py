"""Shared timing code of the PyTorch peers (peer.py, peer_dag.py).

Both peers time the same five workloads of one model and batch, as the Go
benchmarks do: the gradient (forward+backward), the Hessian-vector product by
double backprop, the sampled-label (GNB) gradient, and SGD and Adam steps,
each as the median over repeats of N timed calls after warm-up. This module
holds that loop, the command-line flags the peers share, and the JSON output;
each peer adds its models. It needs torch; import it through import_torch.
"""
import json
import os
import statistics
import sys
import time


def import_torch(script):
    """Returns the torch module, or exits with status 2 naming script when
    torch is not installed."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        print(f"{script}: torch is not installed (apt-get install python3-torch)", file=sys.stderr)
        sys.exit(2)
    return torch


def timeit(fn, steps, repeats, warmup, clock=time.perf_counter):
    """Calls fn warmup times, then times repeats runs of steps calls with
    clock; returns the median milliseconds per call."""
    for _ in range(warmup):
        fn()
    meds = []
    for _ in range(repeats):
        t0 = clock()
        for _ in range(steps):
            fn()
        meds.append((clock() - t0) / steps * 1e3)
    return statistics.median(meds)


def workloads(model, x, y, steps, repeats, warmup, clock=time.perf_counter):
    """Times model's five workloads on the batch (x, y) (cross-entropy loss;
    y one class per row of the logits). Returns milliseconds per call under
    the keys grad, hvp, gnb, sgd_step, adam_step. The queries run first, at
    the model's initial parameters; the optimizer steps then change them."""
    import torch
    import torch.nn.functional as F

    params = list(model.parameters())
    out = {}

    def grad():
        for p in params:
            p.grad = None
        F.cross_entropy(model(x), y).backward()

    out["grad"] = timeit(grad, steps, repeats, warmup, clock)

    v = [torch.randn_like(p) for p in params]

    def hvp():
        gs = torch.autograd.grad(F.cross_entropy(model(x), y), params, create_graph=True)
        torch.autograd.grad(sum((g * vi).sum() for g, vi in zip(gs, v)), params)

    out["hvp"] = timeit(hvp, steps, repeats, warmup, clock)

    def gnb():
        with torch.no_grad():
            logits = model(x)
        yy = torch.multinomial(F.softmax(logits, dim=1), 1).squeeze(1)
        for p in params:
            p.grad = None
        F.cross_entropy(model(x), yy).backward()

    out["gnb"] = timeit(gnb, steps, repeats, warmup, clock)

    for oname, opt in (("sgd", torch.optim.SGD(params, lr=0.01, momentum=0.9)),
                       ("adam", torch.optim.Adam(params, lr=1e-3))):
        def step(opt=opt):
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            opt.step()
        out[oname + "_step"] = timeit(step, steps, repeats, warmup, clock)
    return out


def add_flags(ap, steps, warmup):
    """Adds the flags both peers take to the argparse parser ap, with the
    peer's default timed steps per repeat and warm-up calls."""
    ap.add_argument("--steps", type=int, default=steps, help=f"timed steps per repeat (default {steps})")
    ap.add_argument("--repeats", type=int, default=3, help="repeats; the median is reported (default 3)")
    ap.add_argument("--warmup", type=int, default=warmup, help=f"untimed calls first (default {warmup})")
    ap.add_argument("--threads", type=int, default=2, help="PyTorch intra-op threads (default 2)")
    ap.add_argument("--json", help="also write the results as JSON to this file")
    ap.add_argument("--cpu", action="store_true",
                    help="time the process's CPU time instead of wall time (robust to other load; use with --threads 1)")


def setup(torch, a):
    """Applies the parsed shared flags a (threads, seed 0) and returns the
    clock to time with and the header of the results: torch version,
    threads, unit and the BLAS library loaded."""
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    clock = time.process_time if a.cpu else time.perf_counter
    res = {"torch": torch.__version__, "threads": a.threads,
           "unit": "CPU ms per step" if a.cpu else "ms per step",
           "blas": blas_library()}
    return clock, res


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


def write_json(path, res):
    """Writes res as JSON to path atomically (a temporary file renamed over
    it), so that a killed peer leaves no half-written results."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(res, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
