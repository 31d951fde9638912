//go:build !openblas

package nn

import "gonum.org/v1/gonum/blas/gonum"

// BLASBackend names the BLAS implementation compiled in ("gonum" or "openblas").
const BLASBackend = "gonum"

func blasImpl() gemmer { return gonum.Implementation{} }
