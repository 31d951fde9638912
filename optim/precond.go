package optim

import (
	"errors"
	"fmt"
	"math"

	"gorgonia.org/tensor"
)

// ErrNoPreconditioner is wrapped by the error of a PrecondSolve made
// before the optimizer's first step, when it has no state to build its
// preconditioner from.
var ErrNoPreconditioner = errors.New("no preconditioner yet: the optimizer has not taken a step")

// The preconditioner methods. Each optimizer of the suite has two methods
// that let a caller compare a learning rate with the curvature it meets
// (train's Config.HessianPrecond):
//
//   - PrecondSolve(params, v, out) sets out = P⁻¹·v, P being the matrix
//     the optimizer's next step divides its momentum by, built from its
//     current state (nothing changes). With parameter groups whose rate
//     differs from the base rate, block i is also scaled by its group's
//     LRScale, so that LR()·P⁻¹ is the step's matrix.
//   - StabilityLimit() returns c such that on a quadratic with Hessian H,
//     with P frozen, the optimizer's iteration (its momentum included) is
//     stable iff LR()·λmax(P⁻¹H) < c. Weight decay is left out (it only
//     adds damping or a term the Hessian of the penalised loss holds).
//
// The limits of the three momentum forms of the suite follow; each
// optimizer's tests check its own by iterating its Step on a quadratic.

// HeavyBallLimit is the stability limit of heavy-ball momentum in
// PyTorch's form, b ← μ·b + (1−τ)·g, θ ← θ − η·b (momentum μ in [0, 1),
// dampening τ in [0, 1]): 2(1+μ)/(1−τ), +Inf for τ = 1 with μ > 0 (the
// gradient then enters only the first step), 2 without momentum.
//
// Derivation: on g = h·θ, with a = η·h and c = η·b, the iteration matrix of
// (θ, c) has trace 1 + μ − (1−τ)·a and determinant μ; an eigenvalue crosses
// −1 when 1 + trace + det = 0, at a = 2(1+μ)/(1−τ).
func HeavyBallLimit(mu, damp float64) float64 {
	if mu == 0 {
		return 2
	}
	if damp >= 1 {
		return math.Inf(1)
	}
	return 2 * (1 + mu) / (1 - damp)
}

// NesterovLimit is the stability limit of PyTorch's Nesterov momentum,
// b ← μ·b + g, θ ← θ − η·(g + μ·b) (no dampening, which PyTorch and
// optim/sgd require with Nesterov): 2(1+μ)/(1+2μ). With dampening τ the
// same derivation gives 2(1+μ)/(1 + 2μ − μ·τ), not 2(1+μ)/((1+2μ)(1−τ)).
//
// Derivation: with a = η·h and c = η·b the iteration matrix has trace
// 1 + μ − a(1+μ) and determinant μ(1−a); 1 + trace + det = 0 at
// a = 2(1+μ)/(1+2μ).
func NesterovLimit(mu float64) float64 { return 2 * (1 + mu) / (1 + 2*mu) }

// EMALimit is the stability limit of an exponential-moving-average
// momentum m ← β·m + (1−β)·g, θ ← θ − η·P⁻¹·m (Adam, AdaHessian, Sophia,
// M-FAC's momentum): 2(1+β)/(1−β), 38 at β = 0.9 (Cohen et al. 2022,
// "Adaptive gradient methods at the edge of stability"). It is
// HeavyBallLimit(β, β). Adam's bias correction 1/(1−β1ᵗ) of m tends to 1
// and is left out: the limit is the one of the steps after the first few.
func EMALimit(beta float64) float64 { return HeavyBallLimit(beta, beta) }

// LRScale returns parameter i's group learning-rate scale (ParamLR(i) /
// LR()), or 1 before the groups are resolved (before the first step).
func (h *Hyper) LRScale(i int) float64 {
	if i < 0 || i >= len(h.lrs) {
		return 1
	}
	return h.lrs[i]
}

// CheckSolve checks the arguments of a PrecondSolve: one v and one out
// tensor per parameter, each with its parameter's shape and dtype, out
// not aliasing v. prefix names the optimizer in the error.
func CheckSolve(prefix string, params []Param, v, out []*tensor.Dense) error {
	if len(v) != len(params) || len(out) != len(params) {
		return fmt.Errorf("%s: PrecondSolve: %d parameters but %d v and %d out tensors", prefix, len(params), len(v), len(out))
	}
	for i, p := range params {
		for _, x := range [...]struct {
			what string
			t    *tensor.Dense
		}{{"v", v[i]}, {"out", out[i]}} {
			if x.t == nil {
				return fmt.Errorf("%s: PrecondSolve: %s[%d] (param %q) is nil", prefix, x.what, i, p.Name)
			}
			if x.t.Dtype() != p.Value.Dtype() || !x.t.Shape().Eq(p.Value.Shape()) {
				return fmt.Errorf("%s: PrecondSolve: %s[%d] has dtype %v and shape %v, but param %q has %v and %v", prefix, x.what, i, x.t.Dtype(), x.t.Shape(), p.Name, p.Value.Dtype(), p.Value.Shape())
			}
		}
	}
	return nil
}

// BeginSolve opens a PrecondSolve of an optimizer whose preconditioner is
// built from its state: it checks the arguments (CheckSolve), claims the
// optimizer (Begin: call End when the solve returns) and refuses before the
// first step with an error wrapping ErrNoPreconditioner (the optimizer
// released). prefix names the optimizer in the errors.
func (b *Base) BeginSolve(prefix string, params []Param, v, out []*tensor.Dense) error {
	if err := CheckSolve(prefix, params, v, out); err != nil {
		return err
	}
	if err := b.Begin("PrecondSolve"); err != nil {
		return err
	}
	if b.Steps() == 0 {
		b.End()
		return fmt.Errorf("%s: PrecondSolve: %w", prefix, ErrNoPreconditioner)
	}
	return nil
}

// DiagonalSolve sets out = s·v/den entrywise for every parameter i, with
// s = h.LRScale(i) and den = denom(x) the preconditioner's diagonal entry j
// of parameter i, x being entry j of state[i] as a float64 (0 when state is
// nil): the PrecondSolve of a diagonal preconditioner built from one slot.
func DiagonalSolve(h *Hyper, params []Param, v, out, state []*tensor.Dense, denom func(x float64) float64) {
	at := func(i, j int) float64 {
		switch {
		case state == nil:
			return 0
		case state[i].Dtype() == tensor.Float32:
			return float64(state[i].Float32s()[j])
		}
		return state[i].Float64s()[j]
	}
	for i := range params {
		s := h.LRScale(i)
		switch v[i].Dtype() {
		case tensor.Float64:
			vi, oi := v[i].Float64s(), out[i].Float64s()
			for j, x := range vi {
				oi[j] = s * x / denom(at(i, j))
			}
		case tensor.Float32:
			vi, oi := v[i].Float32s(), out[i].Float32s()
			for j, x := range vi {
				oi[j] = float32(s * float64(x) / denom(at(i, j)))
			}
		}
	}
}
