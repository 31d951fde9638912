#!/usr/bin/env bash
# ResNet-20 (batch 128) and gpt-tiny (batch 16) step costs of curvopt next to
# PyTorch's in one session, as ratios (the machines are shared and noisy:
# compare ratios, not times), plus each model's H·v / gradient ratio.
#
#   bash benchmarks/torch/ratio_dag.sh      # COUNT, BENCHTIME, PEER_ARGS="--steps 2" shorten it
#
# Needs /usr/bin/python3 with torch (Debian: python3-torch).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$(mktemp -d)
export OPENBLAS_NUM_THREADS=1
/usr/bin/python3 benchmarks/torch/peer_dag.py ${PEER_ARGS:-} --json "$out/torch.json" >/dev/null
go test ./benchmarks/ -run '^$' -count "${COUNT:-2}" -benchtime "${BENCHTIME:-3x}" -bench 'DAG/' | tee "$out/go.txt" >/dev/null
/usr/bin/python3 - "$out/torch.json" "$out/go.txt" <<'PY'
import json, re, statistics, sys
torch = json.load(open(sys.argv[1]))
go = {}
for line in open(sys.argv[2]):
    m = re.match(r"BenchmarkDAG/model=(\S+?)/(?:query|opt)=(\S+?)-\d+\s+\d+\s+([\d.]+) ns/op", line)
    if m:
        go.setdefault((m.group(1), m.group(2)), []).append(float(m.group(3)) / 1e6)
print("| float32 workload | curvopt ms | PyTorch ms | curvopt / PyTorch |")
print("|---|---|---|---|")
for model in ("resnet20", "gpt-tiny"):
    for q, tq in (("grad", "grad"), ("hvp", "hvp"), ("gnb", "gnb"), ("sgd", "sgd_step"), ("adam", "adam_step")):
        if (model, q) not in go or model not in torch:
            continue
        a, b = statistics.median(go[(model, q)]), torch[model][tq]
        print(f"| {model} {q} | {a:.0f} | {b:.0f} | {a / b:.2f}x |")
    if (model, "hvp") in go:
        h, g = statistics.median(go[(model, "hvp")]), statistics.median(go[(model, "grad")])
        print(f"| {model} H·v / gradient | | | curvopt {h / g:.2f}x, PyTorch {torch[model]['hvp'] / torch[model]['grad']:.2f}x |")
PY
