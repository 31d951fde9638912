package spectrum

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func frobenius(lam []float64) float64 {
	var s float64
	for _, l := range lam {
		s += l * l
	}
	return math.Sqrt(s)
}

// fixedN returns a config that draws exactly n (residual) samples: Tol is
// unreachable, so no optional stopping biases the estimates.
func fixedN(n, sketch int) TraceConfig {
	return TraceConfig{MinSamples: n, MaxSamples: n, Tol: 1e-300, Sketch: sketch}
}

// TestHutchPPExactOnLowRank: when rank(H) ≤ k the sketch spans range(H),
// the residual is zero to rounding, and Hutch++ returns the exact trace.
func TestHutchPPExactOnLowRank(t *testing.T) {
	lam := make([]float64, 40)
	copy(lam, []float64{5, -3, 2.5, 1, -0.5})
	op := known(t, lam, 21)
	res, err := HutchPP(op, TraceConfig{MinSamples: 3, MaxSamples: 50, Tol: 1e-8, Sketch: 8}, seeded(22))
	require.NoError(t, err)
	assert.True(t, res.Converged)
	assert.Equal(t, 5, res.Rank, "the sketch of a rank-5 H has rank 5")
	assert.Equal(t, 3, res.N())
	assert.Equal(t, 8+5+3, res.Products)
	assert.InDelta(t, sum(lam), res.Mean, 1e-12*frobenius(lam))
	assert.InDelta(t, sum(lam), res.LowRank, 1e-12*frobenius(lam))
	assert.InDelta(t, frobenius(lam), res.Scale, 1e-12*frobenius(lam))
	assert.LessOrEqual(t, res.StdErr, 1e-12*frobenius(lam))
}

// TestTraceEstimatorsUnbiased runs many independent estimates with a fixed
// number of samples on an indefinite matrix and requires their average to
// be within 4 standard errors of the exact trace, for both estimators. It
// also checks Hutchinson's per-sample variance against its formula
// 2(‖H‖_F² − Σᵢ H_ii²), and that Hutch++ at the same number of products has
// a much smaller error on a matrix with a few dominant eigenvalues (its
// reason to exist).
func TestTraceEstimatorsUnbiased(t *testing.T) {
	lam := []float64{9, -7, 6, 0.5, -0.4, 0.3, 0.2, -0.2, 0.1, 0.1, -0.1, 0.05}
	for len(lam) < 30 {
		lam = append(lam, 0.02*float64(len(lam)%5-2))
	}
	op := known(t, lam, 23)
	exact := sum(lam)
	var diagSq float64
	for i := 0; i < op.d; i++ {
		diagSq += op.a[i*op.d+i] * op.a[i*op.d+i]
	}
	fro := frobenius(lam)
	const trials, budget = 400, 24
	rng := seeded(24)
	type stats struct{ sum, sumSq, sqErr float64 }
	var hs, ps stats
	var perSample float64
	for i := 0; i < trials; i++ {
		h, err := Hutchinson(op, fixedN(budget, 0), rng)
		require.ErrorIs(t, err, ErrNotConverged)
		require.Equal(t, budget, h.Products)
		for _, x := range h.Samples {
			perSample += (x - exact) * (x - exact)
		}
		p, err := HutchPP(op, fixedN(budget/3, budget/3), rng)
		require.ErrorIs(t, err, ErrNotConverged)
		require.Equal(t, budget, p.Products)
		for _, r := range []struct {
			s *stats
			x float64
		}{{&hs, h.Mean}, {&ps, p.Mean}} {
			r.s.sum += r.x
			r.s.sumSq += r.x * r.x
			r.s.sqErr += (r.x - exact) * (r.x - exact)
		}
	}
	for name, s := range map[string]stats{"hutchinson": hs, "hutch++": ps} {
		mean := s.sum / trials
		sd := math.Sqrt((s.sumSq/trials - mean*mean) * trials / (trials - 1))
		assert.LessOrEqual(t, math.Abs(mean-exact), 4*sd/math.Sqrt(trials), "%s: average %v of %d estimates, exact %v", name, mean, trials, exact)
		t.Logf("%s: average %.4f (exact %.4f), RMS error %.4f at %d products", name, mean, exact, math.Sqrt(s.sqErr/trials), budget)
	}
	want := 2 * (fro*fro - diagSq)
	got := perSample / (trials * budget)
	assert.InDelta(t, want, got, 0.1*want, "Hutchinson per-sample variance")
	assert.Less(t, ps.sqErr, hs.sqErr/10, "Hutch++ mean squared error at the same product count")
}

