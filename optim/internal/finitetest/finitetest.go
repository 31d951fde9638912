// Package finitetest is the harness of the optimizers' TestFiniteSound: it
// runs one optimizer's check pass on random inputs of every magnitude up to
// overflow and requires that whenever the fast check proves an update
// finite, the exact scan finds no non-finite value (the converse need not
// hold: a check that cannot prove the update finite only sends the
// optimizer to the exact scan).
package finitetest

import (
	"math"
	"math/rand/v2"
	"testing"
)

// Trials is the number of random cases Sound runs.
const Trials = 20000

// Sound runs Trials cases of trial, which draws its inputs from rng (seeded
// 7, 8: the same cases every run) and reports whether the fast check proved
// the update finite, whether the exact scan refused it, and a description
// of the refused entry. It fails at a proven update that is refused, and
// when the cases never reach one side or the other.
func Sound[T float32 | float64](t *testing.T, trial func(rng *rand.Rand) (proven, refused bool, what string)) {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 8))
	proven, refused := 0, 0
	for i := 0; i < Trials; i++ {
		ok, bad, what := trial(rng)
		if ok && bad {
			t.Fatalf("%T trial %d: finite proved the update finite, but %s", T(0), i, what)
		}
		if ok {
			proven++
		}
		if bad {
			refused++
		}
	}
	t.Logf("%T: %d proven, %d refused", T(0), proven, refused)
	if proven == 0 || refused == 0 {
		t.Fatalf("%T: %d proven, %d refused: the inputs do not reach both sides", T(0), proven, refused)
	}
}

// Value returns a uniform random value in (−10^k, 10^k) for a random k in
// [0, e].
func Value[T float32 | float64](rng *rand.Rand, e int) T {
	return T((rng.Float64()*2 - 1) * math.Pow(10, float64(rng.IntN(e+1))))
}
