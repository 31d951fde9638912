package spectrum

import (
	"math"
)

// TraceConfig configures [Hutchinson].
type TraceConfig struct {
	// MinSamples is the least number of probes drawn (≥ 2, so that a
	// standard error exists).
	MinSamples int
	// MaxSamples is the budget of probes (≥ MinSamples).
	MaxSamples int
	// Tol stops sampling once StdErr ≤ Tol·|Mean| (> 0).
	Tol float64
}

// DefaultTraceConfig returns MinSamples 10, MaxSamples 1000, Tol 1e-2.
func DefaultTraceConfig() TraceConfig {
	return TraceConfig{MinSamples: 10, MaxSamples: 1000, Tol: 1e-2}
}

func (c TraceConfig) validate() error {
	switch {
	case c.MinSamples < 2:
		return invalidf("hutchinson: MinSamples = %d, want ≥ 2", c.MinSamples)
	case c.MaxSamples < c.MinSamples:
		return invalidf("hutchinson: MaxSamples = %d, want ≥ MinSamples = %d", c.MaxSamples, c.MinSamples)
	case !(c.Tol > 0):
		return invalidf("hutchinson: Tol = %v, want > 0", c.Tol)
	}
	return nil
}

// TraceResult is a Hutchinson trace estimate.
type TraceResult struct {
	// Mean is the estimate of tr(H): the mean of the samples zᵀHz.
	Mean float64
	// StdErr is the standard error of Mean, s/√n with s the sample standard
	// deviation (n − 1 denominator).
	StdErr float64
	// Samples are the individual zᵀHz, in draw order; N = len(Samples).
	Samples []float64
	// Converged reports whether StdErr ≤ Tol·|Mean| was reached.
	Converged bool
}

// N returns the number of samples.
func (r *TraceResult) N() int { return len(r.Samples) }

// Hutchinson estimates tr(H) = E[zᵀHz] with Rademacher probes z (entries ±1
// drawn from rng), one product per probe. Unlike PyHessian, which stops when
// the running mean changes by less than tol between two samples, it stops
// after at least MinSamples once the standard error is at most Tol·|Mean|,
// or at MaxSamples. The variance of one sample is 2(‖H‖_F² − Σᵢ H_ii²), so a
// diagonal H is estimated exactly. Running out of samples returns the
// estimate (Converged false) with a [*NotConvergedError].
func Hutchinson(op Operator, cfg TraceConfig, rng Rand) (*TraceResult, error) {
	d, err := checkOperator(op)
	if err != nil {
		return nil, err
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := checkRand(rng); err != nil {
		return nil, err
	}
	z := make([]float64, d)
	hz := make([]float64, d)
	res := &TraceResult{}
	// Welford's running mean and sum of squared deviations.
	var mean, m2 float64
	for n := 1; n <= cfg.MaxSamples; n++ {
		fillRademacher(rng, z)
		if err := apply(op, z, hz); err != nil {
			return res, err
		}
		x := dot(z, hz)
		res.Samples = append(res.Samples, x)
		delta := x - mean
		mean += delta / float64(n)
		m2 += delta * (x - mean)
		res.Mean = mean
		if n >= 2 {
			res.StdErr = math.Sqrt(m2 / float64(n-1) / float64(n))
		}
		if n >= cfg.MinSamples && res.StdErr <= cfg.Tol*math.Abs(mean) {
			res.Converged = true
			return res, nil
		}
	}
	return res, &NotConvergedError{Method: "hutchinson", Index: -1, Iterations: res.N(), Estimate: res.Mean, Residual: res.StdErr}
}