// TestTraceStoppingRuleNearZero: a Hessian whose trace is exactly zero
// (eigenvalues ±λ). A tolerance relative to |Mean| can never be met there;
// the rule relative to max(|Mean|, ‖H‖_F) is, within about 2/Tol² probes,
// and the estimate is within its standard errors of zero.
func TestTraceStoppingRuleNearZero(t *testing.T) {
	var lam []float64
	for i := 1; i <= 20; i++ {
		lam = append(lam, float64(i), -float64(i))
	}
	op := known(t, lam, 25)
	fro := frobenius(lam)
	cfg := TraceConfig{MinSamples: 10, MaxSamples: 2000, Tol: 0.1}
	for _, method := range []TraceMethod{MethodHutchinson, MethodHutchPP} {
		cfg.Method = method
		res, err := Trace(op, cfg, seeded(26))
		require.NoError(t, err, "%s", method)
		assert.Equal(t, method, res.Method)
		assert.True(t, res.Converged)
		assert.LessOrEqual(t, res.N(), 400, "%s: about 2/Tol² = 200 probes suffice", method)
		assert.InDelta(t, fro, res.Scale, 0.2*fro, "%s: Scale estimates ‖H‖_F", method)
		assert.LessOrEqual(t, res.StdErr, cfg.Tol*math.Max(math.Abs(res.Mean), res.Scale))
		assert.LessOrEqual(t, math.Abs(res.Mean), 3.5*res.StdErr, "%s: %v ± %v, exact 0", method, res.Mean, res.StdErr)
		t.Logf("%s: %.3g ± %.2g (‖H‖_F %.3g, scale %.3g) after %d products", method, res.Mean, res.StdErr, fro, res.Scale, res.Products)
	}
}

func TestTraceConfigErrors(t *testing.T) {
	op := known(t, []float64{1, 2, 3}, 27)
	for _, c := range []TraceConfig{
		{MinSamples: 1, MaxSamples: 5, Tol: 0.1},
		{MinSamples: 5, MaxSamples: 4, Tol: 0.1},
		{MinSamples: 2, MaxSamples: 5, Tol: 0},
		{MinSamples: 2, MaxSamples: 5, Tol: 0.1, Sketch: -1},
		{MinSamples: 2, MaxSamples: 5, Tol: 0.1, Method: "hutch+++"},
	} {
		_, err := Trace(op, c, seeded(1))
		require.ErrorIs(t, err, ErrInvalid, "%+v", c)
		_, err = HutchPP(op, c, seeded(1))
		require.ErrorIs(t, err, ErrInvalid, "%+v", c)
	}
	_, err := HutchPP(op, DefaultTraceConfig(), nil)
	require.ErrorIs(t, err, ErrInvalid)
	// The sketch is capped at the dimension; a zero operator has rank 0.
	zero := &matOp{d: 3, a: make([]float64, 9)}
	res, err := HutchPP(zero, TraceConfig{MinSamples: 2, MaxSamples: 5, Tol: 0.1, Sketch: 10}, seeded(2))
	require.NoError(t, err)
	assert.Equal(t, 0, res.Rank)
	assert.Equal(t, 0.0, res.Mean)
	assert.Equal(t, 3+2, res.Products)
}

// countdownOp fails at product number fail (1-based).
type countdownOp struct {
	*matOp
	n, fail int
}

func (c *countdownOp) HVPFlat(v, out []float64) error {
	c.n++
	if c.n == c.fail {
		return errFail
	}
	return c.matOp.HVPFlat(v, out)
}

// TestTraceOperatorErrors: a failing or non-finite product stops either
// estimator with the error, in every phase of Hutch++ (sketch, basis,
// residual), and the products counted so far are reported.
func TestTraceOperatorErrors(t *testing.T) {
	base := known(t, []float64{1, -2, 3, 0.5, 4}, 28)
	cfg := TraceConfig{MinSamples: 5, MaxSamples: 10, Tol: 1e-12, Sketch: 2}
	for _, fail := range []int{1, 2, 3, 4, 5, 7} {
		op := &countdownOp{matOp: base, fail: fail}
		res, err := HutchPP(op, cfg, seeded(3))
		require.ErrorIs(t, err, errFail, "fail at product %d", fail)
		assert.Equal(t, fail-1, res.Products, "fail at product %d", fail)
		op = &countdownOp{matOp: base, fail: fail}
		res, err = Hutchinson(op, cfg, seeded(3))
		require.ErrorIs(t, err, errFail)
		assert.Equal(t, fail-1, res.N())
	}
	for _, f := range []func(Operator, TraceConfig, Rand) (*TraceResult, error){Hutchinson, HutchPP} {
		_, err := f(nanOp{d: 4}, cfg, seeded(4))
		require.Error(t, err)
		_, err = f(&matOp{}, cfg, seeded(4))
		require.ErrorIs(t, err, ErrInvalid)
	}
}
