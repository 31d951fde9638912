package adam_test

import (
	"errors"
	"math"
	"testing"

	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/optim/adam"
	"github.com/curvopt/curvopt/optim/optimtest"
	"gorgonia.org/tensor"
)

// TestStabilityLimit iterates Step on a quadratic at 0.95 and 1.05 times
// the limit; ε = 1 dominates √v̂ (|g| ≤ 3e-3), so P stays 1 to 0.3%.
func TestStabilityLimit(t *testing.T) {
	for _, b1 := range []float64{0, 0.5, 0.9} {
		c := adam.Config{LR: 1e-3, Beta1: b1, Beta2: 0.999, Eps: 1}
		optimtest.CheckStabilityLimit(t, func() optimtest.Preconditioned {
			o, err := adam.New(c)
			if err != nil {
				t.Fatal(err)
			}
			return o
		}, 3)
	}
}

// TestPrecondSolve: after one step v̂ = g⊙g, so P = |g| + ε.
func TestPrecondSolve(t *testing.T) {
	for _, decoupled := range []bool{false, true} {
		c := adam.Default()
		c.Decoupled = decoupled
		o, err := adam.New(c)
		if err != nil {
			t.Fatal(err)
		}
		ps := []optim.Param{{Name: "w", Value: tensor.New(tensor.WithBacking([]float64{1, 2, 3})), Grad: tensor.New(tensor.WithBacking([]float64{0.5, -2, 0}))}}
		v := []*tensor.Dense{tensor.New(tensor.WithBacking([]float64{1, 1, 1e-8}))}
		out := optim.Like(ps)
		if err := o.PrecondSolve(ps, v, out); !errors.Is(err, optim.ErrNoPreconditioner) {
			t.Fatalf("before a step: err %v, want ErrNoPreconditioner", err)
		}
		if err := o.Step(ps, nil); err != nil {
			t.Fatal(err)
		}
		if err := o.PrecondSolve(ps, v, out); err != nil {
			t.Fatal(err)
		}
		want := []float64{1 / (0.5 + 1e-8), 1 / (2 + 1e-8), 1}
		for j, w := range want {
			if got := out[0].Float64s()[j]; math.Abs(got-w) > 1e-12*w {
				t.Errorf("decoupled %v: out[%d] = %v, want %v", decoupled, j, got, w)
			}
		}
	}
}
