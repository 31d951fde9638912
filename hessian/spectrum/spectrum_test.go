package spectrum

import (
	"errors"
	"math"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"
)

// matOp is a plain dense symmetric operator for tests, independent of Dense.
type matOp struct {
	d     int
	a     []float64
	calls int
}

func (m *matOp) Dim() int { return m.d }

func (m *matOp) HVPFlat(v, out []float64) error {
	m.calls++
	for i := 0; i < m.d; i++ {
		var s float64
		for j := 0; j < m.d; j++ {
			s += m.a[i*m.d+j] * v[j]
		}
		out[i] = s
	}
	return nil
}

// known builds H = QΛQᵀ with a random orthogonal Q (QR of a Gaussian matrix
// from a seeded source).
func known(t *testing.T, lambda []float64, seed uint64) *matOp {
	t.Helper()
	d := len(lambda)
	rng := rand.New(rand.NewPCG(seed, 7))
	g := mat.NewDense(d, d, nil)
	for i := 0; i < d; i++ {
		for j := 0; j < d; j++ {
			g.Set(i, j, rng.NormFloat64())
		}
	}
	var qr mat.QR
	qr.Factorize(g)
	var q mat.Dense
	qr.QTo(&q)
	var h mat.Dense
	h.Mul(&q, mat.NewDiagDense(d, lambda))
	h.Mul(&h, q.T())
	a := make([]float64, d*d)
	for i := 0; i < d; i++ {
		for j := 0; j < d; j++ {
			a[i*d+j] = (h.At(i, j) + h.At(j, i)) / 2
		}
	}
	return &matOp{d: d, a: a}
}

// testSpectrum has well separated ends, negative eigenvalues (the largest
// in magnitude is negative) and a near-degenerate pair in the bulk.
func testSpectrum() []float64 {
	lam := []float64{10, 8, 6, -12, -7, -5, 1, 1 + 1e-6, -2.5, 2.5 + 1e-7, 2.5}
	rng := rand.New(rand.NewPCG(11, 12))
	for len(lam) < 120 {
		lam = append(lam, -3+6*rng.Float64()*0.999)
	}
	return lam
}

func sorted(lam []float64, desc bool) []float64 {
	s := append([]float64(nil), lam...)
	sort.Float64s(s)
	if desc {
		for i, j := 0, len(s)-1; i < j; i, j = i+1, j-1 {
			s[i], s[j] = s[j], s[i]
		}
	}
	return s
}

func sum(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v
	}
	return s
}

func relErr(a, r float64) float64 { return math.Abs(a-r) / math.Abs(r) }

func seeded(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed+1)) }

// checkPairs asserts the values against want (relative tol) and that each
// vector is unit and has a small residual against op.
func checkPairs(t *testing.T, op Operator, res *EigenResult, want []float64, tol, resTol float64) {
	t.Helper()
	require.Len(t, res.Pairs, len(want))
	hv := make([]float64, op.Dim())
	for i, p := range res.Pairs {
		assert.LessOrEqualf(t, relErr(p.Value, want[i]), tol, "pair %d: got %.17g want %.17g", i, p.Value, want[i])
		assert.InDelta(t, 1, norm(p.Vector), 1e-12)
		require.NoError(t, op.HVPFlat(p.Vector, hv))
		axpy(-p.Value, p.Vector, hv)
		r := norm(hv)
		assert.LessOrEqualf(t, r, resTol, "pair %d residual", i)
		assert.InDelta(t, r, p.Residual, 1e-12+1e-6*r, "reported residual")
		assert.True(t, p.Converged)
	}
}

func TestPowerIterationKnownSpectrum(t *testing.T) {
	lam := testSpectrum()
	op := known(t, lam, 1)
	tests := []struct {
		which Which
		want  []float64
	}{
		{LargestMagnitude, []float64{-12, 10, 8}},
		{LargestAlgebraic, []float64{10, 8, 6}},
		{SmallestAlgebraic, []float64{-12, -7, -5}},
	}
	for _, tc := range tests {
		t.Run(tc.which.String(), func(t *testing.T) {
			cfg := DefaultPowerConfig(3, tc.which)
			cfg.MaxIter = 5000
			res, err := PowerIteration(op, cfg, seeded(3))
			require.NoError(t, err)
			require.True(t, res.Converged)
			// Residual ≤ 1e-8·12 gives eigenvalue errors ~ r²/gap ≪ 1e-12.
			checkPairs(t, op, res, tc.want, 1e-10, 1e-8*12*1.01)
			assert.Greater(t, res.Products, 0)
		})
	}
}

