package nn

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// fusedBNForTest is BNApply(x, BNMoments(x), γ, β) with eps 1e-5, as
// Model.Build makes it in training mode.
func fusedBNForTest(relu bool) func(ns []*gorgonia.Node) (*gorgonia.Node, error) {
	return func(ns []*gorgonia.Node) (*gorgonia.Node, error) {
		s, err := BNMoments(ns[0])
		if err != nil {
			return nil, err
		}
		return BNApply(ns[0], s, ns[1], ns[2], 1e-5, relu)
	}
}

// composedBNForTest is the composed batch norm (Model.batchNorm), with a
// ReLU after it if relu is set.
func composedBNForTest(relu bool) func(ns []*gorgonia.Node) (*gorgonia.Node, error) {
	return func(ns []*gorgonia.Node) (*gorgonia.Node, error) {
		y, err := batchNormForTest(ns)
		if err != nil || !relu {
			return y, err
		}
		return ReLU(y)
	}
}

func torchCase(t *testing.T, name string) torchOpCase {
	for _, tc := range loadTorchOps(t) {
		if tc.Name == name {
			return tc
		}
	}
	t.Fatalf("no case %q in testdata/torch_ops.json", name)
	return torchOpCase{}
}

// TestFusedBatchNormAgainstTorch checks the fused training-mode batch norm's
// value, gradient and H·v (through both its first-derivative ops) against
// PyTorch's double backprop on the batchnorm_train case, and against finite
// differences.
func TestFusedBatchNormAgainstTorch(t *testing.T) {
	tc := torchCase(t, "batchnorm_train")
	p := newOpProbeWith(t, tc, tensor.Float64, fusedBNForTest(false))
	p.run(t)
	assert.Less(t, relErr(floats(p.y), tc.Y), 1e-12, "value")
	for k, i := range p.diff {
		in := tc.Inputs[i]
		assert.Less(t, relErr(floats(p.grads[k]), in.Grad), 1e-10, "gradient of %s", in.Name)
		assert.Less(t, relErr(floats(p.hv[k]), in.HV), 1e-10, "H·v of %s", in.Name)
	}
	checkFiniteDifferencesOf(t, tc, newOpProbeWith(t, tc, tensor.Float64, fusedBNForTest(false)))
}

// randomBNCase is a batch-norm case of shape [n, c, h, w] with random
// inputs (x with a per-channel offset), loss weights and directions.
func randomBNCase(rng *rand.Rand, n, c, h, w int) torchOpCase {
	r := func(k int, scale, off float64) []float64 {
		v := make([]float64, k)
		for i := range v {
			v[i] = off + scale*rng.NormFloat64()
		}
		return v
	}
	size := n * c * h * w
	x := r(size, 1.5, 0)
	for i := range x {
		x[i] += float64((i/(h*w))%c) - 1 // channel offsets
	}
	tc := torchOpCase{Name: "bn", C: r(size, 1, 0), YShape: []int{n, c, h, w}}
	add := func(name string, shape []int, data []float64) {
		tc.Inputs = append(tc.Inputs, torchOpInput{Name: name, Shape: shape, Data: data, Diff: true, V: r(len(data), 1, 0)})
	}
	add("x", []int{n, c, h, w}, x)
	add("gamma", []int{c}, r(c, 0.5, 1))
	add("beta", []int{c}, r(c, 0.5, 0.2))
	return tc
}

// residual returns x + f(x, …), so that the loss Σ c⊙y² has a non-zero
// upstream gradient where the ReLU's output is zero (the mask's terms are
// then exercised).
func residual(f func(ns []*gorgonia.Node) (*gorgonia.Node, error)) func(ns []*gorgonia.Node) (*gorgonia.Node, error) {
	return func(ns []*gorgonia.Node) (*gorgonia.Node, error) {
		y, err := f(ns)
		if err != nil {
			return nil, err
		}
		return AddN(y, ns[0])
	}
}

// addReLUOf returns add(f(x, …), x), the residual sum and its ReLU.
func addReLUOf(f func(ns []*gorgonia.Node) (*gorgonia.Node, error), add func(a, b *gorgonia.Node) (*gorgonia.Node, error)) func(ns []*gorgonia.Node) (*gorgonia.Node, error) {
	return func(ns []*gorgonia.Node) (*gorgonia.Node, error) {
		y, err := f(ns)
		if err != nil {
			return nil, err
		}
		return add(y, ns[0])
	}
}

