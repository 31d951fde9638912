package optim_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/curvopt/curvopt/internal/golden"
	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/optim/adahessian"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
	goldenOptimizers["adahessian"] = goldenOptimizer{
		build:  adahessianFactory,
		state:  fixedState("exp_avg", "exp_hessian_diag_sq", "step"),
		extras: []string{"probe", "hz", "hessian_diag_est"},
		check:  checkAdaHessianStep,
	}
}

// checkAdaHessianStep checks hessian_diag_est, the reference's D (|z⊙H·z|
// averaged over kernel windows), against the D our optimizer used, recovered
// from its exported second moment: v_t = β2·v_{t−1} + (1−β2)·D⊙D.
func checkAdaHessianStep(t *testing.T, tr *golden.Trajectory, i int, _ optim.Optimizer, _, _ []float64, prev, cur *optim.State) {
	st := tr.Steps[i]
	if st.HessianDiagEst == nil {
		return
	}
	betas, err := tr.Floats("betas")
	require.NoError(t, err)
	b2 := betas[1]
	names := make([]optim.Param, len(tr.Params))
	for j, p := range tr.Params {
		names[j] = optim.Param{Name: p.Name}
	}
	v, err := slotFlat(cur, "exp_hessian_diag_sq", names)
	require.NoError(t, err)
	v0 := make([]float64, len(v))
	if i > 0 {
		v0, err = slotFlat(prev, "exp_hessian_diag_sq", names)
		require.NoError(t, err)
	}
	d := make([]float64, len(v))
	for j := range v {
		d[j] = sqrtNonNeg((v[j] - b2*v0[j]) / (1 - b2))
	}
	// The subtraction loses about log10(v/((1−β2)·D²)) digits; 1e-9 keeps a
	// wide margin at these 12 steps.
	assert.LessOrEqual(t, golden.RelErr(d, st.HessianDiagEst), goldenTol, "%s: steps[%d].hessian_diag_est", filepath.Base(tr.Path), i)
}
