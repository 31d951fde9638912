package hessian

import (
	"errors"
	"github.com/curvopt/curvopt/internal/num"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/curvopt/curvopt/nn"
	"github.com/curvopt/curvopt/optim"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

// fdModels covers every layer type: linear, conv2d (stride 1 and 2, with
// and without padding), relu, tanh, maxpool2d (disjoint and overlapping
// windows), flatten and batchnorm2d.
var fdModels = []struct {
	name string
	spec nn.Spec
	n    int
}{
	{"mlp_tanh", nn.Spec{InputShape: []int{5}, Layers: []nn.LayerSpec{
		{Type: "linear", Name: "fc1", In: 5, Out: 4}, {Type: "tanh"}, {Type: "linear", Name: "fc2", In: 4, Out: 3}}}, 4},
	{"mlp_relu", nn.MLPSpec(6, []int{5, 4}, 3), 5},
	{"conv_s2_p1_relu_overlapping_pool", nn.Spec{InputShape: []int{2, 9, 9}, Layers: []nn.LayerSpec{
		{Type: "conv2d", Name: "c1", In: 2, Out: 3, Kernel: 3, Stride: 2, Pad: 1}, {Type: "relu"},
		{Type: "maxpool2d", Kernel: 3, Stride: 1}, {Type: "flatten"},
		{Type: "linear", Name: "fc", In: 3 * 3 * 3, Out: 4}}}, 3},
	{"conv_bn_tanh_pool", nn.Spec{InputShape: []int{3, 3, 6, 6}, Layers: []nn.LayerSpec{
		{Type: "conv2d", Name: "c1", In: 3, Out: 4, Kernel: 3, Pad: 1}, {Type: "batchnorm2d", Name: "bn1", Channels: 4, Eps: 1e-5},
		{Type: "tanh"}, {Type: "maxpool2d", Kernel: 2, Stride: 2},
		{Type: "conv2d", Name: "c2", In: 4, Out: 2, Kernel: 2, Stride: 1}, {Type: "batchnorm2d", Name: "bn2", Channels: 2},
		{Type: "relu"}, {Type: "flatten"}, {Type: "linear", Name: "fc", In: 2 * 2 * 2, Out: 3}}}, 3},
	{"two_convs_relu", nn.Spec{InputShape: []int{1, 7, 7}, Layers: []nn.LayerSpec{
		{Type: "conv2d", Name: "c1", In: 1, Out: 2, Kernel: 2, Stride: 1}, {Type: "relu"},
		{Type: "conv2d", Name: "c2", In: 2, Out: 2, Kernel: 3, Stride: 2, Pad: 1}, {Type: "tanh"},
		{Type: "maxpool2d", Kernel: 2, Stride: 1}, {Type: "flatten"},
		{Type: "linear", Name: "fc", In: 2 * 2 * 2, Out: 3}}}, 4},
}

func randomBatch(t *testing.T, m *nn.Model, n int, rng *rand.Rand) (*tensor.Dense, []int) {
	t.Helper()
	shape := append([]int{n}, m.InputShape()...)
	x := tensor.New(tensor.Of(m.Dtype()), tensor.WithShape(shape...))
	switch d := x.Data().(type) {
	case []float64:
		for i := range d {
			d[i] = rng.NormFloat64()
		}
	case []float32:
		for i := range d {
			d[i] = float32(rng.NormFloat64())
		}
	}
	labels := make([]int, n)
	for i := range labels {
		labels[i] = rng.IntN(m.Classes())
	}
	return x, labels
}

func newEngine(t *testing.T, spec nn.Spec, dt tensor.Dtype, seed uint64, n int, needs optim.Needs) (*Engine, *tensor.Dense, []int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	m, err := specModel(spec, dt, rng)
	require.NoError(t, err)
	e, err := New(m, needs, WithRand(rand.New(rand.NewPCG(seed, 8))))
	require.NoError(t, err)
	x, labels := randomBatch(t, m, n, rng)
	require.NoError(t, e.SetBatch(x, labels))
	return e, x, labels
}

// TestFiniteDifferences checks the gradient against central differences of
// the loss and H·v against central differences of the gradient, in float64.
func TestFiniteDifferences(t *testing.T) {
	for i, tc := range fdModels {
		t.Run(tc.name, func(t *testing.T) {
			e, _, _ := newEngine(t, tc.spec, tensor.Float64, uint64(10+i), tc.n, optim.Needs{HVP: true})
			_, err := e.LossGrad()
			require.NoError(t, err)
			g := make([]float64, e.Dim())
			require.NoError(t, e.GradFlat(g))

			// Gradient by central differences of the loss, coordinate by coordinate.
			const h = 1e-6
			fd := make([]float64, e.Dim())
			vals := make([]*tensor.Dense, len(e.params))
			for j, p := range e.params {
				vals[j] = p.Value
			}
			theta := make([]float64, e.Dim())
			e.flatten(vals, theta)
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
				fd[j] = (lp - lm) / (2 * h)
			}
			e.unflatten(theta, vals)
			eg := relErr(g, fd)
			assert.LessOrEqual(t, eg, 1e-6, "gradient vs finite differences")

			rng := rand.New(rand.NewPCG(99, uint64(i)))
			v := make([]float64, e.Dim())
			for j := range v {
				v[j] = rng.NormFloat64()
			}
			hv, hvfd := make([]float64, e.Dim()), make([]float64, e.Dim())
			require.NoError(t, e.HVPFlat(v, hv))
			require.NoError(t, e.FiniteDiffHVP(v, hvfd, 1e-5))
			eh := relErr(hv, hvfd)
			assert.LessOrEqual(t, eh, 1e-6, "HVP vs finite differences")
			t.Logf("dim %d: grad rel. error %.1e, HVP rel. error %.1e", e.Dim(), eg, eh)

			// Symmetry: u·(H v) = v·(H u).
			u := make([]float64, e.Dim())
			for j := range u {
				u[j] = rng.NormFloat64()
			}
			hu := make([]float64, e.Dim())
			require.NoError(t, e.HVPFlat(u, hu))
			var a, b, s float64
			for j := range u {
				a += u[j] * hv[j]
				b += v[j] * hu[j]
				s += math.Abs(u[j] * hv[j])
			}
			assert.LessOrEqual(t, math.Abs(a-b)/s, 1e-12, "Hessian symmetry")
		})
	}
}

