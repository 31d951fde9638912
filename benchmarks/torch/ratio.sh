#!/usr/bin/env bash
# Measures curvopt's per-step cost next to PyTorch's in one session and prints
# the Go/PyTorch ratios (the machines are noisy: compare ratios, not times).
#
#   bash benchmarks/torch/ratio.sh            # pure-Go build
#   TAGS=openblas bash benchmarks/torch/ratio.sh   # OpenBLAS build (libopenblas-dev)
#
# Needs /usr/bin/python3 with torch (Debian: python3-torch).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$(mktemp -d)
export GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824
export OPENBLAS_NUM_THREADS=1
tags=()
if [ -n "${TAGS:-}" ]; then
  tags=(-tags "$TAGS")
  export CGO_LDFLAGS="${CGO_LDFLAGS:--lopenblas}"
fi
/usr/bin/python3 benchmarks/torch/peer.py --json "$out/torch.json" >/dev/null
go test "${tags[@]}" ./benchmarks/ -run '^$' -count 3 -benchtime "${BENCHTIME:-20x}" \
  -bench 'Query/model=(mlp|cnn)/dtype=float32/query=(grad|hvp|gnb)$|Step/model=(mlp|cnn)/dtype=float32/opt=(sgd|adam)$' \
  | tee "$out/go.txt" >/dev/null
/usr/bin/python3 - "$out/torch.json" "$out/go.txt" <<'PY'
import json, re, statistics, sys
torch = json.load(open(sys.argv[1]))
go = {}
for line in open(sys.argv[2]):
    m = re.match(r"Benchmark(\S+?)-\d+\s+\d+\s+([\d.]+) ns/op", line)
    if m:
        go.setdefault(m.group(1), []).append(float(m.group(2)) / 1e6)
rows = [("MLP gradient", "Query/model=mlp/dtype=float32/query=grad", "mlp_f32", "grad"),
        ("MLP HVP", "Query/model=mlp/dtype=float32/query=hvp", "mlp_f32", "hvp"),
        ("MLP GNB gradient", "Query/model=mlp/dtype=float32/query=gnb", "mlp_f32", "gnb"),
        ("MLP SGD step", "Step/model=mlp/dtype=float32/opt=sgd", "mlp_f32", "sgd_step"),
        ("MLP Adam step", "Step/model=mlp/dtype=float32/opt=adam", "mlp_f32", "adam_step"),
        ("CNN gradient", "Query/model=cnn/dtype=float32/query=grad", "cnn_f32", "grad"),
        ("CNN HVP", "Query/model=cnn/dtype=float32/query=hvp", "cnn_f32", "hvp"),
        ("CNN Adam step", "Step/model=cnn/dtype=float32/opt=adam", "cnn_f32", "adam_step")]
print("| float32 workload | curvopt ms | PyTorch ms | curvopt / PyTorch |")
print("|---|---|---|---|")
for name, g, tk, tq in rows:
    if g not in go:
        continue
    a, b = statistics.median(go[g]), torch[tk][tq]
    print(f"| {name} | {a:.2f} | {b:.2f} | {a / b:.2f}x |")
PY
