#!/usr/bin/env bash
# Peak memory (maximum resident set size, from /usr/bin/time -v) of cmd/train
# on each crafted input of TestHostileInputs, with the error it printed.
# Run from the repository root: bash cmd/train/hostile_rss.sh
# (apt-get install time if /usr/bin/time is missing).
set -euo pipefail
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
go build -o "$dir/train" ./cmd/train
mkdir "$dir/cases"
HOSTILE_OUT="$dir/cases" go test ./cmd/train -run '^TestHostileInputs$' -count=1 >/dev/null
while IFS=$'\t' read -r name args; do
	# shellcheck disable=SC2086 # the arguments are split on purpose
	/usr/bin/time -v "$dir/train" $args -quiet >/dev/null 2>"$dir/err" || true
	kb=$(awk '/Maximum resident set size/ {print $NF}' "$dir/err")
	printf '%-26s %4d MB  %s\n' "$name" $((kb / 1024)) "$(grep -m1 '^train:' "$dir/err" | sed "s|$dir/cases/||g")"
done <"$dir/cases/cases.tsv"
