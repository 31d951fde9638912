package spectrum

import (
	"fmt"
	"math"
)

// PowerConfig configures [PowerIteration].
type PowerConfig struct {
	// K is the number of eigenpairs, 1 ≤ K ≤ Dim.
	K int
	// Which is LargestMagnitude (plain power iteration, as PyHessian),
	// LargestAlgebraic or SmallestAlgebraic (power iteration on a shifted
	// operator, see PowerIteration).
	Which Which
	// MaxIter is the iteration budget per eigenpair (> 0).
	MaxIter int
	// Tol is the relative tolerance on the eigenvalue change between
	// iterations: |λ − λ_prev| ≤ Tol·|λ| (> 0).
	Tol float64
	// ResidualTol bounds the residual: ‖Hv − λv‖ ≤ ResidualTol·s, where s is
	// the largest |eigenvalue| seen so far (an estimate of ‖H‖₂) (> 0).
	ResidualTol float64
}

// DefaultPowerConfig returns a configuration for k pairs of the given kind
// with MaxIter 1000, Tol 1e-12 and ResidualTol 1e-8.
func DefaultPowerConfig(k int, which Which) PowerConfig {
	return PowerConfig{K: k, Which: which, MaxIter: 1000, Tol: 1e-12, ResidualTol: 1e-8}
}

func (c PowerConfig) validate(d int) error {
	switch {
	case !c.Which.valid():
		return invalidf("power: unknown Which %d", int(c.Which))
	case c.K <= 0:
		return invalidf("power: k = %d, want ≥ 1", c.K)
	case c.K > d:
		return invalidf("power: k = %d exceeds the dimension %d", c.K, d)
	case c.MaxIter <= 0:
		return invalidf("power: MaxIter = %d, want > 0", c.MaxIter)
	case !(c.Tol > 0):
		return invalidf("power: Tol = %v, want > 0", c.Tol)
	case !(c.ResidualTol > 0):
		return invalidf("power: ResidualTol = %v, want > 0", c.ResidualTol)
	}
	return nil
}

// affine is the operator s·H + c·I.
type affine struct {
	op   Operator
	s, c float64
}

// Dim returns the wrapped dimension.
func (a affine) Dim() int { return a.op.Dim() }

// HVPFlat sets out = s·H·v + c·v.
func (a affine) HVPFlat(v, out []float64) error {
	if err := apply(a.op, v, out); err != nil {
		return err
	}
	for i := range out {
		out[i] = a.s*out[i] + a.c*v[i]
	}
	return nil
}

// PowerIteration computes cfg.K eigenpairs of op by power iteration with
// deflation: each new vector is Gram–Schmidt orthogonalised against the
// eigenvectors already found and normalised by ‖v‖ (not ‖v‖ + 1e-6 as in
// PyHessian, whose Rayleigh quotient is biased low by about 2e-6).
//
// Each iteration sets λ = vᵀHv and w = Hv and stops when both
// |λ − λ_prev| ≤ Tol·|λ| and ‖w − λv‖ ≤ ResidualTol·s hold.
//
// LargestMagnitude is plain power iteration. For LargestAlgebraic and
// SmallestAlgebraic it first finds the largest-magnitude eigenvalue λ_m (one
// extra run) and then iterates on G = ±H + |λ_m|·I, which is positive
// semidefinite, so its dominant eigenvalues are the algebraic ends of H. The
// shift slows convergence when the spectrum is wide compared with the gap.
// For the algebraic ends Lanczos ([Lanczos]) is usually far cheaper.
//
// The starting vectors are Gaussian draws from rng. If the budget runs out,
// the result so far (the failing pair with Converged false) is returned with
// a [*NotConvergedError].
func PowerIteration(op Operator, cfg PowerConfig, rng Rand) (*EigenResult, error) {
	d, err := checkOperator(op)
	if err != nil {
		return nil, err
	}
	if err := cfg.validate(d); err != nil {
		return nil, err
	}
	if err := checkRand(rng); err != nil {
		return nil, err
	}
	res := &EigenResult{}
	target := Operator(op)
	sign, shift := 1.0, 0.0
	scale := 0.0
	if cfg.Which != LargestMagnitude {
		one := cfg
		one.K, one.Which = 1, LargestMagnitude
		top, err := PowerIteration(op, one, rng)
		if top != nil {
			res.Products += top.Products
		}
		if err != nil {
			return res, fmt.Errorf("power: estimating the shift: %w", err)
		}
		shift = math.Abs(top.Pairs[0].Value)
		scale = shift
		if cfg.Which == SmallestAlgebraic {
			sign = -1
		}
		target = affine{op: op, s: sign, c: shift}
	}
	var found [][]float64
	v := make([]float64, d)
	w := make([]float64, d)
	for j := 0; j < cfg.K; j++ {
		if !randomUnit(rng, v, found) {
			return res, fmt.Errorf("spectrum: power: no start vector orthogonal to %d found vectors", len(found))
		}
		pair := Eigenpair{}
		lamPrev := math.NaN()
		var lam, r float64
		for it := 1; it <= cfg.MaxIter; it++ {
			if it > 1 {
				copy(v, w)
				orthogonalize(v, found)
				n := norm(v)
				if n == 0 {
					// v lies in the null space of the deflated operator.
					if !randomUnit(rng, v, found) {
						break
					}
				} else {
					scal(1/n, v)
				}
			}
			if err := apply(target, v, w); err != nil {
				return res, fmt.Errorf("power: pair %d: %w", j, err)
			}
			res.Products++
			lam = dot(v, w)
			r = 0
			for i := range w {
				x := w[i] - lam*v[i]
				r += x * x
			}
			r = math.Sqrt(r)
			hl := sign * (lam - shift)
			scale = math.Max(scale, math.Abs(hl))
			pair.Iterations = it
			if it > 1 && math.Abs(lam-lamPrev) <= cfg.Tol*math.Abs(lam) && r <= cfg.ResidualTol*scale {
				pair.Converged = true
				break
			}
			lamPrev = lam
		}
		pair.Value = sign * (lam - shift)
		pair.Residual = r
		pair.Vector = append([]float64(nil), v...)
		signNormalize(pair.Vector)
		res.Pairs = append(res.Pairs, pair)
		if !pair.Converged {
			sortPairs(res.Pairs, cfg.Which)
			return res, &NotConvergedError{Method: "power", Index: j, Iterations: pair.Iterations, Estimate: pair.Value, Residual: r}
		}
		found = append(found, pair.Vector)
	}
	sortPairs(res.Pairs, cfg.Which)
	res.Converged = true
	return res, nil
}
