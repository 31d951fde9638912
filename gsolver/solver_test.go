package gsolver

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/optim/optimtest"
	"github.com/curvopt/curvopt/train"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// fakeVG is a ValueGrad with a name, as a *gorgonia.Node is.
type fakeVG struct {
	name string
	v, g gorgonia.Value
	err  error
}

func (f *fakeVG) Value() gorgonia.Value         { return f.v }
func (f *fakeVG) Grad() (gorgonia.Value, error) { return f.g, f.err }
func (f *fakeVG) Name() string                  { return f.name }

func vgsOf(ps []optim.Param) []gorgonia.ValueGrad {
	out := make([]gorgonia.ValueGrad, len(ps))
	for i, p := range ps {
		out[i] = &fakeVG{name: p.Name, v: p.Value, g: p.Grad}
	}
	return out
}

var shapes = [][]int{{3, 4}, {4}, {2, 1, 2, 2}}

func newOpt(t *testing.T, name string) optim.Optimizer {
	t.Helper()
	o, err := train.NewOptimizer(name, nil, 8, 11)
	require.NoError(t, err)
	t.Cleanup(func() { _ = o.Close() })
	return o
}

func cloneParams(ps []optim.Param) []optim.Param {
	out := make([]optim.Param, len(ps))
	for i, p := range ps {
		out[i] = optim.Param{Name: p.Name, Value: p.Value.Clone().(*tensor.Dense), Grad: p.Grad.Clone().(*tensor.Dense)}
	}
	return out
}

// TestSameAsOptimizer: every optimizer stepped through the solver makes
// bit for bit the updates it makes when called directly on the same
// parameters with the same gradients and the same oracle.
func TestSameAsOptimizer(t *testing.T) {
	for _, name := range train.Optimizers() {
		for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
			t.Run(name+"/"+dt.String(), func(t *testing.T) {
				qa := optimtest.NewQuadratic(rand.New(rand.NewPCG(1, 0)), 0.1, shapes...)
				qb := optimtest.NewQuadratic(rand.New(rand.NewPCG(1, 0)), 0.1, shapes...)
				pa := qa.Params(dt, rand.New(rand.NewPCG(2, 0)))
				pb := cloneParams(pa)
				qb.Use(pb)
				direct, viaSolver := newOpt(t, name), newOpt(t, name)
				s, err := New(viaSolver, WithOracle(qb))
				require.NoError(t, err)
				vgs := vgsOf(pb)
				for step := 0; step < 25; step++ {
					qa.Grad(pa)
					qb.Grad(pb)
					require.NoError(t, direct.Step(pa, qa))
					require.NoError(t, s.Step(vgs))
					for i := range pa {
						require.Equal(t, pa[i].Value.Data(), pb[i].Value.Data(), "step %d param %s", step, pa[i].Name)
					}
				}
				sa, err := direct.State()
				require.NoError(t, err)
				sb, err := s.Optimizer().State()
				require.NoError(t, err)
				assert.Equal(t, sa, sb)
			})
		}
	}
}

// TestGradientsZeroed: a successful step zeroes the gradients (a
// TapeMachine with BindDualValues adds into them); KeepGradients keeps them;
// a refused step leaves them.
func TestGradientsZeroed(t *testing.T) {
	q := optimtest.NewQuadratic(rand.New(rand.NewPCG(1, 0)), 0.1, shapes...)
	ps := q.Params(tensor.Float64, rand.New(rand.NewPCG(2, 0)))
	q.Grad(ps)
	s, err := New(newOpt(t, "adam"))
	require.NoError(t, err)
	require.NoError(t, s.Step(vgsOf(ps)))
	for _, p := range ps {
		assert.Equal(t, make([]float64, p.Grad.Size()), p.Grad.Float64s(), p.Name)
	}

	q.Grad(ps)
	want := cloneParams(ps)
	k, err := New(newOpt(t, "adam"), KeepGradients())
	require.NoError(t, err)
	require.NoError(t, k.Step(vgsOf(ps)))
	for i, p := range ps {
		assert.Equal(t, want[i].Grad.Float64s(), p.Grad.Float64s(), p.Name)
	}

	ps[1].Grad.Float64s()[2] = 1.0 / zeroF()
	before := cloneParams(ps)
	require.Error(t, s.Step(vgsOf(ps)))
	for i, p := range ps {
		assert.Equal(t, before[i].Value.Float64s(), p.Value.Float64s(), p.Name)
		assert.Equal(t, before[i].Grad.Data(), p.Grad.Data(), p.Name)
	}
}

