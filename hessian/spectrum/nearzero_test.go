package spectrum_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/curvopt/curvopt/hessian"
	"github.com/curvopt/curvopt/hessian/spectrum"
	"github.com/curvopt/curvopt/internal/golden"
	"github.com/curvopt/curvopt/nn"
	"github.com/curvopt/curvopt/optim"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

// bnCNN builds a small batch-norm CNN (conv 3→4 k3 p1, batch norm, ReLU,
// max-pool 2, linear 36→5; d = 305) with random weights from seed, on a
// random batch of 8, and returns its Hessian engine.
func bnCNN(t *testing.T, seed uint64) *hessian.Engine {
	spec := nn.Spec{InputShape: []int{3, 6, 6}, Layers: []nn.LayerSpec{
		{Type: nn.LayerConv2d, Name: "conv", In: 3, Out: 4, Kernel: 3, Stride: 1, Pad: 1},
		{Type: nn.LayerBatchNorm2d, Name: "bn", Channels: 4},
		{Type: nn.LayerReLU},
		{Type: nn.LayerMaxPool2d, Kernel: 2, Stride: 2},
		{Type: nn.LayerFlatten},
		{Type: nn.LayerLinear, Name: "fc", In: 36, Out: 5},
	}}
	d, err := spec.DAG()
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(seed, 1))
	m, err := nn.New(d, tensor.Float64, rng, 0)
	require.NoError(t, err)
	eng, err := hessian.New(m, optim.Needs{HVP: true})
	require.NoError(t, err)
	const n = 8
	x := make([]float64, n*3*6*6)
	for i := range x {
		x[i] = rng.NormFloat64()
	}
	labels := make([]int, n)
	for i := range labels {
		labels[i] = rng.IntN(5)
	}
	require.NoError(t, eng.SetBatch(tensor.New(tensor.WithShape(n, 3, 6, 6), tensor.WithBacking(x)), labels))
	return eng
}

// TestSpectrumNearZeroTrace runs the spectrum checks on a Hessian whose
// trace is small next to its size: the batch-norm CNN above at seed 6 has
// tr(H) ≈ 6.2 and ‖H‖_F ≈ 30.9 (eigenvalues of both signs). A trace
// estimator that stops on a standard error relative to |trace| needs about
// 2‖H‖_F²/(Tol·tr)² ≈ 2·10⁴ probes here at Tol = 0.05; the rule relative to
// max(|trace|, ‖H‖_F) stops after a few hundred. The reference is the dense
// Hessian assembled from exact HVPs (checked against PyTorch by the golden
// tests) and its dense eigendecomposition.
func TestSpectrumNearZeroTrace(t *testing.T) {
	eng := bnCNN(t, 6)
	defer eng.Close()
	h, err := spectrum.BuildDense(eng, 1e-8)
	require.NoError(t, err)
	exact, fro := h.Trace(), h.Frobenius()
	require.LessOrEqual(t, math.Abs(exact), 0.25*fro, "the model must have a trace near zero relative to ‖H‖_F")
	eig, err := h.Eigen()
	require.NoError(t, err)
	require.Less(t, eig.Min(), 0.0)
	t.Logf("d = %d, trace %.4g, ‖H‖_F %.4g, eigenvalues in [%.3g, %.3g]", eng.Dim(), exact, fro, eig.Min(), eig.Top(1)[0])

	rng := rand.New(rand.NewPCG(61, 62))
	top, err := spectrum.Lanczos(eng, spectrum.DefaultLanczosConfig(3, spectrum.LargestAlgebraic), rng)
	require.NoError(t, err)
	bottom, err := spectrum.Lanczos(eng, spectrum.DefaultLanczosConfig(1, spectrum.SmallestAlgebraic), rng)
	require.NoError(t, err)
	assert.LessOrEqual(t, golden.RelErr(top.Values(), eig.Top(3)), 1e-6, "lanczos top 3")
	assert.LessOrEqual(t, golden.ScalarRelErr(bottom.Values()[0], eig.Min()), 1e-6, "lanczos min")

	cfg := spectrum.TraceConfig{MinSamples: 10, MaxSamples: 2000, Tol: 0.05}
	for _, method := range []spectrum.TraceMethod{spectrum.MethodHutchinson, spectrum.MethodHutchPP} {
		cfg.Method = method
		tr, err := spectrum.Trace(eng, cfg, rng)
		require.NoError(t, err, "%s must converge", method)
		assert.LessOrEqual(t, math.Abs(tr.Mean-exact), 3.5*tr.StdErr, "%s: %v ± %v, exact %v", method, tr.Mean, tr.StdErr, exact)
		assert.InDelta(t, fro, tr.Scale, 0.2*fro, "%s: Scale estimates ‖H‖_F", method)
		t.Logf("%s: %.4g ± %.2g (exact %.4g) after %d products, scale %.3g", method, tr.Mean, tr.StdErr, exact, tr.Products, tr.Scale)
	}
}
