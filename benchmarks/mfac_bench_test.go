package benchmarks

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/curvopt/curvopt/optim/mfac"
)

// BenchmarkMFAC times M-FAC's step on a full, wrapping window of m float32
// gradients of dimension d: add the gradient and return F⁻¹g (what the
// reference's update_mul does). optim/mfac's BenchmarkFloor measures the
// memory-bandwidth floor (one pass over the window) beside it. In short
// mode only d = 100,000 with m ≤ 256 runs.
func BenchmarkMFAC(b *testing.B) {
	for _, d := range []int{100_000, 270_000} {
		for _, m := range []int{32, 256, 1024} {
			if shortMode() && (d > 100_000 || m > 256) {
				continue
			}
			b.Run(fmt.Sprintf("d=%d/m=%d", d, m), func(b *testing.B) {
				w, err := mfac.NewWindow[float32](d, m, 1e-5)
				if err != nil {
					b.Fatal(err)
				}
				defer w.Close()
				rng := rand.New(rand.NewPCG(1, uint64(m)))
				g := make([]float32, d)
				out := make([]float32, d)
				next := func() {
					for i := range g {
						g[i] = float32(rng.NormFloat64()) * 1e-2
					}
				}
				for i := 0; i < m; i++ { // fill the window
					next()
					if err := w.UpdateIHVP(g, out); err != nil {
						b.Fatal(err)
					}
				}
				next()
				b.SetBytes(int64(2 * m * d * 4)) // two passes over the window
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					g[i%d] += 1e-4 // a new gradient each step, at no cost
					if err := w.UpdateIHVP(g, out); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
