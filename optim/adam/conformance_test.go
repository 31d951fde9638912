package adam_test

import (
	"testing"

	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/optim/adam"
	"github.com/curvopt/curvopt/optim/optimtest"
	"github.com/stretchr/testify/require"
)

// TestConformance runs the exported conformance suite (optimtest.Run).
func TestConformance(t *testing.T) {
	for name, c := range map[string]adam.Config{"adam": adam.Default(), "adamw": adam.DefaultW(), "adam_l2": {LR: 1e-2, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, WeightDecay: 0.1}} {
		t.Run(name, func(t *testing.T) {
			optimtest.Run(t, optimtest.Spec{WeightDecay: c.WeightDecay, New: func() optim.Optimizer {
				o, err := adam.New(c)
				require.NoError(t, err)
				return o
			}})
		})
	}
}
