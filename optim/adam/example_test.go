package adam_test

import (
	"fmt"

	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/optim/adam"
	"gorgonia.org/tensor"
)

// Example minimises L(w) = ½·Σ (w_i − 3)² with AdamW. The gradient is
// written into the parameter's Grad before every step; first-order
// optimizers need no curvature oracle.
func Example() {
	c := adam.DefaultW()
	c.LR = 0.1
	opt, err := adam.New(c)
	if err != nil {
		fmt.Println(err)
		return
	}
	w := tensor.New(tensor.WithShape(2), tensor.WithBacking([]float64{0, 10}))
	g := tensor.New(tensor.Of(tensor.Float64), tensor.WithShape(2))
	params := []optim.Param{{Name: "w", Value: w, Grad: g}}
	for step := 0; step < 1000; step++ {
		for i, v := range w.Float64s() {
			g.Float64s()[i] = v - 3
		}
		if err := opt.Step(params, nil); err != nil {
			fmt.Println(err)
			return
		}
	}
	fmt.Printf("w = [%.1f %.1f]\n", w.Float64s()[0], w.Float64s()[1])

	_, err = adam.New(adam.Config{LR: 1e-3, Beta1: 1, Beta2: 0.999, Eps: 1e-8})
	fmt.Println(err)
	// Output:
	// w = [3.0 3.0]
	// adam: invalid beta1 = 1: must be in [0, 1)
}
