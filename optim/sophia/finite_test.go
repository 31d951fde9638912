package sophia

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/curvopt/curvopt/optim/internal/finitetest"
)

// TestFiniteSound checks the check pass's fast path against checkKernel on
// random inputs of every magnitude up to overflow, with and without an
// estimate d: whenever finite says a step is finite, checkKernel must find
// no non-finite value (false only sends the caller to checkKernel). It
// checks emaCheck's fast path the same way.
func TestFiniteSound(t *testing.T) {
	testFiniteSound[float32](t, 38)
	testFiniteSound[float64](t, 308)
}

func testFiniteSound[T float32 | float64](t *testing.T, maxExp int) {
	top := math.MaxFloat64
	if maxExp < 300 {
		top = math.MaxFloat32
	}
	trial := -1
	finitetest.Sound[T](t, func(rng *rand.Rand) (bool, bool, string) {
		trial++
		// val is a random value up to 10^e, or one near the largest T (the
		// clip bounds the step, so only values near overflow are refused).
		val := func(e int) T {
			if rng.IntN(8) == 0 {
				return T((rng.Float64()*2 - 1) * top)
			}
			return finitetest.Value[T](rng, e)
		}
		n := 1 + rng.IntN(9)
		et, eg, em, eh, ed := rng.IntN(maxExp+1), rng.IntN(maxExp+1), rng.IntN(maxExp+1), rng.IntN(maxExp+1), rng.IntN(maxExp+1)
		theta, g, m, h := make([]T, n), make([]T, n), make([]T, n), make([]T, n)
		var d []T
		if rng.IntN(2) == 0 {
			d = make([]T, n)
		}
		for j := range theta {
			theta[j], g[j], m[j], h[j] = val(et), val(eg), val(em), val(eh)*T(rng.IntN(2))
			if d != nil {
				d[j] = val(ed)
			}
		}
		lr := math.Pow(10, float64(rng.IntN(maxExp+6)-5))
		b1 := rng.Float64()
		k := coeffs{lr: lr, b1: b1, c1: 1 - b1, decay: 1 - min(lr, 1)*rng.Float64(), rb: math.Pow(10, float64(rng.IntN(6))), eps: math.Pow(10, -float64(rng.IntN(15)))}
		beta2 := rng.Float64()
		ok := finite(k, beta2, d, theta, g, m, h)
		j, what, x := checkKernel(k, beta2, d, theta, g, m, h)
		if d != nil && emaCheck(h, d, beta2, 1-beta2) < 0 {
			for i := range h {
				if y := float64(h[i]*T(beta2) + T(1-beta2)*d[i]); math.IsInf(y, 0) || math.IsNaN(y) {
					t.Fatalf("%T trial %d: emaCheck passed, but entry %d would be %v", T(0), trial, i, y)
				}
			}
		}
		return ok, j >= 0, fmt.Sprintf("%s[%d] would be %v", what, j, x)
	})
}
