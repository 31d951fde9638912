#!/usr/bin/env python3
"""PyTorch peer of a curvopt training run, for peak-memory comparisons.

Trains the model cmd/train trains, at the same batch, on data of the same
size held in memory, for N steps, then evaluates the test split without
gradients at the same batch, as `train -model M -batch B -steps N` does:

  resnet20  the CIFAR ResNet-20 of peer_dag.py on 5000 + 1000 random
            3×32×32 float32 images (cmd/train's synthetic default sizes);
  gpt-tiny  the gpt-tiny of peer_dag.py (context 64) on a UTF-8 text file
            (--text; the last 10% held out), one character a token;
  mlp       the 3072-128-10 ReLU MLP of `-model mlp` on those images.

Optimizers (--opt): adam and sgd; sophiah (Adam's moments plus, every
k = 10 steps from the first, a Hutchinson estimate z⊙(H·z) by double
backprop: the H·v runs); sophiag (every 10 steps a sampled-label gradient);
mfac (a window of m gradients allocated whole, as curvopt does, with
torch.empty, so that as in curvopt only the rows written become resident
(torch.zeros would write all m·d zeros: 1.9 GB peak for the MLP at
m = 1024), the inverse-Hessian-vector product by Woodbury over the rows
written). The models and updates are the memory peers of curvopt's, not
tuned trainings: the losses they print mean nothing.

It prints the process's own peak RSS (getrusage) at the end; rss.sh measures
it from outside with /usr/bin/time -v, as it does curvopt's.

    /usr/bin/python3 benchmarks/torch/peer_run.py --model resnet20 --batch 128 --steps 20 --opt sophiah
"""
import argparse
import resource
import sys

import peertime

torch = peertime.import_torch("peer_run.py")
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import peer_dag  # noqa: E402  (the models)


def text_data(path, ctx):
    """Returns (train, test, vocab) token tensors (uint8) of the UTF-8 file
    at path: one token per character, the last 10% held out."""
    with open(path, encoding="utf-8", errors="replace") as f:
        s = f.read()
    chars = sorted(set(s))[:255]
    ids = {c: i for i, c in enumerate(chars)}
    tok = torch.tensor([ids.get(c, 0) for c in s], dtype=torch.uint8)
    cut = int(len(tok) * 0.9)
    if cut < ctx + 1 or len(tok) - cut < ctx + 1:
        sys.exit(f"peer_run.py: {path} is too short for context {ctx}")
    return tok[:cut], tok[cut:], len(chars)


def windows(tok, starts, ctx):
    """Returns the inputs and next-token targets of the windows at starts."""
    x = torch.stack([tok[s:s + ctx] for s in starts]).long()
    y = torch.stack([tok[s + 1:s + ctx + 1] for s in starts]).long().reshape(-1)
    return x, y