func TestLanczosKnownSpectrum(t *testing.T) {
	lam := testSpectrum()
	op := known(t, lam, 2)
	tests := []struct {
		which Which
		want  []float64
	}{
		{LargestAlgebraic, []float64{10, 8, 6}},
		{SmallestAlgebraic, []float64{-12, -7, -5}},
		{LargestMagnitude, []float64{-12, 10, 8}},
	}
	for _, tc := range tests {
		t.Run(tc.which.String(), func(t *testing.T) {
			cfg := DefaultLanczosConfig(3, tc.which)
			cfg.MaxIter = 100 // < d = 120: must converge before exhausting the space
			res, err := Lanczos(op, cfg, seeded(4))
			require.NoError(t, err)
			require.True(t, res.Converged)
			checkPairs(t, op, res, tc.want, 1e-12, 1e-10*12*1.01)
			assert.Less(t, res.Products, 100+3+1)
		})
	}
}

// TestLanczosNearDegenerateTop puts a pair separated by 1e-6 relative at the
// top: a method that found only one copy would report 7 as the third value.
func TestLanczosNearDegenerateTop(t *testing.T) {
	lam := []float64{9, 9 * (1 + 1e-6), 7, -8}
	rng := rand.New(rand.NewPCG(5, 6))
	for len(lam) < 150 {
		lam = append(lam, -4+8*rng.Float64())
	}
	op := known(t, lam, 3)
	cfg := DefaultLanczosConfig(3, LargestAlgebraic)
	cfg.MaxIter = 150
	res, err := Lanczos(op, cfg, seeded(8))
	require.NoError(t, err)
	checkPairs(t, op, res, []float64{9 * (1 + 1e-6), 9, 7}, 1e-12, 1e-10*9*1.01)
	// The two vectors of the pair are orthogonal.
	assert.InDelta(t, 0, dot(res.Pairs[0].Vector, res.Pairs[1].Vector), 1e-6)
}

// TestLanczosExhaustsSpace: with MaxIter ≥ d the Krylov space is the whole
// space and every eigenvalue comes out exactly (up to rounding), here on a
// matrix with an exactly repeated eigenvalue.
func TestLanczosExhaustsSpace(t *testing.T) {
	lam := []float64{5, 5, 5, 2, -1, -1, 0, 3}
	op := known(t, lam, 4)
	cfg := DefaultLanczosConfig(4, LargestAlgebraic)
	cfg.MaxIter = 100
	res, err := Lanczos(op, cfg, seeded(9))
	require.NoError(t, err)
	checkPairs(t, op, res, []float64{5, 5, 5, 3}, 1e-12, 1e-12*5)
}

func TestDenseKnownSpectrum(t *testing.T) {
	lam := testSpectrum()
	op := known(t, lam, 5)
	h, err := BuildDense(op, 1e-12)
	require.NoError(t, err)
	assert.Equal(t, op.d, op.calls)
	assert.LessOrEqual(t, h.Asymmetry, 1e-12)
	e, err := h.Eigen()
	require.NoError(t, err)
	want := sorted(lam, false)
	for i, v := range e.Values {
		assert.InDelta(t, want[i], v, 1e-12*12)
	}
	assert.InDeltaSlice(t, []float64{10, 8, 6}, e.Top(3), 1e-12*12)
	assert.InDelta(t, -12, e.Min(), 1e-12*12)
	assert.InDelta(t, sum(lam), h.Trace(), 1e-12*float64(len(lam)))
	var fro float64
	for _, l := range lam {
		fro += l * l
	}
	assert.InDelta(t, math.Sqrt(fro), h.Frobenius(), 1e-12*math.Sqrt(fro))
	diag := h.Diag()
	for i := range diag {
		assert.Equal(t, op.a[i*op.d+i], diag[i])
	}
	// Eigenvectors are columns: H q = λ q.
	q := make([]float64, h.N)
	hq := make([]float64, h.N)
	for c := 0; c < h.N; c += 17 {
		mat.Col(q, c, e.Vectors)
		require.NoError(t, h.HVPFlat(q, hq))
		axpy(-e.Values[c], q, hq)
		assert.Less(t, norm(hq), 1e-12*12)
	}
}

