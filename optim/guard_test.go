package optim_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/curvopt/curvopt/optim"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

// newParams returns n float32 parameters of shape [3] with their own memory.
func newParams(n int) []optim.Param {
	ps := make([]optim.Param, n)
	for i := range ps {
		ps[i] = optim.Param{
			Name:  fmt.Sprintf("p%d", i),
			Value: tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(3)),
			Grad:  tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(3)),
		}
	}
	return ps
}

// TestBeginStepAllocatesNothing: the step prologue, run with the same
// tensors as the last step (the cached path) and with new tensors in the
// same memory pattern (the full aliasing check), allocates nothing.
func TestBeginStepAllocatesNothing(t *testing.T) {
	h := optim.NewHyper("x", 0.1, 0)
	a, b := newParams(64), newParams(64)
	step := func(ps []optim.Param) {
		if err := h.BeginStep(ps, optim.Needs{}, nil); err != nil {
			t.Fatal(err)
		}
		h.End()
	}
	step(a)
	step(b)
	assert.Zero(t, testing.AllocsPerRun(50, func() { step(a) }), "same tensors")
	assert.Zero(t, testing.AllocsPerRun(50, func() { step(a); step(b) }), "tensors that change every step")
}

// TestAliasBoundaries: tensors over one backing array are refused exactly
// when they overlap (by one element, or one inside another), not when they
// are adjacent; zero-size tensors share nothing; 0-d tensors sharing their
// one element are refused.
func TestAliasBoundaries(t *testing.T) {
	backing := make([]float64, 12)
	at := func(lo, hi int) *tensor.Dense {
		return tensor.New(tensor.WithShape(hi-lo), tensor.WithBacking(backing[lo:hi]))
	}
	grad := func(n int) *tensor.Dense { return tensor.New(tensor.Of(tensor.Float64), tensor.WithShape(n)) }
	empty := func() *tensor.Dense { return tensor.New(tensor.Of(tensor.Float64), tensor.WithShape(0, 3)) }
	scalar := tensor.New(tensor.FromScalar(1.0))
	for _, c := range []struct {
		name string
		ps   []optim.Param
		bad  bool
	}{
		{"adjacent", []optim.Param{{Name: "a", Value: at(0, 4), Grad: grad(4)}, {Name: "b", Value: at(4, 8), Grad: grad(4)}}, false},
		{"one element", []optim.Param{{Name: "a", Value: at(0, 4), Grad: grad(4)}, {Name: "b", Value: at(3, 7), Grad: grad(4)}}, true},
		{"inside", []optim.Param{{Name: "a", Value: at(0, 8), Grad: grad(8)}, {Name: "b", Value: at(2, 4), Grad: grad(2)}}, true},
		{"inside, apart in the list", []optim.Param{{Name: "a", Value: at(0, 12), Grad: grad(12)}, {Name: "c", Value: grad(1), Grad: grad(1)}, {Name: "b", Value: at(10, 11), Grad: grad(1)}}, true},
		{"gradient over two values", []optim.Param{{Name: "a", Value: at(0, 2), Grad: grad(2)}, {Name: "b", Value: at(2, 4), Grad: at(1, 3)}}, true},
		{"zero-size", []optim.Param{{Name: "a", Value: empty(), Grad: empty()}, {Name: "b", Value: empty(), Grad: empty()}}, false},
		{"0-d shared", []optim.Param{{Name: "a", Value: scalar, Grad: tensor.New(tensor.FromScalar(0.0))}, {Name: "b", Value: scalar, Grad: tensor.New(tensor.FromScalar(0.0))}}, true},
	} {
		h := optim.NewHyper("x", 0.1, 0)
		err := h.BeginStep(c.ps, optim.Needs{}, nil)
		if !c.bad {
			require.NoError(t, err, c.name)
			h.End()
			continue
		}
		require.Error(t, err, c.name)
		assert.Contains(t, err.Error(), "share memory", c.name)
		assert.Contains(t, err.Error(), `"a"`, c.name)
		assert.Contains(t, err.Error(), `"b"`, c.name)
		// The refusal released the optimizer.
		require.NoError(t, h.Begin("next"), c.name)
		h.End()
	}
}

// TestGuard: Begin refuses a second claim with ErrConcurrentUse and any
// claim after Close with ErrClosed, naming the optimizer and the method;
// Close during a call is refused; closing twice is not an error; a Hyper
// not made by NewHyper is refused rather than dereferenced.
func TestGuard(t *testing.T) {
	h := optim.NewHyper("adam", 0.1, 0)
	require.NoError(t, h.Begin("Step"))
	err := h.Begin("State")
	assert.True(t, errors.Is(err, optim.ErrConcurrentUse), "%v", err)
	assert.Contains(t, err.Error(), "adam: State")
	assert.ErrorIs(t, h.SetLR(1), optim.ErrConcurrentUse)
	assert.ErrorIs(t, h.Close(), optim.ErrConcurrentUse)
	h.End()
	require.NoError(t, h.SetLR(1))

	released := 0
	require.NoError(t, h.CloseWith(func() { released++ }))
	require.NoError(t, h.CloseWith(func() { released++ }))
	assert.Equal(t, 1, released, "release runs once")
	err = h.Begin("Step")
	assert.True(t, errors.Is(err, optim.ErrClosed), "%v", err)
	assert.ErrorIs(t, h.SetGroups(nil), optim.ErrClosed)

	var zero optim.Hyper
	assert.Error(t, zero.Begin("Step"))
	assert.Error(t, zero.SetLR(1))
}

// TestDecayGroups: the recipe every training run applies by default puts
// weight matrices, kernels and embeddings (rank ≥ 2) in "decay" with the
// weight decay, and biases, norm scales and 0-d parameters (rank ≤ 1) in
// "no_decay" without; an empty group is left out.
func TestDecayGroups(t *testing.T) {
	p := func(name string, shape ...int) optim.Param {
		return optim.Param{Name: name, Value: tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(shape...))}
	}
	ps := []optim.Param{p("conv.w", 8, 3, 3, 3), p("conv.b", 8), p("bn.gamma", 8), p("fc.w", 10, 8), p("fc.b", 10), p("temp"), p("embed", 50, 8)}
	assert.Equal(t, []optim.Group{
		{Name: "decay", Params: []string{"conv.w", "fc.w", "embed"}, LRScale: 1, WeightDecay: 0.1},
		{Name: "no_decay", Params: []string{"conv.b", "bn.gamma", "fc.b", "temp"}, LRScale: 1},
	}, optim.DecayGroups(ps, 0.1))
	assert.Equal(t, []optim.Group{{Name: "no_decay", Params: []string{"b"}, LRScale: 1}}, optim.DecayGroups([]optim.Param{p("b", 3)}, 0.1))
	assert.Equal(t, []optim.Group{{Name: "decay", Params: []string{"w"}, LRScale: 1, WeightDecay: 0.1}}, optim.DecayGroups([]optim.Param{p("w", 3, 3)}, 0.1))
}
