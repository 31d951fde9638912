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
	"fmt"

	"github.com/curvopt/curvopt/optim"
	"gorgonia.org/tensor"
)

// Config holds SGD's hyperparameters. The zero values of Momentum,
// Dampening, WeightDecay and Nesterov mean plain SGD.
type Config struct {
	LR          float64 // learning rate η > 0
	Momentum    float64 // μ in [0, 1)
	Dampening   float64 // τ in [0, 1]
	WeightDecay float64 // coupled L2 coefficient λ ≥ 0
	Nesterov    bool    // Nesterov momentum; needs μ > 0 and τ = 0
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
	// Hyper holds the learning rate and the parameter groups (SetLR,
	// SetGroups).
	optim.Hyper
	cfg  Config
	step int64
	buf  optim.Buffers // "momentum_buffer"
}

var _ optim.Optimizer = (*SGD)(nil)

// New returns an SGD optimizer, or an error naming an invalid hyperparameter.
func New(c Config) (*SGD, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &SGD{Hyper: optim.NewHyper("sgd", c.LR, c.WeightDecay), cfg: c, buf: optim.NewBuffers("momentum_buffer")}, nil
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

// Step applies one update. The oracle is not used and may be nil.
func (s *SGD) Step(params []optim.Param, _ optim.Oracle) error {
	if err := optim.CheckParams("sgd", params); err != nil {
		return err
	}
	if err := s.ResolveGroups(params); err != nil {
		return err
	}
	if s.cfg.Momentum > 0 {
		if err := s.buf.Ensure("sgd", params); err != nil {
			return err
		}
	}
	s.step++
	first := s.step == 1
	for i, p := range params {
		var b *tensor.Dense
		if s.cfg.Momentum > 0 {
			b = s.buf.Slot(0)[i]
		}
		switch p.Value.Dtype() {
		case tensor.Float64:
			var buf []float64
			if b != nil {
				buf = b.Float64s()
			}
			update(s.cfg, s.ParamLR(i), s.ParamWD(i), first, p.Value.Float64s(), p.Grad.Float64s(), buf)
		case tensor.Float32:
			var buf []float32
			if b != nil {
				buf = b.Float32s()
			}
			update(s.cfg, s.ParamLR(i), s.ParamWD(i), first, p.Value.Float32s(), p.Grad.Float32s(), buf)
		}
	}
	return nil
}

func update[T optim.Float](c Config, lrate, decay float64, first bool, theta, g, buf []T) {
	lr, mu, wd := T(lrate), T(c.Momentum), T(decay)
	damp := T(1 - c.Dampening)
	g = g[:len(theta)]
	if buf != nil {
		buf = buf[:len(theta)]
	}
	for j := range theta {
		d := g[j]
		if wd != 0 {
			d += wd * theta[j]
		}
		if buf != nil {
			if first {
				buf[j] = d
			} else {
				buf[j] = mu*buf[j] + damp*d
			}
			if c.Nesterov {
				d += mu * buf[j]
			} else {
				d = buf[j]
			}
		}
		theta[j] -= lr * d
	}
}

// State exports the step counter and the momentum buffers.
func (s *SGD) State() (*optim.State, error) {
	st := &optim.State{Optimizer: s.Name(), Step: s.step}
	s.buf.Export(st)
	s.ExportGroups(st)
	return st, nil
}

// LoadState restores a state exported by an SGD optimizer for the same
// parameters.
func (s *SGD) LoadState(params []optim.Param, st *optim.State) error {
	if err := st.CheckHeader(s.Name()); err != nil {
		return err
	}
	h := s.Hyper
	if err := h.ImportGroups(st); err != nil {
		return fmt.Errorf("load state: %w", err)
	}
	if s.cfg.Momentum > 0 {
		if err := s.buf.Import("sgd", params, st); err != nil {
			return fmt.Errorf("load state: %w", err)
		}
	}
	s.Hyper = h
	s.step = st.Step
	return nil
}
