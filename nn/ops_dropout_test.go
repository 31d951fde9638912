package nn

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestDropoutMaskPerStep checks that Dropout's mask is the same in every run
// of a step (forward, gradient and H·v see one function), changes with
// Next, zeroes about a fraction p and scales the kept entries by 1/(1−p),
// and that gradient and H·v of L = Σ c⊙y⊙y through it match finite
// differences.
func TestDropoutMaskPerStep(t *testing.T) {
	const p = 0.3
	g := gorgonia.NewGraph()
	rng := rand.New(rand.NewPCG(5, 6))
	xv := randDense(rng, 40, 50)
	x := gorgonia.NewTensor(g, tensor.Float64, 2, gorgonia.WithShape(40, 50), gorgonia.WithName("x"), gorgonia.WithValue(xv))
	st := NewDropoutState(7)
	y, err := Dropout(x, p, st, 1)
	require.NoError(t, err)
	yy, err := Mul(y, y)
	require.NoError(t, err)
	fl, err := Reshape(yy, tensor.Shape{1, 2000})
	require.NoError(t, err)
	loss, err := AxisSum(fl, 1)
	require.NoError(t, err)
	one := gorgonia.NewTensor(g, tensor.Float64, 1, gorgonia.WithShape(1), gorgonia.WithName("one"), gorgonia.WithValue(tensor.New(tensor.WithShape(1), tensor.WithBacking([]float64{1}))))
	grads, err := Backprop([]*gorgonia.Node{loss}, []*gorgonia.Node{one}, []*gorgonia.Node{x})
	require.NoError(t, err)
	require.NoError(t, AuditSecondOrder(grads, []*gorgonia.Node{x}))
	vv := randDense(rng, 40, 50)
	v := gorgonia.NewTensor(g, tensor.Float64, 2, gorgonia.WithShape(40, 50), gorgonia.WithName("v"), gorgonia.WithValue(vv))
	hv, err := Backprop(grads, []*gorgonia.Node{v}, []*gorgonia.Node{x})
	require.NoError(t, err)
	vm := gorgonia.NewTapeMachine(g)
	defer vm.Close()
	runAll := func() {
		vm.Reset()
		require.NoError(t, vm.RunAll())
	}
	runAll()
	xs, ys := xv.Data().([]float64), floats(y)
	zero := 0
	for i := range xs {
		switch ys[i] {
		case 0:
			zero++
		default:
			assert.InDelta(t, xs[i]/(1-p), ys[i], 1e-12)
		}
	}
	assert.InDelta(t, p, float64(zero)/2000, 0.04, "fraction dropped")
	// d/dx Σ (m x)² = 2 m² x; H v = 2 m² v: the same mask in both.
	gs, hs := floats(grads[0]), floats(hv[0])
	vs := vv.Data().([]float64)
	for i := range xs {
		m := ys[i] / xs[i]
		assert.InDelta(t, 2*m*m*xs[i], gs[i], 1e-12)
		assert.InDelta(t, 2*m*m*vs[i], hs[i], 1e-12)
	}
	runAll()
	assert.Equal(t, ys, floats(y), "same step, same mask")
	st.Next()
	runAll()
	assert.NotEqual(t, ys, floats(y), "next step, new mask")
	st.SetStep(0)
	runAll()
	assert.Equal(t, ys, floats(y), "the mask is a function of the step")

	_, err = Dropout(x, 1, st, 1)
	assert.ErrorContains(t, err, "probability")
	_, err = Dropout(x, 0.1, nil, 1)
	assert.ErrorContains(t, err, "nil state")
}

// TestEmbeddingBadIndex checks that an index that is not an integer in
// range is an error naming its position.
func TestEmbeddingBadIndex(t *testing.T) {
	for _, bad := range []float64{7, -1, 1.5} {
		tab := tensor.New(tensor.WithShape(7, 2), tensor.WithBacking(make([]float64, 14)))
		idx := tensor.New(tensor.WithShape(3), tensor.WithBacking([]float64{0, bad, 2}))
		g := gorgonia.NewGraph()
		tn := gorgonia.NewTensor(g, tensor.Float64, 2, gorgonia.WithShape(7, 2), gorgonia.WithName("t"), gorgonia.WithValue(tab))
		in := gorgonia.NewTensor(g, tensor.Float64, 1, gorgonia.WithShape(3), gorgonia.WithName("i"), gorgonia.WithValue(idx))
		_, err := Embedding(tn, in)
		require.NoError(t, err)
		vm := gorgonia.NewTapeMachine(g)
		err = vm.RunAll()
		vm.Close()
		require.Error(t, err)
		assert.Contains(t, err.Error(), "position 1")
	}
}
