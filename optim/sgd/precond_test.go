package sgd_test

import (
	"math"
	"testing"

	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/optim/optimtest"
	"github.com/curvopt/curvopt/optim/sgd"
	"gorgonia.org/tensor"
)

// TestStabilityLimit checks each momentum form's limit by iterating Step
// on a quadratic just below and just above it.
func TestStabilityLimit(t *testing.T) {
	for name, c := range map[string]sgd.Config{
		"plain":     {LR: 0.1},
		"heavyball": {LR: 0.1, Momentum: 0.9},
		"dampened":  {LR: 0.1, Momentum: 0.5, Dampening: 0.3},
		"nesterov":  {LR: 0.1, Momentum: 0.9, Nesterov: true},
	} {
		t.Run(name, func(t *testing.T) {
			optimtest.CheckStabilityLimit(t, func() optimtest.Preconditioned {
				o, err := sgd.New(c)
				if err != nil {
					t.Fatal(err)
				}
				return o
			}, 3)
		})
	}
	o, _ := sgd.New(sgd.Config{LR: 0.1, Momentum: 0.9, Dampening: 1})
	if l := o.StabilityLimit(); !math.IsInf(l, 1) {
		t.Errorf("dampening 1: limit %v, want +Inf", l)
	}
}

// TestPrecondSolve: P = I, with a group's LRScale, before any step too.
func TestPrecondSolve(t *testing.T) {
	o, err := sgd.New(sgd.Config{LR: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	ps := []optim.Param{
		{Name: "a", Value: tensor.New(tensor.WithBacking([]float64{1, 2})), Grad: tensor.New(tensor.WithBacking([]float64{0, 0}))},
		{Name: "b", Value: tensor.New(tensor.WithBacking([]float32{1})), Grad: tensor.New(tensor.WithBacking([]float32{0}))},
	}
	v := []*tensor.Dense{tensor.New(tensor.WithBacking([]float64{3, -4})), tensor.New(tensor.WithBacking([]float32{5}))}
	out := optim.Like(ps)
	if err := o.PrecondSolve(ps, v, out); err != nil {
		t.Fatal(err)
	}
	if a, b := out[0].Float64s(), out[1].Float32s(); a[0] != 3 || a[1] != -4 || b[0] != 5 {
		t.Errorf("before a step: out = %v %v, want v", a, b)
	}
	if err := o.SetGroups([]optim.Group{{Name: "x", Params: []string{"a"}, LRScale: 1}, {Name: "y", Params: []string{"b"}, LRScale: 0.5}}); err != nil {
		t.Fatal(err)
	}
	if err := o.Step(ps, nil); err != nil {
		t.Fatal(err)
	}
	if err := o.PrecondSolve(ps, v, out); err != nil {
		t.Fatal(err)
	}
	if a, b := out[0].Float64s(), out[1].Float32s(); a[0] != 3 || a[1] != -4 || b[0] != 2.5 {
		t.Errorf("with groups: out = %v %v, want [3 -4] [2.5]", a, b)
	}
	if err := o.PrecondSolve(ps, v[:1], out); err == nil {
		t.Error("one v tensor for two parameters: no error")
	}
}
