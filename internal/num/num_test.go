package num

import (
	"math"
	"testing"
)

// TestNonFinite puts NaN, +Inf and −Inf at every position of short and
// long slices (every lane of the unrolled fast path and the tail) and
// checks the index NonFinite reports, and −1 for finite slices.
func TestNonFinite(t *testing.T) {
	for _, n := range []int{0, 1, 3, 4, 5, 8, 13, 1001} {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(i) - 7.5
		}
		if got := NonFinite(x); got != -1 {
			t.Fatalf("n=%d finite: got %d, want -1", n, got)
		}
		for i := range x {
			for _, bad := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
				old := x[i]
				x[i] = float32(bad)
				if got := NonFinite(x); got != i {
					t.Fatalf("n=%d %v at %d: got %d", n, bad, i, got)
				}
				x[i] = old
			}
		}
	}
}
