package optim_test

import (
	"github.com/curvopt/curvopt/internal/golden"
	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/optim/adam"
	"github.com/curvopt/curvopt/optim/sgd"
)

func init() {
	sgdFactory := func(tr *golden.Trajectory, _ optim.ProbeSource) (optim.Optimizer, error) {
		var c sgd.Config
		var err error
		get := func(name string, dst *float64) {
			if err == nil {
				*dst, err = tr.Float(name)
			}
		}
		get("lr", &c.LR)
		get("momentum", &c.Momentum)
		get("dampening", &c.Dampening)
		get("weight_decay", &c.WeightDecay)
		if err == nil {
			c.Nesterov, err = tr.Bool("nesterov")
		}
		if err != nil {
			return nil, err
		}
		return sgd.New(c)
	}
	goldenOptimizers["sgd"] = goldenOptimizer{
		build: sgdFactory,
		state: func(tr *golden.Trajectory) ([]string, error) {
			mu, err := tr.Float("momentum")
			if err != nil || mu == 0 {
				return nil, err
			}
			return []string{"momentum_buffer"}, nil
		},
	}
	adamFactory := func(decoupled bool) goldenFactory {
		return func(tr *golden.Trajectory, _ optim.ProbeSource) (optim.Optimizer, error) {
			c := adam.Config{Decoupled: decoupled}
			var err error
			get := func(name string, dst *float64) {
				if err == nil {
					*dst, err = tr.Float(name)
				}
			}
			get("lr", &c.LR)
			get("eps", &c.Eps)
			get("weight_decay", &c.WeightDecay)
			var betas []float64
			if err == nil {
				betas, err = tr.Floats("betas")
			}
			if err != nil {
				return nil, err
			}
			if len(betas) != 2 {
				return nil, tr.Errorf("hyper.betas", "%d entries, want 2", len(betas))
			}
			c.Beta1, c.Beta2 = betas[0], betas[1]
			ams, err := tr.Bool("amsgrad")
			if err != nil {
				return nil, err
			}
			if ams {
				return nil, tr.Errorf("hyper.amsgrad", "true is not implemented")
			}
			return adam.New(c)
		}
	}
	for name, decoupled := range map[string]bool{"adam": false, "adamw": true} {
		goldenOptimizers[name] = goldenOptimizer{
			build: adamFactory(decoupled),
			state: fixedState("exp_avg", "exp_avg_sq", "step"),
		}
	}
}
