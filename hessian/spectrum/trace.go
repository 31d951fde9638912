package spectrum

import (
	"math"
)

// TraceMethod selects the trace estimator of [Trace].
type TraceMethod string

// The trace estimators.
const (
	// MethodHutchinson is plain Hutchinson: the mean of zᵀHz over
	// Rademacher probes z ([Hutchinson]).
	MethodHutchinson TraceMethod = "hutchinson"
	// MethodHutchPP is Hutch++ ([HutchPP]): the exact trace of H on a
	// random sketch of its range plus Hutchinson on the rest.
	MethodHutchPP TraceMethod = "hutch++"
)

// TraceConfig configures [Hutchinson], [HutchPP] and [Trace].
//
// Stopping rule. Sampling stops, after at least MinSamples probes, once the
// standard error is at most Tol·max(|Mean|, Scale), where Scale is the
// running estimate of ‖H‖_F reported in [TraceResult]. Far from zero this is
// a relative tolerance on the trace; when the trace is small next to ‖H‖_F
// (a Hessian with eigenvalues of both signs, whose trace is far inside the
// estimator's spread), it is a tolerance relative to the size of H, which
// the estimator can reach: Hutchinson's variance per probe is
// 2(‖H‖_F² − Σᵢ H_ii²) ≤ 2‖H‖_F², so about 2/Tol² probes always suffice.
type TraceConfig struct {
	// MinSamples is the least number of probes drawn (≥ 2, so that a
	// standard error exists). For Hutch++ it counts the residual probes.
	MinSamples int
	// MaxSamples is the budget of probes (≥ MinSamples); for Hutch++ the
	// budget of residual probes, besides the 2·Sketch products of the sketch.
	MaxSamples int
	// Tol stops sampling once StdErr ≤ Tol·max(|Mean|, Scale) (> 0).
	Tol float64
	// Method is MethodHutchinson (also when empty) or MethodHutchPP; only
	// [Trace] reads it.
	Method TraceMethod
	// Sketch is Hutch++'s sketch size k (the products spent on H·S and as
	// many on H·Q); 0 means min(Dim, 20). Hutchinson ignores it.
	Sketch int
}

// DefaultTraceConfig returns MinSamples 10, MaxSamples 1000, Tol 1e-2,
// plain Hutchinson.
func DefaultTraceConfig() TraceConfig {
	return TraceConfig{MinSamples: 10, MaxSamples: 1000, Tol: 1e-2}
}

func (c TraceConfig) validate() error {
	switch {
	case c.MinSamples < 2:
		return invalidf("trace: MinSamples = %d, want ≥ 2", c.MinSamples)
	case c.MaxSamples < c.MinSamples:
		return invalidf("trace: MaxSamples = %d, want ≥ MinSamples = %d", c.MaxSamples, c.MinSamples)
	case !(c.Tol > 0):
		return invalidf("trace: Tol = %v, want > 0", c.Tol)
	case c.Sketch < 0:
		return invalidf("trace: Sketch = %d, want ≥ 0", c.Sketch)
	case c.Method != "" && c.Method != MethodHutchinson && c.Method != MethodHutchPP:
		return invalidf("trace: Method = %q, want %q or %q", c.Method, MethodHutchinson, MethodHutchPP)
	}
	return nil
}

