package spectrum

import (
	"math"
)

// SLQConfig configures [SLQ].
type SLQConfig struct {
	// Probes is the number of independent Rademacher starting vectors n_v
	// (> 0).
	Probes int
	// Steps is the number of Lanczos steps per probe (> 0), capped at Dim.
	Steps int
}

// DefaultSLQConfig returns PyHessian's defaults widened to 10 probes:
// Probes 10, Steps 100.
func DefaultSLQConfig() SLQConfig { return SLQConfig{Probes: 10, Steps: 100} }

func (c SLQConfig) validate() error {
	switch {
	case c.Probes <= 0:
		return invalidf("slq: Probes = %d, want > 0", c.Probes)
	case c.Steps <= 0:
		return invalidf("slq: Steps = %d, want > 0", c.Steps)
	}
	return nil
}

// SLQResult holds the Gauss quadrature rules of stochastic Lanczos
// quadrature: for probe i, Nodes[i][k] = θ_k (the Ritz values, ascending) and
// Weights[i][k] = τ_k (the squared first components of T's eigenvectors;
// they sum to 1).
type SLQResult struct {
	// Dim is the operator's dimension d.
	Dim int
	// Nodes are the Ritz values per probe.
	Nodes [][]float64
	// Weights are the quadrature weights per probe.
	Weights [][]float64
	// Products is the number of operator products used.
	Products int
}

// SLQ runs stochastic Lanczos quadrature (as PyHessian's density): for each
// probe, a Lanczos process with full reorthogonalisation from v₁ = z/√d with
// z Rademacher, then the eigendecomposition T = SΘSᵀ of its tridiagonal
// matrix. The spectral density φ(t) = (1/d)Σᵢ δ(t − λᵢ) is approximated by
// the average over probes of Σ_k τ_k δ(t − θ_k) with τ_k = S_{1k}², because
// v₁ᵀf(H)v₁ = e₁ᵀf(T)e₁ for polynomials f of degree < 2·Steps.
//
// In particular Σ_k τ_kθ_k = v₁ᵀHv₁ = zᵀHz/d, so the mean of the density is
// a Hutchinson estimate of tr(H)/d. Cost: Probes·min(Steps, Dim) products
// and Steps stored vectors of length Dim.
func SLQ(op Operator, cfg SLQConfig, rng Rand) (*SLQResult, error) {
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
	steps := min(cfg.Steps, d)
	res := &SLQResult{Dim: d}
	for p := 0; p < cfg.Probes; p++ {
		v0 := make([]float64, d)
		fillRademacher(rng, v0)
		scal(1/math.Sqrt(float64(d)), v0)
		kr := newKrylov(op, rng, v0)
		for len(kr.alpha) < steps && !kr.done {
			if err := kr.step(); err != nil {
				res.Products += kr.products
				return res, err
			}
		}
		res.Products += kr.products
		theta, s, err := tridiagEig(kr.alpha, kr.beta)
		if err != nil {
			return res, err
		}
		m := len(theta)
		w := make([]float64, m)
		for k := range w {
			w[k] = s[k] * s[k] // first row of S
		}
		res.Nodes = append(res.Nodes, theta)
		res.Weights = append(res.Weights, w)
	}
	return res, nil
}

// Mean returns the mean of the quadrature measure averaged over probes,
// (1/n_v)Σᵢ Σ_k τ_k θ_k, an estimate of tr(H)/d.
func (r *SLQResult) Mean() float64 {
	var s float64
	for i := range r.Nodes {
		for k, t := range r.Nodes[i] {
			s += r.Weights[i][k] * t
		}
	}
	return s / float64(len(r.Nodes))
}

// DensityConfig configures [SLQResult.Density]. It follows PyHessian's
// density_generate.
type DensityConfig struct {
	// Points is the number of grid points (≥ 2); PyHessian uses 10000.
	Points int
	// SigmaSquared is the Gaussian kernel's variance before scaling (> 0);
	// the variance used is SigmaSquared·max(1, grid range). PyHessian uses
	// 1e-5.
	SigmaSquared float64
	// Pad widens the grid beyond the extreme nodes (≥ 0); PyHessian uses
	// 0.01.
	Pad float64
}

