// Package sgd implements stochastic gradient descent with momentum,
// dampening, Nesterov momentum and coupled (L2) weight decay, with the
// semantics of torch.optim.SGD.
//
// At step t, with gradient g, parameters θ, learning rate η, momentum μ,
// dampening τ and weight decay λ:
//
//	d = g + λ·θ
//	b = d                         at t = 1 (no dampening on the first step)
//	b = μ·b + (1 − τ)·d           at t > 1
//	s = d + μ·b  (Nesterov)   or   s = b
//	θ ← θ − η·s
//
// With μ = 0 no momentum buffer is kept and s = d. Cost: one pass over the
// parameters; state: one buffer per parameter when μ > 0.
package sgd

import (
	"github.com/curvopt/curvopt/internal/num"
	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/optim/internal/kernel"
	"gorgonia.org/tensor"
)

// Config holds SGD's hyperparameters. The zero values of Momentum,
// Dampening, WeightDecay and Nesterov mean plain SGD.
type Config struct {
	LR          float64 `hyper:"lr" doc:"learning rate"`                       // η > 0
	Momentum    float64 `hyper:"momentum" doc:"momentum"`                      // μ in [0, 1)
	Dampening   float64 `hyper:"dampening" doc:"dampening of the momentum"`    // τ in [0, 1]
	WeightDecay float64 `hyper:"weight_decay" doc:"weight decay (coupled L2)"` // λ ≥ 0
	Nesterov    bool    `hyper:"nesterov" doc:"Nesterov momentum"`             // needs μ > 0 and τ = 0
}

// Default returns lr 0.1, momentum 0.9, no dampening, weight decay 5e-4 (the
// CIFAR baseline recipe of the AdaHessian paper).
func Default() Config {
	return Config{LR: 0.1, Momentum: 0.9, WeightDecay: 5e-4}
}

// Validate reports the first invalid hyperparameter.
func (c Config) Validate() error {
	v := optim.Validator{Optimizer: "sgd"}
	v.Positive("lr", c.LR)
	v.Unit("momentum", c.Momentum)
	v.UnitClosed("dampening", c.Dampening)
	v.NonNegative("weight_decay", c.WeightDecay)
	if c.Nesterov {
		v.Require(c.Momentum > 0, "momentum", c.Momentum, "> 0 with Nesterov momentum")
		v.Require(c.Dampening == 0, "dampening", c.Dampening, "0 with Nesterov momentum")
	}
	return v.Err()
}

// SGD is the optimizer. Create it with New.
type SGD struct {
	// Base holds the learning rate, the parameter groups (SetLR,
	// SetGroups), the step counter and the state: with momentum, the slot
	// "momentum_buffer".
	optim.Base
	cfg Config
}

var _ optim.Optimizer = (*SGD)(nil)

// New returns an SGD optimizer, or an error naming an invalid hyperparameter.
func New(c Config) (*SGD, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	var l optim.Layout
	if c.Momentum > 0 {
		l.Slots = []string{"momentum_buffer"}
	}
	return &SGD{Base: optim.NewBase("sgd", c.LR, c.WeightDecay, l), cfg: c}, nil
}

// Name returns "sgd".
func (*SGD) Name() string { return "sgd" }

// Needs returns no curvature queries.
func (*SGD) Needs() optim.Needs { return optim.Needs{} }

// Config returns the hyperparameters, with the current learning rate.
func (s *SGD) Config() Config {
	c := s.cfg
	c.LR = s.LR()
	return c
}

