"""Reference trajectories of torch.optim with two parameter groups.

Writes param_groups_torch.json next to this file: for SGD (momentum),
Adam (coupled L2) and AdamW, on L(θ) = ½ θᵀAθ + bᵀθ over three parameters
p0 [3, 2], p1 [2], p2 [2, 2] in float64, with param_groups
  "decay":    p0, p2, lr = base·1,   weight_decay = wd
  "no_decay": p1,     lr = base·0.5, weight_decay = 0
and the base learning rate halved before step 4 (a schedule), the
parameters after each of 6 steps. Run with /usr/bin/python3 (PyTorch 1.13).
"""
import json
import os

import torch

torch.manual_seed(0)
torch.set_default_dtype(torch.float64)
shapes = [[3, 2], [2], [2, 2]]
names = ["p0", "p1", "p2"]
d = sum(int(torch.tensor(s).prod()) for s in shapes)
q = torch.randn(d, d)
A = q.T @ q / d + 0.1 * torch.eye(d)
b = torch.randn(d)
theta0 = torch.randn(d)
groups = [
    {"name": "decay", "params": ["p0", "p2"], "lr_scale": 1.0, "wd": True},
    {"name": "no_decay", "params": ["p1"], "lr_scale": 0.5, "wd": False},
]
cases = [
    ("sgd", torch.optim.SGD, dict(momentum=0.9), 0.05, 0.1),
    ("adam", torch.optim.Adam, dict(betas=(0.9, 0.999), eps=1e-8), 0.01, 0.1),
    ("adamw", torch.optim.AdamW, dict(betas=(0.9, 0.999), eps=1e-8), 0.01, 0.1),
]
steps, halve_before = 6, 4


def split(v):
    out, off = [], 0
    for s in shapes:
        n = int(torch.tensor(s).prod())
        out.append(v[off:off + n].reshape(s).clone())
        off += n
    return out


out = {"A": A.tolist(), "b": b.tolist(), "theta0": theta0.tolist(), "shapes": shapes, "names": names,
       "steps": steps, "halve_lr_before_step": halve_before, "cases": []}
for name, cls, kw, lr, wd in cases:
    ps = [torch.nn.Parameter(t) for t in split(theta0)]
    byname = dict(zip(names, ps))
    pg = [{"params": [byname[n] for n in g["params"]], "lr": lr * g["lr_scale"],
           "weight_decay": wd if g["wd"] else 0.0} for g in groups]
    opt = cls(pg, lr=lr, **kw)
    traj = []
    for t in range(1, steps + 1):
        if t == halve_before:
            for g, spec in zip(opt.param_groups, groups):
                g["lr"] = (lr / 2) * spec["lr_scale"]
        opt.zero_grad()
        theta = torch.cat([p.reshape(-1) for p in ps])
        loss = 0.5 * theta @ A @ theta + b @ theta
        loss.backward()
        opt.step()
        traj.append(torch.cat([p.detach().reshape(-1) for p in ps]).tolist())
    out["cases"].append({"optimizer": name, "lr": lr, "weight_decay": wd, "options": {k: list(v) if isinstance(v, tuple) else v for k, v in kw.items()},
                         "groups": [{"name": g["name"], "params": g["params"], "lr_scale": g["lr_scale"],
                                     "weight_decay": wd if g["wd"] else 0.0} for g in groups],
                         "params_after": traj})
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "param_groups_torch.json")
with open(path, "w") as f:
    json.dump(out, f)
    f.write("\n")
print("wrote", path)
