#!/usr/bin/env bash
# Peak resident memory (maximum RSS by /usr/bin/time -v) of curvopt's training
# runs next to PyTorch's at the same model, batch and step count
# (benchmarks/torch/peer_run.py), with and without curvature:
#
#   ResNet-20, batch 128, 3×32×32 synthetic images: Adam, and SophiaH (an H·v
#     by double backprop every 10 steps from the first);
#   gpt-tiny, batch 16 × 64 tokens, on a 1 MiB text (the Go sources the
#     built-in corpus reads, written to a file both sides read): Adam, SophiaH;
#   the M-FAC MLP run `-model mlp -optimizer mfac -epochs 1` (window m = 1024).
#
# Each run trains, then evaluates the test split, as a user's run does. The
# figures include each runtime (Go's; Python's and torch's, about 250 MB).
# Go runs with GOMAXPROCS=2, PyTorch with 2 threads on the OpenMP OpenBLAS
# build (benchmarks/torch/openblas.sh; BLAS=pthread for the other). The runs
# are one at a time; RSS does not depend on the machine's load, times do (the
# wall seconds are printed only to show how long each run took).
#
#   bash benchmarks/torch/rss.sh               # all five rows, STEPS=20
#   ROWS="resnet20-adam mfac" bash benchmarks/torch/rss.sh
#
# Environment: STEPS (20: ResNet-20 and gpt-tiny training steps), ROWS (a
# subset of: resnet20-adam resnet20-sophiah gpt-adam gpt-sophiah mfac), BLAS
# (openmp), CACHE. Prints a markdown table, the README's.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
me=rss.sh
steps=${STEPS:-20}
rows=${ROWS:-resnet20-adam resnet20-sophiah gpt-adam gpt-sophiah mfac}
cache=${CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/curvopt/openblas}
py=/usr/bin/python3
if [ ! -x /usr/bin/time ]; then
  echo "$me: /usr/bin/time is missing (apt-get install time)" >&2
  exit 2
fi
if ! "$py" -c 'import torch' 2>/dev/null; then
  echo "$me: $py cannot import torch (apt-get install python3-torch)" >&2
  exit 2
fi
# shellcheck source=benchmarks/torch/openblas.sh
. benchmarks/torch/openblas.sh
blasdir=$(openblas_dir "${BLAS:-openmp}")

go build -o "$out/train" ./cmd/train
# The text: the built-in corpus as a file (data.DefaultCorpus: the non-test
# .go files of these packages, in this order, names sorted, the first 1 MiB).
goroot=$(go env GOROOT)
for pkg in bufio bytes encoding/json fmt go/ast go/parser regexp sort strconv strings text/template unicode/utf8; do
  find "$goroot/src/$pkg" -maxdepth 1 -name '*.go' ! -name '*_test.go' -print0 | sort -z | xargs -0 cat
done >"$out/corpus-all.txt"
head -c 1048576 "$out/corpus-all.txt" >"$out/corpus.txt"

# peak LABEL CMD...: runs CMD under /usr/bin/time -v, prints "MB seconds".
peak() {
  local label=$1
  shift
  if ! /usr/bin/time -v -o "$out/time-$label.txt" "$@" >"$out/log-$label.txt" 2>&1; then
    echo "$me: $label failed: $*" >&2
    tail -n 20 "$out/log-$label.txt" >&2
    exit 1
  fi
  local kb wall
  kb=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$out/time-$label.txt")
  wall=$(awk '/Elapsed \(wall clock\)/ {print $NF}' "$out/time-$label.txt")
  echo "$((kb / 1024)) $wall"
}
gorun() { # label args...
  local label=$1
  shift
  GOMAXPROCS=2 peak "go-$label" "$out/train" -out "$out/run-$label" "$@"
}
torchrun() { # label args...
  local label=$1
  shift
  LD_LIBRARY_PATH="$blasdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=2 \
    peak "torch-$label" "$py" benchmarks/torch/peer_run.py --threads 2 "$@"
}

echo "| run | curvopt command | curvopt peak RSS | PyTorch peak RSS | curvopt / PyTorch | wall s (curvopt, PyTorch) |"
echo "|---|---|---|---|---|---|"
for r in $rows; do
  case $r in
    resnet20-adam | resnet20-sophiah)
      opt=${r#resnet20-}
      gargs=(-model resnet20 -batch 128 -steps "$steps" -optimizer "$opt")
      targs=(--model resnet20 --batch 128 --steps "$steps" --opt "$opt")
      name="ResNet-20, batch 128, $opt"
      ;;
    gpt-adam | gpt-sophiah)
      opt=${r#gpt-}
      gargs=(-model gpt-tiny -data text -data-file "$out/corpus.txt" -batch 16 -steps "$steps" -optimizer "$opt")
      targs=(--model gpt-tiny --text "$out/corpus.txt" --batch 16 --steps "$steps" --opt "$opt")
      name="gpt-tiny, batch 16 × 64, $opt"
      ;;
    mfac)
      gargs=(-model mlp -optimizer mfac -epochs 1)
      targs=(--model mlp --opt mfac --batch 64 --steps 0)
      name="MLP, batch 64, M-FAC (m = 1024), 1 epoch"
      ;;
    *)
      echo "$me: unknown row $r (resnet20-adam resnet20-sophiah gpt-adam gpt-sophiah mfac)" >&2
      exit 2
      ;;
  esac
  echo "$me: $name" >&2
  res=$(gorun "$r" "${gargs[@]}")
  read -r gmb gs <<<"$res"
  res=$(torchrun "$r" "${targs[@]}")
  read -r tmb ts <<<"$res"
  cmd="train ${gargs[*]}"
  cmd=${cmd//$out\/corpus.txt/corpus.txt}
  awk -v n="$name" -v c="$cmd" -v g="$gmb" -v t="$tmb" -v gs="$gs" -v ts="$ts" \
    'BEGIN { printf "| %s | `%s` | %d MB | %d MB | %.2fx | %s, %s |\n", n, c, g, t, g / t, gs, ts }'
done
