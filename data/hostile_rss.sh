#!/usr/bin/env bash
# Peak memory (maximum resident set size, from /usr/bin/time -v) of cmd/train
# on the hostile dataset files of issue 19 (the data package's readers), with
# the error it printed. Each run is bounded by `timeout 10` (a loader that
# blocks on a FIFO shows as "timed out"). Run from the repository root:
#   bash data/hostile_rss.sh
# (apt-get install time if /usr/bin/time is missing).
set -euo pipefail
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
go build -o "$dir/train" ./cmd/train
c=$dir/cases
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

text="-model gpt-tiny -data text -steps 1 -data-file"
while IFS=$'\t' read -r name args; do
	# shellcheck disable=SC2086 # the arguments are split on purpose
	timeout -s KILL 10 /usr/bin/time -v "$dir/train" $args -out "$dir/out-$name" -quiet >/dev/null 2>"$dir/err" || true
	kb=$(awk '/Maximum resident set size/ {print $NF}' "$dir/err")
	msg=$(grep -m1 '^train:' "$dir/err" | sed "s|$c/||g" || true)
	printf '%-18s %6s MB  %s\n' "$name" "$([ -n "$kb" ] && echo $((kb / 1024)) || echo '?')" "${msg:-timed out}"
done <<EOF
text-dev-zero	$text /dev/zero
text-fifo	$text $c/fifo.txt
text-sparse-2g	$text $c/sparse-2g.txt
text-sparse-900m	$text $c/sparse-900m.txt
text-one-char-200m	$text $c/one-char-200m.txt
idx-fifo	-model mlp -steps 1 -data mnist -data-dir $c/idx-fifo
idx-dev-zero	-model mlp -steps 1 -data mnist -data-dir $c/idx-dev-zero
idx-sparse-2g	-model mlp -steps 1 -data mnist -data-dir $c/idx-sparse-2g
idx-gzip-bomb	-model mlp -steps 1 -data mnist -data-dir $c/idx-gzip-bomb
cifar-fifo	-steps 1 -data cifar10 -data-dir $c/cifar-fifo
cifar-sparse-1.6g	-steps 1 -data cifar10 -data-dir $c/cifar-sparse
synthetic-1e12	-steps 1 -synthetic-train 1000000000000
EOF
