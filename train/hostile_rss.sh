#!/usr/bin/env bash
# Peak memory (maximum resident set size, from /usr/bin/time -v) of
# cmd/train -resume on the hostile checkpoints of train's TestCheckpointSparse*
# tests (sparse files of gigabytes that take a block on disk, metadata that
# would decode to far more than its size), with the error it printed.
# Run from the repository root: bash train/hostile_rss.sh
set -euo pipefail
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
go build -o "$dir/train" ./cmd/train
mkdir "$dir/cases"
TRAIN_HOSTILE_OUT="$dir/cases" go test ./train -run '^TestCheckpointSparse' -count=1 >/dev/null
measure() { # name, arguments
	/usr/bin/time -v "$dir/train" $2 -quiet >/dev/null 2>"$dir/err" || true
	kb=$(awk '/Maximum resident set size/ {print $NF}' "$dir/err")
	printf '%-22s %4d MB  %s\n' "$1" $((kb / 1024)) "$(grep -m1 '^train:' "$dir/err" | sed "s|$dir/cases/||g")"
}
for c in meta-3GB meta-200MiB values-hole meta-65537-tensors; do
	measure "$c" "-resume -out $dir/cases/$c"
done
measure "meta-3GB (fresh run)" "-steps 1 -out $dir/cases/meta-3GB"