// TestFloat32MatchesFloat64 runs the same model and batch in both dtypes.
func TestFloat32MatchesFloat64(t *testing.T) {
	for i, tc := range fdModels {
		t.Run(tc.name, func(t *testing.T) {
			needs := optim.Needs{HVP: true, SampledGrad: true}
			e64, x64, labels := newEngine(t, tc.spec, tensor.Float64, uint64(20+i), tc.n, needs)
			m32, err := specModel(tc.spec, tensor.Float32, nil)
			require.NoError(t, err)
			for j, p := range m32.Params() {
				src := e64.params[j].Value.Data().([]float64)
				for k, v := range src {
					p.Value.Data().([]float32)[k] = float32(v)
				}
			}
			e32, err := New(m32, needs)
			require.NoError(t, err)
			x32 := tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(x64.Shape().Clone()...))
			for k, v := range x64.Data().([]float64) {
				x32.Data().([]float32)[k] = float32(v)
			}
			require.NoError(t, e32.SetBatch(x32, labels))

			l64, err := e64.LossGrad()
			require.NoError(t, err)
			l32, err := e32.LossGrad()
			require.NoError(t, err)
			assert.InDelta(t, l64, l32, 1e-5*math.Max(1, math.Abs(l64)))
			g64, g32 := make([]float64, e64.Dim()), make([]float64, e64.Dim())
			require.NoError(t, e64.GradFlat(g64))
			require.NoError(t, e32.GradFlat(g32))
			assert.LessOrEqual(t, relErr(g32, g64), 1e-4, "gradient")

			rng := rand.New(rand.NewPCG(5, 5))
			v := make([]float64, e64.Dim())
			for j := range v {
				v[j] = float64(float32(rng.NormFloat64()))
			}
			h64, h32 := make([]float64, e64.Dim()), make([]float64, e64.Dim())
			require.NoError(t, e64.HVPFlat(v, h64))
			require.NoError(t, e32.HVPFlat(v, h32))
			assert.LessOrEqual(t, relErr(h32, h64), 1e-4, "HVP")
		})
	}
}