func TestBuildDenseRejectsAsymmetric(t *testing.T) {
	op := &matOp{d: 2, a: []float64{1, 2, 2.5, 1}}
	_, err := BuildDense(op, 1e-9)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not symmetric")
	_, err = NewDense(2, op.a)
	require.ErrorIs(t, err, ErrInvalid)
}

func TestHutchinsonWithinStandardError(t *testing.T) {
	lam := testSpectrum()
	op := known(t, lam, 6)
	exact := sum(lam)
	cfg := TraceConfig{MinSamples: 10, MaxSamples: 20000, Tol: 5e-2}
	res, err := Hutchinson(op, cfg, seeded(10))
	require.NoError(t, err)
	require.True(t, res.Converged)
	assert.Equal(t, res.N(), len(res.Samples))
	assert.GreaterOrEqual(t, res.N(), 10)
	fro := 0.0
	for _, l := range lam {
		fro += l * l
	}
	fro = math.Sqrt(fro)
	assert.InDelta(t, fro, res.Scale, 0.1*fro, "Scale estimates ‖H‖_F")
	assert.LessOrEqual(t, res.StdErr, 5e-2*math.Max(math.Abs(res.Mean), res.Scale))
	assert.Equal(t, res.N(), res.Products)
	assert.LessOrEqualf(t, math.Abs(res.Mean-exact), 3*res.StdErr, "mean %g exact %g se %g", res.Mean, exact, res.StdErr)
	// Mean and SE match the samples.
	m := sum(res.Samples) / float64(res.N())
	var ss float64
	for _, x := range res.Samples {
		ss += (x - m) * (x - m)
	}
	assert.InDelta(t, m, res.Mean, 1e-12*math.Abs(m))
	assert.InDelta(t, math.Sqrt(ss/float64(res.N()-1)/float64(res.N())), res.StdErr, 1e-10)
}

func TestHutchinsonDiagonalIsExact(t *testing.T) {
	d, err := NewDense(3, []float64{2, 0, 0, 0, -1, 0, 0, 0, 4})
	require.NoError(t, err)
	res, err := Hutchinson(d, TraceConfig{MinSamples: 2, MaxSamples: 10, Tol: 1e-12}, seeded(1))
	require.NoError(t, err)
	assert.Equal(t, 2, res.N())
	assert.Equal(t, 5.0, res.Mean)
	assert.Equal(t, 0.0, res.StdErr)
}

func TestSLQDensity(t *testing.T) {
	lam := testSpectrum()
	op := known(t, lam, 7)
	d := float64(len(lam))
	res, err := SLQ(op, SLQConfig{Probes: 20, Steps: 40}, seeded(12))
	require.NoError(t, err)
	require.Len(t, res.Nodes, 20)
	assert.Equal(t, 20*40, res.Products)
	// The probes SLQ drew: the same seeded source, d Rademacher entries per
	// probe (Lanczos draws nothing more unless it breaks down).
	probes := seeded(12)
	perProbe := make([]float64, len(res.Nodes))
	z, hz := make([]float64, len(lam)), make([]float64, len(lam))
	for i := range res.Nodes {
		assert.Len(t, res.Nodes[i], 40)
		assert.InDelta(t, 1, sum(res.Weights[i]), 1e-12)
		assert.True(t, sort.Float64sAreSorted(res.Nodes[i]))
		// Extreme Ritz values lie inside the spectrum and near its ends.
		assert.GreaterOrEqual(t, res.Nodes[i][0], -12-1e-9)
		assert.LessOrEqual(t, res.Nodes[i][39], 10+1e-9)
		assert.InDelta(t, -12, res.Nodes[i][0], 1e-6)
		// Gauss quadrature is exact for degree 1: Σ_k τ_k θ_k = zᵀHz/d,
		// computed here from the operator, not from the rule.
		fillRademacher(probes, z)
		require.NoError(t, op.HVPFlat(z, hz))
		perProbe[i] = dot(z, hz)
		var q float64
		for k, th := range res.Nodes[i] {
			q += res.Weights[i][k] * th
		}
		assert.InDelta(t, perProbe[i]/d, q, 1e-12*math.Abs(perProbe[i]/d)+1e-14, "probe %d: first moment of the rule", i)
	}
	// Mean is the average of those: a Hutchinson estimate of tr(H)/d,
	// within 3 standard errors of the exact trace.
	m := sum(perProbe) / float64(len(perProbe))
	var ss float64
	for _, x := range perProbe {
		ss += (x - m) * (x - m)
	}
	se := math.Sqrt(ss / float64(len(perProbe)-1) / float64(len(perProbe)))
	assert.InDelta(t, m/d, res.Mean(), 1e-12*math.Abs(m/d))
	assert.LessOrEqual(t, math.Abs(m-sum(lam)), 3*se)

	den, err := res.Density(DefaultDensityConfig())
	require.NoError(t, err)
	require.Len(t, den.X, 10000)
	assert.InDelta(t, 1, den.Integral(), 1e-12)
	var riemann float64
	for _, y := range den.Y {
		riemann += y * (den.X[1] - den.X[0])
	}
	// PyHessian's normalisation (Riemann sum) differs by the half end
	// points: with Pad 0.01 < σ ≈ 0.015 the kernel tails are cut there.
	assert.InDelta(t, 1, riemann, 1e-3)
	// The cut tails also shift the mean slightly.
	assert.InDelta(t, res.Mean(), den.Mean(), 1e-2)
	// With a pad of many σ the smoothed density keeps the exact mean.
	wide, err := res.Density(DensityConfig{Points: 20000, SigmaSquared: 1e-5, Pad: 1})
	require.NoError(t, err)
	assert.InDelta(t, 1, wide.Integral(), 1e-12)
	assert.InDelta(t, res.Mean(), wide.Mean(), 1e-9)
	for _, y := range den.Y {
		assert.GreaterOrEqual(t, y, 0.0)
	}
	// The grid spans [a − Pad, b + Pad], a and b the mean over probes of
	// the smallest and largest node.
	var lo, hi float64
	for i := range res.Nodes {
		lo += res.Nodes[i][0] / float64(len(res.Nodes))
		hi += res.Nodes[i][len(res.Nodes[i])-1] / float64(len(res.Nodes))
	}
	assert.InDelta(t, lo-0.01, den.X[0], 1e-12)
	assert.InDelta(t, hi+0.01, den.X[len(den.X)-1], 1e-12)
}

