package hessian

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/curvopt/curvopt/optim"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func gmust(n *G.Node, err error) *G.Node {
	if err != nil {
		panic(err)
	}
	return n
}

// sinDense is sin(a·i + b)·scale.
func sinDense(shape tensor.Shape, a, b, scale float64) *tensor.Dense {
	d := make([]float64, shape.TotalSize())
	for i := range d {
		d[i] = scale * math.Sin(a*float64(i)+b)
	}
	return tensor.New(tensor.WithShape(shape.Clone()...), tensor.WithBacking(d))
}

func stockParam(g *G.ExprGraph, name string, shape tensor.Shape, seed float64) *G.Node {
	scale := 2 / math.Sqrt(float64(shape.TotalSize()/shape[0]+1))
	return G.NewTensor(g, tensor.Float64, shape.Dims(), G.WithShape(shape...), G.WithName(name), G.WithValue(sinDense(shape, 0.37+seed, seed, scale)))
}

// stockMLPGraph is an MLP written as a Gorgonia user writes it, batch n:
// G.Mul, G.BroadcastAdd, G.Tanh, G.SoftMax and the scalar log-likelihood
// -mean_n Σ_c y log p. The spec has no Logits: the engine finds them.
func stockMLPGraph(n int) (*G.ExprGraph, GraphSpec, *G.Node) {
	const in, hid, classes = 5, 7, 3
	g := G.NewGraph()
	x := G.NewMatrix(g, tensor.Float64, G.WithShape(n, in), G.WithName("x"))
	y := G.NewMatrix(g, tensor.Float64, G.WithShape(n, classes), G.WithName("y"))
	w1, b1 := stockParam(g, "w1", tensor.Shape{in, hid}, 0.2), stockParam(g, "b1", tensor.Shape{hid}, 0.3)
	w2, b2 := stockParam(g, "w2", tensor.Shape{hid, classes}, 0.4), stockParam(g, "b2", tensor.Shape{classes}, 0.5)
	h := gmust(G.Tanh(gmust(G.BroadcastAdd(gmust(G.Mul(x, w1)), b1, nil, []byte{0}))))
	z := gmust(G.BroadcastAdd(gmust(G.Mul(h, w2)), b2, nil, []byte{0}))
	prob := gmust(G.SoftMax(z))
	cost := gmust(G.Neg(gmust(G.Mean(gmust(G.Sum(gmust(G.HadamardProd(gmust(G.Log(prob)), y)), 1))))))
	spec := GraphSpec{Input: x, Targets: y, Loss: cost, Params: []GraphParam{{Node: w1}, {Node: b1}, {Node: w2}, {Node: b2}}}
	return g, spec, z
}

// stockConvNetGraph is Gorgonia's examples/convnet at a small size (conv,
// Rectify, MaxPool2D, Dropout, Reshape, Mul, SoftMax and the
// log-likelihood), batch n.
func stockConvNetGraph(n int) (*G.ExprGraph, GraphSpec) {
	const classes = 3
	g := G.NewGraph()
	x := G.NewTensor(g, tensor.Float64, 4, G.WithShape(n, 1, 8, 8), G.WithName("x"))
	y := G.NewMatrix(g, tensor.Float64, G.WithShape(n, classes), G.WithName("y"))
	w0 := stockParam(g, "w0", tensor.Shape{2, 1, 3, 3}, 0.2)
	w1 := stockParam(g, "w1", tensor.Shape{3, 2, 3, 3}, 0.3)
	w3 := stockParam(g, "w3", tensor.Shape{3 * 2 * 2, 5}, 0.4)
	w4 := stockParam(g, "w4", tensor.Shape{5, classes}, 0.5)
	layer := func(in, w *G.Node, p float64) *G.Node {
		c := gmust(G.Conv2d(in, w, tensor.Shape{3, 3}, []int{1, 1}, []int{1, 1}, []int{1, 1}))
		m := gmust(G.MaxPool2D(gmust(G.Rectify(c)), tensor.Shape{2, 2}, []int{0, 0}, []int{2, 2}))
		return gmust(G.Dropout(m, p))
	}
	l1 := layer(layer(x, w0, 0.2), w1, 0.2)
	s := l1.Shape()
	r := gmust(G.Dropout(gmust(G.Reshape(l1, tensor.Shape{s[0], s[1] * s[2] * s[3]})), 0.2))
	a3 := gmust(G.Dropout(gmust(G.Rectify(gmust(G.Mul(r, w3)))), 0.55))
	out := gmust(G.SoftMax(gmust(G.Mul(a3, w4))))
	cost := gmust(G.Neg(gmust(G.Mean(gmust(G.Sum(gmust(G.HadamardProd(gmust(G.Log(out)), y)), 1))))))
	return g, GraphSpec{Input: x, Targets: y, Loss: cost, DropoutSeed: 3,
		Params: []GraphParam{{Node: w0}, {Node: w1}, {Node: w3}, {Node: w4}}}
}