// TestInPlaceUpdatesSeen checks that the engine uses the current values of
// Params()[i].Value after an in-place change.
func TestInPlaceUpdatesSeen(t *testing.T) {
	spec := fdModels[2].spec
	e, x, labels := newEngine(t, spec, tensor.Float64, 3, 3, optim.Needs{HVP: true})
	l0, err := e.LossGrad()
	require.NoError(t, err)
	for _, p := range e.Params() {
		d := p.Value.Data().([]float64)
		g := p.Grad.Data().([]float64)
		for i := range d {
			d[i] -= 0.1 * g[i]
		}
	}
	l1, err := e.LossGrad()
	require.NoError(t, err)
	assert.Less(t, l1, l0, "a gradient step must lower the loss")

	// A fresh engine on a copy of the updated parameters agrees exactly.
	m2, err := specModel(spec, tensor.Float64, nil)
	require.NoError(t, err)
	for i, p := range m2.Params() {
		copy(p.Value.Data().([]float64), e.Params()[i].Value.Data().([]float64))
	}
	e2, err := New(m2, optim.Needs{HVP: true})
	require.NoError(t, err)
	require.NoError(t, e2.SetBatch(x, labels))
	l2, err := e2.LossGrad()
	require.NoError(t, err)
	assert.Equal(t, l1, l2)
	v := make([]float64, e.Dim())
	for i := range v {
		v[i] = math.Sin(float64(i))
	}
	a, b := make([]float64, e.Dim()), make([]float64, e.Dim())
	require.NoError(t, e.HVPFlat(v, a))
	require.NoError(t, e2.HVPFlat(v, b))
	assert.Equal(t, a, b)
}

// TestLossGradHVPOneRun checks that the fused run's loss, gradient and
// H·v equal those of separate LossGrad and HVP runs, bit for bit.
func TestLossGradHVPOneRun(t *testing.T) {
	e, _, _ := newEngine(t, fdModels[3].spec, tensor.Float64, 4, 3, optim.Needs{HVP: true})
	v, got, want := optim.Like(e.Params()), optim.Like(e.Params()), optim.Like(e.Params())
	require.NoError(t, optim.NewRandomProbes(optim.Rademacher, 3).Fill(v))
	loss, err := e.LossGradHVP(v, got)
	require.NoError(t, err)
	g1 := optim.Like(e.Params())
	for i, p := range e.Params() {
		num.CopyInto(g1[i], p.Grad)
	}
	l2, err := e.Loss()
	require.NoError(t, err)
	assert.Equal(t, loss, l2)
	require.NoError(t, e.HVP(v, want))
	for i := range want {
		assert.Equal(t, want[i].Data(), got[i].Data(), "H·v of %s", e.Params()[i].Name)
	}
	_, err = e.LossGrad()
	require.NoError(t, err)
	for i, p := range e.Params() {
		assert.Equal(t, g1[i].Data(), p.Grad.Data(), "gradient of %s", p.Name)
	}
}

