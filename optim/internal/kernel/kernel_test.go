package kernel

import (
	"math"
	"testing"
)

// TestMaxBits checks MaxAbs and MaxNonNeg against a plain loop on short and
// long slices (every lane of the unrolled loop, of the AVX2 loop on
// float32, and the tail), with NaN, ±Inf, negative values, −0 and
// subnormals at every position.
func TestMaxBits(t *testing.T) {
	testMaxBits[float32](t)
	testMaxBits[float64](t)
}

func testMaxBits[T float32 | float64](t *testing.T) {
	want := func(x []T, abs bool) float64 {
		m := 0.0
		for _, v := range x {
			f := float64(v)
			if math.IsNaN(f) || math.IsInf(f, 0) || (!abs && math.Signbit(f)) {
				return math.Inf(1)
			}
			if abs {
				f = math.Abs(f)
			}
			m = max(m, f)
		}
		return m
	}
	tiny := T(math.SmallestNonzeroFloat32)
	for _, n := range []int{0, 1, 3, 4, 5, 8, 13, 31, 32, 33, 64, 100, 131} {
		x := make([]T, n)
		for i := range x {
			x[i] = T(i)*0.25 + tiny
		}
		for i := range x {
			for _, bad := range []float64{math.NaN(), math.Inf(1), math.Inf(-1), -3, math.Copysign(0, -1), 100, float64(tiny)} {
				old := x[i]
				x[i] = T(bad)
				for _, abs := range []bool{true, false} {
					got, w := maxBits(x, abs), want(x, abs)
					if got != w {
						t.Fatalf("%T n=%d x[%d]=%v abs=%v: got %v, want %v", x[0], n, i, bad, abs, got, w)
					}
				}
				x[i] = old
			}
		}
	}
}