func stockBatch(shape tensor.Shape, classes int, seed uint64) (*tensor.Dense, []int) {
	rng := rand.New(rand.NewPCG(seed, 1))
	x := tensor.New(tensor.WithShape(shape.Clone()...), tensor.Of(tensor.Float64))
	for i := range x.Float64s() {
		x.Float64s()[i] = rng.NormFloat64()
	}
	labels := make([]int, shape[0])
	for i := range labels {
		labels[i] = rng.IntN(classes)
	}
	return x, labels
}

// checkStockEngine checks an engine on a stock graph: H·v against finite
// differences (float64, 1e-6 as the model tests), the gradient against
// finite differences of the loss, and that the sampled gradient runs.
func checkStockEngine(t *testing.T, e *Engine, x *tensor.Dense, labels []int) {
	t.Helper()
	require.NoError(t, e.SetBatch(x, labels))
	loss, err := e.LossGrad()
	require.NoError(t, err)
	require.False(t, math.IsNaN(loss) || math.IsInf(loss, 0))
	g := e.gradFlatNowForTest(t)
	v := make([]float64, e.Dim())
	for i := range v {
		v[i] = math.Sin(0.83*float64(i) + 0.4)
	}
	hv, fd := make([]float64, e.Dim()), make([]float64, e.Dim())
	require.NoError(t, e.HVPFlat(v, hv))
	require.NoError(t, e.FiniteDiffHVP(v, fd, 1e-5))
	assert.LessOrEqual(t, relErr(hv, fd), 1e-6, "H·v against finite differences")
	assert.Greater(t, relErr(hv, make([]float64, len(hv))), 0.0)
	// gradient against central differences of the loss
	var vals []*tensor.Dense
	for _, p := range e.Params() {
		vals = append(vals, p.Value)
	}
	theta := make([]float64, e.Dim())
	e.flatten(vals, theta)
	fg := make([]float64, e.Dim())
	const h = 1e-6
	for j := range theta {
		old := theta[j]
		theta[j] = old + h
		e.unflatten(theta, vals)
		lp, err := e.Loss()
		require.NoError(t, err)
		theta[j] = old - h
		e.unflatten(theta, vals)
		lm, err := e.Loss()
		require.NoError(t, err)
		theta[j] = old
		fg[j] = (lp - lm) / (2 * h)
	}
	e.unflatten(theta, vals)
	assert.LessOrEqual(t, relErr(g, fg), 1e-6, "gradient against finite differences")
}

func (e *Engine) gradFlatNowForTest(t *testing.T) []float64 {
	t.Helper()
	out := make([]float64, e.Dim())
	e.flatten(e.grads, out)
	return out
}

