#!/usr/bin/env bash
# Peak memory (maximum resident set size, from /usr/bin/time -v) of the built
# cmd/train on every hostile input the project keeps, with the first error
# line it printed. Three sets, each from where its cases are made:
#
#   cli         cmd/train's TestHostileInputs (HOSTILE_OUT keeps its files and
#               cases.tsv): crafted IDX/CIFAR directories, model files,
#               memory-budget cases and flags;
#   checkpoint  train's TestCheckpointSparse* (TRAIN_HOSTILE_OUT keeps their
#               run directories): sparse checkpoints of gigabytes, metadata
#               that would decode to far more than its size; run with -resume
#               (and once as a fresh run that refuses to overwrite);
#   data        dataset files made here, too large to keep in a test: FIFOs,
#               /dev/zero, sparse files of 0.9-2 GB, a 200 MB file of one
#               character, a 1 GB gzip bomb, a huge synthetic split.
#
# Each run is bounded by `timeout -s KILL $LIMIT` (default 30 s; a reader
# blocking on a FIFO would show as "timed out"). The output starts with the
# date, the commit and the machine. Run from the repository root:
#
#   bash cmd/train/hostile_rss.sh | tee cmd/train/hostile_rss.txt
#
# It needs /usr/bin/time (apt-get install time) and about 1.5 GB of disk for
# the gzip bomb and the one-character file; it takes a few minutes.
set -euo pipefail
cd "$(dirname "$0")/../.."
limit=${LIMIT:-30}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
	commit="$commit (with uncommitted changes)"
fi
echo "# cmd/train peak RSS on hostile inputs: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $commit"
echo "# $(go version | cut -d' ' -f3-), $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.1f GB", $2 / 1048576}' /proc/meminfo) memory, load $(cut -d' ' -f1-3 /proc/loadavg)"

go build -o "$dir/train" ./cmd/train

# measure SET NAME ARGS...: one run of the command, its peak RSS and the
# first line of its error (paths under $dir shortened).
measure() {
	local set=$1 name=$2
	shift 2
	timeout -s KILL "$limit" /usr/bin/time -v "$dir/train" "$@" -quiet >/dev/null 2>"$dir/err" || true
	local kb msg
	kb=$(awk '/Maximum resident set size/ {print $NF}' "$dir/err")
	msg=$(grep -m1 '^train:' "$dir/err" | sed "s|$dir/[a-z]*/||g" || true)
	printf '%-10s %-28s %6s MB  %s\n' "$set" "$name" "$([ -n "$kb" ] && echo $((kb / 1024)) || echo '?')" "${msg:-timed out}"
}
printf '%-10s %-28s %9s  %s\n' set case "peak RSS" "error"

# cli: the cases of cmd/train's TestHostileInputs.
mkdir "$dir/cli"
HOSTILE_OUT="$dir/cli" go test ./cmd/train -run '^TestHostileInputs$' -count=1 >/dev/null
# The test runs its cases against a machine of 2 GB (MemAvailable); M-FAC's
# window of m = 20000 (20 GB) is refused there but may fit this machine, so
# here that case runs under -memory-limit 2GB, which bounds the window too.
while IFS=$'\t' read -r name args; do
	if [ "$name" = mfac-ngrads-20000 ]; then
		args="$args -memory-limit 2GB"
	fi
	# shellcheck disable=SC2086 # the arguments are split on purpose
	measure cli "$name" $args
done <"$dir/cli/cases.tsv"

# checkpoint: the run directories of train's TestCheckpointSparse* tests.
mkdir "$dir/ckpt"
TRAIN_HOSTILE_OUT="$dir/ckpt" go test ./train -run '^TestCheckpointSparse' -count=1 >/dev/null
for c in meta-3GB meta-200MiB values-hole meta-65537-tensors; do
	measure checkpoint "$c" -resume -out "$dir/ckpt/$c"
done
measure checkpoint "meta-3GB (fresh run)" -steps 1 -out "$dir/ckpt/meta-3GB"

# data: dataset files too large to keep in a test.
c=$dir/data
mkdir "$c"
# IDX files: header bytes (magic 0x00000803 or 0x00000801, big-endian sizes).
idx_images() { printf '\x00\x00\x08\x03\x00\x00\x00\x40\x00\x00\x00\x1c\x00\x00\x00\x1c'; head -c $((64 * 784)) /dev/zero; }
idx_labels() { printf '\x00\x00\x08\x01\x00\x00\x00\x40'; head -c 64 /dev/zero; }
mnist() { # mnist NAME: a valid MNIST directory of 64 training and 64 test images
	mkdir "$c/$1"
	idx_images >"$c/$1/train-images-idx3-ubyte"
	idx_labels >"$c/$1/train-labels-idx1-ubyte"
	idx_images >"$c/$1/t10k-images-idx3-ubyte"
	idx_labels >"$c/$1/t10k-labels-idx1-ubyte"
}
cifar() { # cifar NAME: a valid CIFAR-10 directory of 16 records per file
	mkdir "$c/$1"
	for f in data_batch_1 data_batch_2 data_batch_3 data_batch_4 data_batch_5 test_batch; do
		head -c $((16 * 3073)) /dev/zero >"$c/$1/$f.bin"
	done
}
mkfifo "$c/fifo.txt"
truncate -s 2G "$c/sparse-2g.txt"
truncate -s 900M "$c/sparse-900m.txt"
head -c 200000000 /dev/zero | tr '\0' 'a' >"$c/one-char-200m.txt"
mnist idx-fifo && rm "$c/idx-fifo/train-images-idx3-ubyte" && mkfifo "$c/idx-fifo/train-images-idx3-ubyte"
mnist idx-dev-zero && ln -sf /dev/zero "$c/idx-dev-zero/train-images-idx3-ubyte"
mnist idx-sparse-2g && truncate -s 2G "$c/idx-sparse-2g/train-images-idx3-ubyte"
mnist idx-gzip-bomb && rm "$c/idx-gzip-bomb/train-images-idx3-ubyte" &&
	{ idx_images; head -c $((1 << 30)) /dev/zero; } | gzip -1 >"$c/idx-gzip-bomb/train-images-idx3-ubyte.gz"
cifar cifar-fifo && rm "$c/cifar-fifo/data_batch_2.bin" && mkfifo "$c/cifar-fifo/data_batch_2.bin"
cifar cifar-sparse && truncate -s $((3073 << 19)) "$c/cifar-sparse/data_batch_3.bin"

text=(-model gpt-tiny -data text -steps 1 -data-file)
measure data text-dev-zero "${text[@]}" /dev/zero -out "$c/out-1"
measure data text-fifo "${text[@]}" "$c/fifo.txt" -out "$c/out-2"
measure data text-sparse-2g "${text[@]}" "$c/sparse-2g.txt" -out "$c/out-3"
measure data text-sparse-900m "${text[@]}" "$c/sparse-900m.txt" -out "$c/out-4"
measure data text-one-char-200m "${text[@]}" "$c/one-char-200m.txt" -out "$c/out-5"
for d in idx-fifo idx-dev-zero idx-sparse-2g idx-gzip-bomb; do
	measure data "$d" -model mlp -steps 1 -data mnist -data-dir "$c/$d" -out "$c/out-$d"
done
measure data cifar-fifo -steps 1 -data cifar10 -data-dir "$c/cifar-fifo" -out "$c/out-6"
measure data cifar-sparse-1.6g -steps 1 -data cifar10 -data-dir "$c/cifar-sparse" -out "$c/out-7"
measure data synthetic-1e12 -steps 1 -synthetic-train 1000000000000 -out "$c/out-8"
