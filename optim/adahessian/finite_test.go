package adahessian

import (
	"math"
	"math/rand/v2"
	"testing"
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
	rng := rand.New(rand.NewPCG(7, 8))
	val := func(e int) T { return T((rng.Float64()*2 - 1) * math.Pow(10, float64(rng.IntN(e+1)))) }
	proven, refused := 0, 0
	for trial := 0; trial < 20000; trial++ {
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
		if ok && j >= 0 {
			t.Fatalf("%T trial %d: finite proved the update finite, but %s[%d] would be %v", T(0), trial, what, j, x)
		}
		if ok {
			proven++
		}
		if j >= 0 {
			refused++
		}
	}
	t.Logf("%T: %d proven, %d refused", T(0), proven, refused)
	if proven == 0 || refused == 0 {
		t.Fatalf("%T: %d proven, %d refused: the inputs do not reach both sides", T(0), proven, refused)
	}
}
