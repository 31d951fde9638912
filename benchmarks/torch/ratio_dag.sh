#!/usr/bin/env bash
# ResNet-20 (batch 128) and gpt-tiny (batch 16 × 64 tokens) step costs of
# curvopt next to PyTorch's in one session, as ratios against the faster of
# two PyTorch configurations per workload, as ratio.sh does for the MLP and
# CNN:
#
#   pthread  Debian's default OpenBLAS build (libopenblas0-pthread);
#   openmp   the OpenMP build of OpenBLAS (libopenblas0-openmp);
#
# PyTorch with 2 intra-op threads and 2 BLAS threads in both, Go with
# GOMAXPROCS=2. Each library is loaded through LD_LIBRARY_PATH from a private
# copy (benchmarks/torch/openblas.sh: apt-get download and dpkg -x into $CACHE
# once, or OPENBLAS_PTHREAD_DIR / OPENBLAS_OPENMP_DIR); each peer run reports
# the library it loaded (/proc/self/maps) and the script stops if it is not
# the configuration's. Each round runs peer (pthread), Go, peer (openmp), Go,
# so that drift of the machine's load shows as differing rounds. The machines
# are noisy: compare ratios measured in one run, not times.
#
#   bash benchmarks/torch/ratio_dag.sh
#   ROUNDS=3 BENCHTIME=5x bash benchmarks/torch/ratio_dag.sh
#   PEERS=openmp PEER_ARGS="--steps 2 --repeats 1" ROUNDS=1 BENCHTIME=1x bash benchmarks/torch/ratio_dag.sh
#
# Odd rounds run the peer's workloads in their default order, even rounds
# reversed (ORDER=alternate; forward or reverse to fix it), so that the
# by-round ratios would show an order effect.
#
# Environment: ROUNDS (2), BENCHTIME (Go iterations per benchmark, 3x), ORDER,
# PEER_ARGS (extra peer_dag.py flags, e.g. "--steps 3"), PEERS ("pthread
# openmp"), THREADS (2: PyTorch's intra-op and BLAS threads and Go's
# GOMAXPROCS), BENCH (a regexp replacing the Go benchmarks, default 'DAG/'),
# CACHE.
#
# Prints the README's table: per workload curvopt's median ms and allocations,
# each PyTorch configuration's median ms, curvopt / faster PyTorch by round
# and their median; then H·v / gradient and AdaHessian / Adam step within each
# framework.
#
# Needs /usr/bin/python3 with torch (Debian: python3-torch), apt-get and dpkg.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
me=ratio_dag.sh
rounds=${ROUNDS:-2}
threads=${THREADS:-2}
peers=${PEERS:-pthread openmp}
cache=${CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/curvopt/openblas}
py=/usr/bin/python3

if ! "$py" -c 'import torch' 2>/dev/null; then
  echo "$me: $py cannot import torch (apt-get install python3-torch)" >&2
  exit 2
fi
# shellcheck source=benchmarks/torch/openblas.sh
. benchmarks/torch/openblas.sh
declare -A libdir
for p in $peers; do
  libdir[$p]=$(openblas_dir "$p")
done

go test -c -o "$out/bench.test" ./benchmarks/

peer() { # config round
  local order=${ORDER:-alternate}
  if [ "$order" = alternate ]; then
    order=forward
    if [ $(($2 % 2)) -eq 0 ]; then order=reverse; fi
  fi
  # PEER_ARGS is split into words on purpose.
  # shellcheck disable=SC2086
  LD_LIBRARY_PATH="${libdir[$1]}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" OPENBLAS_NUM_THREADS=$threads \
    OMP_NUM_THREADS=$threads "$py" benchmarks/torch/peer_dag.py --threads "$threads" --order "$order" ${PEER_ARGS:-} \
    --json "$out/torch-$1-$2.json" >/dev/null
  openblas_check "$1" "${libdir[$1]}" \
    "$("$py" -c 'import json, sys; print(json.load(open(sys.argv[1]))["blas"])' "$out/torch-$1-$2.json")"
}
gobench() { # round
  (cd benchmarks && GOMAXPROCS=$threads "$out/bench.test" -test.run '^$' -test.bench "${BENCH:-DAG/}" \
    -test.benchtime "${BENCHTIME:-3x}" -test.benchmem) >>"$out/go-$1.txt"
}
for r in $(seq 1 "$rounds"); do
  for p in $peers; do
    echo "round $r: PyTorch ($p)" >&2
    peer "$p" "$r"
    echo "round $r: Go" >&2
    gobench "$r"
  done
