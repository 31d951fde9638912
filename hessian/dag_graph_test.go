package hessian

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/curvopt/curvopt/hessian/spectrum"
	"github.com/curvopt/curvopt/nn"
	"github.com/curvopt/curvopt/optim"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// fdCheck compares the engine's H·v with central differences of its
// gradient along a random v (FiniteDiffHVP), in float64; a batch must be
// set.
func fdCheck(t *testing.T, eng *Engine, rng *rand.Rand, h float64) {
	t.Helper()
	d := eng.Dim()
	v, hv := make([]float64, d), make([]float64, d)
	for i := range v {
		v[i] = rng.NormFloat64()
	}
	_, err := eng.LossGrad()
	require.NoError(t, err)
	require.NoError(t, eng.HVPFlat(v, hv))
	fd := make([]float64, d)
	require.NoError(t, eng.FiniteDiffHVP(v, fd, h))
	var num, den float64
	for i := range hv {
		num += (hv[i] - fd[i]) * (hv[i] - fd[i])
		den += hv[i] * hv[i]
	}
	assert.Less(t, math.Sqrt(num/den), 1e-7, "H·v vs finite differences")
	t.Logf("H·v vs finite differences: rel %.2e (%d parameters)", math.Sqrt(num/den), d)
}

func randParam(rng *rand.Rand, scale float64, shape ...int) *tensor.Dense {
	t := tensor.New(tensor.Of(tensor.Float64), tensor.WithShape(shape...))
	for i := range t.Float64s() {
		t.Float64s()[i] = scale * rng.NormFloat64()
	}
	return t
}

// TestUserGraphResidualBlock plugs a user's own graph with a residual
// block (x + conv(relu(conv(x))), average pooling, linear head) into
// NewGraph: H·v matches finite differences, and SophiaG-style sampled
// gradients and a few training steps run.
func TestUserGraphResidualBlock(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const n, c, s, classes = 4, 3, 6, 5
	g := gorgonia.NewGraph()
	x := gorgonia.NewTensor(g, tensor.Float64, 4, gorgonia.WithShape(n, c, s, s), gorgonia.WithName("x"))
	w1 := gorgonia.NewTensor(g, tensor.Float64, 4, gorgonia.WithName("w1"), gorgonia.WithValue(randParam(rng, 0.3, c, c, 3, 3)))
	w2 := gorgonia.NewTensor(g, tensor.Float64, 4, gorgonia.WithName("w2"), gorgonia.WithValue(randParam(rng, 0.3, c, c, 3, 3)))
	fc := gorgonia.NewMatrix(g, tensor.Float64, gorgonia.WithName("fc"), gorgonia.WithValue(randParam(rng, 0.5, c, classes)))
	must := func(n *gorgonia.Node, err error) *gorgonia.Node {
		require.NoError(t, err)
		return n
	}
	h := must(nn.ReLU(must(nn.Conv2d(x, w1, 1, 1))))
	h = must(nn.Conv2d(h, w2, 1, 1))
	h = must(nn.ReLU(must(nn.AddN(x, h)))) // the residual connection
	logits := must(nn.MatMul(must(nn.GlobalAvgPool(h)), fc, false, false))
	eng, err := NewGraph(g, GraphSpec{Input: x, Logits: logits, Params: []GraphParam{{Node: w1}, {Node: w2}, {Node: fc}}},
		optim.Needs{HVP: true, SampledGrad: true}, WithRand(rand.New(rand.NewPCG(1, 1))))
	require.NoError(t, err)
	defer eng.Close()
	xs := randParam(rng, 1, n, c, s, s)
	require.NoError(t, eng.SetBatch(xs, []int{0, 1, 2, 3}))
	fdCheck(t, eng, rng, 1e-6)
	sg := optim.Like(eng.Params())
	require.NoError(t, eng.SampledGrad(sg))
	assert.Len(t, eng.SampledLabels(), n)
}

