package adahessian

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/curvopt/curvopt/optim/internal/finitetest"
)

// TestFiniteSound checks the check pass's fast path against kernel's exact
// check on random inputs of every magnitude up to overflow: whenever finite
// says an update is finite, kernel must find no non-finite value (false
// only sends the caller to the exact check).
func TestFiniteSound(t *testing.T) {
	testFiniteSound[float32](t, 38)
	testFiniteSound[float64](t, 308)
}

func testFiniteSound[T float32 | float64](t *testing.T, maxExp int) {
	finitetest.Sound[T](t, func(rng *rand.Rand) (bool, bool, string) {
		val := func(e int) T { return finitetest.Value[T](rng, e) }
		n := 1 + rng.IntN(9)
		et, eg, em, ev, ed := rng.IntN(maxExp+1), rng.IntN(maxExp+1), rng.IntN(maxExp+1), rng.IntN(maxExp+1), rng.IntN(maxExp+1)
		theta, g, m, v, d := make([]T, n), make([]T, n), make([]T, n), make([]T, n), make([]T, n)
		for j := range theta {
			theta[j], g[j], m[j] = val(et), val(eg), val(em)
			v[j] = T(math.Abs(float64(val(ev))) * float64(rng.IntN(2)))
			d[j] = T(math.Abs(float64(val(ed))) * float64(rng.IntN(2)))
		}
		b1, b2 := rng.Float64(), rng.Float64()
		tf := float64(1 + rng.IntN(5))
		power := 1.0
		if rng.IntN(2) == 0 {
			power = rng.Float64()
		}
		k := coeffs{
			lr: math.Pow(10, -float64(rng.IntN(6))), b1: b1, c1: 1 - b1, b2: b2, c2: 1 - b2,
			bc1: 1 - math.Pow(b1, tf), sbc2k: math.Pow(math.Sqrt(1-math.Pow(b2, tf)), power),
			power: power, eps: math.Pow(10, -float64(rng.IntN(12))), wd: rng.Float64() * float64(rng.IntN(2)),
		}
		ok := finite(k, theta, g, m, v, d)
		j, what, x := kernel(k, true, theta, g, m, v, d)
		return ok, j >= 0, fmt.Sprintf("%s[%d] would be %v", what, j, x)
	})
}
