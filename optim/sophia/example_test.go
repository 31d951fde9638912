package sophia_test

import (
	"fmt"
	"math"

	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/optim/sophia"
	"gorgonia.org/tensor"
)

// quadOracle is L(θ) = ½·Σ a_i·θ_i² (Hessian diag(a)). Its "sampled
// gradient" is √a, so that the GNB estimate ĝ⊙ĝ is the exact diagonal a.
type quadOracle struct{ a []float64 }

func (q quadOracle) HVP(v, out []*tensor.Dense) error {
	for j, x := range v[0].Float64s() {
		out[0].Float64s()[j] = q.a[j] * x
	}
	return nil
}

func (q quadOracle) SampledGrad(out []*tensor.Dense) error {
	for j, x := range q.a {
		out[0].Float64s()[j] = math.Sqrt(x)
	}
	return nil
}

// Example minimises a badly scaled quadratic with SophiaG.
func Example() {
	c := sophia.DefaultG()
	c.LR, c.WeightDecay, c.BatchSize, c.Rho, c.Interval = 0.1, 0, 1, 1, 1
	opt, err := sophia.New(c)
	if err != nil {
		panic(err)
	}
	a := []float64{100, 1}
	w := optim.Param{
		Name:  "w",
		Value: tensor.New(tensor.WithShape(2), tensor.WithBacking([]float64{1, 1})),
		Grad:  tensor.New(tensor.Of(tensor.Float64), tensor.WithShape(2)),
	}
	q := quadOracle{a: a}
	for step := 0; step < 300; step++ {
		th, g := w.Value.Float64s(), w.Grad.Float64s()
		for j := range g {
			g[j] = a[j] * th[j]
		}
		if err := opt.Step([]optim.Param{w}, q); err != nil {
			panic(err)
		}
	}
	th := w.Value.Float64s()
	fmt.Printf("θ = [%.3f %.3f], win rate %.1f\n", th[0], th[1], opt.WinRate())
	// Output: θ = [-0.002 -0.002], win rate 1.0
}
