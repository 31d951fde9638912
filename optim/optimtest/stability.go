package optimtest

import (
	"fmt"
	"math"
	"testing"

	"github.com/curvopt/curvopt/optim"
	"gorgonia.org/tensor"
)

// Preconditioned is an optimizer with the preconditioner methods (see
// optim.HeavyBallLimit): train's sharpness tracking uses them.
type Preconditioned interface {
	optim.Optimizer
	PrecondSolve(params []optim.Param, v, out []*tensor.Dense) error
	StabilityLimit() float64
}

// curve1D is the 1-D quadratic f(θ) = h·θ²/2 as an oracle: H·v = h·v, and
// a sampled-label gradient of constant √h (so that ĝ⊙ĝ = h).
type curve1D struct{ h float64 }

func (c curve1D) Provides() optim.Needs { return optim.Needs{HVP: true, SampledGrad: true} }

func (c curve1D) HVP(v, out []*tensor.Dense) error {
	for i := range v {
		o, x := out[i].Float64s(), v[i].Float64s()
		for j := range o {
			o[j] = c.h * x[j]
		}
	}
	return nil
}

func (c curve1D) SampledGrad(out []*tensor.Dense) error {
	for i := range out {
		o := out[i].Float64s()
		for j := range o {
			o[j] = math.Sqrt(c.h)
		}
	}
	return nil
}

// warmSteps is the number of steps StabilityRun makes at θ = 0 before it
// starts: enough for Adam's and AdaHessian's bias correction 1/(1−β1ᵗ) of
// the momentum to fade (β1³⁰⁰ < 3e-5 for β1 ≤ 0.965). While it has not,
// the effective rate is larger and the run blows up below the limit.
const warmSteps = 300

// StabilityRun iterates opt's own Step on f(θ) = h·θ²/2 (one float64
// coordinate) and reports whether the iteration converged. It makes
// warmSteps steps at θ = 0 (zero gradient: the state, and the
// preconditioner, form without a move), reads λ = P⁻¹·h with opt.PrecondSolve, sets the rate to
// factor·StabilityLimit()/λ, starts at θ = 1e-6 and runs up to steps
// steps: converged means |θ| fell below 1e-9, diverged that it rose above
// 1e-3 (an error if neither happened). The caller picks a configuration
// whose preconditioner stays frozen along the run (an ε, a damping or an
// exact curvature estimate that dominates the gradients' share).
func StabilityRun(opt Preconditioned, h, factor float64, steps int) (converged bool, err error) {
	th := tensor.New(tensor.WithShape(1), tensor.WithBacking([]float64{0}))
	g := tensor.New(tensor.WithShape(1), tensor.WithBacking([]float64{0}))
	ps := []optim.Param{{Name: "theta", Value: th, Grad: g}}
	o := curve1D{h}
	for k := 0; k < warmSteps; k++ {
		if err := opt.Step(ps, o); err != nil {
			return false, fmt.Errorf("warm-up step %d: %w", k+1, err)
		}
	}
	v := tensor.New(tensor.WithShape(1), tensor.WithBacking([]float64{h}))
	out := tensor.New(tensor.WithShape(1), tensor.WithBacking([]float64{0}))
	if err := opt.PrecondSolve(ps, []*tensor.Dense{v}, []*tensor.Dense{out}); err != nil {
		return false, err
	}
	lambda := out.Float64s()[0]
	if !(lambda > 0) {
		return false, fmt.Errorf("λ(P⁻¹H) = %v, want > 0", lambda)
	}
	if err := opt.SetLR(factor * opt.StabilityLimit() / lambda); err != nil {
		return false, err
	}
	x, gr := th.Float64s(), g.Float64s()
	x[0] = 1e-6
	for k := 0; k < steps; k++ {
		gr[0] = h * x[0]
		if err := opt.Step(ps, o); err != nil {
			return false, fmt.Errorf("step %d: %w", warmSteps+k+1, err)
		}
		switch a := math.Abs(x[0]); {
		case a < 1e-9:
			return true, nil
		case a > 1e-3:
			return false, nil
		}
	}
	return false, fmt.Errorf("after %d steps |θ| = %g: neither converged nor diverged", steps, math.Abs(x[0]))
}

// CheckStabilityLimit checks opt's StabilityLimit by simulation
// (StabilityRun): at lr·λ = 0.95·limit the iteration converges, at 1.05·limit
// it diverges. newOpt returns a fresh optimizer each call.
func CheckStabilityLimit(t *testing.T, newOpt func() Preconditioned, h float64) {
	t.Helper()
	for _, c := range []struct {
		factor float64
		want   bool
	}{{0.95, true}, {1.05, false}} {
		conv, err := StabilityRun(newOpt(), h, c.factor, 20000)
		if err != nil {
			t.Fatalf("lr·λ = %v·limit: %v", c.factor, err)
		}
		if conv != c.want {
			t.Errorf("lr·λ = %v·limit (limit %v): converged %v, want %v", c.factor, newOpt().StabilityLimit(), conv, c.want)
		}
	}
}