// TestSLQMatchesDenseEigendecomposition: with Steps = d the quadrature rule
// of each probe v₁ = z/√d is exactly the spectral measure of H at v₁: nodes
// λ_k (H's eigenvalues, from a dense eigendecomposition) and weights
// (q_kᵀv₁)² (q_k its eigenvectors). The weights are then the squared first
// components of T's eigenvectors, and nothing else fits them.
func TestSLQMatchesDenseEigendecomposition(t *testing.T) {
	lam := []float64{3, -1, 0.5, 2, -2, 4, 1.25}
	op := known(t, lam, 13)
	d := len(lam)
	res, err := SLQ(op, SLQConfig{Probes: 3, Steps: d}, seeded(14))
	require.NoError(t, err)

	var eig mat.EigenSym
	require.True(t, eig.Factorize(mat.NewSymDense(d, op.a), true))
	vals := eig.Values(nil) // ascending
	var q mat.Dense
	eig.VectorsTo(&q)
	probes := seeded(14)
	z := make([]float64, d)
	for i := range res.Nodes {
		fillRademacher(probes, z)
		require.Len(t, res.Nodes[i], d)
		for k := 0; k < d; k++ {
			var c float64
			for j := 0; j < d; j++ {
				c += q.At(j, k) * z[j] / math.Sqrt(float64(d))
			}
			assert.InDelta(t, vals[k], res.Nodes[i][k], 1e-12, "probe %d node %d", i, k)
			assert.InDelta(t, c*c, res.Weights[i][k], 1e-12, "probe %d weight %d", i, k)
		}
	}
	// The density built from the rules is then the smoothed exact measure.
	den, err := res.Density(DensityConfig{Points: 200, SigmaSquared: 1e-3, Pad: 0.5})
	require.NoError(t, err)
	want := make([]float64, len(den.X))
	for p, x := range den.X {
		for i := range res.Nodes {
			for k := 0; k < d; k++ {
				want[p] += res.Weights[i][k] * math.Exp(-(x-vals[k])*(x-vals[k])/(2*den.Variance))
			}
		}
	}
	var area float64 // trapezoidal, as Density normalises
	for p := 1; p < len(want); p++ {
		area += (want[p] + want[p-1]) / 2 * (den.X[p] - den.X[p-1])
	}
	for p := range want {
		assert.InDelta(t, want[p]/area, den.Y[p], 1e-9*math.Max(1, den.Y[p]), "density at %g", den.X[p])
	}
}

