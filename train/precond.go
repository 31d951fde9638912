package train

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/curvopt/curvopt/hessian/spectrum"
	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/optim/adahessian"
	"github.com/curvopt/curvopt/optim/adam"
	"github.com/curvopt/curvopt/optim/mfac"
	"github.com/curvopt/curvopt/optim/sgd"
	"github.com/curvopt/curvopt/optim/sophia"
	"gorgonia.org/tensor"
)

// preconditioned is what Config.HessianPrecond asks of the optimizer (see
// optim.HeavyBallLimit for the two methods' meaning): every optimizer of
// the registry has it.
type preconditioned interface {
	// PrecondSolve sets out = P⁻¹·v, P the preconditioner of the next
	// step, from the current state, changing nothing.
	PrecondSolve(params []optim.Param, v, out []*tensor.Dense) error
	// StabilityLimit is c: with P frozen, the iteration on a quadratic is
	// stable iff lr·λmax(P⁻¹H) < c.
	StabilityLimit() float64
}

var (
	_ preconditioned = (*sgd.SGD)(nil)
	_ preconditioned = (*adam.Adam)(nil)
	_ preconditioned = (*adahessian.AdaHessian)(nil)
	_ preconditioned = (*sophia.Sophia)(nil)
	_ preconditioned = (*mfac.MFAC)(nil)
)

// precondState is the scratch of the preconditioned measurement, allocated
// at its first use.
type precondState struct {
	v, out  []*tensor.Dense // one per parameter
	x, y, z []float64       // flat
}

// precondTop estimates λ(P⁻¹H), the dominant eigenvalue of the
// preconditioned Hessian on the current batch, by power iteration
// x ← P⁻¹H·x/‖·‖. P⁻¹H is similar to the symmetric S = P^{-1/2}·H·P^{-1/2}
// (P symmetric positive definite), and its estimate is S's Rayleigh
// quotient at P^{1/2}·x, which needs no P·x: with z = P⁻¹·y_prev,
// xᵀPx = y_prevᵀ·z. The quick mode (Config.HessianQuick) makes at most 20
// products and stops at a relative change of 1e-3 between iterations, the
// full mode 100 and 1e-6; converged is false when the budget ran out (the
// last estimate is returned). The start vector is drawn from a generator
// seeded by the run's seed and the step, so the measurement keeps no
// state, and neither the parameters nor the optimizer change: the
// trajectory is the same with and without it.
func (r *run) precondTop(pc preconditioned) (top float64, converged bool, err error) {
	maxIter, tol := 100, 1e-6
	if r.cfg.HessianQuick {
		maxIter, tol = 20, 1e-3
	}
	rng := rand.New(rand.NewPCG(r.cfg.Seed^0x9ec0, uint64(r.step)))
	return r.prec.power(r.eng, r.eng.Params(), pc, maxIter, tol, rng)
}

// power is precondTop's power iteration on the operator H (op) and the
// preconditioner of pc for params, at most maxIter products, stopping at a
// relative change of tol.
func (s *precondState) power(op spectrum.Operator, params []optim.Param, pc preconditioned, maxIter int, tol float64, rng *rand.Rand) (top float64, converged bool, err error) {
	d := op.Dim()
	if s.x == nil {
		s.v, s.out = optim.Like(params), optim.Like(params)
		s.x, s.y, s.z = make([]float64, d), make([]float64, d), make([]float64, d)
	}
	for i := range s.x {
		s.x[i] = rng.NormFloat64()
	}
	scale(s.x, 1/norm(s.x))
	// x₀ is not of the form P⁻¹·y: its first estimate is xᵀHx/xᵀx, a
	// Euclidean quotient; from the second on, xᵀPx = y_prevᵀ·z_prev·/n².
	prev := math.NaN()
	var xPx float64 = 1
	for it := 0; it < maxIter; it++ {
		if err := op.HVPFlat(s.x, s.y); err != nil {
			return 0, false, fmt.Errorf("H·v: %w", err)
		}
		top = dot(s.x, s.y) / xPx
		if !isFinite(top) {
			return 0, false, fmt.Errorf("λ(P⁻¹H) estimate %v at iteration %d: %w", top, it+1, optim.ErrNonFinite)
		}
		if it > 0 && math.Abs(top-prev) <= tol*math.Abs(top) {
			return top, true, nil
		}
		prev = top
		unflat(s.y, s.v)
		if err := pc.PrecondSolve(params, s.v, s.out); err != nil {
			return 0, false, fmt.Errorf("P⁻¹·v: %w", err)
		}
		flat(s.out, s.z)
		n := norm(s.z)
		if n == 0 || !isFinite(n) {
			return top, false, nil // H·x = 0: λ = 0 along x, and nothing to iterate
		}
		xPx = dot(s.y, s.z) / (n * n)
		copy(s.x, s.z)
		scale(s.x, 1/n)
	}
	return top, false, nil
}

// checkPrecond refuses Config.HessianPrecond where it cannot run.
func checkPrecond(cfg Config, opt optim.Optimizer) error {
	if !cfg.HessianPrecond {
		return nil
	}
	if distributed(cfg) {
		return errors.New("train: hessian_precond: not supported in a data-parallel run (the optimizer's state, and with -shard its window, is split or replicated per rank; measure on one process)")
	}
	if _, ok := opt.(preconditioned); !ok {
		return fmt.Errorf("train: hessian_precond: optimizer %s (%T) has no PrecondSolve and StabilityLimit", cfg.Optimizer, opt)
	}
	return nil
}

func isFinite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

func dot(a, b []float64) float64 {
	s := 0.0
	for i, x := range a {
		s += x * b[i]
	}
	return s
}

func norm(a []float64) float64 { return math.Sqrt(dot(a, a)) }

func scale(a []float64, c float64) {
	for i := range a {
		a[i] *= c
	}
}

// flat copies ts, in order, into out (float64).
func flat(ts []*tensor.Dense, out []float64) {
	off := 0
	for _, t := range ts {
		switch t.Dtype() {
		case tensor.Float64:
			off += copy(out[off:], t.Float64s())
		case tensor.Float32:
			for _, x := range t.Float32s() {
				out[off] = float64(x)
				off++
			}
		}
	}
}

// unflat copies v into ts, in order, in their dtypes.
func unflat(v []float64, ts []*tensor.Dense) {
	off := 0
	for _, t := range ts {
		switch t.Dtype() {
		case tensor.Float64:
			off += copy(t.Float64s(), v[off:])
		case tensor.Float32:
			xs := t.Float32s()
			for j := range xs {
				xs[j] = float32(v[off])
				off++
			}
		}
	}
}
