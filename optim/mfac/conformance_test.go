package mfac_test

import (
	"testing"

	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/optim/mfac"
	"github.com/curvopt/curvopt/optim/optimtest"
	"github.com/stretchr/testify/require"
)

// TestConformance runs the exported conformance suite (optimtest.Run).
func TestConformance(t *testing.T) {
	plain := mfac.Config{LR: 1e-2, NGrads: 4, Damp: 1e-1}
	mom := mfac.Config{LR: 1e-2, NGrads: 3, Damp: 1e-1, Momentum: 0.9, WeightDecay: 1e-3}
	for name, c := range map[string]mfac.Config{"plain": plain, "momentum_wd": mom} {
		t.Run(name, func(t *testing.T) {
			optimtest.Run(t, optimtest.Spec{WeightDecay: c.WeightDecay, Mixes: true, Float32Tol: 1e-3, New: func() optim.Optimizer {
				o, err := mfac.New(c)
				require.NoError(t, err)
				return o
			}})
		})
	}
}