// TestSLQFullSpace: with Steps = d the nodes with non-negligible weight are
// exact eigenvalues.
func TestSLQFullSpace(t *testing.T) {
	lam := []float64{3, -1, 0.5, 2, -2, 4}
	op := known(t, lam, 8)
	res, err := SLQ(op, SLQConfig{Probes: 2, Steps: 50}, seeded(2))
	require.NoError(t, err)
	for i := range res.Nodes {
		require.Len(t, res.Nodes[i], 6)
		assert.InDeltaSlice(t, sorted(lam, false), res.Nodes[i], 1e-12)
	}
}

func TestBlockOperators(t *testing.T) {
	lam := testSpectrum()[:30]
	op := known(t, lam, 9) // dense, coupled blocks
	blocks := []Block{{Name: "a", Offset: 0, Size: 10}, {Name: "b", Offset: 10, Size: 15, Shape: []int{3, 5}}, {Name: "c", Offset: 25, Size: 5}}
	full, err := BuildDense(op, 1e-12)
	require.NoError(t, err)
	ops, err := BlockOperators(op, blocks)
	require.NoError(t, err)
	for i, bo := range ops {
		b := blocks[i]
		assert.Equal(t, b.Size, bo.Dim())
		assert.Equal(t, b.Name, bo.Block().Name)
		want, err := full.Block(b)
		require.NoError(t, err)
		for r := 0; r < b.Size; r++ {
			for c := 0; c < b.Size; c++ {
				assert.Equal(t, op.a[(b.Offset+r)*op.d+b.Offset+c], want.At(r, c))
			}
		}
		got, err := BuildDense(bo, 1e-12)
		require.NoError(t, err)
		assert.InDeltaSlice(t, want.Data, got.Data, 1e-15)
		e, err := want.Eigen()
		require.NoError(t, err)
		top, err := Lanczos(bo, DefaultLanczosConfig(2, LargestAlgebraic), seeded(uint64(i)))
		require.NoError(t, err)
		assert.InDeltaSlice(t, e.Top(2), top.Values(), 1e-11)
		bot, err := Lanczos(bo, DefaultLanczosConfig(1, SmallestAlgebraic), seeded(uint64(i)))
		require.NoError(t, err)
		assert.InDelta(t, e.Min(), bot.Values()[0], 1e-11)
		tr, err := Hutchinson(bo, TraceConfig{MinSamples: 30, MaxSamples: 2000, Tol: 5e-2}, seeded(uint64(i)))
		if err != nil {
			require.ErrorIs(t, err, ErrNotConverged)
		}
		// 3.5 standard errors: stopping on the sampled standard error
		// (optional stopping) fattens the tail a little beyond the normal.
		assert.LessOrEqual(t, math.Abs(tr.Mean-want.Trace()), 3.5*tr.StdErr+1e-12)
		s, err := SLQ(bo, SLQConfig{Probes: 1, Steps: 100}, seeded(1))
		require.NoError(t, err)
		assert.InDeltaSlice(t, e.Values, s.Nodes[0], 1e-11)
	}
	_, err = NewBlockOperator(op, Block{Name: "x", Offset: 25, Size: 6})
	require.ErrorIs(t, err, ErrInvalid)
	_, err = NewBlockOperator(op, Block{Name: "x", Offset: 0, Size: 0})
	require.ErrorIs(t, err, ErrInvalid)
	_, err = BlockOperators(op, nil)
	require.ErrorIs(t, err, ErrInvalid)
	require.ErrorIs(t, ops[0].HVPFlat(make([]float64, 3), make([]float64, 10)), ErrInvalid)
}

