package mfac_test

import (
	"fmt"

	"github.com/curvopt/curvopt/optim/mfac"
)

// The first IHVP has the closed form u = m·g/(m·damp + ‖g‖²).
func ExampleWindow() {
	w, err := mfac.NewWindow[float64](3, 2, 0.5)
	if err != nil {
		panic(err)
	}
	defer w.Close()
	u := make([]float64, 3)
	_ = w.UpdateIHVP([]float64{1, 0, 0}, u) // F = 0.5·I + ½·e₁e₁ᵀ
	fmt.Printf("%.4f slot %d\n", u, w.Slot())
	_ = w.UpdateIHVP([]float64{0, 2, 0}, u) // F = 0.5·I + ½(e₁e₁ᵀ + 4e₂e₂ᵀ)
	fmt.Printf("%.4f slot %d\n", u, w.Slot())
	x := []float64{1, 1, 1}
	_ = w.IHVP(x, u)
	fmt.Printf("%.4f\n", u)
	// Output:
	// [1.0000 0.0000 0.0000] slot 1
	// [0.0000 0.8000 0.0000] slot 0
	// [1.0000 0.4000 2.0000]
}
