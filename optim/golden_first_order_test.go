package optim_test

import (
	"github.com/curvopt/curvopt/internal/golden"
	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/optim/adam"
	"github.com/curvopt/curvopt/optim/sgd"
)

func init() {
	goldenFactories["sgd"] = func(tr *golden.Trajectory, _ optim.ProbeSource) (optim.Optimizer, error) {
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
			c.Beta1, c.Beta2 = betas[0], betas[1]
			if ams, _ := tr.Bool("amsgrad"); ams {
				return nil, errAmsgrad
			}
			return adam.New(c)
		}
	}
	goldenFactories["adam"] = adamFactory(false)
	goldenFactories["adamw"] = adamFactory(true)
}

var errAmsgrad = errorString("amsgrad is not implemented")

type errorString string

func (e errorString) Error() string { return string(e) }
