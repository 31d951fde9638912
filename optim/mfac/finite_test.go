package mfac

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/curvopt/curvopt/optim/internal/finitetest"
)

// TestFiniteSound checks check's fast path against the arithmetic of step on
// random u, momentum buffers and parameters of every magnitude up to
// overflow: whenever finite says a parameter's step is finite, every u, new
// buffer entry and new θ must be finite.
func TestFiniteSound(t *testing.T) {
	testFiniteSound[float32](t, 38)
	testFiniteSound[float64](t, 308)
}

func testFiniteSound[T float32 | float64](t *testing.T, maxExp int) {
	finiteT := func(x T) bool { return !math.IsInf(float64(x), 0) && !math.IsNaN(float64(x)) }
	finitetest.Sound[T](t, func(rng *rand.Rand) (bool, bool, string) {
		val := func(e int) T { return finitetest.Value[T](rng, e) }
		n := 1 + rng.IntN(9)
		et, eu, ev := rng.IntN(maxExp+1), rng.IntN(maxExp+1), rng.IntN(maxExp+1)
		th, u := make([]T, n), make([]T, n)
		var v []T
		if rng.IntN(2) == 0 {
			v = make([]T, n)
		}
		for j := range th {
			th[j], u[j] = val(et), val(eu)
			if v != nil {
				v[j] = val(ev)
			}
		}
		mu := rng.Float64()
		m, om, lr := T(mu), T(1-mu), T(math.Pow(10, float64(rng.IntN(maxExp+6)-5)))
		ok := finite(m, om, lr, th, u, v)
		bad := false
		for j, x := range u {
			if !finiteT(x) {
				bad = true
			}
			if v != nil {
				x = m*v[j] + om*x
				bad = bad || !finiteT(x)
			}
			bad = bad || !finiteT(th[j]-lr*x)
		}
		return ok, bad, "the step is not"
	})
}