// Step applies one update. The oracle is not used and may be nil. The
// checks of optim.Hyper.BeginStep come first; then every new value (the
// parameter and, with momentum, its buffer) is computed and checked before
// any is written, so an update that would overflow to ±Inf is an error
// wrapping optim.ErrNonFinite, naming the parameter and entry, and changes
// nothing.
func (s *SGD) Step(params []optim.Param, o optim.Oracle) error {
	if err := s.BeginStep(params, s.Needs(), o); err != nil {
		return err
	}
	defer s.End()
	t := s.Steps() + 1
	// The check pass: a branch-free scan per parameter (fastCheck); only
	// when it finds a non-finite value does the exact scan (run with check)
	// look for the first entry, for the error.
	for i, p := range params {
		var b *tensor.Dense
		if s.cfg.Momentum > 0 {
			b = s.Slot(0)[i]
		}
		j, what, v := -1, "", 0.0
		switch p.Value.Dtype() {
		case tensor.Float64:
			k := newCoeffs[float64](s.cfg, s.ParamLR(i), s.ParamWD(i), t == 1, b != nil)
			if th, g, buf := p.Value.Float64s(), p.Grad.Float64s(), slice[float64](b); !fast(k, true, th, g, buf) {
				j, what, v = run(k, true, th, g, buf)
			}
		case tensor.Float32:
			k := newCoeffs[float32](s.cfg, s.ParamLR(i), s.ParamWD(i), t == 1, b != nil)
			if th, g, buf := p.Value.Float32s(), p.Grad.Float32s(), slice[float32](b); !fast(k, true, th, g, buf) {
				j, what, v = run(k, true, th, g, buf)
			}
		}
		if j >= 0 {
			return optim.NonFiniteUpdate("sgd", t, p.Name, what, j, v)
		}
	}
	for i, p := range params {
		var b *tensor.Dense
		if s.cfg.Momentum > 0 {
			b = s.Slot(0)[i]
		}
		switch p.Value.Dtype() {
		case tensor.Float64:
			fast(newCoeffs[float64](s.cfg, s.ParamLR(i), s.ParamWD(i), t == 1, b != nil), false, p.Value.Float64s(), p.Grad.Float64s(), slice[float64](b))
		case tensor.Float32:
			fast(newCoeffs[float32](s.cfg, s.ParamLR(i), s.ParamWD(i), t == 1, b != nil), false, p.Value.Float32s(), p.Grad.Float32s(), slice[float32](b))
		}
	}
	s.Advance()
	return nil
}

// coeffs are one parameter's scalars of the update, in its dtype.
type coeffs[T optim.Float] struct {
	lr, mu, wd, damp    T
	nesterov, first, mb bool
}

func newCoeffs[T optim.Float](c Config, lrate, decay float64, first, mb bool) coeffs[T] {
	return coeffs[T]{lr: T(lrate), mu: T(c.Momentum), wd: T(decay), damp: T(1 - c.Dampening), nesterov: c.Nesterov, first: first, mb: mb}
}

// at returns the new value of one coordinate θ and of its momentum buffer
// b, given the gradient g.
func (k coeffs[T]) at(theta, g, b T) (T, T) {
	d := g
	if k.wd != 0 {
		d += k.wd * theta
	}
	if k.mb {
		if k.first {
			b = d
		} else {
			b = k.mu*b + k.damp*d
		}
		if k.nesterov {
			d += k.mu * b
		} else {
			d = b
		}
	}
	return theta - k.lr*d, b
}

// slice returns b's backing slice, or nil for no buffer.
func slice[T optim.Float](b *tensor.Dense) []T {
	if b == nil {
		return nil
	}
	return num.Slice[T](b)
}

// run is the update of one parameter. With check it writes nothing and
// returns the first entry whose new value or buffer is not finite (−1 if
// none), which of the two, and the value; otherwise it writes the update
// (buf is nil without momentum).
func run[T optim.Float](k coeffs[T], check bool, theta, g, buf []T) (int, string, float64) {
	g = g[:len(theta)]
	if buf != nil {
		buf = buf[:len(theta)]
	}
	var b T
	for j := range theta {
		if buf != nil {
			b = buf[j]
		}
		th, nb := k.at(theta[j], g[j], b)
		if check {
			if !optim.Finite(th) {
				return j, "value", float64(th)
			}
			if !optim.Finite(nb) {
				return j, "momentum_buffer", float64(nb)
			}
			continue
		}
		theta[j] = th
		if buf != nil {
			buf[j] = nb
		}
	}
	return -1, "", 0
}