// TestFusedBatchNormMatchesComposed checks the fused batch norm, alone,
// with its ReLU, and with its ReLU inside a residual, against the composed
// ops it replaces (value, gradient and H·v with respect to x, γ and β,
// where the loss Σ c⊙y² makes the upstream gradient depend on the inputs,
// so every second-derivative term is exercised), on a small case and on one
// large enough to split over workers, and against finite differences.
func TestFusedBatchNormMatchesComposed(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	type build = func(ns []*gorgonia.Node) (*gorgonia.Node, error)
	variants := []struct {
		name       string
		fused, ref build
	}{
		{"bn", fusedBNForTest(false), composedBNForTest(false)},
		{"bn+relu", fusedBNForTest(true), composedBNForTest(true)},
		{"x+relu(bn)", residual(fusedBNForTest(true)), residual(composedBNForTest(true))},
		{"relu(bn+x): AddReLU", addReLUOf(fusedBNForTest(false), AddReLU), addReLUOf(composedBNForTest(false), func(a, b *gorgonia.Node) (*gorgonia.Node, error) {
			s, err := AddN(a, b)
			if err != nil {
				return nil, err
			}
			return ReLU(s)
		})},
	}
	for _, sz := range [][4]int{{3, 2, 3, 2}, {4, 8, 32, 33}} {
		tc := randomBNCase(rng, sz[0], sz[1], sz[2], sz[3])
		for _, v := range variants {
			want := newOpProbeWith(t, tc, tensor.Float64, v.ref)
			got := newOpProbeWith(t, tc, tensor.Float64, v.fused)
			want.run(t)
			got.run(t)
			assert.Less(t, relErr(floats(got.y), floats(want.y)), 1e-12, "%v %s: value", sz, v.name)
			for k := range want.diff {
				assert.Less(t, relErr(floats(got.grads[k]), floats(want.grads[k])), 1e-10, "%v %s: gradient %d", sz, v.name, k)
				assert.Less(t, relErr(floats(got.hv[k]), floats(want.hv[k])), 1e-10, "%v %s: H·v %d", sz, v.name, k)
			}
			if sz[0] == 3 {
				checkFiniteDifferencesOf(t, tc, newOpProbeWith(t, tc, tensor.Float64, v.fused))
			}
			p32 := newOpProbeWith(t, tc, tensor.Float32, v.fused)
			p32.run(t)
			assert.Less(t, relErr(floats(p32.y), floats(want.y)), 1e-5, "%v %s: float32 value", sz, v.name)
			for k := range want.diff {
				assert.Less(t, relErr(floats(p32.grads[k]), floats(want.grads[k])), 1e-4, "%v %s: float32 gradient %d", sz, v.name, k)
				assert.Less(t, relErr(floats(p32.hv[k]), floats(want.hv[k])), 1e-4, "%v %s: float32 H·v %d", sz, v.name, k)
			}
		}
	}
}

// TestFusedBatchNormRefusesOtherStatistics checks that BNApply accepts only
// BNMoments of its own input as its statistics (the derivatives rely on it).
func TestFusedBatchNormRefusesOtherStatistics(t *testing.T) {
	g := gorgonia.NewGraph()
	x := gorgonia.NewTensor(g, tensor.Float64, 4, gorgonia.WithShape(2, 3, 2, 2), gorgonia.WithName("x"))
	x2 := gorgonia.NewTensor(g, tensor.Float64, 4, gorgonia.WithShape(2, 3, 2, 2), gorgonia.WithName("x2"))
	gm := gorgonia.NewTensor(g, tensor.Float64, 1, gorgonia.WithShape(3), gorgonia.WithName("gamma"))
	bt := gorgonia.NewTensor(g, tensor.Float64, 1, gorgonia.WithShape(3), gorgonia.WithName("beta"))
	other := gorgonia.NewTensor(g, tensor.Float64, 2, gorgonia.WithShape(2, 3), gorgonia.WithName("stats"))
	_, err := BNApply(x, other, gm, bt, 1e-5, false)
	assert.ErrorContains(t, err, "not BNMoments")
	s2, err := BNMoments(x2)
	require.NoError(t, err)
	_, err = BNApply(x, s2, gm, bt, 1e-5, false)
	assert.ErrorContains(t, err, "not BNMoments")
	s, err := BNMoments(x)
	require.NoError(t, err)
	_, err = BNApply(x, s, bt, gm, -1, true)
	assert.ErrorContains(t, err, "eps")
}

