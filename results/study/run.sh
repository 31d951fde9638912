#!/usr/bin/env bash
# The second-order study (issue 14): does second order pay off on the models
# the papers made it for? Two comparisons, each on one core (GOMAXPROCS=1),
# run side by side on a 2-core machine:
#
#   results/study-image  resnet8 on the built-in synthetic CIFAR-style data
#                        with pixel noise 0.25 (at the default 0.08 every
#                        method ends near 99%: a ceiling, not a comparison):
#                        SGD (momentum, the CIFAR recipe), Adam, AdamW,
#                        AdaHessian, M-FAC, SophiaH, SophiaG
#   results/study-lm     gpt-tiny on the built-in text (Go standard-library
#                        sources): AdamW against SophiaG, SophiaH, AdaHessian,
#                        following the Sophia paper's protocol in small
#   results/study-lm-rho1  the same for AdamW and SophiaG at ρ = 1 (see lm_rho)
#
# Every finished run is stored under results/study-*/runs; rerunning this
# script trains only what is missing (an interrupted run resumes from its
# checkpoint under results/tmp/work) and rewrites the tables and plots.
#
# Usage: bash results/study/run.sh [all|image|lm]     (default all: both, side by side)
#   With CIFAR10_DIR set to a CIFAR-10 directory (the python or binary
#   version), the image study also runs on it, into results/study-cifar10.
set -euo pipefail
cd "$(dirname "$0")/../.."
go build -o results/tmp/compare ./benchmarks/cmd/compare

image() { # $1: data spec, $2: output directory
  GOMAXPROCS=1 results/tmp/compare -model resnet8 -data "$1" \
    -optimizers sgd,adam,adamw,adahessian,mfac,sophiah,sophiag \
    -steps 500 -batch 32 -eval-every 100 -eval-batch 250 -schedule cosine -warmup 25 \
    -sweep -sweep-factors 0.3,1,3 -sweep-widen 4 -select loss -sweep-base sgd=0.05,sophiag=0.0003 \
    -hyper 'adahessian:weight_decay=0.0005' \
    -seeds 3 -sharpness-every 50 -target 0.9 -out "$2"
}

lm() {
  GOMAXPROCS=1 results/tmp/compare -model gpt-tiny -data text \
    -optimizers adamw,sophiag,sophiah,adahessian \
    -steps 200 -batch 16 -eval-every 25 -eval-max 256 -eval-batch 256 \
    -schedule cosine -warmup 20 -cosine-min 0.1 -clip 1 \
    -sweep -sweep-factors 0.3,1,3 -sweep-widen 4 -select loss \
    -sweep-base adamw=0.002,sophiag=0.001,sophiah=0.001,adahessian=0.01 \
    -hyper 'adamw:weight_decay=0.1,beta2=0.95;sophiag:weight_decay=0.2,rho=0.05' \
    -seeds 3 -sharpness-every 25 -target-loss-of adamw -out results/study-lm
}

# SophiaG at ρ = 0.05 (the paper's GPT-2 value) clips 99% of its coordinates
# here (win rate about 1%; the Sophia authors advise 10-50%), so it is also
# run at ρ = 1 (win rate 10-16% from step 100 in a probe), its learning rate swept
# again, beside AdamW at the rate chosen above.
lm_rho() {
  GOMAXPROCS=1 results/tmp/compare -model gpt-tiny -data text \
    -optimizers adamw,sophiag -lrs adamw=0.002 \
    -steps 200 -batch 16 -eval-every 25 -eval-max 256 -eval-batch 256 \
    -schedule cosine -warmup 20 -cosine-min 0.1 -clip 1 \
    -sweep -sweep-factors 0.3,1,3 -sweep-widen 4 -select loss -sweep-base sophiag=0.003 \
    -hyper 'adamw:weight_decay=0.1,beta2=0.95;sophiag:weight_decay=0.2,rho=1' \
    -seeds 3 -target-loss-of adamw -out results/study-lm-rho1
}

mkdir -p results/tmp
part=${1:-all}
case $part in
  all|image|lm) ;;
  *) echo "usage: $0 [all|image|lm]" >&2; exit 2 ;;
esac
status=0
pids=()
if [ "$part" != lm ]; then
  image "synthetic noise=0.25" results/study-image > results/tmp/study-image.log 2>&1 &
  pids+=($!)
fi
if [ "$part" != image ]; then
  { lm && lm_rho; } > results/tmp/study-lm.log 2>&1 &
  pids+=($!)
fi
for p in "${pids[@]}"; do
  wait "$p" || { echo "a study failed: see results/tmp/study-*.log" >&2; status=1; }
done
if [ -n "${CIFAR10_DIR:-}" ] && [ "$part" != lm ]; then
  image "cifar10 $CIFAR10_DIR" results/study-cifar10 || status=1
fi
tail -n 3 results/tmp/study-*.log
exit $status