func zeroF() float64 { return 0 }

// TestNoAllocs: after the first step a step allocates nothing.
func TestNoAllocs(t *testing.T) {
	for _, name := range []string{"sgd", "adam", "adahessian"} {
		q := optimtest.NewQuadratic(rand.New(rand.NewPCG(1, 0)), 0.1, shapes...)
		ps := q.Params(tensor.Float64, rand.New(rand.NewPCG(2, 0)))
		s, err := New(newOpt(t, name), WithOracle(q), KeepGradients())
		require.NoError(t, err)
		vgs := vgsOf(ps)
		q.Grad(ps)
		require.NoError(t, s.Step(vgs))
		allocs := testing.AllocsPerRun(20, func() {
			if err := s.Step(vgs); err != nil {
				t.Fatal(err)
			}
		})
		assert.Zero(t, allocs, name)
	}
}

// TestMisuse: every refusal is an error naming what is wrong, and nothing
// changes.
func TestMisuse(t *testing.T) {
	mk := func() ([]optim.Param, []gorgonia.ValueGrad) {
		q := optimtest.NewQuadratic(rand.New(rand.NewPCG(1, 0)), 0.1, shapes...)
		ps := q.Params(tensor.Float64, rand.New(rand.NewPCG(2, 0)))
		q.Grad(ps)
		return ps, vgsOf(ps)
	}
	started := func(t *testing.T) (*Solver, []optim.Param, []gorgonia.ValueGrad) {
		s, err := New(newOpt(t, "adam"), KeepGradients())
		require.NoError(t, err)
		ps, vgs := mk()
		require.NoError(t, s.Step(vgs))
		return s, ps, vgs
	}
	refuse := func(t *testing.T, s *Solver, ps []optim.Param, vgs []gorgonia.ValueGrad, want ...string) {
		t.Helper()
		before := cloneParams(ps)
		err := s.Step(vgs)
		require.Error(t, err)
		for _, w := range want {
			assert.Contains(t, err.Error(), w)
		}
		for i, p := range ps {
			assert.Equal(t, before[i].Value.Data(), p.Value.Data(), "param %s changed", p.Name)
		}
	}
	t.Run("no parameters", func(t *testing.T) {
		s, err := New(newOpt(t, "sgd"))
		require.NoError(t, err)
		require.ErrorContains(t, s.Step(nil), "no parameters")
	})
	t.Run("non-Dense value", func(t *testing.T) {
		s, err := New(newOpt(t, "sgd"))
		require.NoError(t, err)
		ps, vgs := mk()
		f := gorgonia.F64(1)
		vgs[1] = &fakeVG{name: "scalar", v: &f, g: ps[1].Grad}
		refuse(t, s, ps, vgs, `"scalar"`, "*gorgonia.F64", "*tensor.Dense")
	})
	t.Run("non-Dense gradient", func(t *testing.T) {
		s, err := New(newOpt(t, "sgd"))
		require.NoError(t, err)
		ps, vgs := mk()
		f := gorgonia.F64(1)
		vgs[0].(*fakeVG).g = &f
		refuse(t, s, ps, vgs, `"p0"`, "gradient is *gorgonia.F64")
	})
	t.Run("no gradient", func(t *testing.T) {
		s, err := New(newOpt(t, "sgd"))
		require.NoError(t, err)
		ps, vgs := mk()
		vgs[2].(*fakeVG).err = errors.New("No Gradient node/value found")
		refuse(t, s, ps, vgs, `"p2"`, "no gradient", "No Gradient node/value found")
	})
	t.Run("dtype mismatch", func(t *testing.T) {
		s, err := New(newOpt(t, "sgd"))
		require.NoError(t, err)
		ps, vgs := mk()
		vgs[1].(*fakeVG).g = tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(4))
		refuse(t, s, ps, vgs, `parameter "p1": value is float64 but its gradient is float32`)
	})
	t.Run("shape mismatch", func(t *testing.T) {
		s, err := New(newOpt(t, "sgd"))
		require.NoError(t, err)
		ps, vgs := mk()
		vgs[1].(*fakeVG).g = tensor.New(tensor.Of(tensor.Float64), tensor.WithShape(2, 2))
		refuse(t, s, ps, vgs, `parameter "p1": value has shape (4) but its gradient (2, 2)`)
	})
	t.Run("int dtype", func(t *testing.T) {
		s, err := New(newOpt(t, "sgd"))
		require.NoError(t, err)
		ps, vgs := mk()
		it := tensor.New(tensor.Of(tensor.Int), tensor.WithShape(4))
		vgs[1] = &fakeVG{name: "ints", v: it, g: it.Clone().(*tensor.Dense)}
		refuse(t, s, ps, vgs, `"ints"`, "want float32 or float64")
	})
	t.Run("nil ValueGrad", func(t *testing.T) {
		s, err := New(newOpt(t, "sgd"))
		require.NoError(t, err)
		ps, vgs := mk()
		vgs[1] = (*gorgonia.Node)(nil)
		refuse(t, s, ps, vgs, "parameter 1", "nil ValueGrad")
	})
	t.Run("duplicate names", func(t *testing.T) {
		s, err := New(newOpt(t, "sgd"))
		require.NoError(t, err)
		ps, vgs := mk()
		vgs[2].(*fakeVG).name = "p0"
		refuse(t, s, ps, vgs, `parameters 0 and 2 are both named "p0": optimizer state goes by name (gorgonia.WithName)`)
	})
	t.Run("fewer parameters", func(t *testing.T) {
		s, ps, vgs := started(t)
		refuse(t, s, ps, vgs[:2], "2 parameters", "first step had 3", "changed")
	})
	t.Run("renamed parameter", func(t *testing.T) {
		s, ps, vgs := started(t)
		vgs[1].(*fakeVG).name = "other"
		refuse(t, s, ps, vgs, `"other"`, `"p1"`, "changed")
	})
	t.Run("reordered parameters", func(t *testing.T) {
		s, ps, vgs := started(t)
		vgs[0], vgs[1] = vgs[1], vgs[0]
		refuse(t, s, ps, vgs, "parameter 0", `"p1"`, `"p0"`, "changed")
	})
	t.Run("reshaped parameter", func(t *testing.T) {
		s, ps, vgs := started(t)
		vgs[0].(*fakeVG).v = tensor.New(tensor.Of(tensor.Float64), tensor.WithShape(4, 3))
		vgs[0].(*fakeVG).g = tensor.New(tensor.Of(tensor.Float64), tensor.WithShape(4, 3))
		refuse(t, s, ps, vgs, `"p0"`, "(4, 3)", "(3, 4)", "first step")
	})
	t.Run("unnamed nodes get their position", func(t *testing.T) {
		s, err := New(newOpt(t, "sgd"), KeepGradients())
		require.NoError(t, err)
		_, vgs := mk()
		for _, v := range vgs {
			v.(*fakeVG).name = ""
		}
		require.NoError(t, s.Step(vgs))
		assert.Equal(t, []string{"#0", "#1", "#2"}, []string{s.Params()[0].Name, s.Params()[1].Name, s.Params()[2].Name})
		require.NoError(t, s.Step(vgs))
		vgs[1].(*fakeVG).name = "late"
		require.ErrorContains(t, s.Step(vgs), `"late"`)
	})
	t.Run("curvature optimizer without an oracle", func(t *testing.T) {
		for _, name := range []string{"adahessian", "sophiah", "sophiag"} {
			_, err := New(newOpt(t, name))
			require.Error(t, err, name)
			assert.Contains(t, err.Error(), name)
			assert.Contains(t, err.Error(), "hessian.NewGraph")
		}
	})
	t.Run("oracle without the query", func(t *testing.T) {
		_, err := New(newOpt(t, "sophiah"), WithOracle(optim.NoCurvature{}))
		require.ErrorIs(t, err, optim.ErrNotProvided)
	})
	t.Run("nil optimizer", func(t *testing.T) {
		_, err := New(nil)
		require.ErrorContains(t, err, "nil optimizer")
	})
	t.Run("engine with one node", func(t *testing.T) {
		g := gorgonia.NewGraph()
		x := gorgonia.NewMatrix(g, tensor.Float64, gorgonia.WithShape(2, 2), gorgonia.WithName("x"))
		_, err := New(newOpt(t, "sgd"), WithEngine(&fakeEngine{}, x, nil))
		require.ErrorContains(t, err, "both")
	})
	t.Run("closed optimizer", func(t *testing.T) {
		s, ps, vgs := started(t)
		require.NoError(t, s.Close())
		refuse(t, s, ps, vgs, "after Close")
		require.ErrorIs(t, s.Step(vgs), optim.ErrClosed)
	})
}