// fast is run with its branches hoisted out of the loops: one loop per
// case (momentum or not, Nesterov or not, weight decay or not; the first
// step with momentum, which happens once, goes through run). Each loop
// computes exactly what coeffs.at computes. With check it writes nothing
// and reports whether every new value and buffer entry is finite, from a
// branch-free scan: (x − x) is +0 for finite x and NaN otherwise, and the
// sum of the two is +0 exactly when both are finite, so the bits OR-ed
// over the loop are 0 exactly when all are (the caller then rescans with
// run for the error). Without check it writes the update and returns true.
func fast[T optim.Float](k coeffs[T], check bool, theta, g, buf []T) bool {
	if k.mb && k.first {
		j, _, _ := run(k, check, theta, g, buf)
		return j < 0
	}
	n := len(theta)
	g = g[:n]
	lr, wd := k.lr, k.wd
	var bad uint64
	switch {
	case !k.mb && wd == 0:
		if check {
			for j, th := range theta {
				x := th - lr*g[j]
				bad |= kernel.Bits(x - x)
			}
		} else {
			for j, th := range theta {
				theta[j] = th - lr*g[j]
			}
		}
	case !k.mb:
		if check {
			for j, th := range theta {
				x := th - lr*(g[j]+wd*th)
				bad |= kernel.Bits(x - x)
			}
		} else {
			for j, th := range theta {
				theta[j] = th - lr*(g[j]+wd*th)
			}
		}
	case !k.nesterov:
		buf = buf[:n]
		mu, damp := k.mu, k.damp
		if wd == 0 {
			if check {
				for j, th := range theta {
					b := mu*buf[j] + damp*g[j]
					x := th - lr*b
					bad |= kernel.Bits((x - x) + (b - b))
				}
			} else {
				for j, th := range theta {
					b := mu*buf[j] + damp*g[j]
					buf[j] = b
					theta[j] = th - lr*b
				}
			}
		} else {
			if check {
				for j, th := range theta {
					b := mu*buf[j] + damp*(g[j]+wd*th)
					x := th - lr*b
					bad |= kernel.Bits((x - x) + (b - b))
				}
			} else {
				for j, th := range theta {
					b := mu*buf[j] + damp*(g[j]+wd*th)
					buf[j] = b
					theta[j] = th - lr*b
				}
			}
		}
	default:
		buf = buf[:n]
		mu, damp := k.mu, k.damp
		if wd == 0 {
			if check {
				for j, th := range theta {
					d := g[j]
					b := mu*buf[j] + damp*d
					x := th - lr*(d+mu*b)
					bad |= kernel.Bits((x - x) + (b - b))
				}
			} else {
				for j, th := range theta {
					d := g[j]
					b := mu*buf[j] + damp*d
					buf[j] = b
					theta[j] = th - lr*(d+mu*b)
				}
			}
		} else {
			if check {
				for j, th := range theta {
					d := g[j] + wd*th
					b := mu*buf[j] + damp*d
					x := th - lr*(d+mu*b)
					bad |= kernel.Bits((x - x) + (b - b))
				}
			} else {
				for j, th := range theta {
					d := g[j] + wd*th
					b := mu*buf[j] + damp*d
					buf[j] = b
					theta[j] = th - lr*(d+mu*b)
				}
			}
		}
	}
	return bad == 0
}

// PrecondSolve sets out = v (P = I; with parameter groups, block i scaled
// by its group's LRScale): see optim.HeavyBallLimit. It works before the
// first step too.
func (s *SGD) PrecondSolve(params []optim.Param, v, out []*tensor.Dense) error {
	if err := optim.CheckSolve("sgd", params, v, out); err != nil {
		return err
	}
	optim.DiagonalSolve(&s.Hyper, params, v, out, nil, func(float64) float64 { return 1 })
	return nil
}

// StabilityLimit returns the limit on lr·λmax(H) of the configured
// momentum: optim.HeavyBallLimit(μ, τ), or optim.NesterovLimit(μ) with
// Nesterov momentum.
func (s *SGD) StabilityLimit() float64 {
	if s.cfg.Nesterov {
		return optim.NesterovLimit(s.cfg.Momentum)
	}
	return optim.HeavyBallLimit(s.cfg.Momentum, s.cfg.Dampening)
}