// DefaultDensityConfig returns PyHessian's settings: 10000 points,
// SigmaSquared 1e-5, Pad 0.01.
func DefaultDensityConfig() DensityConfig {
	return DensityConfig{Points: 10000, SigmaSquared: 1e-5, Pad: 0.01}
}

// Density is a smoothed spectral density on a uniform grid: Y[i] is the
// density at X[i], and the trapezoidal integral of Y over X is 1.
type Density struct {
	// X is the uniform grid.
	X []float64
	// Y is the density on the grid.
	Y []float64
	// Variance is the Gaussian kernel variance used.
	Variance float64
}

// Density smooths the quadrature rules into a density on a grid, as
// PyHessian's density_generate: the grid spans [a − Pad, b + Pad] where a
// (b) is the mean over probes of the smallest (largest) node; each probe
// contributes Σ_k τ_k·N(t; θ_k, σ²) with σ² = SigmaSquared·max(1, range);
// probes are averaged and the result is normalised to unit area (trapezoidal
// rule; PyHessian divides by the Riemann sum, which differs only by the two
// half end-points, where the density is negligible).
func (r *SLQResult) Density(cfg DensityConfig) (*Density, error) {
	switch {
	case len(r.Nodes) == 0:
		return nil, invalidf("density: no quadrature nodes")
	case cfg.Points < 2:
		return nil, invalidf("density: Points = %d, want ≥ 2", cfg.Points)
	case !(cfg.SigmaSquared > 0):
		return nil, invalidf("density: SigmaSquared = %v, want > 0", cfg.SigmaSquared)
	case !(cfg.Pad >= 0):
		return nil, invalidf("density: Pad = %v, want ≥ 0", cfg.Pad)
	}
	var lo, hi float64
	for _, n := range r.Nodes {
		lo += n[0]
		hi += n[len(n)-1]
	}
	nv := float64(len(r.Nodes))
	lo = lo/nv - cfg.Pad
	hi = hi/nv + cfg.Pad
	if hi <= lo {
		// A single point mass with no padding: widen so the grid exists.
		lo, hi = lo-0.5, hi+0.5
	}
	variance := cfg.SigmaSquared * math.Max(1, hi-lo)
	out := &Density{X: make([]float64, cfg.Points), Y: make([]float64, cfg.Points), Variance: variance}
	h := (hi - lo) / float64(cfg.Points-1)
	c := 1 / math.Sqrt(2*math.Pi*variance)
	for j := range out.X {
		x := lo + float64(j)*h
		out.X[j] = x
		var y float64
		for i, n := range r.Nodes {
			for k, t := range n {
				dx := x - t
				y += r.Weights[i][k] * c * math.Exp(-dx*dx/(2*variance))
			}
		}
		out.Y[j] = y / nv
	}
	area := out.Integral()
	if !(area > 0) {
		return nil, invalidf("density: grid of %d points resolves no mass (kernel variance %g, spacing %g); use more points or a larger SigmaSquared", cfg.Points, variance, h)
	}
	scal(1/area, out.Y)
	return out, nil
}

// Integral returns the trapezoidal integral of Y over X.
func (d *Density) Integral() float64 {
	var s float64
	for i := 1; i < len(d.X); i++ {
		s += (d.X[i] - d.X[i-1]) * (d.Y[i] + d.Y[i-1]) / 2
	}
	return s
}

// Mean returns the trapezoidal ∫ t·ρ(t) dt of the density.
func (d *Density) Mean() float64 {
	var s float64
	for i := 1; i < len(d.X); i++ {
		s += (d.X[i] - d.X[i-1]) * (d.X[i]*d.Y[i] + d.X[i-1]*d.Y[i-1]) / 2
	}
	return s / d.Integral()
}