// TestStaleHVP is the sequence the optim.Oracle contract covers: a fused
// LossGradHVP(z), an in-place update of θ, then HVP(z) must be H·z at the
// updated θ (a cache keyed on z once returned the stale product, off by up
// to 0.46 on this MLP), checked against an engine built fresh at the new θ.
func TestStaleHVP(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec nn.Spec
	}{{"mlp", nn.MLPSpec(6, []int{5, 4}, 3)}, {"conv_bn", fdModels[3].spec}} {
		t.Run(tc.name, func(t *testing.T) {
			e, x, labels := newEngine(t, tc.spec, tensor.Float64, 11, 4, optim.Needs{HVP: true})
			defer e.Close()
			z, hz := optim.Like(e.Params()), optim.Like(e.Params())
			require.NoError(t, optim.NewRandomProbes(optim.Rademacher, 5).Fill(z))
			_, err := e.LossGradHVP(z, hz)
			require.NoError(t, err)
			before := optimFlat(hz)
			// θ ← θ − 0.5·∇L, in place, as an optimizer does.
			for _, p := range e.Params() {
				th, g := p.Value.Float64s(), p.Grad.Float64s()
				for j := range th {
					th[j] -= 0.5 * g[j]
				}
			}
			after := optim.Like(e.Params())
			require.NoError(t, e.HVP(z, after))

			// Reference: a fresh engine whose model holds the updated θ.
			m, err := specModel(tc.spec, tensor.Float64, rand.New(rand.NewPCG(11, 7)))
			require.NoError(t, err)
			for i, p := range m.Params() {
				num.CopyInto(p.Value, e.Params()[i].Value)
			}
			ref, err := New(m, optim.Needs{HVP: true})
			require.NoError(t, err)
			defer ref.Close()
			require.NoError(t, ref.SetBatch(x, labels))
			want := optim.Like(ref.Params())
			require.NoError(t, ref.HVP(z, want))
			assert.Equal(t, optimFlat(want), optimFlat(after), "HVP after the update must be H·z at the updated θ")
			assert.Greater(t, maxAbsDiff(optimFlat(want), before), 1e-3, "the test needs an update that changes H·z")
		})
	}
}

func optimFlat(ts []*tensor.Dense) []float64 {
	var out []float64
	for _, t := range ts {
		out = append(out, num.ToFloat64(t)...)
	}
	return out
}

func maxAbsDiff(a, b []float64) float64 {
	m := 0.0
	for i := range a {
		m = math.Max(m, math.Abs(a[i]-b[i]))
	}
	return m
}

// TestAuditRefusesStockOps builds graphs with stock Gorgonia ops that are
// wrong under double differentiation and checks the engine-level audit.
func TestBadInput(t *testing.T) {
	e, x, labels := newEngine(t, fdModels[1].spec, tensor.Float64, 5, 5, optim.Needs{})
	bad := append([]int{}, labels...)
	bad[2] = 7
	err := e.SetBatch(x, bad)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "label 7 at row 2")
	err = e.SetBatch(x, labels[:3])
	require.Error(t, err)
	assert.Contains(t, err.Error(), "3 labels for a batch of 5")
	x2 := tensor.New(tensor.Of(tensor.Float64), tensor.WithShape(5, 7))
	err = e.SetBatch(x2, labels)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "input shape")
	x3 := tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(5, 6))
	err = e.SetBatch(x3, labels)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "dtype")
	require.Error(t, e.SetBatch(nil, labels))

	out := optim.Like(e.Params())
	err = e.HVP(out, out)
	assert.True(t, errors.Is(err, optim.ErrNotProvided), "HVP without Needs.HVP: %v", err)
	err = e.SampledGrad(out)
	assert.True(t, errors.Is(err, optim.ErrNotProvided), "SampledGrad without Needs.SampledGrad: %v", err)

	// A non-finite parameter gives an error naming the loss; gradients unchanged.
	require.NoError(t, e.SetBatch(x, labels))
	_, err = e.LossGrad()
	require.NoError(t, err)
	before := append([]float64{}, e.Params()[0].Grad.Data().([]float64)...)
	w := e.Params()[0].Value.Data().([]float64)
	w[0] = math.NaN()
	_, err = e.LossGrad()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "loss is NaN")
	assert.Equal(t, before, e.Params()[0].Grad.Data().([]float64))

	// Wrong tensors for HVP.
	e2, _, _ := newEngine(t, fdModels[1].spec, tensor.Float64, 5, 5, optim.Needs{HVP: true})
	err = e2.HVP(out[:1], out)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "tensors for")
	require.Error(t, e2.HVPFlat(make([]float64, 3), make([]float64, 3)))
}

