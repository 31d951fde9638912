package hessian

import (
	"testing"

	"github.com/curvopt/curvopt/optim"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestNewGraphUserBindings: a user's machine on the same graph binds its
// own batch to the input and target nodes with G.Let between the engine's
// runs (a stock training loop through gsolver does). The engine's
// evaluation and training runs read the engine's own tensors, not the
// user's last batch, and leave the user's bindings as they were.
func TestNewGraphUserBindings(t *testing.T) {
	g, spec, _ := stockMLPGraph(16)
	e, err := NewGraph(g, spec, optim.Needs{HVP: true})
	require.NoError(t, err)
	defer e.Close()
	x, _ := stockBatch(tensor.Shape{48, 5}, 3, 4)
	want, err := e.EvalLogits(x)
	require.NoError(t, err)
	want = want.Clone().(*tensor.Dense)
	xb, lb := stockBatch(tensor.Shape{16, 5}, 3, 5)
	require.NoError(t, e.SetBatch(xb, lb))
	wantLoss, err := e.LossGrad()
	require.NoError(t, err)

	// The user's loop binds another batch.
	ux, _ := stockBatch(tensor.Shape{16, 5}, 3, 6)
	uy := tensor.New(tensor.WithShape(16, 3), tensor.Of(tensor.Float64))
	uy.Float64s()[2] = 1
	require.NoError(t, G.Let(spec.Input, ux))
	require.NoError(t, G.Let(spec.Targets, uy))

	got, err := e.EvalLogits(x)
	require.NoError(t, err)
	assert.Equal(t, want.Float64s(), got.Float64s(), "evaluation reads the engine's input, not the user's last batch")
	gotLoss, err := e.LossGrad()
	require.NoError(t, err)
	assert.Equal(t, wantLoss, gotLoss, "a training run reads the engine's batch")
	assert.Same(t, ux, spec.Input.Value(), "the user's input binding is given back")
	assert.Same(t, uy, spec.Targets.Value(), "the user's target binding is given back")
}

// TestNewGraphKeepsUserBuffer: a batch buffer the user bound before the
// engine was built and refills in place stays bound: building the engine
// gives the nodes their values back.
func TestNewGraphKeepsUserBuffer(t *testing.T) {
	g, spec, _ := stockMLPGraph(16)
	ux, _ := stockBatch(tensor.Shape{16, 5}, 3, 6)
	uy := tensor.New(tensor.WithShape(16, 3), tensor.Of(tensor.Float64))
	require.NoError(t, G.Let(spec.Input, ux))
	require.NoError(t, G.Let(spec.Targets, uy))
	e, err := NewGraph(g, spec, optim.Needs{HVP: true})
	require.NoError(t, err)
	defer e.Close()
	assert.Same(t, ux, spec.Input.Value())
	assert.Same(t, uy, spec.Targets.Value())
}
