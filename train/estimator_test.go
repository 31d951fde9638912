package train

import (
	"context"
	"math"
	"testing"

	"github.com/curvopt/curvopt/optim"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAdaHessianGNB: "adahessian" with the hyperparameter gnb = true is
// AdaHessian with the GNB estimator (it needs sampled gradients, not
// Hessian-vector products), trains, and resumes bit-identically.
func TestAdaHessianGNB(t *testing.T) {
	h := Hyper{"lr": 0.05, "hessian_interval": 2, "gnb": true}
	opt, err := NewOptimizer("adahessian", h, 16, 1)
	require.NoError(t, err)
	assert.Equal(t, optim.Needs{SampledGrad: true}, opt.Needs())
	plain, err := NewOptimizer("adahessian", Hyper{"gnb": false}, 16, 1)
	require.NoError(t, err)
	assert.Equal(t, optim.Needs{HVP: true}, plain.Needs())

	const n, k = 6, 3
	straight := tinyConfig(t, "adahessian", h)
	straight.Steps, straight.OutDir = n, t.TempDir()
	_, err = Run(context.Background(), straight)
	require.NoError(t, err)
	split := tinyConfig(t, "adahessian", h)
	split.Steps, split.OutDir = k, t.TempDir()
	_, err = Run(context.Background(), split)
	require.NoError(t, err)
	split.Steps, split.Resume = n, true
	_, err = Run(context.Background(), split)
	require.NoError(t, err)
	pa, pb := checkpointParams(t, straight.OutDir), checkpointParams(t, split.OutDir)
	require.Equal(t, len(pa), len(pb))
	for i := range pa {
		require.Equal(t, math.Float64bits(pa[i]), math.Float64bits(pb[i]), "parameter entry %d", i)
	}
}
