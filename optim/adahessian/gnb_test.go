package adahessian_test

import (
	"math/rand/v2"
	"testing"

	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/optim/adahessian"
	"github.com/curvopt/curvopt/optim/optimtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

// TestGNBEstimator: AdaHessian configured with the GNB estimator needs
// SampledGrad, requests nothing, and takes D = bs·ĝ⊙ĝ at the parameters of
// the gradient (before the update): with β2 = 0, v = D⊙D after one step.
// A zero bs or an unknown estimator is refused by name.
func TestGNBEstimator(t *testing.T) {
	c := adahessian.Default()
	c.GNB, c.BatchSize, c.Beta2 = true, 3, 0
	a, err := adahessian.New(c)
	require.NoError(t, err)
	assert.Equal(t, optim.Needs{SampledGrad: true}, a.Needs())

	q := optimtest.NewQuadratic(rand.New(rand.NewPCG(4, 1)), 0.1, []int{2, 2}, []int{3})
	ps := q.Params(tensor.Float64, rand.New(rand.NewPCG(1, 2)))
	q.Grad(ps)
	req, err := a.Request(ps)
	require.NoError(t, err)
	assert.Nil(t, req, "GNB queries the oracle in Step: nothing to request")
	g := []*tensor.Dense{tensor.New(tensor.WithShape(2, 2), tensor.Of(tensor.Float64)), tensor.New(tensor.WithShape(3), tensor.Of(tensor.Float64))}
	require.NoError(t, q.SampledGrad(g)) // ĝ at θ before the update
	require.NoError(t, a.Step(ps, q))
	st, err := a.State()
	require.NoError(t, err)
	for i, p := range ps {
		v := st.Find(p.Name, "exp_hessian_diag_sq")
		require.NotNil(t, v)
		for j, x := range g[i].Float64s() {
			d := 3 * x * x
			assert.InDelta(t, d*d, v.F64[j], 1e-12*d*d, "param %s entry %d: v = (bs·ĝ²)²", p.Name, j)
		}
	}

	c.BatchSize = 0
	_, err = adahessian.New(c)
	var he *optim.HyperError
	require.ErrorAs(t, err, &he)
	assert.Equal(t, "bs", he.Field)
	c.GNB = false // bs is GNB's: Hutchinson does not need it
	_, err = adahessian.New(c)
	require.NoError(t, err)
}
