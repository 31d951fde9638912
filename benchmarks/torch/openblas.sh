# Sourced by ratio.sh and ratio_dag.sh: the two OpenBLAS builds PyTorch is
# timed with, each loaded through LD_LIBRARY_PATH from a private copy.
#
#   pthread  Debian's default OpenBLAS build (libopenblas0-pthread);
#   openmp   the OpenMP build (libopenblas0-openmp).
#
# Each package is fetched with `apt-get download` and unpacked with `dpkg -x`
# into $cache (default ~/.cache/curvopt/openblas), once; the system's BLAS is
# left alone (a machine whose libblas.so.3 is the reference BLAS would time
# PyTorch's matrix products 10x and more too slow). A folder already unpacked
# elsewhere can be named with OPENBLAS_PTHREAD_DIR or OPENBLAS_OPENMP_DIR
# (the folder holding its libblas.so.3 and libopenblas.so.0).
#
# Needs apt-get and dpkg (run `apt-get update` first if apt-get download
# cannot find the packages). The caller sets $cache and $me (its name, for
# messages).

# openblas_fetch PKG DIRNAME: prints the folder holding PKG's libblas.so.3
# (Debian's alternatives layout, e.g. .../openblas-openmp), unpacking PKG into
# $cache once with apt-get download and dpkg -x. Nothing is installed.
openblas_fetch() {
  local d
  d=$(find "$cache/$1" -type d -name "$2" 2>/dev/null | head -n 1 || true)
  if [ -z "$d" ]; then
    local dl
    dl=$(mktemp -d)
    if ! (cd "$dl" && apt-get download "$1" >&2); then
      echo "$me: apt-get download $1 failed (run apt-get update first?)" >&2
      rm -rf "$dl"
      exit 2
    fi
    mkdir -p "$cache/$1"
    dpkg -x "$dl"/"$1"_*.deb "$cache/$1"
    rm -rf "$dl"
    d=$(find "$cache/$1" -type d -name "$2" | head -n 1)
  fi
  if [ ! -e "$d/libblas.so.3" ]; then
    echo "$me: no libblas.so.3 from $1 under $cache/$1" >&2
    exit 2
  fi
  echo "$d"
}

# openblas_dir CONFIG: prints the library folder of CONFIG (pthread or
# openmp): $OPENBLAS_PTHREAD_DIR or $OPENBLAS_OPENMP_DIR where set, else the
# cached copy (fetched on first use).
openblas_dir() {
  local d
  case $1 in
    pthread) d=${OPENBLAS_PTHREAD_DIR:-} ;;
    openmp) d=${OPENBLAS_OPENMP_DIR:-} ;;
    *) echo "$me: unknown PyTorch configuration $1 (pthread, openmp)" >&2; exit 2 ;;
  esac
  if [ -n "$d" ]; then
    if [ ! -e "$d/libblas.so.3" ] && [ ! -e "$d/libopenblas.so.0" ]; then
      echo "$me: $d holds neither libblas.so.3 nor libopenblas.so.0" >&2
      exit 2
    fi
    echo "$d"
    return
  fi
  case $1 in
    pthread) openblas_fetch libopenblas0-pthread openblas-pthread ;;
    openmp) openblas_fetch libopenblas0-openmp openblas-openmp ;;
  esac
}

# openblas_check CONFIG DIR BLAS: exits with an error unless BLAS, the path of
# the BLAS library a peer reported loading (peertime.blas_library, read from
# /proc/self/maps), lies in DIR: the peer would otherwise have timed another
# library than the one its column names.
openblas_check() {
  local want got
  want=$(readlink -f "$2")
  got=$(readlink -f "$3" 2>/dev/null || echo "$3")
  case $got in
    "$want"/*) ;;
    *)
      echo "$me: the $1 peer loaded '$3', not a library from $2" >&2
      exit 2
      ;;
  esac
}
