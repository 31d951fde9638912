package sgd_test

import (
	"testing"

	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/optim/optimtest"
	"github.com/curvopt/curvopt/optim/sgd"
	"github.com/stretchr/testify/require"
)

// TestConformance runs the exported conformance suite (optimtest.Run).
func TestConformance(t *testing.T) {
	for name, c := range map[string]sgd.Config{
		"default":  sgd.Default(),
		"plain":    {LR: 0.05},
		"nesterov": {LR: 0.05, Momentum: 0.9, Nesterov: true, WeightDecay: 1e-3},
	} {
		t.Run(name, func(t *testing.T) {
			optimtest.Run(t, optimtest.Spec{WeightDecay: c.WeightDecay, Stateless: c.Momentum == 0, New: func() optim.Optimizer {
				o, err := sgd.New(c)
				require.NoError(t, err)
				return o
			}})
		})
	}
}
