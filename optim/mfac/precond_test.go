package mfac_test

import (
	"errors"
	"math"
	"reflect"
	"testing"

	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/optim/mfac"
	"github.com/curvopt/curvopt/optim/optimtest"
	"gorgonia.org/tensor"
)

// TestStabilityLimit iterates Step on a quadratic at 0.95 and 1.05 times
// the limit: damp = 1 dominates the window's g⊙g/m (|g| ≤ 3e-3), so
// F ≈ I stays frozen.
func TestStabilityLimit(t *testing.T) {
	for _, mu := range []float64{0, 0.9} {
		c := mfac.Config{LR: 0.1, Momentum: mu, NGrads: 4, Damp: 1}
		optimtest.CheckStabilityLimit(t, func() optimtest.Preconditioned {
			o, err := mfac.New(c)
			if err != nil {
				t.Fatal(err)
			}
			return o
		}, 3)
	}
}

// TestPrecondSolve: after one step the window holds g, so
// F⁻¹·v = (v − g·(gᵀv)/(m·λ + ‖g‖²))/λ, param b's block halved by its
// group's LRScale; the solve changes no state.
func TestPrecondSolve(t *testing.T) {
	const m, damp = 4, 0.5
	o, err := mfac.New(mfac.Config{LR: 0.1, NGrads: m, Damp: damp})
	if err != nil {
		t.Fatal(err)
	}
	g := []float64{1, 2, -2}
	ps := []optim.Param{
		{Name: "a", Value: tensor.New(tensor.WithBacking([]float64{1, 2})), Grad: tensor.New(tensor.WithBacking(g[:2]))},
		{Name: "b", Value: tensor.New(tensor.WithBacking([]float64{3})), Grad: tensor.New(tensor.WithBacking(g[2:]))},
	}
	vs := []float64{0.5, -1, 2}
	v := []*tensor.Dense{tensor.New(tensor.WithBacking(vs[:2])), tensor.New(tensor.WithBacking(vs[2:]))}
	out := optim.Like(ps)
	if err := o.PrecondSolve(ps, v, out); !errors.Is(err, optim.ErrNoPreconditioner) {
		t.Fatalf("before a step: err %v, want ErrNoPreconditioner", err)
	}
	if err := o.SetGroups([]optim.Group{{Name: "x", Params: []string{"a"}, LRScale: 1}, {Name: "y", Params: []string{"b"}, LRScale: 0.5}}); err != nil {
		t.Fatal(err)
	}
	if err := o.Step(ps, nil); err != nil {
		t.Fatal(err)
	}
	before, err := o.State()
	if err != nil {
		t.Fatal(err)
	}
	u0 := o.LastIHVP(nil)
	if err := o.PrecondSolve(ps, v, out); err != nil {
		t.Fatal(err)
	}
	gv, gg := 0.0, 0.0
	for j := range g {
		gv += g[j] * vs[j]
		gg += g[j] * g[j]
	}
	got := append(append([]float64(nil), out[0].Float64s()...), out[1].Float64s()...)
	for j := range g {
		want := (vs[j] - g[j]*gv/(m*damp+gg)) / damp
		if j == 2 {
			want *= 0.5 // param b, LRScale 0.5
		}
		if math.Abs(got[j]-want) > 1e-12*math.Max(1, math.Abs(want)) {
			t.Errorf("out[%d] = %v, want %v", j, got[j], want)
		}
	}
	after, err := o.State()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(before, after) {
		t.Error("PrecondSolve changed the state")
	}
	if u1 := o.LastIHVP(nil); !reflect.DeepEqual(u0, u1) {
		t.Errorf("PrecondSolve changed LastIHVP: %v, was %v", u1, u0)
	}
}