func TestNewGraphStockMLP(t *testing.T) {
	const n = 8
	g, spec, z := stockMLPGraph(n)
	e, err := NewGraph(g, spec, optim.Needs{HVP: true, SampledGrad: true})
	require.NoError(t, err)
	defer e.Close()
	x, labels := stockBatch(tensor.Shape{n, 5}, 3, 1)
	checkStockEngine(t, e, x, labels)

	// The loss and gradient equal stock Gorgonia's (first derivatives of
	// these ops are right in stock Gorgonia).
	loss, err := e.LossGrad()
	require.NoError(t, err)
	sg, sspec, _ := stockMLPGraph(n)
	require.NoError(t, G.Let(sspec.Input, x))
	y := tensor.New(tensor.WithShape(n, 3), tensor.Of(tensor.Float64))
	for r, l := range labels {
		y.Float64s()[r*3+l] = 1
	}
	require.NoError(t, G.Let(sspec.Targets, y))
	var ps []*G.Node
	for _, p := range sspec.Params {
		ps = append(ps, p.Node)
	}
	grads, err := G.Grad(sspec.Loss, ps...)
	require.NoError(t, err)
	vm := G.NewTapeMachine(sg)
	require.NoError(t, vm.RunAll())
	vm.Close()
	assert.InDelta(t, sspec.Loss.Value().Data().(float64), loss, 1e-12)
	var want []float64
	for _, gn := range grads {
		want = append(want, gn.Value().Data().([]float64)...)
	}
	assert.LessOrEqual(t, relErr(e.gradFlatNowForTest(t), want), 1e-10, "gradient against gorgonia.Grad")

	// The logits were found (the SoftMax's input z): the sampled gradient
	// equals that of an engine given Logits: z explicitly.
	sampled := func(e *Engine) []float64 {
		out := make([]*tensor.Dense, len(e.Params()))
		for i, p := range e.Params() {
			out[i] = tensor.New(tensor.WithShape(p.Value.Shape().Clone()...), tensor.Of(tensor.Float64))
		}
		require.NoError(t, e.SampledGrad(out))
		flat := make([]float64, e.Dim())
		e.flatten(out, flat)
		return flat
	}
	g2, spec2, z2 := stockMLPGraph(n)
	spec2.Logits = z2
	e2, err := NewGraph(g2, spec2, optim.Needs{HVP: true, SampledGrad: true})
	require.NoError(t, err)
	defer e2.Close()
	require.NoError(t, e2.SetBatch(x, labels))
	_, err = e2.LossGrad()
	require.NoError(t, err)
	require.NoError(t, e.SetBatch(x, labels))
	_, err = e.LossGrad()
	require.NoError(t, err)
	assert.Equal(t, e2.Logits().Float64s(), e.Logits().Float64s(), "the logits found are z")
	assert.Equal(t, sampled(e2), sampled(e))
	_ = z
}

func TestNewGraphStockConvNet(t *testing.T) {
	const n = 3
	g, spec := stockConvNetGraph(n)
	e, err := NewGraph(g, spec, optim.Needs{HVP: true, SampledGrad: true})
	require.NoError(t, err)
	defer e.Close()
	x, labels := stockBatch(tensor.Shape{n, 1, 8, 8}, 3, 2)
	checkStockEngine(t, e, x, labels)
	// One batch's runs share the dropout masks; the next batch draws new ones.
	l1, err := e.LossGrad()
	require.NoError(t, err)
	l2, err := e.LossGrad()
	require.NoError(t, err)
	assert.Equal(t, l1, l2)
	require.NoError(t, e.SetBatch(x, labels))
	l3, err := e.LossGrad()
	require.NoError(t, err)
	assert.NotEqual(t, l1, l3, "a new batch draws new dropout masks")
	// Evaluation leaves dropout out: the same logits twice.
	z1, err := e.EvalLogits(x)
	require.NoError(t, err)
	z2, err := e.EvalLogits(x)
	require.NoError(t, err)
	assert.Equal(t, z1.Float64s(), z2.Float64s())
}

