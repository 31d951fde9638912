package optim_test

import (
	"fmt"

	"github.com/curvopt/curvopt/internal/golden"
	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/optim/adahessian"
)

// adahessianFactory builds AdaHessian from a trajectory's hyperparameters
// under the reference's names (lr, betas, eps, weight_decay, hessian_power),
// drawing its probes from probes (the file's recorded Rademacher vectors).
func adahessianFactory(tr *golden.Trajectory, probes optim.ProbeSource) (optim.Optimizer, error) {
	c := adahessian.Default()
	var err error
	get := func(name string, dst *float64) {
		if err == nil {
			*dst, err = tr.Float(name)
		}
	}
	get("lr", &c.LR)
	get("eps", &c.Eps)
	get("weight_decay", &c.WeightDecay)
	get("hessian_power", &c.HessianPower)
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
	c.Beta1, c.Beta2 = betas[0], betas[1]
	c.Probes = probes
	return adahessian.New(c)
}

func init() {
	goldenFactories["adahessian"] = adahessianFactory
}
