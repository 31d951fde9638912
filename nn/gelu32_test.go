package nn

import (
	"math"
	"math/rand/v2"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
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
// at most one ulp apart for |x| ≤ 5, within 1e−11 beyond; once through the
// vector kernel (where there is one) and once element by element (the
// scalar loop).
func TestGELUTanhFloat32Kernels(t *testing.T) {
	var xs []float32
	for x := -30.0; x <= 30; x += 1.0 / 4096 {
		xs = append(xs, float32(x))
	}
	inf := float32(math.Inf(1))
	xs = append(xs, 0, float32(math.Copysign(0, -1)), 1e-30, -1e-30, 1e-40, -1e-40,
		-geluFastLim, geluFastLim, math.Nextafter32(geluFastLim, 0), 1e30, -1e30, inf, -inf, float32(math.NaN()))
	for run := range 2 {
		for j, k := range geluTanhFamily.f32 {
			y := make([]float32, len(xs))
			if run == 0 {
				k(xs, y) // the vector kernel where there is one
			} else {
				for i := range xs {
					k(xs[i:i+1], y[i:i+1]) // the scalar loop
				}
			}
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
			t.Logf("GELUTanh⁽%d⁾ (run %d): %d inputs, worst %d ulp for |x| ≤ 5", j, run, len(xs), worst)
		}
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

// TestUnaryMulMatchesMul checks the fused G⊙f⁽ʲ⁾(x) op against f⁽ʲ⁾(x)
// rounded to the element type and then multiplied by G (what the separate
// Mul computed), bitwise (within one ulp where a fast float32 kernel's
// vector and scalar paths may round apart), for every family and order, in
// both element types and across the fast kernels' block boundaries.
func TestUnaryMulMatchesMul(t *testing.T) {
	const n = 3*unaryMulBlock + 37
	rng := rand.New(rand.NewPCG(10, 11))
	for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
		for _, fam := range unaryFamilies {
			for j := range fam.deriv {
				g := gorgonia.NewGraph()
				xn := gorgonia.NewTensor(g, dt, 1, gorgonia.WithShape(n), gorgonia.WithName("x"))
				gn := gorgonia.NewTensor(g, dt, 1, gorgonia.WithShape(n), gorgonia.WithName("g"))
				y, err := applyUnaryMul(fam, j, xn, gn)
				if err != nil {
					t.Fatal(err)
				}
				xs, gs := make([]float64, n), make([]float64, n)
				for i := range xs {
					xs[i], gs[i] = 4*rng.NormFloat64(), rng.NormFloat64()
					if fam == logFamily {
						xs[i] = math.Abs(xs[i]) + 0.1
					}
				}
				xs[5], xs[6] = 30, -30 // outside the fast range
				xt, gt := tensor.New(tensor.Of(dt), tensor.WithShape(n)), tensor.New(tensor.Of(dt), tensor.WithShape(n))
				for i := range xs {
					if dt == tensor.Float32 {
						xt.Float32s()[i], gt.Float32s()[i] = float32(xs[i]), float32(gs[i])
					} else {
						xt.Float64s()[i], gt.Float64s()[i] = xs[i], gs[i]
					}
				}
				out, err := y.Op().Do(xt, gt)
				if err != nil {
					t.Fatal(err)
				}
				f := fam.deriv[j]
				for i := range xs {
					if dt == tensor.Float32 {
						d := float32(f(float64(xt.Float32s()[i])))
						if j < len(fam.f32) && fam.f32[j] != nil {
							var one [1]float32
							fam.f32[j](xt.Float32s()[i:i+1], one[:])
							d = one[0]
						}
						want, got := gt.Float32s()[i]*d, out.(tensor.Tensor).Data().([]float32)[i]
						// The fast kernels' vector and scalar paths may
						// round f⁽ʲ⁾ one ulp apart (TestGELUTanhFloat32Kernels);
						// the generic path must match bitwise.
						if ulps := ulpDiff32(got, want); ulps > 1 || (ulps == 1 && (j >= len(fam.f32) || fam.f32[j] == nil)) {
							t.Fatalf("%s⁽%d⁾ float32 at %v: %v, want %v", fam.name, j, xt.Float32s()[i], got, want)
						}
						continue
					}
					want, got := gs[i]*f(xs[i]), out.(tensor.Tensor).Data().([]float64)[i]
					if math.Float64bits(got) != math.Float64bits(want) && !(got != got && want != want) {
						t.Fatalf("%s⁽%d⁾ float64 at %v: %v, want %v", fam.name, j, xs[i], got, want)
					}
				}
			}
		}
	}
}
