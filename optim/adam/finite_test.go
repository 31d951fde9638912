package adam

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/curvopt/curvopt/optim/internal/finitetest"
)

// TestFiniteSound checks the check pass's fast path against the exact scan
// on random inputs of every magnitude up to overflow: whenever finite says
// an update is finite, update's exact check must find no non-finite value
// (the converse need not hold: false only sends the caller to the exact
// scan).
func TestFiniteSound(t *testing.T) {
	testFiniteSound[float32](t, 38)
	testFiniteSound[float64](t, 308)
}

func testFiniteSound[T float32 | float64](t *testing.T, maxExp int) {
	finitetest.Sound[T](t, func(rng *rand.Rand) (bool, bool, string) {
		val := func(e int) T { return finitetest.Value[T](rng, e) }
		n := 1 + rng.IntN(9)
		// Independent magnitudes (a large m over a small v makes the
		// quotient large), and v = 0 half the time.
		et, eg, em, ev := rng.IntN(maxExp+1), rng.IntN(maxExp+1), rng.IntN(maxExp+1), rng.IntN(maxExp+1)
		theta, g, m, v := make([]T, n), make([]T, n), make([]T, n), make([]T, n)
		for j := range theta {
			theta[j], g[j], m[j] = val(et), val(eg)*T(rng.IntN(2)), val(em)
			v[j] = T(math.Abs(float64(val(ev))) * float64(rng.IntN(2)))
		}
		lr := math.Pow(10, -float64(rng.IntN(6)))
		k := coeffs{lr: lr, b1: rng.Float64(), b2: rng.Float64(), eps: math.Pow(10, -float64(rng.IntN(12))), stepSize: lr / (0.01 + rng.Float64()), bc2Sqrt: 0.01 + rng.Float64(), decay: 1, l2: 0}
		if rng.IntN(2) == 0 {
			k.l2 = rng.Float64()
		} else {
			k.decay = 1 - lr*rng.Float64()
		}
		ok := finite(k, theta, g, m, v)
		j, what, x := update(k, true, theta, g, m, v)
		return ok, j >= 0, fmt.Sprintf("%s[%d] would be %v", what, j, x)
	})
}
