package sophia_test

import (
	"errors"
	"math"
	"testing"

	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/optim/optimtest"
	"github.com/curvopt/curvopt/optim/sophia"
	"gorgonia.org/tensor"
)

// TestStabilityLimit iterates Step on a quadratic at 0.95 and 1.05 times
// the limit, in the unclipped regime: β2 = 0 and an exact estimate (a
// Rademacher probe, or ĝ⊙ĝ = h) keep h, and P = ρ·bs·h + ε, frozen.
func TestStabilityLimit(t *testing.T) {
	for _, c := range []sophia.Config{
		{Estimator: sophia.Hutchinson, LR: 0.1, Beta1: 0.9, Beta2: 0, Rho: 1, BatchSize: 1, Interval: 1, Eps: 1e-12, Probe: optim.Rademacher},
		{Estimator: sophia.GNB, LR: 0.1, Beta1: 0.965, Beta2: 0, Rho: 2, BatchSize: 1, Interval: 1, Eps: 1e-15},
	} {
		optimtest.CheckStabilityLimit(t, func() optimtest.Preconditioned {
			o, err := sophia.New(c)
			if err != nil {
				t.Fatal(err)
			}
			return o
		}, 3)
	}
}

// TestPrecondSolve: SophiaH after one step has h = (1−β2)·diag H
// (Rademacher probes), so P = ρ·bs·max(h, 0) + ε.
func TestPrecondSolve(t *testing.T) {
	c := sophia.Config{Estimator: sophia.Hutchinson, LR: 0.1, Beta1: 0.9, Beta2: 0.99, Rho: 0.5, BatchSize: 4, Interval: 1, Eps: 1e-12, Probe: optim.Rademacher}
	o, err := sophia.New(c)
	if err != nil {
		t.Fatal(err)
	}
	ps := []optim.Param{{Name: "w", Value: tensor.New(tensor.WithBacking([]float64{1, 2, 3})), Grad: tensor.New(tensor.WithBacking([]float64{0.1, 0.2, 0.3}))}}
	orc := optimtest.NewDiagOracle([][]float64{{2, 0.5, -1}}, nil)
	v := []*tensor.Dense{tensor.New(tensor.WithBacking([]float64{1, 3, 1e-12}))}
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
	want := []float64{1 / (2*0.01*2 + 1e-12), 3 / (2*0.01*0.5 + 1e-12), 1} // negative h: P = ε
	for j, w := range want {
		if got := out[0].Float64s()[j]; math.Abs(got-w) > 1e-9*w {
			t.Errorf("out[%d] = %v, want %v", j, got, w)
		}
	}
}