// TestNewGraphEvalAnyBatch: Accuracy on 100 rows of a graph built for 32
// equals evaluating the same model built for 100 rows.
func TestNewGraphEvalAnyBatch(t *testing.T) {
	g, spec, _ := stockMLPGraph(32)
	e, err := NewGraph(g, spec, optim.Needs{})
	require.NoError(t, err)
	defer e.Close()
	x, labels := stockBatch(tensor.Shape{100, 5}, 3, 3)
	acc, err := e.Accuracy(x, labels)
	require.NoError(t, err)
	z, err := e.EvalLogits(x)
	require.NoError(t, err)
	loss, correct, err := e.EvalLoss(x, labels)
	require.NoError(t, err)

	g100, spec100, _ := stockMLPGraph(100)
	e100, err := NewGraph(g100, spec100, optim.Needs{})
	require.NoError(t, err)
	defer e100.Close()
	z100, err := e100.EvalLogits(x)
	require.NoError(t, err)
	assert.LessOrEqual(t, relErr(z.Float64s(), z100.Float64s()), 1e-14, "logits of 100 rows in parts of 32")
	acc100, err := e100.Accuracy(x, labels)
	require.NoError(t, err)
	assert.Equal(t, acc100, acc)
	assert.Equal(t, int(math.Round(acc*100)), correct)
	// The loss equals the training loss of the 100-row graph (no dropout).
	require.NoError(t, e100.SetBatch(x, labels))
	l100, err := e100.LossGrad()
	require.NoError(t, err)
	assert.InDelta(t, l100, loss, 1e-12)
}

// TestNewGraphEvalMixedRows: a batch norm over the batch couples rows, so
// a partial part is refused, naming the node; multiples of the batch work.
func TestNewGraphEvalMixedRows(t *testing.T) {
	const n = 4
	g := G.NewGraph()
	x := G.NewMatrix(g, tensor.Float64, G.WithShape(n, 5), G.WithName("x"))
	w := stockParam(g, "w", tensor.Shape{5, 3}, 0.1)
	bn, _, _, _, err := G.BatchNorm(gmust(G.Mul(x, w)), stockParam(g, "scale", tensor.Shape{1, 3}, 0.2), stockParam(g, "bias", tensor.Shape{1, 3}, 0.3), 0.9, 1e-5)
	require.NoError(t, err)
	e, err := NewGraph(g, GraphSpec{Input: x, Logits: bn, Params: []GraphParam{{Node: w}, {Node: g.ByName("scale")[0]}, {Node: g.ByName("bias")[0]}}}, optim.Needs{HVP: true})
	require.NoError(t, err)
	defer e.Close()
	xb, labels := stockBatch(tensor.Shape{n, 5}, 3, 4)
	checkStockEngine(t, e, xb, labels)
	_, err = e.EvalLogits(rowsOf(xb, 3))
	require.ErrorContains(t, err, "rows interact")
	require.ErrorContains(t, err, "not a multiple of the graph's batch 4")
	x8, _ := stockBatch(tensor.Shape{2 * n, 5}, 3, 5)
	_, err = e.EvalLogits(x8)
	require.NoError(t, err)
}