// TraceResult is a stochastic trace estimate.
type TraceResult struct {
	// Method is the estimator used.
	Method TraceMethod
	// Mean is the estimate of tr(H): for Hutchinson the mean of the samples
	// zᵀHz; for Hutch++ LowRank plus the mean of the residual samples.
	Mean float64
	// StdErr is the standard error of Mean, s/√n with s the sample standard
	// deviation (n − 1 denominator) of Samples (LowRank is exact given the
	// sketch and adds no sampling error).
	StdErr float64
	// Scale estimates ‖H‖_F, the scale the stopping rule uses near zero:
	// √(mean ‖Hz‖²) over the probes for Hutchinson (E‖Hz‖² = ‖H‖_F²), and
	// √(‖HQ‖_F² + mean ‖H(I−QQᵀ)g‖²) for Hutch++.
	Scale float64
	// Samples are the individual samples, in draw order: zᵀHz for
	// Hutchinson, the residual gᵀ(I−QQᵀ)H(I−QQᵀ)g for Hutch++.
	Samples []float64
	// LowRank is Hutch++'s tr(QᵀHQ) over the orthonormal sketch basis Q (0
	// for Hutchinson); Rank is the number of columns of Q.
	LowRank float64
	Rank    int
	// Products is the number of operator products used.
	Products int
	// Converged reports whether the stopping rule was met.
	Converged bool
}

// N returns the number of samples.
func (r *TraceResult) N() int { return len(r.Samples) }

// Trace estimates tr(H) with the estimator cfg.Method selects (Hutchinson
// when empty).
func Trace(op Operator, cfg TraceConfig, rng Rand) (*TraceResult, error) {
	if cfg.Method == MethodHutchPP {
		return HutchPP(op, cfg, rng)
	}
	return Hutchinson(op, cfg, rng)
}

// sampler accumulates trace samples (Welford) and applies the stopping rule.
type sampler struct {
	cfg        TraceConfig
	res        *TraceResult
	mean, m2   float64
	sumSq      float64 // Σ ‖H·probe‖²
	fixedSq    float64 // ‖HQ‖_F² (Hutch++)
	offset     float64 // LowRank
	stopReason string
}

// add records sample x (whose product had squared norm hsq) and reports
// whether the stopping rule is met.
func (s *sampler) add(x, hsq float64) bool {
	r := s.res
	r.Samples = append(r.Samples, x)
	n := len(r.Samples)
	delta := x - s.mean
	s.mean += delta / float64(n)
	s.m2 += delta * (x - s.mean)
	s.sumSq += hsq
	r.Mean = s.offset + s.mean
	r.Scale = math.Sqrt(s.fixedSq + s.sumSq/float64(n))
	if n >= 2 {
		r.StdErr = math.Sqrt(s.m2 / float64(n-1) / float64(n))
	}
	if n >= s.cfg.MinSamples && r.StdErr <= s.cfg.Tol*math.Max(math.Abs(r.Mean), r.Scale) {
		r.Converged = true
	}
	return r.Converged
}

func (s *sampler) notConverged() error {
	return &NotConvergedError{Method: string(s.res.Method), Index: -1, Iterations: s.res.N(), Estimate: s.res.Mean, Residual: s.res.StdErr}
}

// Hutchinson estimates tr(H) = E[zᵀHz] with Rademacher probes z (entries ±1
// drawn from rng), one product per probe, until the stopping rule of
// [TraceConfig] is met or MaxSamples probes are spent. (PyHessian stops when
// the running mean changes by less than tol between two samples, which
// never happens for a trace near zero.) The variance of one sample is
// 2(‖H‖_F² − Σᵢ H_ii²), so a diagonal H is estimated exactly. Running out of
// samples returns the estimate (Converged false) with a
// [*NotConvergedError].
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
	s := &sampler{cfg: cfg, res: &TraceResult{Method: MethodHutchinson}}
	for n := 1; n <= cfg.MaxSamples; n++ {
		fillRademacher(rng, z)
		if err := apply(op, z, hz); err != nil {
			return s.res, err
		}
		s.res.Products++
		if s.add(dot(z, hz), dot(hz, hz)) {
			return s.res, nil
		}
	}
	return s.res, s.notConverged()
}

