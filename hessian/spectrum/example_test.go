package spectrum_test

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/curvopt/curvopt/hessian/spectrum"
)

// A quadratic L(θ) = ½θᵀHθ has Hessian H. This one is indefinite: its
// eigenvalues are 2 + √2 ≈ 3.414, 2, 2 − √2 ≈ 0.586 and −4, so the
// eigenvalue of largest magnitude (what PyHessian's power iteration finds) is
// −4, not the largest algebraic eigenvalue 3.414.
func Example() {
	h, err := spectrum.NewDense(4, []float64{
		2, 1, 0, 0,
		1, 2, 1, 0,
		0, 1, 2, 0,
		0, 0, 0, -4,
	})
	if err != nil {
		panic(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))

	top, err := spectrum.Lanczos(h, spectrum.DefaultLanczosConfig(2, spectrum.LargestAlgebraic), rng)
	if err != nil {
		panic(err)
	}
	bottom, err := spectrum.Lanczos(h, spectrum.DefaultLanczosConfig(1, spectrum.SmallestAlgebraic), rng)
	if err != nil {
		panic(err)
	}
	power, err := spectrum.PowerIteration(h, spectrum.DefaultPowerConfig(1, spectrum.LargestMagnitude), rng)
	if err != nil {
		panic(err)
	}
	// Hutchinson: a random estimate; print whether it lies within three of
	// its standard errors of the exact trace, not the random numbers.
	tr, err := spectrum.Hutchinson(h, spectrum.TraceConfig{MinSamples: 10, MaxSamples: 1000, Tol: 0.05}, rng)
	if err != nil {
		fmt.Println("trace:", err)
	}
	// Hutch++ with a sketch as large as H: the sketch spans everything and
	// the estimate is exact.
	pp, err := spectrum.HutchPP(h, spectrum.TraceConfig{MinSamples: 2, MaxSamples: 10, Tol: 0.05, Sketch: 4}, rng)
	if err != nil {
		fmt.Println("trace:", err)
	}
	fmt.Printf("top 2:       %.6f\n", top.Values())
	fmt.Printf("smallest:    %.6f\n", bottom.Values())
	fmt.Printf("largest |λ|: %.6f (converged %v)\n", power.Pairs[0].Value, power.Converged)
	fmt.Printf("exact trace: %.6f\n", h.Trace())
	fmt.Printf("Hutchinson within 3 standard errors: %v\n", math.Abs(tr.Mean-h.Trace()) <= 3*tr.StdErr)
	fmt.Printf("Hutch++:     %.6f (rank %d)\n", pp.Mean, pp.Rank)
	fmt.Printf("‖H‖_F:       %.6f\n", h.Frobenius())
	// Output:
	// top 2:       [3.414214 2.000000]
	// smallest:    [-4.000000]
	// largest |λ|: -4.000000 (converged true)
	// exact trace: 2.000000
	// Hutchinson within 3 standard errors: true
	// Hutch++:     2.000000 (rank 4)
	// ‖H‖_F:       5.656854
}