func TestNewGraphStockRefusals(t *testing.T) {
	t.Run("ProbabilitiesAsLogits", func(t *testing.T) {
		// (A fresh graph: in stockMLPGraph's, Gorgonia's stabilisation has
		// made the SoftMax node a log-softmax, as the loss takes its log.)
		g := G.NewGraph()
		x := G.NewMatrix(g, tensor.Float64, G.WithShape(4, 5), G.WithName("x"))
		w := stockParam(g, "w", tensor.Shape{5, 3}, 0.1)
		z := gmust(G.Mul(x, w))
		prob := gmust(G.SoftMax(z))
		_, err := NewGraph(g, GraphSpec{Input: x, Logits: prob, Params: []GraphParam{{Node: w}}}, optim.Needs{})
		require.Error(t, err)
		assert.Contains(t, err.Error(), prob.Name())
		assert.Contains(t, err.Error(), "gorgonia.SoftMax")
		assert.Contains(t, err.Error(), "probabilities")
		assert.Contains(t, err.Error(), z.Name(), "names the softmax's input to use")
	})
	t.Run("SigmoidAsLogits", func(t *testing.T) {
		g, spec, z := stockMLPGraph(4)
		spec.Logits, spec.Loss, spec.Targets = gmust(G.Sigmoid(z)), nil, nil
		_, err := NewGraph(g, spec, optim.Needs{})
		require.ErrorContains(t, err, "gorgonia.Sigmoid")
	})
	t.Run("UnsupportedOp", func(t *testing.T) {
		g, spec, z := stockMLPGraph(4)
		mx := gmust(G.Max(z, 1))
		spec.Loss = gmust(G.Add(spec.Loss, gmust(G.Mean(mx))))
		_, err := NewGraph(g, spec, optim.Needs{HVP: true})
		require.Error(t, err)
		assert.Contains(t, err.Error(), `node "`+mx.Name()+`"`)
		assert.Contains(t, err.Error(), "shape (4)")
		assert.Contains(t, err.Error(), "maximum over axes (gorgonia.Max)")
		assert.NotContains(t, err.Error(), "not verified for double differentiation")
	})
	t.Run("ConvNetExampleLoss", func(t *testing.T) {
		g, spec, z := stockMLPGraph(4)
		out := gmust(G.SoftMax(z))
		spec.Loss = gmust(G.Neg(gmust(G.Mean(gmust(G.Log(gmust(G.HadamardProd(out, spec.Targets))))))))
		_, err := NewGraph(g, spec, optim.Needs{HVP: true})
		require.ErrorContains(t, err, "loss is +Inf")
	})
}

// TestNewGraphNoLogits: a regression loss has no softmax, so no logits:
// gradient and H·v work, the sampled gradient and evaluation are refused.
func TestNewGraphNoLogits(t *testing.T) {
	const n = 4
	mk := func() (*G.ExprGraph, GraphSpec) {
		g := G.NewGraph()
		x := G.NewMatrix(g, tensor.Float64, G.WithShape(n, 5), G.WithName("x"))
		y := G.NewMatrix(g, tensor.Float64, G.WithShape(n, 2), G.WithName("y"))
		w := stockParam(g, "w", tensor.Shape{5, 2}, 0.1)
		d := gmust(G.Sub(gmust(G.Tanh(gmust(G.Mul(x, w)))), y))
		return g, GraphSpec{Input: x, Targets: y, Loss: gmust(G.Mean(gmust(G.Square(d)))), Params: []GraphParam{{Node: w}}}
	}
	g, spec := mk()
	_, err := NewGraph(g, spec, optim.Needs{SampledGrad: true})
	require.ErrorContains(t, err, "set GraphSpec.Logits")
	g, spec = mk()
	e, err := NewGraph(g, spec, optim.Needs{HVP: true})
	require.NoError(t, err)
	defer e.Close()
	x, labels := stockBatch(tensor.Shape{n, 5}, 2, 6)
	checkStockEngine(t, e, x, labels)
	_, err = e.EvalLogits(x)
	require.ErrorContains(t, err, "has no logits")
	assert.Equal(t, 0, e.Correct())
}

