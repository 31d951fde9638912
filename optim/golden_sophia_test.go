package optim_test

import (
	"fmt"

	"github.com/curvopt/curvopt/internal/golden"
	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/optim/sophia"
)

// sophiaFactory builds SophiaG ("sophiag") or SophiaH ("sophiah") from a
// trajectory's hyperparameters under the reference's names: lr, betas, rho,
// weight_decay, bs, hessian_interval and, optionally, eps (default 1e-15, the
// constant of the SophiaG code). SophiaH draws its probes from probes.
func sophiaFactory(est sophia.Estimator) goldenFactory {
	return func(tr *golden.Trajectory, probes optim.ProbeSource) (optim.Optimizer, error) {
		c := sophia.DefaultG()
		c.Estimator = est
		var err error
		get := func(name string, dst *float64) {
			if err == nil {
				*dst, err = tr.Float(name)
			}
		}
		var bs, k float64
		get("lr", &c.LR)
		get("rho", &c.Rho)
		get("weight_decay", &c.WeightDecay)
		get("bs", &bs)
		get("hessian_interval", &k)
		var betas []float64
		if err == nil {
			betas, err = tr.Floats("betas")
		}
		if err != nil {
			return nil, err
		}
		if len(betas) != 2 {
			return nil, fmt.Errorf("hyper betas has %d entries, want 2", len(betas))
		}
		if tr.Has("eps") {
			if c.Eps, err = tr.Float("eps"); err != nil {
				return nil, err
			}
		}
		c.Beta1, c.Beta2 = betas[0], betas[1]
		c.BatchSize, c.Interval = int(bs), int(k)
		if est == sophia.Hutchinson {
			c.Probes = probes
		}
		return sophia.New(c)
	}
}

func init() {
	goldenOptimizers["sophiag"] = goldenOptimizer{
		build:  sophiaFactory(sophia.GNB),
		state:  fixedState("exp_avg", "hessian", "step"),
		extras: []string{"hessian_grad"},
	}
	goldenOptimizers["sophiah"] = goldenOptimizer{
		build:  sophiaFactory(sophia.Hutchinson),
		state:  fixedState("exp_avg", "hessian", "step"),
		extras: []string{"probe", "hz"},
	}
}