func TestDatasetAverage(t *testing.T) {
	a := known(t, []float64{1, 2, 3, 4}, 10)
	b := known(t, []float64{-1, 0, 5, 7}, 11)
	avg, err := NewAverage(Weighted{Op: a, Weight: 3}, Weighted{Op: b, Weight: 1})
	require.NoError(t, err)
	h, err := BuildDense(avg, 1e-12)
	require.NoError(t, err)
	for i := range h.Data {
		assert.InDelta(t, (3*a.a[i]+b.a[i])/4, h.Data[i], 1e-14)
	}
	// The same through a batch setter on one operator.
	cur := &switchOp{ops: []*matOp{a, b}}
	weights := []float64{3, 1}
	sw, err := NewSweep(cur, 2, func(i int) (float64, error) { cur.i = i; return weights[i], nil })
	require.NoError(t, err)
	h2, err := BuildDense(sw, 1e-12)
	require.NoError(t, err)
	assert.InDeltaSlice(t, h.Data, h2.Data, 1e-15)

	_, err = NewAverage()
	require.ErrorIs(t, err, ErrInvalid)
	_, err = NewAverage(Weighted{Op: a, Weight: 0})
	require.ErrorIs(t, err, ErrInvalid)
	_, err = NewAverage(Weighted{Op: a, Weight: math.NaN()})
	require.ErrorIs(t, err, ErrInvalid)
	_, err = NewAverage(Weighted{Op: a, Weight: 1}, Weighted{Op: known(t, []float64{1, 2}, 1), Weight: 1})
	require.ErrorIs(t, err, ErrInvalid)
	_, err = NewAverage(Weighted{Op: nil, Weight: 1})
	require.ErrorIs(t, err, ErrInvalid)
	_, err = NewSweep(cur, 0, func(int) (float64, error) { return 1, nil })
	require.ErrorIs(t, err, ErrInvalid)
	_, err = NewSweep(cur, 1, nil)
	require.ErrorIs(t, err, ErrInvalid)
	bad, err := NewSweep(cur, 2, func(i int) (float64, error) { return -1, nil })
	require.NoError(t, err)
	require.ErrorIs(t, bad.HVPFlat(make([]float64, 4), make([]float64, 4)), ErrInvalid)
	setErr := errors.New("no such batch")
	bad, err = NewSweep(cur, 2, func(i int) (float64, error) { return 0, setErr })
	require.NoError(t, err)
	require.ErrorIs(t, bad.HVPFlat(make([]float64, 4), make([]float64, 4)), setErr)
}

type switchOp struct {
	ops []*matOp
	i   int
}

func (s *switchOp) Dim() int                       { return s.ops[0].d }
func (s *switchOp) HVPFlat(v, out []float64) error { return s.ops[s.i].HVPFlat(v, out) }

func TestNotConverged(t *testing.T) {
	op := known(t, testSpectrum(), 12)
	t.Run("power", func(t *testing.T) {
		cfg := DefaultPowerConfig(2, LargestMagnitude)
		cfg.MaxIter = 3
		res, err := PowerIteration(op, cfg, seeded(1))
		require.ErrorIs(t, err, ErrNotConverged)
		var nc *NotConvergedError
		require.ErrorAs(t, err, &nc)
		assert.Equal(t, "power", nc.Method)
		assert.Equal(t, 3, nc.Iterations)
		require.NotNil(t, res)
		assert.False(t, res.Converged)
		require.Len(t, res.Pairs, 1)
		assert.False(t, res.Pairs[0].Converged)
		assert.Equal(t, res.Pairs[0].Value, nc.Estimate)
		assert.Greater(t, nc.Residual, 0.0)
		assert.Contains(t, err.Error(), "not converged")
	})
	t.Run("lanczos", func(t *testing.T) {
		cfg := DefaultLanczosConfig(3, LargestAlgebraic)
		cfg.MaxIter = 6
		res, err := Lanczos(op, cfg, seeded(1))
		require.ErrorIs(t, err, ErrNotConverged)
		var nc *NotConvergedError
		require.ErrorAs(t, err, &nc)
		assert.Equal(t, 6, nc.Iterations)
		require.NotNil(t, res)
		assert.False(t, res.Converged)
		require.Len(t, res.Pairs, 3)
		for _, p := range res.Pairs {
			assert.False(t, p.Converged)
		}
	})
	t.Run("hutchinson", func(t *testing.T) {
		res, err := Hutchinson(op, TraceConfig{MinSamples: 2, MaxSamples: 3, Tol: 1e-9}, seeded(1))
		require.ErrorIs(t, err, ErrNotConverged)
		require.NotNil(t, res)
		assert.False(t, res.Converged)
		assert.Equal(t, 3, res.N())
	})
}

type nanOp struct{ d int }

func (n nanOp) Dim() int { return n.d }
func (n nanOp) HVPFlat(v, out []float64) error {
	copy(out, v)
	out[n.d-1] = math.NaN()
	return nil
}

type failOp struct{}

var errFail = errors.New("engine failure")

func (failOp) Dim() int                       { return 3 }
func (failOp) HVPFlat(v, out []float64) error { return errFail }

