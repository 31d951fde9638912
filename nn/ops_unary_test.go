package nn

import (
	"math"
	"testing"
)

// TestFastTanh checks fastTanh against math.Tanh over [−25, 25].
func TestFastTanh(t *testing.T) {
	for x := -25.0; x <= 25; x += 0.001 {
		if d := math.Abs(fastTanh(x) - math.Tanh(x)); d > 4e-16*math.Max(1e-300, math.Abs(math.Tanh(x)))+1e-300 && d > 2e-16 {
			t.Fatalf("fastTanh(%v) = %v, math.Tanh %v", x, fastTanh(x), math.Tanh(x))
		}
	}
}