// TestNewGraphStockFloat32 runs the stock MLP in float32 and compares its
// loss, gradient and H·v with float64.
func TestNewGraphStockFloat32(t *testing.T) {
	const n = 6
	build := func(dt tensor.Dtype) (*G.ExprGraph, GraphSpec) {
		g := G.NewGraph()
		x := G.NewMatrix(g, dt, G.WithShape(n, 4), G.WithName("x"))
		y := G.NewMatrix(g, dt, G.WithShape(n, 3), G.WithName("y"))
		p := func(name string, shape tensor.Shape, seed float64) *G.Node {
			d := sinDense(shape, 0.37+seed, seed, 0.8)
			if dt == tensor.Float32 {
				f := make([]float32, shape.TotalSize())
				for i, v := range d.Float64s() {
					f[i] = float32(v)
				}
				d = tensor.New(tensor.WithShape(shape.Clone()...), tensor.WithBacking(f))
			}
			return G.NewTensor(g, dt, shape.Dims(), G.WithShape(shape...), G.WithName(name), G.WithValue(d))
		}
		w1, b1, w2 := p("w1", tensor.Shape{4, 5}, 0.1), p("b1", tensor.Shape{5}, 0.2), p("w2", tensor.Shape{5, 3}, 0.3)
		half := G.NewConstant(0.5)
		if dt == tensor.Float32 {
			half = G.NewConstant(float32(0.5))
		}
		h := gmust(G.HadamardProd(half, gmust(G.Tanh(gmust(G.BroadcastAdd(gmust(G.Mul(x, w1)), b1, nil, []byte{0}))))))
		z := gmust(G.Mul(h, w2))
		cost := gmust(G.Neg(gmust(G.Mean(gmust(G.Sum(gmust(G.HadamardProd(gmust(G.LogSoftMax(z)), y)), 1))))))
		return g, GraphSpec{Input: x, Targets: y, Loss: cost, Params: []GraphParam{{Node: w1}, {Node: b1}, {Node: w2}}}
	}
	x64, labels := stockBatch(tensor.Shape{n, 4}, 3, 7)
	x32 := tensor.New(tensor.WithShape(n, 4), tensor.Of(tensor.Float32))
	for i, v := range x64.Float64s() {
		x32.Float32s()[i] = float32(v)
	}
	res := map[tensor.Dtype][]float64{}
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		g, spec := build(dt)
		e, err := NewGraph(g, spec, optim.Needs{HVP: true})
		require.NoError(t, err, "%v", dt)
		x := x64
		if dt == tensor.Float32 {
			x = x32
		}
		require.NoError(t, e.SetBatch(x, labels))
		loss, err := e.LossGrad()
		require.NoError(t, err)
		v := make([]float64, e.Dim())
		for i := range v {
			v[i] = math.Cos(0.3 * float64(i))
		}
		hv := make([]float64, e.Dim())
		require.NoError(t, e.HVPFlat(v, hv))
		res[dt] = append([]float64{loss}, hv...)
		require.NoError(t, e.Close())
	}
	assert.LessOrEqual(t, relErr(res[tensor.Float32], res[tensor.Float64]), 1e-4, "float32 against float64")
}

// TestNewGraphConvNetEvalAnyBatch: the convnet (its rows independent:
// convolutions, pooling, dropout left out) evaluates 7 rows on a graph of
// 3 exactly as a graph of 7 does.
func TestNewGraphConvNetEvalAnyBatch(t *testing.T) {
	g3, spec3 := stockConvNetGraph(3)
	e3, err := NewGraph(g3, spec3, optim.Needs{})
	require.NoError(t, err)
	defer e3.Close()
	g7, spec7 := stockConvNetGraph(7)
	e7, err := NewGraph(g7, spec7, optim.Needs{})
	require.NoError(t, err)
	defer e7.Close()
	x, labels := stockBatch(tensor.Shape{7, 1, 8, 8}, 3, 8)
	z3, err := e3.EvalLogits(x)
	require.NoError(t, err)
	z7, err := e7.EvalLogits(x)
	require.NoError(t, err)
	assert.LessOrEqual(t, relErr(z3.Float64s(), z7.Float64s()), 1e-14)
	l3, c3, err := e3.EvalLoss(x, labels)
	require.NoError(t, err)
	l7, c7, err := e7.EvalLoss(x, labels)
	require.NoError(t, err)
	assert.InDelta(t, l7, l3, 1e-12)
	assert.Equal(t, c7, c3)
}