// TestEvaluation checks prediction on several batch sizes and that
// evaluation mode uses batch norm's running statistics.
func TestEvaluation(t *testing.T) {
	spec := fdModels[3].spec
	e, x, labels := newEngine(t, spec, tensor.Float64, 6, 3, optim.Needs{})
	_, err := e.LossGrad()
	require.NoError(t, err)
	train := e.Logits()
	require.NotNil(t, train)
	ev, err := e.EvalLogits(x)
	require.NoError(t, err)
	assert.NotEqual(t, train.Data(), ev.Data(), "evaluation mode uses running statistics")
	mean, _, err := e.Model().RunningStats("bn1")
	require.NoError(t, err)
	assert.NotEqual(t, make([]float64, 4), mean.Data(), "running mean updated by LossGrad")

	rng := rand.New(rand.NewPCG(1, 1))
	for _, n := range []int{1, 3, 7} {
		xb, _ := randomBatch(t, e.Model(), n, rng)
		p, err := e.Predict(xb)
		require.NoError(t, err)
		assert.Len(t, p, n)
		for _, c := range p {
			assert.True(t, c >= 0 && c < 3)
		}
	}
	acc, err := e.Accuracy(x, labels)
	require.NoError(t, err)
	assert.True(t, acc >= 0 && acc <= 1)
}

// TestNoAllocationGrowth checks that repeated steps allocate only a small,
// constant amount — bookkeeping of the tape machine, goroutines and gonum's
// parallel GEMM — and never the op buffers, which together are several
// megabytes for this model.
func TestNoAllocationGrowth(t *testing.T) {
	spec := nn.CNNSpec(3, 16, 10)
	for _, needs := range []optim.Needs{{}, {HVP: true}, {SampledGrad: true}} {
		e, _, _ := newEngine(t, spec, tensor.Float32, 1, 8, needs)
		v, out := optim.Like(e.Params()), optim.Like(e.Params())
		step := func() {
			_, err := e.LossGrad()
			require.NoError(t, err)
			if needs.HVP {
				require.NoError(t, e.HVP(v, out))
			}
			if needs.SampledGrad {
				require.NoError(t, e.SampledGrad(out))
			}
		}
		step()
		perStep := func(runs int) float64 {
			var ms0, ms1 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			for i := 0; i < runs; i++ {
				step()
			}
			runtime.ReadMemStats(&ms1)
			return float64(ms1.TotalAlloc-ms0.TotalAlloc) / float64(runs)
		}
		b1, b2 := perStep(5), perStep(20)
		assert.Less(t, b2, 512.0*1024, "bytes allocated per step (needs %+v)", needs)
		assert.InDelta(t, b1, b2, 0.25*b1+4096, "bytes per step must not grow")
		a1 := testing.AllocsPerRun(5, step)
		a2 := testing.AllocsPerRun(20, step)
		assert.InDelta(t, a1, a2, 0.1*a1+5, "allocations per step must not grow")
		t.Logf("needs %+v: %.0f bytes, %.0f allocations per step", needs, b2, a2)
	}
}

// specModel builds a layer-list model (converted by nn.Spec.DAG).
func specModel(s nn.Spec, dt tensor.Dtype, rng *rand.Rand) (*nn.Model, error) {
	d, err := s.DAG()
	if err != nil {
		return nil, err
	}
	return nn.New(d, dt, rng, 0)
}
