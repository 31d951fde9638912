package sgd_test

import (
	"fmt"

	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/optim/sgd"
	"gorgonia.org/tensor"
)

// Example minimises L(w) = ½·Σ a_i·w_i² with Nesterov momentum, and saves
// and restores the optimizer's state as a checkpoint would.
func Example() {
	opt, err := sgd.New(sgd.Config{LR: 0.1, Momentum: 0.9, Nesterov: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	a := []float32{1, 4}
	w := tensor.New(tensor.WithShape(2), tensor.WithBacking([]float32{1, 1}))
	g := tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(2))
	params := []optim.Param{{Name: "w", Value: w, Grad: g}}
	step := func() {
		for i, v := range w.Float32s() {
			g.Float32s()[i] = a[i] * v
		}
		if err := opt.Step(params, nil); err != nil {
			fmt.Println(err)
		}
	}
	for i := 0; i < 100; i++ {
		step()
	}
	state, _ := opt.State()
	fresh, _ := sgd.New(opt.Config())
	if err := fresh.LoadState(params, state); err != nil {
		fmt.Println(err)
	}
	fmt.Printf("after %d steps: |w| < 1e-3: %v\n", state.Step, abs(w.Float32s()[0]) < 1e-3 && abs(w.Float32s()[1]) < 1e-3)
	// Output:
	// after 100 steps: |w| < 1e-3: true
}

func abs(x float32) float32 {
	if x < 0 {
		return -x
	}
	return x
}
