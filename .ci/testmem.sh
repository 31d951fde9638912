#!/usr/bin/env bash
# Prints the peak resident memory (maximum RSS by /usr/bin/time -v) of each
# package's test binary, the way `go test ./...` runs it: the binary is built
# with `go test -c`, then run from its package's folder with the flags
# `go test` passes it. Packages without test files are skipped.
#
#   bash .ci/testmem.sh                   # every package
#   bash .ci/testmem.sh ./train ./cmd/train
#   LIMIT_MB=1500 bash .ci/testmem.sh     # exit status 1 if a package peaks above LIMIT_MB
#
# Prints a markdown table: package, peak RSS in MB, wall seconds, test
# status. Environment: LIMIT_MB (1500; 0 turns the check off), RUN (a -run
# regexp, default all tests), TIMEOUT (30m). The packages run one at a time,
# so each figure is one binary's own peak.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x /usr/bin/time ]; then
  echo "testmem.sh: /usr/bin/time is missing (apt-get install time)" >&2
  exit 2
fi
limit=${LIMIT_MB:-1500}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
pkgs=("$@")
if [ ${#pkgs[@]} -eq 0 ]; then
  mapfile -t pkgs < <(go list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' ./...)
fi
mod=$(go list -m)
status=0
printf '| package | peak RSS MB | wall s | tests |\n|---|---|---|---|\n'
for p in "${pkgs[@]}"; do
  dir=$(go list -f '{{.Dir}}' "$p")
  name=$(go list -f '{{.ImportPath}}' "$p")
  bin="$out/pkg.test"
  rm -f "$bin"
  go test -c -o "$bin" "$p"
  [ -x "$bin" ] || continue # no tests
  res=PASS
  (cd "$dir" && /usr/bin/time -v -o "$out/time.txt" "$bin" -test.count=1 \
    -test.timeout "${TIMEOUT:-30m}" ${RUN:+-test.run "$RUN"} >"$out/log.txt" 2>&1) || res=FAIL
  kb=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$out/time.txt")
  wall=$(awk '/Elapsed \(wall clock\)/ {print $NF}' "$out/time.txt")
  mb=$((kb / 1024))
  flag=""
  if [ "$limit" -gt 0 ] && [ "$mb" -gt "$limit" ]; then
    flag=" (over ${limit} MB)"
    status=1
  fi
  if [ "$res" = FAIL ]; then
    tail -n 30 "$out/log.txt" >&2
    status=1
  fi
  printf '| %s | %d%s | %s | %s |\n' "${name#"$mod"/}" "$mb" "$flag" "$wall" "$res"
done
exit $status