// TestUserGraphTransformer builds a one-block causal transformer by hand
// from nn's ops (embedding, layer norm, multi-head attention, GELU MLP,
// residual adds) with logits [N·T, V]: NewGraph takes N·T labels, H·v
// matches finite differences, and the sampled-label gradient draws one
// label per position.
func TestUserGraphTransformer(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const n, tt, v, d, heads = 2, 5, 7, 8, 2
	g := gorgonia.NewGraph()
	x := gorgonia.NewMatrix(g, tensor.Float64, gorgonia.WithShape(n, tt), gorgonia.WithName("tokens"))
	par := func(name string, scale float64, shape ...int) *gorgonia.Node {
		return gorgonia.NewTensor(g, tensor.Float64, len(shape), gorgonia.WithName(name), gorgonia.WithValue(randParam(rng, scale, shape...)))
	}
	emb, ln1g, ln1b := par("emb", 0.5, v, d), par("ln.g", 0.1, d), par("ln.b", 0.1, d)
	wq, wk, wv, wo := par("wq", 0.4, d, d), par("wk", 0.4, d, d), par("wv", 0.4, d, d), par("wo", 0.4, d, d)
	w1, w2, head := par("w1", 0.4, d, 2*d), par("w2", 0.4, 2*d, d), par("head", 0.4, d, v)
	must := func(n *gorgonia.Node, err error) *gorgonia.Node {
		require.NoError(t, err)
		return n
	}
	mm := func(a, b *gorgonia.Node) *gorgonia.Node { return must(nn.MatMul(a, b, false, false)) }
	e := must(nn.Embedding(emb, x)) // [N·T, D]
	a := must(nn.LayerNorm(e, ln1g, ln1b, 1e-5))
	att := must(nn.MultiHeadAttention(mm(a, wq), mm(a, wk), mm(a, wv), n, tt, heads, true))
	r := must(nn.AddN(e, mm(att, wo)))
	r = must(nn.AddN(r, mm(must(nn.GELU(mm(r, w1))), w2)))
	logits := mm(r, head)
	params := []GraphParam{{Node: emb}, {Node: ln1g}, {Node: ln1b}, {Node: wq}, {Node: wk}, {Node: wv}, {Node: wo}, {Node: w1}, {Node: w2}, {Node: head}}
	eng, err := NewGraph(g, GraphSpec{Input: x, Logits: logits, Params: params},
		optim.Needs{HVP: true, SampledGrad: true}, WithRand(rand.New(rand.NewPCG(1, 1))))
	require.NoError(t, err)
	defer eng.Close()
	toks := tensor.New(tensor.WithShape(n, tt), tensor.WithBacking([]float64{1, 4, 2, 6, 0, 3, 3, 5, 1, 2}))
	assert.ErrorContains(t, eng.SetBatch(toks, []int{1, 2}), "2 labels for a batch of 2 inputs, want one per row of the logits (10)")
	require.NoError(t, eng.SetBatch(toks, []int{4, 2, 6, 0, 5, 3, 5, 1, 2, 6}))
	fdCheck(t, eng, rng, 1e-5)
	sg := optim.Like(eng.Params())
	require.NoError(t, eng.SampledGrad(sg))
	assert.Len(t, eng.SampledLabels(), n*tt)
}

// TestDAGSpectrumAndHutchinson checks, on a tiny GPT from NewDAG, that
// Lanczos' top eigenvalue equals the largest eigenvalue of the Hessian
// assembled column by column from H·e_j, and that Hutchinson returns
// z⊙(H·z) for the probe the engine draws.
func TestDAGSpectrumAndHutchinson(t *testing.T) {
	d, err := nn.GPT(nn.GPTConfig{Vocab: 5, Context: 4, Layers: 1, Heads: 2, Width: 4})
	require.NoError(t, err)
	m, err := nn.New(d, tensor.Float64, rand.New(rand.NewPCG(7, 8)), 1)
	require.NoError(t, err)
	// Larger weights than GPT-2's 0.02 so that the Hessian is not tiny.
	for _, p := range m.Params() {
		for i, w := range p.Value.Float64s() {
			p.Value.Float64s()[i] = 20 * w
		}
	}
	eng, err := New(m, optim.Needs{HVP: true}, WithProbes(optim.NewRandomProbes(optim.Rademacher, 9)))
	require.NoError(t, err)
	defer eng.Close()
	x := tensor.New(tensor.WithShape(2, 4), tensor.WithBacking([]float64{0, 1, 2, 3, 4, 3, 2, 1}))
	require.NoError(t, eng.SetBatch(x, []int{1, 2, 3, 4, 3, 2, 1, 0}))
	_, err = eng.LossGrad()
	require.NoError(t, err)
	dense, err := spectrum.BuildDense(eng, 1e-10)
	require.NoError(t, err)
	eig, err := dense.Eigen()
	require.NoError(t, err)
	top, err := spectrum.Lanczos(eng, spectrum.DefaultLanczosConfig(1, spectrum.LargestAlgebraic), rand.New(rand.NewPCG(1, 2)))
	require.NoError(t, err)
	want := eig.Top(1)[0]
	t.Logf("tiny GPT: %d parameters, top eigenvalue %.6g (dense) %.6g (Lanczos)", eng.Dim(), want, top.Values()[0])
	assert.InDelta(t, want, top.Values()[0], 1e-8*math.Abs(want))

	out := optim.Like(eng.Params())
	require.NoError(t, eng.Hutchinson(out))
	z := optim.Like(eng.Params())
	require.NoError(t, optim.NewRandomProbes(optim.Rademacher, 9).Fill(z))
	hz := optim.Like(eng.Params())
	require.NoError(t, eng.HVP(z, hz))
	for i := range out {
		for j, o := range out[i].Float64s() {
			assert.InDelta(t, z[i].Float64s()[j]*hz[i].Float64s()[j], o, 1e-14)
		}
	}
}