func TestBadInput(t *testing.T) {
	op := known(t, []float64{1, 2, 3}, 1)
	rng := seeded(1)
	good := DefaultLanczosConfig(1, LargestAlgebraic)
	goodP := DefaultPowerConfig(1, LargestMagnitude)
	var nilOp Operator
	cases := []struct {
		name string
		run  func() error
		is   error
	}{
		{"lanczos nil op", func() error { _, err := Lanczos(nilOp, good, rng); return err }, ErrInvalid},
		{"lanczos dim 0", func() error { _, err := Lanczos(&matOp{}, good, rng); return err }, ErrInvalid},
		{"lanczos k>d", func() error { c := good; c.K = 4; _, err := Lanczos(op, c, rng); return err }, ErrInvalid},
		{"lanczos k=0", func() error { c := good; c.K = 0; _, err := Lanczos(op, c, rng); return err }, ErrInvalid},
		{"lanczos k<0", func() error { c := good; c.K = -1; _, err := Lanczos(op, c, rng); return err }, ErrInvalid},
		{"lanczos iter", func() error { c := good; c.MaxIter = 0; _, err := Lanczos(op, c, rng); return err }, ErrInvalid},
		{"lanczos iter<k", func() error { c := good; c.K, c.MaxIter = 3, 2; _, err := Lanczos(op, c, rng); return err }, ErrInvalid},
		{"lanczos tol", func() error { c := good; c.Tol = 0; _, err := Lanczos(op, c, rng); return err }, ErrInvalid},
		{"lanczos nan tol", func() error { c := good; c.Tol = math.NaN(); _, err := Lanczos(op, c, rng); return err }, ErrInvalid},
		{"lanczos restol", func() error { c := good; c.ResidualTol = -1; _, err := Lanczos(op, c, rng); return err }, ErrInvalid},
		{"lanczos which", func() error { c := good; c.Which = 7; _, err := Lanczos(op, c, rng); return err }, ErrInvalid},
		{"lanczos nil rng", func() error { _, err := Lanczos(op, good, nil); return err }, ErrInvalid},
		{"lanczos nan", func() error { _, err := Lanczos(nanOp{4}, good, rng); return err }, ErrNonFinite},
		{"lanczos engine", func() error { _, err := Lanczos(failOp{}, good, rng); return err }, errFail},
		{"power nil op", func() error { _, err := PowerIteration(nil, goodP, rng); return err }, ErrInvalid},
		{"power k>d", func() error { c := goodP; c.K = 4; _, err := PowerIteration(op, c, rng); return err }, ErrInvalid},
		{"power k=0", func() error { c := goodP; c.K = 0; _, err := PowerIteration(op, c, rng); return err }, ErrInvalid},
		{"power iter", func() error { c := goodP; c.MaxIter = -3; _, err := PowerIteration(op, c, rng); return err }, ErrInvalid},
		{"power tol", func() error { c := goodP; c.Tol = 0; _, err := PowerIteration(op, c, rng); return err }, ErrInvalid},
		{"power restol", func() error { c := goodP; c.ResidualTol = 0; _, err := PowerIteration(op, c, rng); return err }, ErrInvalid},
		{"power nil rng", func() error { _, err := PowerIteration(op, goodP, nil); return err }, ErrInvalid},
		{"power nan", func() error { _, err := PowerIteration(nanOp{4}, goodP, rng); return err }, ErrNonFinite},
		{"power nan shifted", func() error {
			c := goodP
			c.Which = LargestAlgebraic
			_, err := PowerIteration(nanOp{4}, c, rng)
			return err
		}, ErrNonFinite},
		{"trace nil op", func() error { _, err := Hutchinson(nil, DefaultTraceConfig(), rng); return err }, ErrInvalid},
		{"trace min 1", func() error {
			_, err := Hutchinson(op, TraceConfig{MinSamples: 1, MaxSamples: 5, Tol: 1e-2}, rng)
			return err
		}, ErrInvalid},
		{"trace max<min", func() error {
			_, err := Hutchinson(op, TraceConfig{MinSamples: 5, MaxSamples: 4, Tol: 1e-2}, rng)
			return err
		}, ErrInvalid},
		{"trace tol", func() error {
			_, err := Hutchinson(op, TraceConfig{MinSamples: 2, MaxSamples: 4, Tol: 0}, rng)
			return err
		}, ErrInvalid},
		{"trace nil rng", func() error { _, err := Hutchinson(op, DefaultTraceConfig(), nil); return err }, ErrInvalid},
		{"trace nan", func() error { _, err := Hutchinson(nanOp{4}, DefaultTraceConfig(), rng); return err }, ErrNonFinite},
		{"slq probes", func() error { _, err := SLQ(op, SLQConfig{Probes: 0, Steps: 3}, rng); return err }, ErrInvalid},
		{"slq steps", func() error { _, err := SLQ(op, SLQConfig{Probes: 1, Steps: -1}, rng); return err }, ErrInvalid},
		{"slq nil op", func() error { _, err := SLQ(nil, DefaultSLQConfig(), rng); return err }, ErrInvalid},
		{"slq nil rng", func() error { _, err := SLQ(op, DefaultSLQConfig(), nil); return err }, ErrInvalid},
		{"slq nan", func() error { _, err := SLQ(nanOp{4}, DefaultSLQConfig(), rng); return err }, ErrNonFinite},
		{"density empty", func() error { _, err := (&SLQResult{}).Density(DefaultDensityConfig()); return err }, ErrInvalid},
		{"density points", func() error {
			r := &SLQResult{Nodes: [][]float64{{1}}, Weights: [][]float64{{1}}}
			_, err := r.Density(DensityConfig{Points: 1, SigmaSquared: 1e-5, Pad: 0.01})
			return err
		}, ErrInvalid},
		{"density sigma", func() error {
			r := &SLQResult{Nodes: [][]float64{{1}}, Weights: [][]float64{{1}}}
			_, err := r.Density(DensityConfig{Points: 10, SigmaSquared: 0, Pad: 0.01})
			return err
		}, ErrInvalid},
		{"dense nil op", func() error { _, err := BuildDense(nil, 1e-9); return err }, ErrInvalid},
		{"dense symtol", func() error { _, err := BuildDense(op, 0); return err }, ErrInvalid},
		{"dense nan", func() error { _, err := BuildDense(nanOp{4}, 1e-9); return err }, ErrNonFinite},
		{"dense len", func() error { _, err := NewDense(2, []float64{1, 2, 3}); return err }, ErrInvalid},
		{"dense nonfinite", func() error { _, err := NewDense(1, []float64{math.Inf(1)}); return err }, ErrNonFinite},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run()
			require.Error(t, err)
			assert.ErrorIs(t, err, tc.is)
			assert.NotEmpty(t, err.Error())
		})
	}
}

