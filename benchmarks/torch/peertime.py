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


def warm(fn, warmup, clock=time.perf_counter, window=3, tol=0.05, max_calls=60, max_seconds=30.0):
    """Calls fn until its time per call has settled: at least warmup calls,
    then until the median of the last window calls is within tol of the
    median of the window before (or max_calls calls, or max_seconds, have
    passed). Returns the number of calls made. Each workload is warmed this
    way on its own, so that what ran before it (another workload's caches,
    the allocator's pools, oneDNN's compiled kernels) does not move its
    figure."""
    times, start = [], time.perf_counter()
    while True:
        t0 = clock()
        fn()
        times.append(clock() - t0)
        n = len(times)
        if n >= max(warmup, 2 * window):
            last, before = statistics.median(times[-window:]), statistics.median(times[-2 * window:-window])
            if abs(last - before) <= tol * before:
                return n
        if n >= max_calls or time.perf_counter() - start > max_seconds:
            return n


def timeit(fn, steps, repeats, warmup, clock=time.perf_counter, warmup_seconds=30.0):
    """Warms fn (warm: at least warmup calls, until its time settles or
    warmup_seconds have passed), then times repeats runs of steps calls with
    clock; returns the median milliseconds per call and the number of
    warm-up calls made."""
    calls = warm(fn, warmup, clock, max_seconds=warmup_seconds)
    meds = []
    for _ in range(repeats):
        t0 = clock()
        for _ in range(steps):
            fn()
        meds.append((clock() - t0) / steps * 1e3)
    return statistics.median(meds), calls


# The five workloads, in the order they run by default (reverse=True in
# run_workloads runs them the other way round).
NAMES = ("grad", "hvp", "gnb", "sgd_step", "adam_step")


def make_workload(name, model, x, y):
    """Returns a function doing one call of workload name (one of NAMES) on
    the batch (x, y) (cross-entropy loss; y one class per row of the logits)
    with its own deep copy of model (and, for steps, its own optimizer), so
    that no workload sees parameters or state another one changed and the
    order they run in changes nothing but the machine's caches."""
    import copy

    import torch
    import torch.nn.functional as F

    m = copy.deepcopy(model)
    params = list(m.parameters())
    if name == "grad":
        def grad():
            for p in params:
                p.grad = None
            F.cross_entropy(m(x), y).backward()
        return grad
    if name == "hvp":
        g = torch.Generator().manual_seed(1)
        v = [torch.randn(p.shape, generator=g, dtype=p.dtype) for p in params]

        def hvp():
            gs = torch.autograd.grad(F.cross_entropy(m(x), y), params, create_graph=True)
            torch.autograd.grad(sum((gi * vi).sum() for gi, vi in zip(gs, v)), params)
        return hvp
    if name == "gnb":
        g = torch.Generator().manual_seed(2)

        def gnb():
            with torch.no_grad():
                logits = m(x)
            yy = torch.multinomial(F.softmax(logits, dim=1), 1, generator=g).squeeze(1)
            for p in params:
                p.grad = None
            F.cross_entropy(m(x), yy).backward()
        return gnb
    if name in ("sgd_step", "adam_step"):
        opt = (torch.optim.SGD(params, lr=0.01, momentum=0.9) if name == "sgd_step"
               else torch.optim.Adam(params, lr=1e-3))

        def step():
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(m(x), y).backward()
            opt.step()
        return step
    raise ValueError(f"peertime: unknown workload {name!r} (want one of {', '.join(NAMES)})")


def run_workloads(jobs, steps, repeats, warmup, clock=time.perf_counter, reverse=False, warmup_seconds=30.0):
    """Times jobs, a list of (model key, workload name, model, x, y, steps
    or None for the default steps), in that order or reversed. Returns
    {model key: {workload: ms per call}} and {model key: {workload: warm-up
    calls}}."""
    res, calls = {}, {}
    for key, name, model, x, y, n in (reversed(jobs) if reverse else jobs):
        fn = make_workload(name, model, x, y)
        ms, c = timeit(fn, n or steps, repeats, warmup, clock, warmup_seconds)
        res.setdefault(key, {})[name] = ms
        calls.setdefault(key, {})[name] = c
        del fn
    # Report in the default order whichever order ran.
    order = list(dict.fromkeys(k for k, *_ in jobs))
    return ({k: {w: res[k][w] for w in NAMES if w in res[k]} for k in order},
            {k: {w: calls[k][w] for w in NAMES if w in calls[k]} for k in order})


def workloads(model, x, y, steps, repeats, warmup, clock=time.perf_counter, warmup_seconds=30.0):
    """Times model's five workloads (NAMES) on the batch (x, y), each with
    its own copy of model, warmed on its own. Returns milliseconds per call
    under the keys grad, hvp, gnb, sgd_step, adam_step."""
    res, _ = run_workloads([("m", w, model, x, y, None) for w in NAMES], steps, repeats, warmup, clock,
                           warmup_seconds=warmup_seconds)
    return res["m"]


def add_flags(ap, steps, warmup):
    """Adds the flags both peers take to the argparse parser ap, with the
    peer's default timed steps per repeat and warm-up calls."""
    ap.add_argument("--steps", type=int, default=steps, help=f"timed steps per repeat (default {steps})")
    ap.add_argument("--repeats", type=int, default=3, help="repeats; the median is reported (default 3)")
    ap.add_argument("--warmup", type=int, default=warmup,
                    help=f"untimed calls first, at least (default {warmup}); warm-up goes on until the time per "
                         "call settles (the median of the last 3 calls within 5%% of the 3 before)")
    ap.add_argument("--warmup-seconds", type=float, default=30.0,
                    help="stop warming a workload after this many seconds even if unsettled (default 30)")
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
    """Returns the path of the BLAS library this process loaded (Linux,
    from /proc/self/maps): an OpenBLAS library where one is mapped (a
    libblas.so.3 can be a thin wrapper of it), else the first library with
    "blas" in its name, or ""."""
    found = []
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1]
                name = path.rsplit("/", 1)[-1]
                if "blas" in name and path not in found:
                    found.append(path)
    except OSError:
        pass
    for path in found:
        if "openblas" in path.rsplit("/", 1)[-1]:
            return path
    return found[0] if found else ""


def write_json(path, res):
    """Writes res as JSON to path atomically (a temporary file renamed over
    it), so that a killed peer leaves no half-written results."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(res, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