// TestGNBBatchCountsInputs checks that WithGNBBatch(k) takes the first k
// inputs, all T positions of each, alike on an engine from New (its own
// graph of k inputs) and on one from NewGraph (the first k·T logit rows
// selected inside the graph): the same sampled labels and the same
// sampled-label gradient.
func TestGNBBatchCountsInputs(t *testing.T) {
	const n, tt, k = 3, 4, 1
	d, err := nn.GPT(nn.GPTConfig{Vocab: 5, Context: tt, Layers: 1, Heads: 2, Width: 4})
	require.NoError(t, err)
	m, err := nn.New(d, tensor.Float64, rand.New(rand.NewPCG(7, 8)), 1)
	require.NoError(t, err)
	needs := optim.Needs{SampledGrad: true}
	a, err := New(m, needs, WithGNBBatch(k), WithRand(rand.New(rand.NewPCG(1, 1))))
	require.NoError(t, err)
	defer a.Close()
	g := gorgonia.NewGraph()
	net, err := m.Build(g, n, true)
	require.NoError(t, err)
	var params []GraphParam
	for i, p := range net.Params {
		params = append(params, GraphParam{Node: p, Name: m.Params()[i].Name})
	}
	b, err := NewGraph(g, GraphSpec{Input: net.X, Logits: net.Logits, Params: params}, needs, WithGNBBatch(k), WithRand(rand.New(rand.NewPCG(1, 1))))
	require.NoError(t, err)
	defer b.Close()

	x := tensor.New(tensor.WithShape(n, tt), tensor.WithBacking([]float64{0, 1, 2, 3, 4, 3, 2, 1, 1, 1, 0, 0}))
	labels := []int{1, 2, 3, 4, 3, 2, 1, 0, 1, 0, 0, 2}
	ga, gb := optim.Like(a.Params()), optim.Like(b.Params())
	for _, c := range []struct {
		e   *Engine
		out []*tensor.Dense
	}{{a, ga}, {b, gb}} {
		require.NoError(t, c.e.SetBatch(x, labels))
		require.NoError(t, c.e.SampledGrad(c.out))
		assert.Len(t, c.e.SampledLabels(), k*tt, "one sampled label per position of the first %d inputs", k)
	}
	assert.Equal(t, a.SampledLabels(), b.SampledLabels())
	for i := range ga {
		for j, v := range ga[i].Float64s() {
			assert.InDelta(t, v, gb[i].Float64s()[j], 1e-12, "%s[%d]", a.Params()[i].Name, j)
		}
	}
}

// TestDropoutMasksPerBatch checks, on a GPT with dropout, that every
// SetBatch draws new masks (the same batch set twice gives another loss)
// while the queries of one batch share them (H·v matches finite
// differences of the gradient, which it could not with masks changing
// between runs).
func TestDropoutMasksPerBatch(t *testing.T) {
	d, err := nn.GPT(nn.GPTConfig{Vocab: 5, Context: 4, Layers: 1, Heads: 2, Width: 8, Dropout: 0.3})
	require.NoError(t, err)
	m, err := nn.New(d, tensor.Float64, rand.New(rand.NewPCG(7, 8)), 1)
	require.NoError(t, err)
	eng, err := New(m, optim.Needs{HVP: true})
	require.NoError(t, err)
	defer eng.Close()
	x := tensor.New(tensor.WithShape(2, 4), tensor.WithBacking([]float64{0, 1, 2, 3, 4, 3, 2, 1}))
	labels := []int{1, 2, 3, 4, 3, 2, 1, 0}
	require.NoError(t, eng.SetBatch(x, labels))
	first, err := eng.LossGrad()
	require.NoError(t, err)
	again, err := eng.LossGrad()
	require.NoError(t, err)
	assert.Equal(t, first, again, "one batch, one set of masks")
	fdCheck(t, eng, rand.New(rand.NewPCG(1, 2)), 1e-6)
	require.NoError(t, eng.SetBatch(x, labels))
	next, err := eng.LossGrad()
	require.NoError(t, err)
	assert.NotEqual(t, first, next, "a new batch draws new masks")
}