// TestLinRow checks linRow's vector kernels (masked and not) bitwise
// against scalar loops ((b + k1·(x − mu)) + k2·t, each operation rounded), NaN
// results only as NaN, for every length up to 100 at an odd offset.
func TestLinRow(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 15))
	for n := 0; n <= 100; n++ {
		x, tv, a := ewInputs(rng, n+1)[1:], ewInputs(rng, n+1)[1:], ewInputs(rng, n+1)[1:]
		k := ewInputs(rng, 4)
		for _, masked := range []bool{false, true} {
			got, want := make([]float32, n), make([]float32, n)
			var am []float32
			if masked {
				am = a
			}
			linRow(x, tv, am, got, k[3], k[0], k[1], k[2])
			for i := range x {
				ti := tv[i]
				if masked && !(int32(math.Float32bits(a[i])) > 0) { // a > +0 by its bits
					ti = 0
				}
				want[i] = float32(k[2]+float32(k[0]*float32(x[i]-k[3]))) + float32(k[1]*ti)
			}
			sameBits32(t, "linRow", n, got, want, true)
		}
	}
}

// TestBNMomentsLargeOffset checks the batch variance of data with a large
// common offset (10⁴ ± 10⁻²·N(0, 1) per channel) against a two-pass float64
// reference, in float64 and float32: the sums are shifted by each channel's
// first value, so the offset does not cancel their digits away.
func TestBNMomentsLargeOffset(t *testing.T) {
	const n, c, hw = 4, 3, 50
	rng := rand.New(rand.NewPCG(16, 17))
	x := make([]float64, n*c*hw)
	for i := range x {
		x[i] = 1e4 + 1e-2*rng.NormFloat64()
	}
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		g := gorgonia.NewGraph()
		v := tensor.New(tensor.Of(dt), tensor.WithShape(n, c, hw))
		setFloats(v, x)
		xn := gorgonia.NewTensor(g, dt, 3, gorgonia.WithShape(n, c, hw), gorgonia.WithName("x"), gorgonia.WithValue(v))
		s, err := BNMoments(xn)
		require.NoError(t, err)
		vm := gorgonia.NewTapeMachine(g)
		require.NoError(t, vm.RunAll())
		vm.Close()
		got := floats(s)
		xs := floats(xn) // the values as the dtype holds them
		for ch := 0; ch < c; ch++ {
			var mu, q float64
			for o := 0; o < n; o++ {
				for _, e := range xs[(o*c+ch)*hw : (o*c+ch+1)*hw] {
					mu += e
				}
			}
			mu /= n * hw
			for o := 0; o < n; o++ {
				for _, e := range xs[(o*c+ch)*hw : (o*c+ch+1)*hw] {
					q += (e - mu) * (e - mu)
				}
			}
			q /= n * hw
			tol, mtol := 1e-9, 1e-9*1e4
			if dt == tensor.Float32 {
				tol, mtol = 1e-3, 1e-3 // float32 rounds x − K, and the mean (ulp 1e-3 at 10⁴)
			}
			assert.InDelta(t, mu, got[ch], mtol, "%v channel %d mean", dt, ch)
			assert.InDelta(t, q, got[c+ch], tol*q, "%v channel %d variance", dt, ch)
		}
	}
}

// TestFusedBatchNormFloat32Centred checks the float32 fused batch norm on
// inputs whose channel means are 400 standard deviations from zero against
// float64: the values are 200 ± multiples of 2⁻⁸ in pairs, so they and
// their mean are exact in float32, and the ops centre x before scaling (as
// torch does), so the mean cancels no digits; scaling first would lose
// about ε·|μ|/σ ≈ 1e-5.
func TestFusedBatchNormFloat32Centred(t *testing.T) {
	const n, c, hw = 4, 3, 64
	tc := randomBNCase(rand.New(rand.NewPCG(18, 19)), n, c, 8, 8)
	rng := rand.New(rand.NewPCG(20, 21))
	x := tc.Inputs[0].Data
	for o := 0; o < n/2; o++ {
		for i := 0; i < c*hw; i++ {
			d := float64(rng.IntN(257)-128) / 256
			x[o*c*hw+i], x[(o+n/2)*c*hw+i] = 200+d, 200-d
		}
	}
	for _, relu := range []bool{false, true} {
		p64 := newOpProbeWith(t, tc, tensor.Float64, fusedBNForTest(relu))
		p32 := newOpProbeWith(t, tc, tensor.Float32, fusedBNForTest(relu))
		// every other input is compared on the values float32 holds
		for i, v := range p32.vals {
			setFloats(p64.vals[i], floats32(v))
		}
		p64.run(t)
		p32.run(t)
		assert.Less(t, relErr(floats(p32.y), floats(p64.y)), 1e-6, "relu %v: value", relu)
		for k := range p64.diff {
			assert.Less(t, relErr(floats(p32.grads[k]), floats(p64.grads[k])), 1e-6, "relu %v: gradient %d", relu, k)
		}
	}
}

func floats32(v *tensor.Dense) []float64 {
	d := v.Data().([]float32)
	out := make([]float64, len(d))
	for i, e := range d {
		out[i] = float64(e)
	}
	return out
}
