package adahessian_test

import (
	"fmt"

	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/optim/adahessian"
	"gorgonia.org/tensor"
)

// diagQuad is L(θ) = ½·Σ a_i·θ_i², whose Hessian is diag(a).
type diagQuad struct{ a []float64 }

func (q diagQuad) HVP(v, out []*tensor.Dense) error {
	for j, x := range v[0].Float64s() {
		out[0].Float64s()[j] = q.a[j] * x
	}
	return nil
}

func (diagQuad) SampledGrad(out []*tensor.Dense) error {
	return fmt.Errorf("SampledGrad: %w", optim.ErrNotProvided)
}

// Example minimises a badly scaled quadratic with AdaHessian.
func Example() {
	c := adahessian.Default()
	c.LR, c.Seed = 0.1, 1
	opt, err := adahessian.New(c)
	if err != nil {
		panic(err)
	}
	q := diagQuad{a: []float64{100, 1}}
	w := optim.Param{
		Name:  "w",
		Value: tensor.New(tensor.WithShape(2), tensor.WithBacking([]float64{1, 1})),
		Grad:  tensor.New(tensor.Of(tensor.Float64), tensor.WithShape(2)),
	}
	for step := 0; step < 200; step++ {
		th, g := w.Value.Float64s(), w.Grad.Float64s()
		for j := range g {
			g[j] = q.a[j] * th[j]
		}
		if err := opt.Step([]optim.Param{w}, q); err != nil {
			panic(err)
		}
	}
	th := w.Value.Float64s()
	fmt.Printf("θ = [%.4f %.4f]\n", th[0], th[1])
	// Output: θ = [0.0000 0.0000]
}
