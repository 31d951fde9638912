package hessian

import (
	"errors"
	"math"
	"testing"

	"github.com/curvopt/curvopt/optim"
)

// TestFiniteSlice checks the gradient check at every position (every lane
// of the unrolled fast path and the tail) for NaN, +Inf and −Inf.
func TestFiniteSlice(t *testing.T) {
	for _, n := range []int{1, 4, 7, 64} {
		x := make([]float64, n)
		if err := finiteSlice(x); err != nil {
			t.Fatalf("n=%d finite: %v", n, err)
		}
		for i := range x {
			for _, bad := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
				x[i] = bad
				if err := finiteSlice(x); !errors.Is(err, optim.ErrNonFinite) {
					t.Fatalf("n=%d %v at %d: %v", n, bad, i, err)
				}
				x[i] = 0
			}
		}
	}
}
