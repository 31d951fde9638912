#!/usr/bin/env bash
# Measures curvopt's per-step cost next to PyTorch's in one session and prints
# the Go/PyTorch ratios against the faster of two PyTorch configurations:
#
#   pthread  Debian's default OpenBLAS build (libopenblas0-pthread) with
#            OPENBLAS_NUM_THREADS=1;
#   openmp   the OpenMP build of OpenBLAS (libopenblas0-openmp), 2 threads.
#
# PyTorch runs with 2 intra-op threads in both. Each library is loaded
# through LD_LIBRARY_PATH from a private copy: the package is fetched with
# `apt-get download` and unpacked with `dpkg -x` into $CACHE (default
# ~/.cache/curvopt/openblas), once; the system's BLAS is left alone
# (benchmarks/torch/openblas.sh, shared with ratio_dag.sh). Each peer run
# reports the BLAS it loaded (/proc/self/maps), and the script stops if it is
# not the configuration's.
#
# Each round runs peer (pthread), Go, peer (openmp), Go, so that drift of the
# machine's load shows as differing rounds. The machines are noisy: compare
# ratios, not times.
#
#   bash benchmarks/torch/ratio.sh                    # pure-Go build, 2 rounds
#   TAGS=openblas bash benchmarks/torch/ratio.sh      # Go's OpenBLAS build (libopenblas-dev)
#   ROUNDS=3 BENCHTIME=100x bash benchmarks/torch/ratio.sh
#   MODE=cpu bash benchmarks/torch/ratio.sh           # single-thread CPU time (shared machines)
#
# MODE=cpu compares single-thread CPU time instead of wall time: PyTorch with
# 1 thread timed by time.process_time (peer.py --cpu), Go with GOMAXPROCS=1
# timed by getrusage (benchmarks/cmd/steptime). Other processes' load then
# hardly moves the figures, where wall times of both sides can drift by 2x
# and more (PyTorch's thread pools suffer most). It measures the kernels and
# the per-op overhead, not the use of a second core.
#
# Environment: ROUNDS (2), BENCHTIME (Go iterations per benchmark, 50x),
# STEPS (PyTorch's timed MLP steps per repeat, 50; CNN a fifth), CACHE,
# PEERS ("pthread openmp"; one of them to skip the other), BENCH (a regexp
# replacing the default set of Go benchmarks).
#
# Needs /usr/bin/python3 with torch (Debian: apt-get install python3-torch),
# apt-get and dpkg (run `apt-get update` first if apt-get download cannot
# find the packages).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
export GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824
rounds=${ROUNDS:-2}
mode=${MODE:-wall}
peers=${PEERS:-pthread openmp}
cache=${CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/curvopt/openblas}
py=/usr/bin/python3

if ! "$py" -c 'import torch' 2>/dev/null; then
  echo "ratio.sh: $py cannot import torch (apt-get install python3-torch)" >&2
  exit 2
fi

me=ratio.sh
# shellcheck source=benchmarks/torch/openblas.sh
. benchmarks/torch/openblas.sh
declare -A libdir
for p in $peers; do
  libdir[$p]=$(openblas_dir "$p")
done

tags=()
if [ -n "${TAGS:-}" ]; then
  tags=(-tags "$TAGS")
  export CGO_LDFLAGS="${CGO_LDFLAGS:--lopenblas}"
fi
go test "${tags[@]}" -c -o "$out/bench.test" ./benchmarks/
go build "${tags[@]}" -o "$out/steptime" ./benchmarks/cmd/steptime
bench=${BENCH:-'Query/model=(mlp|cnn)/dtype=float32/query=(grad|hvp|gnb)$|Step/model=(mlp|cnn)/dtype=float32/opt=(sgd|adam)$'}

peer() { # config round
  local n=1 t=2 cpu=()
  [ "$1" = openmp ] && n=2
  if [ "$mode" = cpu ]; then
    n=1 t=1 cpu=(--cpu)
  fi
  LD_LIBRARY_PATH="${libdir[$1]}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" OPENBLAS_NUM_THREADS=$n \
    OMP_NUM_THREADS=$t "$py" benchmarks/torch/peer.py --dtypes f32 --threads $t "${cpu[@]}" \
    --steps "${STEPS:-50}" --json "$out/torch-$1-$2.json" >/dev/null
  openblas_check "$1" "${libdir[$1]}" "$("$py" -c 'import json, sys; print(json.load(open(sys.argv[1]))["blas"])' "$out/torch-$1-$2.json")"
}
gobench() { # round
  if [ "$mode" = cpu ]; then
    GOMAXPROCS=1 "$out/steptime" -rounds 5 \
      -run 'mlp/(grad|hvp|gnb|sgd|adam)$|cnn/(grad|hvp|adam)$' >>"$out/go-$1.txt"
    (cd benchmarks && "$out/bench.test" -test.run '^$' -test.bench "$bench" \
      -test.benchtime 3x -test.benchmem) >>"$out/go-$1.txt"
    return
  fi
  (cd benchmarks && "$out/bench.test" -test.run '^$' -test.bench "$bench" \
    -test.benchtime "${BENCHTIME:-50x}" -test.benchmem) >>"$out/go-$1.txt"
}
for r in $(seq 1 "$rounds"); do
  for p in $peers; do
    echo "round $r: PyTorch ($p)" >&2
    peer "$p" "$r"
    echo "round $r: Go" >&2
    gobench "$r"
  done
