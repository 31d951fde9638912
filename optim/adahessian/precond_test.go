package adahessian_test

import (
	"errors"
	"math"
	"testing"

	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/optim/adahessian"
	"github.com/curvopt/curvopt/optim/optimtest"
	"gorgonia.org/tensor"
)

// TestStabilityLimit iterates Step on a quadratic at 0.95 and 1.05 times
// the limit: with a Rademacher probe D = h exactly, so v̂ = h² and P is
// frozen from the first step.
func TestStabilityLimit(t *testing.T) {
	for _, c := range []adahessian.Config{
		{LR: 0.1, Beta1: 0.9, Beta2: 0.999, Eps: 1e-4, HessianPower: 1, Interval: 1, Probe: optim.Rademacher},
		{LR: 0.1, Beta1: 0.5, Beta2: 0.999, Eps: 1e-4, HessianPower: 0.5, Interval: 1, Probe: optim.Rademacher},
	} {
		optimtest.CheckStabilityLimit(t, func() optimtest.Preconditioned {
			o, err := adahessian.New(c)
			if err != nil {
				t.Fatal(err)
			}
			return o
		}, 3)
	}
}

// TestPrecondSolve: after one step v̂ = D⊙D with D = |diag H| (Rademacher
// probes), so P = |D|ᵏ + ε.
func TestPrecondSolve(t *testing.T) {
	for _, k := range []float64{1, 0.5} {
		c := adahessian.Default()
		c.HessianPower = k
		o, err := adahessian.New(c)
		if err != nil {
			t.Fatal(err)
		}
		ps := []optim.Param{{Name: "w", Value: tensor.New(tensor.WithBacking([]float64{1, 2})), Grad: tensor.New(tensor.WithBacking([]float64{0.1, 0.2}))}}
		orc := optimtest.NewDiagOracle([][]float64{{2, -0.5}}, nil)
		v := []*tensor.Dense{tensor.New(tensor.WithBacking([]float64{1, 3}))}
		out := optim.Like(ps)
		if err := o.PrecondSolve(ps, v, out); !errors.Is(err, optim.ErrNoPreconditioner) {
			t.Fatalf("before a step: err %v, want ErrNoPreconditioner", err)
		}
		if err := o.Step(ps, orc); err != nil {
			t.Fatal(err)
		}
		if err := o.PrecondSolve(ps, v, out); err != nil {
			t.Fatal(err)
		}
		want := []float64{1 / (math.Pow(2, k) + 1e-4), 3 / (math.Pow(0.5, k) + 1e-4)}
		for j, w := range want {
			if got := out[0].Float64s()[j]; math.Abs(got-w) > 1e-12*w {
				t.Errorf("k %v: out[%d] = %v, want %v", k, j, got, w)
			}
		}
	}
}
