//go:build openblas

package nn

import "gonum.org/v1/netlib/blas/netlib"

// BLASBackend names the BLAS implementation compiled in ("gonum" or "openblas").
const BLASBackend = "openblas"

// blasImpl returns OpenBLAS through cgo. Build with
// CGO_LDFLAGS=-lopenblas go build -tags openblas.
func blasImpl() gemmer { return netlib.Implementation{} }