// TestTinyAndZero covers dimension 1 and the zero operator.
func TestTinyAndZero(t *testing.T) {
	one, err := NewDense(1, []float64{-2.5})
	require.NoError(t, err)
	zero, err := NewDense(3, make([]float64, 9))
	require.NoError(t, err)
	for _, w := range []Which{LargestAlgebraic, SmallestAlgebraic, LargestMagnitude} {
		l, err := Lanczos(one, DefaultLanczosConfig(1, w), seeded(1))
		require.NoError(t, err)
		assert.InDelta(t, -2.5, l.Values()[0], 1e-15)
		p, err := PowerIteration(one, DefaultPowerConfig(1, w), seeded(1))
		require.NoError(t, err)
		assert.InDelta(t, -2.5, p.Values()[0], 1e-15)
		l, err = Lanczos(zero, DefaultLanczosConfig(2, w), seeded(1))
		require.NoError(t, err)
		assert.Equal(t, []float64{0, 0}, l.Values())
		p, err = PowerIteration(zero, DefaultPowerConfig(2, w), seeded(1))
		require.NoError(t, err)
		assert.Equal(t, []float64{0, 0}, p.Values())
	}
	s, err := SLQ(one, SLQConfig{Probes: 2, Steps: 5}, seeded(1))
	require.NoError(t, err)
	assert.Equal(t, [][]float64{{-2.5}, {-2.5}}, s.Nodes)
	assert.Equal(t, [][]float64{{1}, {1}}, s.Weights)
	den, err := s.Density(DensityConfig{Points: 101, SigmaSquared: 1e-3, Pad: 0.5})
	require.NoError(t, err)
	assert.InDelta(t, 1, den.Integral(), 1e-12)
	assert.InDelta(t, -2.5, den.Mean(), 1e-9)
	tr, err := Hutchinson(zero, TraceConfig{MinSamples: 2, MaxSamples: 3, Tol: 1e-3}, seeded(1))
	require.NoError(t, err) // SE = 0 ≤ Tol·|0|
	assert.Equal(t, 0.0, tr.Mean)
}
