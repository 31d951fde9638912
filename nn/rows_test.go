package nn

import (
	"math/rand/v2"
	"testing"
)

// TestBiasChanSumRows checks the [outer, C] (inner = 1) paths of biasAdd and
// chanSum against plain loops, bit for bit: chanSum adds each column's
// entries in row order in float64, as its general loop does, also when the
// columns are split over workers (large matrices) or wider than the stack
// accumulators.
func TestBiasChanSumRows(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	for _, sz := range [][2]int{{128, 10}, {3, 128}, {1, 1}, {17, 600}, {4096, 128}, {300, 700}, {64, 2000}} {
		outer, c := sz[0], sz[1]
		x, b := make([]float32, outer*c), make([]float32, c)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		for i := range b {
			b[i] = float32(rng.NormFloat64())
		}
		y := make([]float32, outer*c)
		biasAdd(x, b, y, outer, c, 1)
		s := make([]float32, c)
		chanSum(x, s, outer, c, 1)
		for ch := 0; ch < c; ch++ {
			acc := 0.0
			for o := 0; o < outer; o++ {
				if want := x[o*c+ch] + b[ch]; y[o*c+ch] != want {
					t.Fatalf("%v biasAdd[%d,%d] = %v, want %v", sz, o, ch, y[o*c+ch], want)
				}
				acc += float64(x[o*c+ch])
			}
			if s[ch] != float32(acc) {
				t.Fatalf("%v chanSum[%d] = %v, want %v", sz, ch, s[ch], float32(acc))
			}
		}
	}
}
