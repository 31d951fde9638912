package gsolver

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/optim/optimtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// fakeEngine answers as a quadratic over its own parameter list (in its own
// order, as hessian.Engine does) and records the batches it is given.
type fakeEngine struct {
	q      *optimtest.Quadratic
	params []optim.Param
	x      []float64
	labels []int
	hvps   int
}

func (e *fakeEngine) Params() []optim.Param { return e.params }

func (e *fakeEngine) check(ts []*tensor.Dense) error {
	if len(ts) != len(e.params) {
		return fmt.Errorf("%d tensors for %d parameters", len(ts), len(e.params))
	}
	for i, t := range ts {
		if !t.Shape().Eq(e.params[i].Value.Shape()) {
			return fmt.Errorf("tensor %d is %v, want %s's %v", i, t.Shape(), e.params[i].Name, e.params[i].Value.Shape())
		}
	}
	return nil
}

func (e *fakeEngine) HVP(v, out []*tensor.Dense) error {
	e.hvps++
	if err := e.check(v); err != nil {
		return err
	}
	if err := e.check(out); err != nil {
		return err
	}
	return e.q.HVP(v, out)
}

func (e *fakeEngine) SampledGrad(out []*tensor.Dense) error {
	if err := e.check(out); err != nil {
		return err
	}
	return e.q.SampledGrad(out)
}

func (e *fakeEngine) SetBatch(x *tensor.Dense, labels []int) error {
	e.x = append(e.x[:0], x.Float64s()...)
	e.labels = append(e.labels[:0], labels...)
	return nil
}

// graphParams makes input nodes in g holding ps's values, with gradients
// bound as a TapeMachine with BindDualValues would.
func graphParams(t *testing.T, g *gorgonia.ExprGraph, ps []optim.Param) []*gorgonia.Node {
	t.Helper()
	nodes := make([]*gorgonia.Node, len(ps))
	for i, p := range ps {
		nodes[i] = gorgonia.NewTensor(g, p.Value.Dtype(), p.Value.Dims(), gorgonia.WithShape(p.Value.Shape()...), gorgonia.WithName(p.Name), gorgonia.WithValue(p.Value))
	}
	return nodes
}

// TestEngineOrder: with an engine that lists its parameters in another
// order than the learnables, the solver follows the engine's order, and the
// updates are those of the optimizer called directly in that order.
func TestEngineOrder(t *testing.T) {
	for _, name := range []string{"adahessian", "sophiah", "sophiag"} {
		t.Run(name, func(t *testing.T) {
			qa := optimtest.NewQuadratic(rand.New(rand.NewPCG(1, 0)), 0.1, shapes...)
			qb := optimtest.NewQuadratic(rand.New(rand.NewPCG(1, 0)), 0.1, shapes...)
			pa := qa.Params(tensor.Float64, rand.New(rand.NewPCG(2, 0)))
			pb := cloneParams(pa)
			qb.Use(pb)
			eng := &fakeEngine{q: qb, params: pb}
			// The learnables in reverse order.
			vgs := vgsOf([]optim.Param{pb[2], pb[1], pb[0]})
			direct := newOpt(t, name)
			s, err := New(newOpt(t, name), WithOracle(eng))
			require.NoError(t, err)
			for step := 0; step < 12; step++ {
				qa.Grad(pa)
				qb.Grad(pb)
				require.NoError(t, direct.Step(pa, qa))
				require.NoError(t, s.Step(vgs))
				for i := range pa {
					require.Equal(t, pa[i].Value.Data(), pb[i].Value.Data(), "step %d %s", step, pa[i].Name)
				}
			}
			assert.Equal(t, []string{"p0", "p1", "p2"}, []string{s.Params()[0].Name, s.Params()[1].Name, s.Params()[2].Name})
		})
	}
}

