#!/bin/sh
# Peak RSS per rank of a data-parallel run, with and without -shard
# (README, "Data-parallel training on MPI"). Needs /usr/bin/time and a
# binary built with -tags mpi:
#   go build -tags mpi -o /tmp/train-mpi ./cmd/train && benchmarks/mpi/rss.sh /tmp/train-mpi
# Adam on an MLP 3072-2048-2048-10 (10.5 M parameters: Adam's state is
# 2 x 42 MB in float32), 3 steps; without an output directory (no
# checkpoint), then with the end-of-run checkpoint (rank 0 then holds the
# gathered state while it writes it). OPT, HIDDEN and EXTRA pick another
# optimizer, MLP and flags, e.g. M-FAC's window split by coordinates:
#   OPT=mfac HIDDEN=512 EXTRA="-ngrads 64" benchmarks/mpi/rss.sh /tmp/train-mpi
set -eu
opt=${OPT:-adam} hidden=${HIDDEN:-2048,2048} extra=${EXTRA:-}
bin=${1:?usage: rss.sh TRAIN-BINARY-BUILT-WITH-TAGS-MPI}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cat > "$dir/wrap.sh" <<'W'
#!/bin/sh
exec /usr/bin/time -v -o "$RSSDIR/$TAG.${OMPI_COMM_WORLD_RANK:-0}" "$@"
W
chmod +x "$dir/wrap.sh"
export RSSDIR="$dir"
for out in "" "$dir/out"; do
  for cfg in "1 " "2 " "2 -shard" "3 " "3 -shard"; do
    set -- $cfg
    np=$1 shard=${2:-}
    export TAG="np$np$shard${out:+-checkpoint}"
    rm -rf "$dir/out"
    args="-model mlp -hidden $hidden -optimizer $opt $extra -steps 3 -batch 48 -synthetic-train 480 -synthetic-test 48 -quiet -checkpoint-every -1 $shard"
    if [ "$np" = 1 ]; then
      "$dir/wrap.sh" "$bin" $args -out "$out"
    else
      mpirun --allow-run-as-root --oversubscribe -x TAG -x RSSDIR -np "$np" "$dir/wrap.sh" "$bin" $args -out "$out"
    fi
    printf '%-22s' "$TAG"
    for f in "$dir/$TAG".*; do
      awk '/Maximum resident/ {printf " %4d MB", $6/1024}' "$f"
    done
    echo
  done
done
