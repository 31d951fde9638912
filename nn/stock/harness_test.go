package stock

import (
	"math"
	"testing"

	"github.com/curvopt/curvopt/nn"
	"github.com/stretchr/testify/require"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// builder adds a stock model and its scalar cost to g and returns the cost
// and the parameters. It must build the same function every time.
type builder func(t *testing.T, g *gorgonia.ExprGraph) (cost *gorgonia.Node, params []*gorgonia.Node)

// sinTensor is a deterministic tensor sin(a·i + b)·scale.
func sinTensor(shape tensor.Shape, a, b, scale float64) *tensor.Dense {
	d := make([]float64, shape.TotalSize())
	for i := range d {
		d[i] = scale * math.Sin(a*float64(i)+b)
	}
	return tensor.New(tensor.WithShape(shape.Clone()...), tensor.WithBacking(d))
}

// param adds a float64 parameter with deterministic values.
func param(g *gorgonia.ExprGraph, name string, shape tensor.Shape, seed float64) *gorgonia.Node {
	scale := 1 / math.Sqrt(float64(shape.TotalSize()/shape[0]+1))
	return gorgonia.NewTensor(g, tensor.Float64, shape.Dims(), gorgonia.WithShape(shape...), gorgonia.WithName(name),
		gorgonia.WithValue(sinTensor(shape, 0.37+seed, seed, 2*scale)))
}

func relErr(a, b []float64) float64 {
	var d, n float64
	for i := range a {
		d += (a[i] - b[i]) * (a[i] - b[i])
		n += b[i] * b[i]
	}
	if n == 0 {
		return math.Sqrt(d)
	}
	return math.Sqrt(d / n)
}

func run(t *testing.T, g *gorgonia.ExprGraph, roots ...*gorgonia.Node) {
	t.Helper()
	vm := gorgonia.NewTapeMachine(g.SubgraphRoots(roots...))
	defer vm.Close()
	require.NoError(t, vm.RunAll())
}

func values(t *testing.T, ns []*gorgonia.Node) [][]float64 {
	t.Helper()
	out := make([][]float64, len(ns))
	for i, n := range ns {
		require.NotNil(t, n.Value(), "node %q has no value", n.Name())
		out[i] = append([]float64{}, n.Value().Data().([]float64)...)
	}
	return out
}

func flat(vs [][]float64) []float64 {
	var out []float64
	for _, v := range vs {
		out = append(out, v...)
	}
	return out
}

func scalar(t *testing.T, n *gorgonia.Node) float64 {
	t.Helper()
	switch v := n.Value().Data().(type) {
	case float64:
		return v
	case []float64:
		require.Len(t, v, 1)
		return v[0]
	}
	t.Fatalf("node %q: value %T", n.Name(), n.Value())
	return 0
}

// rewritten is a rewritten model with its gradient and H·v graphs.
type rewritten struct {
	g       *gorgonia.ExprGraph
	cost    *gorgonia.Node
	params  []*gorgonia.Node
	grads   []*gorgonia.Node
	v       []*tensor.Dense
	hv      []*gorgonia.Node
	mGrad   gorgonia.VM
	mHV     gorgonia.VM
	dropout *nn.DropoutState
}

func rewrite(t *testing.T, b builder) *rewritten {
	t.Helper()
	g := gorgonia.NewGraph()
	cost, ps := b(t, g)
	rw := &rewritten{g: g, params: ps, dropout: nn.NewDropoutState(7)}
	r, err := New(g, ps, Options{Dropout: rw.dropout})
	require.NoError(t, err)
	rw.cost, err = r.Rewrite(cost)
	require.NoError(t, err)
	require.NoError(t, nn.AuditSecondOrder([]*gorgonia.Node{rw.cost}, ps), "rewritten forward graph")
	one := tensor.New(tensor.WithShape(1), tensor.WithBacking([]float64{1}))
	seed := gorgonia.NewTensor(g, tensor.Float64, 1, gorgonia.WithShape(1), gorgonia.WithValue(one), gorgonia.WithName("seed"))
	rw.grads, err = nn.Backprop([]*gorgonia.Node{rw.cost}, []*gorgonia.Node{seed}, ps)
	require.NoError(t, err)
	require.NoError(t, nn.AuditSecondOrder(rw.grads, ps), "gradient graph")
	var vs []*gorgonia.Node
	for i, p := range ps {
		rw.v = append(rw.v, sinTensor(p.Shape(), 0.91, float64(i), 1))
		vs = append(vs, gorgonia.NewTensor(g, tensor.Float64, p.Dims(), gorgonia.WithShape(p.Shape()...), gorgonia.WithValue(rw.v[i]), gorgonia.WithName("v:"+p.Name())))
	}
	rw.hv, err = nn.Backprop(rw.grads, vs, ps)
	require.NoError(t, err)
	rw.mGrad = gorgonia.NewTapeMachine(g.SubgraphRoots(append([]*gorgonia.Node{rw.cost}, rw.grads...)...))
	rw.mHV = gorgonia.NewTapeMachine(g.SubgraphRoots(append([]*gorgonia.Node{rw.cost}, rw.hv...)...))
	t.Cleanup(func() { rw.mGrad.Close(); rw.mHV.Close() })
	return rw
}

func (rw *rewritten) gradAt(t *testing.T) (float64, []float64) {
	t.Helper()
	rw.mGrad.Reset()
	require.NoError(t, rw.mGrad.RunAll())
	return scalar(t, rw.cost), flat(values(t, rw.grads))
}

func (rw *rewritten) hvp(t *testing.T) []float64 {
	t.Helper()
	rw.mHV.Reset()
	require.NoError(t, rw.mHV.RunAll())
	return flat(values(t, rw.hv))
}

// shift adds s·v to the parameters' values.
func (rw *rewritten) shift(s float64) {
	for i, p := range rw.params {
		d := p.Value().Data().([]float64)
		for j, vj := range rw.v[i].Float64s() {
			d[j] += s * vj
		}
	}
}

// fdHVP is (∇L(θ+εv) − ∇L(θ−εv))/2ε.
func (rw *rewritten) fdHVP(t *testing.T, eps float64) []float64 {
	rw.shift(eps)
	_, gp := rw.gradAt(t)
	rw.shift(-2 * eps)
	_, gm := rw.gradAt(t)
	rw.shift(eps)
	out := make([]float64, len(gp))
	for i := range out {
		out[i] = (gp[i] - gm[i]) / (2 * eps)
	}
	return out
}

// fdGrad is the central-difference gradient of the loss, coordinate by
// coordinate.
func (rw *rewritten) fdGrad(t *testing.T, h float64) []float64 {
	var out []float64
	for _, p := range rw.params {
		d := p.Value().Data().([]float64)
		for j := range d {
			old := d[j]
			d[j] = old + h
			lp, _ := rw.gradAt(t)
			d[j] = old - h
			lm, _ := rw.gradAt(t)
			d[j] = old
			out = append(out, (lp-lm)/(2*h))
		}
	}
	return out
}

// stockRun runs the stock graph, with gorgonia.Grad when grad is set.
func stockRun(t *testing.T, b builder, grad bool) (float64, []float64) {
	t.Helper()
	g := gorgonia.NewGraph()
	cost, ps := b(t, g)
	if !grad {
		run(t, g, cost)
		return scalar(t, cost), nil
	}
	gs, err := gorgonia.Grad(cost, ps...)
	require.NoError(t, err)
	run(t, g, append([]*gorgonia.Node{cost}, gs...)...)
	return scalar(t, cost), flat(values(t, gs))
}

// Levels of comparison with stock Gorgonia in checkModel.
const (
	stockNone = iota // random forward (dropout): no comparison
	stockLoss        // the forward pass is right, its gradient is not
	stockGrad        // the loss and the gradient are right
)

// checkModel compares the rewritten model's gradient with finite
// differences of its loss, its loss (and gradient) with stock Gorgonia's as
// level says, and its H·v with finite differences of its gradient, at the
// tolerances of the hessian package's model tests (1e-6 relative for H·v
// against finite differences).
func checkModel(t *testing.T, b builder, level int) {
	t.Helper()
	rw := rewrite(t, b)
	loss, grad := rw.gradAt(t)
	fg := rw.fdGrad(t, 1e-6)
	require.LessOrEqual(t, relErr(grad, fg), 1e-6, "gradient against finite differences of the loss")
	if level >= stockLoss {
		sl, sg := stockRun(t, b, level == stockGrad)
		require.InDelta(t, sl, loss, 1e-12*math.Max(1, math.Abs(sl)), "loss against stock Gorgonia")
		if level == stockGrad {
			require.LessOrEqual(t, relErr(grad, sg), 1e-10, "gradient against gorgonia.Grad")
		}
	}
	hv := rw.hvp(t)
	fd := rw.fdHVP(t, 1e-5)
	require.LessOrEqual(t, relErr(hv, fd), 1e-6, "H·v against finite differences (|H·v| = %g)", math.Sqrt(dot(hv, hv)))
	require.Greater(t, dot(hv, hv), 0.0, "H·v is zero: the check would pass vacuously")
}

func dot(a, b []float64) float64 {
	s := 0.0
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}