// TestEngineParamsMatch: the learnables must be the engine's parameter
// tensors, the same set.
func TestEngineParamsMatch(t *testing.T) {
	q := optimtest.NewQuadratic(rand.New(rand.NewPCG(1, 0)), 0.1, shapes...)
	ps := q.Params(tensor.Float64, rand.New(rand.NewPCG(2, 0)))
	q.Grad(ps)
	t.Run("fewer learnables", func(t *testing.T) {
		s, err := New(newOpt(t, "sophiah"), WithOracle(&fakeEngine{q: q, params: ps}))
		require.NoError(t, err)
		err = s.Step(vgsOf(ps[:2]))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "2 parameters, but the curvature engine has 3 (p0, p1, p2)")
	})
	t.Run("a copy, not the engine's tensor", func(t *testing.T) {
		s, err := New(newOpt(t, "sophiah"), WithOracle(&fakeEngine{q: q, params: ps}))
		require.NoError(t, err)
		other := cloneParams(ps)
		err = s.Step(vgsOf([]optim.Param{ps[0], other[1], ps[2]}))
		require.Error(t, err)
		assert.Contains(t, err.Error(), `parameter "p1": its value is none of the curvature engine's parameter tensors`)
	})
	t.Run("one tensor twice", func(t *testing.T) {
		s, err := New(newOpt(t, "sophiah"), WithOracle(&fakeEngine{q: q, params: ps}))
		require.NoError(t, err)
		twice := optim.Param{Name: "again", Value: ps[0].Value, Grad: ps[0].Grad}
		err = s.Step(vgsOf([]optim.Param{ps[0], twice, ps[2]}))
		require.Error(t, err)
		assert.Contains(t, err.Error(), `parameter "again": its value is also another parameter's`)
	})
	t.Run("rebound after the first step", func(t *testing.T) {
		s, err := New(newOpt(t, "sophiah"), WithOracle(&fakeEngine{q: q, params: ps}), KeepGradients())
		require.NoError(t, err)
		vgs := vgsOf(ps)
		require.NoError(t, s.Step(vgs))
		vgs[2].(*fakeVG).v = ps[2].Value.Clone().(*tensor.Dense)
		before := ps[0].Value.Clone().(*tensor.Dense)
		err = s.Step(vgs)
		require.Error(t, err)
		assert.Contains(t, err.Error(), `parameter "p2": its value is not the tensor the curvature engine's parameter "p2" holds`)
		assert.Equal(t, before.Data(), ps[0].Value.Data())
	})
}

// TestEngineFeed: WithEngine hands the engine the batch bound to the input
// and target nodes, one-hot rows turned into labels, before the
// optimizer's queries.
func TestEngineFeed(t *testing.T) {
	q := optimtest.NewQuadratic(rand.New(rand.NewPCG(1, 0)), 0.1, shapes...)
	ps := q.Params(tensor.Float64, rand.New(rand.NewPCG(2, 0)))
	g := gorgonia.NewGraph()
	x := gorgonia.NewMatrix(g, tensor.Float64, gorgonia.WithShape(3, 2), gorgonia.WithName("x"))
	y := gorgonia.NewMatrix(g, tensor.Float64, gorgonia.WithShape(3, 4), gorgonia.WithName("y"))
	eng := &fakeEngine{q: q, params: ps}
	s, err := New(newOpt(t, "adahessian"), WithEngine(eng, x, y))
	require.NoError(t, err)
	vgs := vgsOf(ps)
	xs := []float64{1, 2, 3, 4, 5, 6}
	require.NoError(t, gorgonia.Let(x, tensor.New(tensor.WithShape(3, 2), tensor.WithBacking(xs))))
	ys := []float64{0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 1}
	require.NoError(t, gorgonia.Let(y, tensor.New(tensor.WithShape(3, 4), tensor.WithBacking(ys))))
	q.Grad(ps)
	require.NoError(t, s.Step(vgs))
	assert.Equal(t, xs, eng.x)
	assert.Equal(t, []int{2, 0, 3}, eng.labels)
	assert.Equal(t, 1, eng.hvps)

	for _, bad := range [][]float64{
		{0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0},     // row 2: no class
		{0, 0, 1, 0, 1, 0, 0, 0, 0, 0.5, 0.5, 0}, // row 2: soft
		{0, 0, 1, 0, 1, 1, 0, 0, 0, 0, 0, 1},     // row 1: two classes
		{0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0.9},   // row 2: not 1
	} {
		require.NoError(t, gorgonia.Let(y, tensor.New(tensor.WithShape(3, 4), tensor.WithBacking(bad))))
		q.Grad(ps)
		before := ps[0].Value.Clone().(*tensor.Dense)
		err := s.Step(vgs)
		require.Error(t, err)
		assert.Contains(t, err.Error(), `of target node "y" is not one-hot`)
		assert.Equal(t, before.Data(), ps[0].Value.Data())
	}
	require.NoError(t, gorgonia.Let(y, tensor.New(tensor.WithShape(3, 4), tensor.WithBacking([]float64{0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0}))))
	assert.ErrorContains(t, s.Step(vgs), `row 2 of target node "y"`)
}
