package nn

import (
	"math"
	"testing"
)

// ulpDiff32 is the distance in float32 ulps between a and b (0 for equal
// values or two NaNs, MaxInt64 when only one is NaN).
func ulpDiff32(a, b float32) int64 {
	if a == b || (a != a && b != b) {
		return 0
	}
	if a != a || b != b {
		return math.MaxInt64
	}
	key := func(f float32) int64 {
		b := int64(int32(math.Float32bits(f)))
		if b < 0 {
			b = math.MinInt32 - b
		}
		return b
	}
	d := key(a) - key(b)
	if d < 0 {
		d = -d
	}
	return d
}

// TestGELUTanhFloat32Kernels checks the float32 kernels of f, f′ and f″
// against the float64 formulas rounded to float32 on a dense grid of
// [−30, 30] (both sides of the fast range's ±20 bounds) and special values:
// at most one ulp apart for |x| ≤ 5, within 1e−11 beyond.
func TestGELUTanhFloat32Kernels(t *testing.T) {
	var xs []float32
	for x := -30.0; x <= 30; x += 1.0 / 4096 {
		xs = append(xs, float32(x))
	}
	inf := float32(math.Inf(1))
	xs = append(xs, 0, float32(math.Copysign(0, -1)), 1e-30, -1e-30, 1e-40, -1e-40,
		-geluFastLim, geluFastLim, math.Nextafter32(geluFastLim, 0), 1e30, -1e30, inf, -inf, float32(math.NaN()))
	for j, k := range geluTanhFamily.f32 {
		y := make([]float32, len(xs))
		k(xs, y)
		var worst int64
		for i, x := range xs {
			want := float32(geluTanhFamily.deriv[j](float64(x)))
			d := ulpDiff32(y[i], want)
			// Past |x| = 5 the float64 formulas lose accuracy (1 ± tanh u
			// cancels; beyond |u| = 20 fastTanh returns ±1 and f′, f″ become
			// 0) while the kernel keeps the tiny values (at x = −7.199707
			// mpmath gives f′ = −2.5191484e−15: kernel −2.5191473e−15,
			// formula −5.0e−15); there only the absolute error counts.
			if d > 1 && (math.Abs(float64(x)) <= 5 || math.Abs(float64(y[i]-want)) > 1e-11) {
				t.Fatalf("GELUTanh⁽%d⁾ float32 kernel at %v: %v, float64 formula %v (%d ulp)", j, x, y[i], want, d)
			}
			if math.Abs(float64(x)) <= 5 {
				worst = max(worst, d)
			}
		}
		t.Logf("GELUTanh⁽%d⁾: %d inputs, worst %d ulp for |x| ≤ 5", j, len(xs), worst)
	}
}

// TestExpGELU checks expGELU against math.Exp over its range to 1e-13.
func TestExpGELU(t *testing.T) {
	for x := -700.0; x <= 700; x += 0.0137 {
		got, want := expGELU(x), math.Exp(x)
		if math.Abs(got-want) > 1e-13*want {
			t.Fatalf("expGELU(%v) = %v, math.Exp %v (rel %g)", x, got, want, math.Abs(got-want)/want)
		}
	}
}

func BenchmarkGELUTanhFloat32(b *testing.B) {
	x := make([]float32, 1<<16)
	for i := range x {
		x[i] = float32(i-len(x)/2) / 8192
	}
	y := make([]float32, len(x))
	for j, k := range geluTanhFamily.f32 {
		f := geluTanhFamily.deriv[j]
		b.Run("fast/"+string(rune('0'+j)), func(b *testing.B) {
			for range b.N {
				k(x, y)
			}
		})
		b.Run("generic/"+string(rune('0'+j)), func(b *testing.B) {
			for range b.N {
				for i, v := range x {
					y[i] = float32(f(float64(v)))
				}
			}
		})
	}
}