// HutchPP estimates tr(H) with Hutch++ (Meyer, Musco, Musco & Woodruff,
// "Hutch++: Optimal Stochastic Trace Estimation", SOSA 2021):
//
//  1. sketch: Y = H·S for a d×k Gaussian S (k = cfg.Sketch products), and
//     Q an orthonormal basis of range(Y) (Gram–Schmidt, twice, dropping
//     directions that vanish: Rank ≤ k);
//  2. low-rank part: tr(QᵀHQ) = Σⱼ qⱼᵀHqⱼ, exact (Rank products);
//  3. residual: Hutchinson on (I−QQᵀ)H(I−QQᵀ), whose trace is
//     tr(H) − tr(QᵀHQ): samples gᵀ(I−QQᵀ)H(I−QQᵀ)g for Rademacher g, one
//     product each, until the stopping rule of [TraceConfig] is met.
//
// The estimate is unbiased for any Q. When H has a few dominant eigenvalues
// the sketch captures them and the residual's variance, 2‖(I−QQᵀ)H(I−QQᵀ)‖_F²
// at most, is much smaller than Hutchinson's 2‖H‖_F²; if rank(H) ≤ k the
// estimate is exact up to rounding. The paper splits a fixed budget m into
// thirds (k = m/3 for S, for Q, and m/3 residual probes); here the residual
// part is sampled adaptively to a standard error instead. Memory: 2k vectors
// of length d.
func HutchPP(op Operator, cfg TraceConfig, rng Rand) (*TraceResult, error) {
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
	k := cfg.Sketch
	if k == 0 {
		k = 20
	}
	k = min(k, d)
	res := &TraceResult{Method: MethodHutchPP}
	// Y = H·S with a Gaussian S (Rademacher columns repeat in small d).
	z := make([]float64, d)
	var q [][]float64
	for j := 0; j < k; j++ {
		for i := range z {
			z[i] = rng.NormFloat64()
		}
		y := make([]float64, d)
		if err := apply(op, z, y); err != nil {
			return res, err
		}
		res.Products++
		q = append(q, y)
	}
	q = orthonormalize(q)
	res.Rank = len(q)
	// tr(QᵀHQ) and ‖HQ‖_F².
	hq := make([]float64, d)
	var fixedSq float64
	for _, qj := range q {
		if err := apply(op, qj, hq); err != nil {
			return res, err
		}
		res.Products++
		res.LowRank += dot(qj, hq)
		fixedSq += dot(hq, hq)
	}
	s := &sampler{cfg: cfg, res: res, fixedSq: fixedSq, offset: res.LowRank}
	res.Mean = res.LowRank
	pg := make([]float64, d)
	hpg := make([]float64, d)
	for n := 1; n <= cfg.MaxSamples; n++ {
		fillRademacher(rng, pg)
		project(q, pg)
		if err := apply(op, pg, hpg); err != nil {
			return res, err
		}
		res.Products++
		// gᵀPHPg = (Pg)ᵀH(Pg); ‖HPg‖² estimates ‖HP‖_F² = ‖H‖_F² − ‖HQ‖_F².
		if s.add(dot(pg, hpg), dot(hpg, hpg)) {
			return res, nil
		}
	}
	return res, s.notConverged()
}

// project sets v ← (I − QQᵀ)v for orthonormal columns q (twice, for
// orthogonality to working precision).
func project(q [][]float64, v []float64) {
	for pass := 0; pass < 2; pass++ {
		for _, qj := range q {
			axpy(-dot(qj, v), qj, v)
		}
	}
}

// orthonormalize returns an orthonormal basis of the span of ys by
// Gram–Schmidt with reorthogonalisation, reusing ys' storage; a vector whose
// norm falls below 1e-10 of its original norm (or is zero) is linearly
// dependent on the previous ones and dropped.
func orthonormalize(ys [][]float64) [][]float64 {
	var q [][]float64
	for _, y := range ys {
		n0 := norm(y)
		if n0 == 0 {
			continue
		}
		project(q, y)
		n := norm(y)
		if n <= 1e-10*n0 {
			continue
		}
		scal(1/n, y)
		q = append(q, y)
	}
	return q
}
