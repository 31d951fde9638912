package hessian

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/curvopt/curvopt/nn"
	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/optim/adahessian"
	"github.com/curvopt/curvopt/optim/sophia"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// twoLayerSpec is the model twoLayer builds by hand.
var twoLayerSpec = nn.Spec{InputShape: []int{5}, Layers: []nn.LayerSpec{
	{Type: "linear", Name: "fc1", In: 5, Out: 4}, {Type: "tanh"}, {Type: "linear", Name: "fc2", In: 4, Out: 3}}}

// twoLayer builds x·W1 + b1 → tanh → ·W2 + b2 for a batch of n with the
// nn ops, on copies of vals (fc1.weight, fc1.bias, fc2.weight, fc2.bias).
// With stock set, a stock gorgonia.SoftMax follows the tanh.
func twoLayer(t *testing.T, n int, vals []*tensor.Dense, withLoss, stock bool) (*gorgonia.ExprGraph, GraphSpec) {
	t.Helper()
	dt := vals[0].Dtype()
	g := gorgonia.NewGraph()
	x := gorgonia.NewMatrix(g, dt, gorgonia.WithShape(n, 5), gorgonia.WithName("x"))
	names := []string{"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}
	var ps []GraphParam
	var pn []*gorgonia.Node
	for i, v := range vals {
		c := v.Clone().(*tensor.Dense)
		node := gorgonia.NewTensor(g, dt, v.Dims(), gorgonia.WithShape(v.Shape().Clone()...), gorgonia.WithName(names[i]), gorgonia.WithValue(c))
		ps, pn = append(ps, GraphParam{Node: node}), append(pn, node)
	}
	must := func(n *gorgonia.Node, err error) *gorgonia.Node {
		t.Helper()
		require.NoError(t, err)
		return n
	}
	h := must(nn.Tanh(must(nn.BiasAdd(must(nn.MatMul(x, pn[0], false, false)), pn[1]))))
	if stock {
		h = must(gorgonia.SoftMax(h))
	}
	z := must(nn.BiasAdd(must(nn.MatMul(h, pn[2], false, false)), pn[3]))
	spec := GraphSpec{Input: x, Logits: z, Params: ps}
	if withLoss {
		spec.Targets = gorgonia.NewMatrix(g, dt, gorgonia.WithShape(n, 3), gorgonia.WithName("y"))
		spec.Loss = must(nn.CrossEntropy(z, spec.Targets))
	}
	return g, spec
}

func modelValues(m *nn.Model) []*tensor.Dense {
	var vs []*tensor.Dense
	for _, p := range m.Params() {
		vs = append(vs, p.Value)
	}
	return vs
}

func rowsOf(x *tensor.Dense, n int) *tensor.Dense {
	sh := x.Shape().Clone()
	per := sh.TotalSize() / sh[0]
	sh[0] = n
	out := tensor.New(tensor.Of(x.Dtype()), tensor.WithShape(sh...))
	switch d := out.Data().(type) {
	case []float64:
		copy(d, x.Data().([]float64)[:n*per])
	case []float32:
		copy(d, x.Data().([]float32)[:n*per])
	}
	return out
}

// TestNewGraphMatchesModel checks a hand-built graph against the same
// network built by nn.New + New: loss, logits, gradient, H·v and the
// sampled gradient, and its own gradient and H·v against finite differences.
func TestNewGraphMatchesModel(t *testing.T) {
	for _, withLoss := range []bool{false, true} {
		const n = 6
		rng := rand.New(rand.NewPCG(41, 1))
		m, err := specModel(twoLayerSpec, tensor.Float64, rng)
		require.NoError(t, err)
		x, labels := randomBatch(t, m, n, rng)
		sampled := []int{2, 0, 1, 1, 0, 2}
		needs := optim.Needs{HVP: true, SampledGrad: true}
		em, err := New(m, needs, WithSampler(FixedSampler{Labels: sampled}))
		require.NoError(t, err)
		g, spec := twoLayer(t, n, modelValues(m), withLoss, false)
		eg, err := NewGraph(g, spec, needs, WithSampler(FixedSampler{Labels: sampled}))
		require.NoError(t, err)
		require.NoError(t, em.SetBatch(x, labels))
		require.NoError(t, eg.SetBatch(x, labels))
		assert.Nil(t, eg.Model())
		assert.Equal(t, em.ParamBlocks(), eg.ParamBlocks())
		assert.Equal(t, needs, eg.Provides())

		lm, err := em.LossGrad()
		require.NoError(t, err)
		lg, err := eg.LossGrad()
		require.NoError(t, err)
		assert.InDelta(t, lm, lg, 1e-12*math.Abs(lm))
		assert.LessOrEqual(t, relErr(eg.Logits().Data().([]float64), em.Logits().Data().([]float64)), 1e-12, "logits")
		gm, gg := make([]float64, em.Dim()), make([]float64, em.Dim())
		require.NoError(t, em.GradFlat(gm))
		require.NoError(t, eg.GradFlat(gg))
		assert.LessOrEqual(t, relErr(gg, gm), 1e-12, "gradient")

		v := make([]float64, em.Dim())
		for i := range v {
			v[i] = rng.NormFloat64()
		}
		hm, hg := make([]float64, em.Dim()), make([]float64, em.Dim())
		require.NoError(t, em.HVPFlat(v, hm))
		require.NoError(t, eg.HVPFlat(v, hg))
		assert.LessOrEqual(t, relErr(hg, hm), 1e-12, "HVP")

		sm, sg := optim.Like(em.Params()), optim.Like(eg.Params())
		require.NoError(t, em.SampledGrad(sm))
		require.NoError(t, eg.SampledGrad(sg))
		assert.Equal(t, sampled, eg.SampledLabels())
		assert.LessOrEqual(t, relErr(flatOf(eg, sg), flatOf(em, sm)), 1e-12, "sampled gradient")

		// Finite differences on the graph engine itself.
		fd := make([]float64, eg.Dim())
		require.NoError(t, eg.FiniteDiffHVP(v, fd, 1e-5))
		assert.LessOrEqual(t, relErr(hg, fd), 1e-6, "HVP vs finite differences")
		vals := make([]*tensor.Dense, len(eg.params))
		for j, p := range eg.params {
			vals[j] = p.Value
		}
		theta := make([]float64, eg.Dim())
		eg.flatten(vals, theta)
		const h = 1e-6
		for j := range theta {
			old := theta[j]
			theta[j] = old + h
			eg.unflatten(theta, vals)
			lp, err := eg.Loss()
			require.NoError(t, err)
			theta[j] = old - h
			eg.unflatten(theta, vals)
			lmn, err := eg.Loss()
			require.NoError(t, err)
			theta[j] = old
			fd[j] = (lp - lmn) / (2 * h)
		}
		eg.unflatten(theta, vals)
		assert.LessOrEqual(t, relErr(gg, fd), 1e-6, "gradient vs finite differences")

		// Evaluation runs the graph's forward pass and keeps the current batch.
		pm, err := em.Predict(x)
		require.NoError(t, err)
		pg, err := eg.Predict(x)
		require.NoError(t, err)
		assert.Equal(t, pm, pg)
		x2, _ := randomBatch(t, m, n, rng)
		_, err = eg.EvalLogits(x2)
		require.NoError(t, err)
		l2, err := eg.LossGrad()
		require.NoError(t, err)
		assert.Equal(t, lg, l2, "EvalLogits must keep the current batch")
		// Any number of rows: parts of 6, the last padded.
		z2, err := eg.EvalLogits(rowsOf(x, 2))
		require.NoError(t, err)
		zAll, err := eg.EvalLogits(x)
		require.NoError(t, err)
		assert.Equal(t, zAll.Float64s()[:2*z2.Shape()[1]], z2.Float64s(), "2 rows evaluate as in the full batch")
		require.NoError(t, eg.Close())
		require.NoError(t, em.Close())
	}
}

// TestNewGraphRewritesStockSoftmax checks that a user graph with a stock
// gorgonia.SoftMax is rewritten (nn.Softmax) and gets its HVP graph, and
// that its H·v matches finite differences.
func TestNewGraphRewritesStockSoftmax(t *testing.T) {
	m, err := specModel(twoLayerSpec, tensor.Float64, rand.New(rand.NewPCG(1, 1)))
	require.NoError(t, err)
	g, spec := twoLayer(t, 4, modelValues(m), false, true)
	e, err := NewGraph(g, spec, optim.Needs{HVP: true})
	require.NoError(t, err)
	defer e.Close()
	x, labels := randomBatch(t, m, 4, rand.New(rand.NewPCG(2, 2)))
	require.NoError(t, e.SetBatch(x, labels))
	_, err = e.LossGrad()
	require.NoError(t, err)
	v := make([]float64, e.Dim())
	for i := range v {
		v[i] = math.Sin(0.7*float64(i) + 0.1)
	}
	hv, fd := make([]float64, e.Dim()), make([]float64, e.Dim())
	require.NoError(t, e.HVPFlat(v, hv))
	require.NoError(t, e.FiniteDiffHVP(v, fd, 1e-5))
	assert.LessOrEqual(t, relErr(hv, fd), 1e-6, "HVP vs finite differences")
}

// TestNewGraphBadSpec checks NewGraph's and SetBatch's errors.
func TestNewGraphBadSpec(t *testing.T) {
	m, err := specModel(twoLayerSpec, tensor.Float64, rand.New(rand.NewPCG(1, 1)))
	require.NoError(t, err)
	cases := []struct {
		name string
		edit func(*GraphSpec)
		want string
	}{
		{"no input", func(s *GraphSpec) { s.Input = nil }, "Input node is nil"},
		{"loss without targets", func(s *GraphSpec) { s.Targets = nil }, "needs its Targets"},
		{"logits as targets", func(s *GraphSpec) { s.Loss = s.Targets; s.Targets = s.Logits }, "loss"},
		{"no params", func(s *GraphSpec) { s.Params = nil }, "no parameters"},
		{"duplicate", func(s *GraphSpec) { s.Params[1] = s.Params[0] }, "used twice"},
		{"computed param", func(s *GraphSpec) { s.Params[0].Node = s.Logits; s.Params[0].Name = "z" }, "want an input node"},
		{"wrong value", func(s *GraphSpec) {
			s.Params[0].Value = tensor.New(tensor.Of(tensor.Float64), tensor.WithShape(4, 5))
		}, "value is float64 (4, 5)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g, spec := twoLayer(t, 4, modelValues(m), true, false)
			tc.edit(&spec)
			_, err := NewGraph(g, spec, optim.Needs{})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	g, spec := twoLayer(t, 4, modelValues(m), false, false)
	_, err = NewGraph(g, spec, optim.Needs{SampledGrad: true}, WithGNBBatch(5))
	require.ErrorContains(t, err, "larger than the graph's batch 4")
	g, spec = twoLayer(t, 4, modelValues(m), false, false)
	e, err := NewGraph(g, spec, optim.Needs{})
	require.NoError(t, err)
	x, labels := randomBatch(t, m, 5, rand.New(rand.NewPCG(2, 2)))
	require.ErrorContains(t, e.SetBatch(x, labels), "batch of 5 rows, but the graph was built for 4")
}

// TestProvides checks that optimizers refuse an engine without their query
// at the first Step, before changing anything.
func TestProvides(t *testing.T) {
	e, _, _ := newEngine(t, fdModels[0].spec, tensor.Float64, 1, 4, optim.Needs{HVP: true})
	assert.Equal(t, optim.Needs{HVP: true}, e.Provides())
	opt, err := sophia.New(sophia.DefaultG())
	require.NoError(t, err)
	_, err = e.LossGrad()
	require.NoError(t, err)
	before := append([]float64{}, e.Params()[0].Value.Data().([]float64)...)
	err = opt.Step(e.Params(), e)
	require.Error(t, err)
	assert.True(t, errors.Is(err, optim.ErrNotProvided), "%v", err)
	assert.Equal(t, before, e.Params()[0].Value.Data().([]float64))
	require.NoError(t, optim.CheckOracle("adahessian", optim.Needs{HVP: true}, e))
}

// TestNewGraphTrains trains a hand-built graph with AdaHessian.
func TestNewGraphTrains(t *testing.T) {
	const n = 16
	rng := rand.New(rand.NewPCG(8, 9))
	m, err := specModel(twoLayerSpec, tensor.Float32, rng)
	require.NoError(t, err)
	x, labels := randomBatch(t, m, n, rng)
	g, spec := twoLayer(t, n, modelValues(m), true, false)
	c := adahessian.Default()
	c.LR = 0.3
	opt, err := adahessian.New(c)
	require.NoError(t, err)
	e, err := NewGraph(g, spec, opt.Needs())
	require.NoError(t, err)
	defer e.Close()
	require.NoError(t, e.SetBatch(x, labels))
	var first, last float64
	for step := 0; step < 30; step++ {
		loss, err := fusedStep(e, opt)
		require.NoError(t, err)
		if step == 0 {
			first = loss
		}
		last = loss
	}
	t.Logf("loss %.4f → %.4f", first, last)
	assert.Less(t, last, 0.7*first, "AdaHessian must lower the loss")
}

// TestGNBBatch checks WithGNBBatch: with n = batch it is the default
// behaviour bit for bit; with n < batch it equals SampledGrad of an engine
// whose batch is those n rows (same sampled labels), on New engines (own
// graph of n rows, batch norm included) and on NewGraph engines (rows
// selected inside the graph).
func TestGNBBatch(t *testing.T) {
	needs := optim.Needs{SampledGrad: true}
	for i, tc := range []struct {
		name string
		spec nn.Spec
		n    int
	}{{"mlp_tanh", twoLayerSpec, 7}, {"conv_bn", fdModels[3].spec, 6}, {"conv", fdModels[2].spec, 5}} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(60+i), 3))
			m, err := specModel(tc.spec, tensor.Float64, rng)
			require.NoError(t, err)
			x, labels := randomBatch(t, m, tc.n, rng)
			run := func(e *Engine, x *tensor.Dense, labels []int) ([]float64, []int) {
				t.Helper()
				require.NoError(t, e.SetBatch(x, labels))
				_, err := e.LossGrad()
				require.NoError(t, err)
				out := optim.Like(e.Params())
				require.NoError(t, e.SampledGrad(out))
				return flatOf(e, out), append([]int{}, e.SampledLabels()...)
			}
			seeded := func() Option { return WithRand(rand.New(rand.NewPCG(5, 6))) }

			e0, err := New(m, needs, seeded())
			require.NoError(t, err)
			e1, err := New(m, needs, seeded(), WithGNBBatch(tc.n))
			require.NoError(t, err)
			g0, l0 := run(e0, x, labels)
			g1, l1 := run(e1, x, labels)
			assert.Equal(t, l0, l1, "sampled labels")
			assert.Equal(t, g0, g1, "n = batch must be bit for bit the default")

			k := tc.n - 2
			fixed := FixedSampler{Labels: []int{2, 1, 0, 2, 1, 0, 1}[:k]}
			ek, err := New(m, needs, WithSampler(fixed))
			require.NoError(t, err)
			es, err := New(m, needs, WithSampler(fixed), WithGNBBatch(k))
			require.NoError(t, err)
			gk, _ := run(ek, rowsOf(x, k), labels[:k])
			gs, ls := run(es, x, labels)
			assert.Equal(t, fixed.Labels, ls)
			assert.Equal(t, gk, gs, "n < batch must equal an engine on those n rows")
			assert.NotEqual(t, g0, gs)
			require.ErrorContains(t, es.SetBatch(rowsOf(x, k-1), labels[:k-1]), "smaller than the sampled-gradient batch")
		})
	}
	t.Run("graph", func(t *testing.T) {
		const n, k = 7, 4
		rng := rand.New(rand.NewPCG(70, 3))
		m, err := specModel(twoLayerSpec, tensor.Float64, rng)
		require.NoError(t, err)
		x, labels := randomBatch(t, m, n, rng)
		fixed := FixedSampler{Labels: []int{2, 1, 0, 2}}
		g, spec := twoLayer(t, n, modelValues(m), false, false)
		es, err := NewGraph(g, spec, needs, WithSampler(fixed), WithGNBBatch(k))
		require.NoError(t, err)
		g, spec = twoLayer(t, k, modelValues(m), false, false)
		ek, err := NewGraph(g, spec, needs, WithSampler(fixed))
		require.NoError(t, err)
		require.NoError(t, es.SetBatch(x, labels))
		require.NoError(t, ek.SetBatch(rowsOf(x, k), labels[:k]))
		a, b := optim.Like(es.Params()), optim.Like(ek.Params())
		require.NoError(t, es.SampledGrad(a))
		require.NoError(t, ek.SampledGrad(b))
		assert.Equal(t, fixed.Labels, es.SampledLabels())
		assert.LessOrEqual(t, relErr(flatOf(es, a), flatOf(ek, b)), 1e-12)
	})
}

// fusedStep is the training step's choreography (train.Step) for an
// optimizer with HVP requests: the request computed with the gradient in one
// run, then the update.
func fusedStep(e *Engine, opt *adahessian.AdaHessian) (float64, error) {
	req, err := opt.Request(e.Params())
	if err != nil {
		return 0, err
	}
	var loss float64
	if req != nil {
		loss, err = e.LossGradHVP(req.V, req.Out)
		req.Answer()
	} else {
		loss, err = e.LossGrad()
	}
	if err != nil {
		return loss, err
	}
	return loss, opt.Step(e.Params(), e)
}