done

"$py" - "$out" "$rounds" "$peers" "$mode" <<'PY'
import json, os, re, statistics, sys
out, rounds, peers, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(), sys.argv[4]
cpu = mode == "cpu"
rows = [("MLP gradient", "Query/model=mlp/dtype=float32/query=grad", "mlp_f32", "grad"),
        ("MLP HVP", "Query/model=mlp/dtype=float32/query=hvp", "mlp_f32", "hvp"),
        ("MLP GNB gradient", "Query/model=mlp/dtype=float32/query=gnb", "mlp_f32", "gnb"),
        ("MLP SGD step", "Step/model=mlp/dtype=float32/opt=sgd", "mlp_f32", "sgd_step"),
        ("MLP Adam step", "Step/model=mlp/dtype=float32/opt=adam", "mlp_f32", "adam_step"),
        ("CNN gradient", "Query/model=cnn/dtype=float32/query=grad", "cnn_f32", "grad"),
        ("CNN HVP", "Query/model=cnn/dtype=float32/query=hvp", "cnn_f32", "hvp"),
        ("CNN Adam step", "Step/model=cnn/dtype=float32/opt=adam", "cnn_f32", "adam_step")]
go, allocs, torch = [], {}, []
blas = {}
for r in range(1, rounds + 1):
    g = {}
    for line in open(os.path.join(out, f"go-{r}.txt")):
        m = re.match(r"Benchmark(\S+?)(-\d+)?\s+\d+\s+([\d.]+) ns/op(?:.*?(\d+) allocs/op)?", line)
        if m:
            if m.group(4):
                allocs[m.group(1)] = int(m.group(4))
            if not cpu:
                g.setdefault(m.group(1), []).append(float(m.group(3)) / 1e6)
            continue
        m = re.match(r"\| (mlp|cnn)/(\w+) \| [\d.]+ \| ([\d.]+) \|", line)
        if m and cpu:  # steptime's table: key as the benchmarks' names
            model, w = m.group(1), m.group(2)
            key = (f"Query/model={model}/dtype=float32/query={w}" if w in ("grad", "hvp", "gnb")
                   else f"Step/model={model}/dtype=float32/opt={w}")
            g.setdefault(key, []).append(float(m.group(3)))
    go.append({k: statistics.median(v) for k, v in g.items()})
    t = {}
    for p in peers:
        j = json.load(open(os.path.join(out, f"torch-{p}-{r}.json")))
        blas[p] = j.get("blas", "")
        t[p] = j
    torch.append(t)
print("PyTorch configurations: " + "; ".join(f"{p}: {blas[p] or '?'}" for p in peers))
print("times: " + ("single-thread CPU ms per op (PyTorch 1 thread, Go GOMAXPROCS=1)" if cpu
                   else "wall ms per op (PyTorch 2 threads, Go GOMAXPROCS default)"))
print()
hdr = "| float32 workload | curvopt ms | allocs/op | " + " | ".join(f"PyTorch {p} ms" for p in peers) + \
      " | curvopt / faster PyTorch, by round | median |"
print(hdr)
print("|" + "---|" * (hdr.count("|") - 1))
for name, gk, tk, tq in rows:
    if gk not in go[0]:
        continue
    ratios, peer_ms = [], {p: [] for p in peers}
    for r in range(rounds):
        best = min(torch[r][p][tk][tq] for p in peers)
        for p in peers:
            peer_ms[p].append(torch[r][p][tk][tq])
        ratios.append(go[r][gk] / best)
    gms = statistics.median(go[r][gk] for r in range(rounds))
    cells = [f"{statistics.median(peer_ms[p]):.2f}" for p in peers]
    print(f"| {name} | {gms:.2f} | {allocs.get(gk, '?')} | " + " | ".join(cells) + " | " +
          ", ".join(f"{x:.2f}x" for x in ratios) + f" | {statistics.median(ratios):.2f}x |")
PY