class MFAC:
    """M-FAC's preconditioner (Frantar et al. 2021) in its plain dense form:
    the window G (m×d, allocated whole but uninitialised, rows written one
    a step, oldest replaced) and the damped inverse of λI + GᵀG/m applied by Woodbury over
    the k rows written. The update is SGD with momentum on the
    preconditioned gradient."""

    def __init__(self, params, m=1024, damp=1e-5, lr=1e-3, momentum=0.9):
        self.params = params
        self.d = sum(p.numel() for p in params)
        self.G = torch.empty(m, self.d)
        self.m, self.k, self.next = m, 0, 0
        self.damp, self.lr, self.mom = damp, lr, momentum
        self.buf = torch.zeros(self.d)

    def step(self):
        g = torch.cat([p.grad.reshape(-1) for p in self.params])
        self.G[self.next] = g
        self.next = (self.next + 1) % self.m
        self.k = min(self.k + 1, self.m)
        G = self.G[:self.k]
        # (λI + GᵀG/m)⁻¹ g = (g − Gᵀ (λm I + G Gᵀ)⁻¹ G g) / λ
        gram = G @ G.T + self.damp * self.m * torch.eye(self.k)
        u = (g - G.T @ torch.linalg.solve(gram, G @ g)) / self.damp
        self.buf.mul_(self.mom).add_(u)
        off = 0
        with torch.no_grad():
            for p in self.params:
                n = p.numel()
                p.add_(self.buf[off:off + n].view_as(p), alpha=-self.lr)
                off += n


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, choices=["resnet20", "gpt-tiny", "mlp"])
    ap.add_argument("--opt", default="adam", choices=["adam", "sgd", "sophiah", "sophiag", "mfac"])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=20, help="training steps (0: one epoch)")
    ap.add_argument("--text", help="gpt-tiny: the UTF-8 text file")
    ap.add_argument("--ngrads", type=int, default=1024, help="mfac: window size m")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    ctx = 64
    if a.model == "gpt-tiny":
        if not a.text:
            sys.exit("peer_run.py: --model gpt-tiny needs --text FILE")
        tr, te, vocab = text_data(a.text, ctx)
        model = peer_dag.GPT(vocab=vocab, ctx=ctx)
        ntrain = len(tr) - ctx
        ntest = (len(te) - 1) // ctx

        def batch(idx):
            return windows(tr, idx.tolist(), ctx)

        def test_batches():
            starts = list(range(0, ntest * ctx, ctx))
            for i in range(0, len(starts), a.batch):
                yield windows(te, starts[i:i + a.batch], ctx)
    else:
        xtr, ytr = torch.rand(5000, 3, 32, 32), torch.randint(0, 10, (5000,))
        xte, yte = torch.rand(1000, 3, 32, 32), torch.randint(0, 10, (1000,))
        if a.model == "resnet20":
            model = peer_dag.ResNet()
        else:
            model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 128), nn.ReLU(), nn.Linear(128, 10))
        ntrain = len(xtr)

        def batch(idx):
            return xtr[idx], ytr[idx]

        def test_batches():
            for i in range(0, len(xte), a.batch):
                yield xte[i:i + a.batch], yte[i:i + a.batch]
    params = list(model.parameters())
    steps = a.steps or ntrain // a.batch
    mfac = MFAC(params, m=a.ngrads) if a.opt == "mfac" else None
    opt = None
    if a.opt == "sgd":
        opt = torch.optim.SGD(params, lr=0.01, momentum=0.9)
    elif a.opt != "mfac":
        opt = torch.optim.Adam(params, lr=1e-3)  # Sophia's moments cost what Adam's do
    h = [torch.zeros_like(p) for p in params] if a.opt in ("sophiah", "sophiag") else None
    model.train()
    for step in range(steps):
        x, y = batch(torch.randint(0, ntrain, (a.batch,)))
        for p in params:
            p.grad = None
        loss = F.cross_entropy(model(x), y)
        if a.opt == "sophiah" and step % 10 == 0:
            gs = torch.autograd.grad(loss, params, create_graph=True)
            z = [torch.randn_like(p) for p in params]
            hz = torch.autograd.grad(sum((g * zi).sum() for g, zi in zip(gs, z)), params)
            for p, g, zi, hzi, hi in zip(params, gs, z, hz, h):
                p.grad = g.detach()
                hi.mul_(0.99).add_(zi * hzi, alpha=0.01)
            del gs, hz
        else:
            loss.backward()
            if a.opt == "sophiag" and step % 10 == 0:
                with torch.no_grad():
                    yy = torch.multinomial(F.softmax(model(x), dim=-1), 1).squeeze(-1)
                saved = [p.grad for p in params]
                for p in params:
                    p.grad = None
                F.cross_entropy(model(x), yy).backward()
                for p, hi in zip(params, h):
                    hi.mul_(0.99).add_(p.grad * p.grad, alpha=0.01 * a.batch)
                for p, g in zip(params, saved):
                    p.grad = g
        if mfac:
            mfac.step()
        else:
            opt.step()
    model.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for x, y in test_batches():
            total += F.cross_entropy(model(x), y, reduction="sum").item()
            n += y.numel()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{a.model} {a.opt} batch {a.batch}: {steps} steps, test loss {total / max(n, 1):.4f}, peak RSS {rss:.0f} MB")


if __name__ == "__main__":
    main()