done

"$py" - "$out" "$rounds" "$peers" "$threads" <<'PY'
import json, os, re, statistics, sys
out, rounds, peers, threads = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(), sys.argv[4]
# (row, Go benchmark's model/key, PyTorch's model, PyTorch's workload)
rows = []
for model, label in (("resnet20", "ResNet-20"), ("gpt-tiny", "gpt-tiny")):
    rows += [(f"{label} SGD step", f"{model}/opt=sgd", model, "sgd_step"),
             (f"{label} Adam step", f"{model}/opt=adam", model, "adam_step"),
             (f"{label} SophiaG step (amortised) vs PyTorch Adam step", f"{model}/opt=sophiag", model, "adam_step"),
             (f"{label} gradient", f"{model}/query=grad", model, "grad"),
             (f"{label} sampled-label (GNB) gradient", f"{model}/query=gnb", model, "gnb"),
             (f"{label} H·v", f"{model}/query=hvp", model, "hvp")]
go, allocs, torch, blas = [], {}, [], {}
for r in range(1, rounds + 1):
    g = {}
    for line in open(os.path.join(out, f"go-{r}.txt")):
        m = re.match(r"BenchmarkDAG/model=(\S+?)(?:-\d+)?\s+\d+\s+([\d.]+) ns/op(?:.*?(\d+) allocs/op)?", line)
        if m:
            g.setdefault(m.group(1), []).append(float(m.group(2)) / 1e6)
            if m.group(3):
                allocs[m.group(1)] = int(m.group(3))
    go.append({k: statistics.median(v) for k, v in g.items()})
    t = {}
    for p in peers:
        j = json.load(open(os.path.join(out, f"torch-{p}-{r}.json")))
        blas[p] = j.get("blas", "")
        t[p] = j
    torch.append(t)
print("PyTorch configurations: " + "; ".join(f"{p}: {blas[p] or '?'}" for p in peers))
print(f"wall ms per op, median; PyTorch {threads} threads ({threads} BLAS threads), Go GOMAXPROCS={threads}; "
      f"{rounds} rounds of " + ", ".join(f"peer ({p}), Go" for p in peers))
print()
hdr = "| float32 workload | curvopt ms | allocs/op | " + " | ".join(f"PyTorch {p} ms" for p in peers) + \
      " | curvopt / faster PyTorch, by round | median |"
print(hdr)
print("|" + "---|" * (hdr.count("|") - 1))
med = lambda xs: statistics.median(xs)
for name, gk, tm, tq in rows:
    if any(gk not in go[r] or tm not in torch[r][p] for r in range(rounds) for p in peers):
        continue
    ratios = [go[r][gk] / min(torch[r][p][tm][tq] for p in peers) for r in range(rounds)]
    cells = [f"{med([torch[r][p][tm][tq] for r in range(rounds)]):.1f}" for p in peers]
    print(f"| {name} | {med([go[r][gk] for r in range(rounds)]):.1f} | {allocs.get(gk, '?')} | " +
          " | ".join(cells) + " | " + ", ".join(f"{x:.2f}x" for x in ratios) + f" | {med(ratios):.2f}x |")
print()
print("| within each framework | curvopt | " + " | ".join(f"PyTorch {p}" for p in peers) + " |")
print("|---|---|" + "---|" * len(peers))
for model, label in (("resnet20", "ResNet-20"), ("gpt-tiny", "gpt-tiny")):
    for name, num, den, tnum, tden in (("H·v / gradient", "query=hvp", "query=grad", "hvp", "grad"),
                                       ("AdaHessian step / Adam step", "opt=adahessian", "opt=adam", None, None)):
        a, b = f"{model}/{num}", f"{model}/{den}"
        if any(a not in go[r] or b not in go[r] for r in range(rounds)):
            continue
        cells = []
        for p in peers:
            if tnum is None or any(model not in torch[r][p] for r in range(rounds)):
                cells.append("—")
            else:
                cells.append(f"{med([torch[r][p][model][tnum] / torch[r][p][model][tden] for r in range(rounds)]):.2f}x")
        print(f"| {label} {name} | {med([go[r][a] / go[r][b] for r in range(rounds)]):.2f}x | " + " | ".join(cells) + " |")
PY
