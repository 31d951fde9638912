package optim_test

import (
	"encoding/gob"
	"github.com/curvopt/curvopt/internal/num"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/optim/adahessian"
	"github.com/curvopt/curvopt/optim/adam"
	"github.com/curvopt/curvopt/optim/mfac"
	"github.com/curvopt/curvopt/optim/optimtest"
	"github.com/curvopt/curvopt/optim/sgd"
	"github.com/curvopt/curvopt/optim/sophia"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

// oldStateCases are the optimizers of testdata/oldstate: states exported
// by the code before the state recorded its parameter list (State.Params)
// and was written once (optim.Base), by testdata/oldstate/genold with the
// configurations below, after three steps on oldStateQuadratic.
func oldStateCases(t *testing.T) []struct {
	name string
	dt   tensor.Dtype
	New  func() optim.Optimizer
} {
	must := func(o optim.Optimizer, err error) optim.Optimizer {
		require.NoError(t, err)
		return o
	}
	sg := sophia.DefaultG()
	sg.Interval, sg.BatchSize, sg.LR = 2, 4, 1e-2
	sh := sophia.DefaultH()
	sh.Interval, sh.Seed = 2, 7
	ah := adahessian.Default()
	ah.Interval, ah.Seed, ah.LR = 2, 5, 0.05
	mc := mfac.Config{LR: 0.05, Momentum: 0.5, WeightDecay: 1e-2, NGrads: 4, Damp: 1e-3}
	return []struct {
		name string
		dt   tensor.Dtype
		New  func() optim.Optimizer
	}{
		{"sgd", tensor.Float64, func() optim.Optimizer { return must(sgd.New(sgd.Default())) }},
		{"adamw", tensor.Float32, func() optim.Optimizer { return must(adam.New(adam.DefaultW())) }},
		{"sophiag", tensor.Float64, func() optim.Optimizer { return must(sophia.New(sg)) }},
		{"sophiah", tensor.Float32, func() optim.Optimizer { return must(sophia.New(sh)) }},
		{"adahessian", tensor.Float64, func() optim.Optimizer { return must(adahessian.New(ah)) }},
		{"mfac", tensor.Float32, func() optim.Optimizer { return must(mfac.New(mc)) }},
	}
}

func oldStateQuadratic() *optimtest.Quadratic {
	return optimtest.NewQuadratic(rand.New(rand.NewPCG(21, 1)), 0.1, []int{2, 3}, []int{3})
}

// TestOldLayoutStatesLoad: a state of the old layout (no parameter list;
// M-FAC's shapes as float64 tensors in slot "shape") loads, exports the
// same state as an optimizer that took the same steps with this code, and
// resumes bit-identically; M-FAC's converted parameter list still refuses
// other shapes.
func TestOldLayoutStatesLoad(t *testing.T) {
	for _, c := range oldStateCases(t) {
		t.Run(c.name, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", "oldstate", c.name+".gob"))
			require.NoError(t, err)
			defer f.Close()
			var old optim.State
			require.NoError(t, gob.NewDecoder(f).Decode(&old))
			require.Nil(t, old.Params, "the fixture must be of the old layout")

			q := oldStateQuadratic()
			ps := q.Params(c.dt, rand.New(rand.NewPCG(1, 2)))
			straight := c.New()
			for i := 0; i < 3; i++ {
				q.Grad(ps)
				require.NoError(t, straight.Step(ps, q))
			}
			want, err := straight.State()
			require.NoError(t, err)

			resumed := q.Params(c.dt, rand.New(rand.NewPCG(1, 2)))
			for i := range ps {
				num.CopyInto(resumed[i].Value, ps[i].Value)
			}
			opt := c.New()
			require.NoError(t, opt.LoadState(resumed, &old))
			got, err := opt.State()
			require.NoError(t, err)
			assert.Equal(t, want, got, "the old state, loaded and exported again")
			assert.Len(t, got.Params, 2)

			for i := 0; i < 3; i++ {
				q.Use(ps)
				q.Grad(ps)
				require.NoError(t, straight.Step(ps, q))
				q.Use(resumed)
				q.Grad(resumed)
				require.NoError(t, opt.Step(resumed, q))
			}
			a, b := optimtest.Flatten(ps), optimtest.Flatten(resumed)
			for i := range a {
				require.Equal(t, math.Float64bits(a[i]), math.Float64bits(b[i]), "entry %d after resuming from the old state", i)
			}

			if c.name == "mfac" {
				require.NotNil(t, old.Find("p1", "shape"), "the M-FAC fixture records shapes in slot \"shape\"")
				// Same size, other shape: only the recorded shapes tell.
				other := q.Params(c.dt, rand.New(rand.NewPCG(1, 2)))
				other[0].Value = tensor.New(tensor.Of(c.dt), tensor.WithShape(3, 2))
				other[0].Grad = tensor.New(tensor.Of(c.dt), tensor.WithShape(3, 2))
				err := c.New().LoadState(other, &old)
				require.Error(t, err)
				assert.Contains(t, err.Error(), `param "p0" has shape (3, 2), but the state is for shape [2 3]`)
				assert.NotNil(t, old.Find("p0", "shape"), "loading must not modify the caller's state")
			}
		})
	}
}
