package adahessian_test

import (
	"testing"

	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/optim/adahessian"
	"github.com/curvopt/curvopt/optim/optimtest"
	"github.com/stretchr/testify/require"
)

// TestConformance runs the exported conformance suite (optimtest.Run).
func TestConformance(t *testing.T) {
	every := adahessian.Default()
	every.WeightDecay = 1e-3
	interval := adahessian.Default()
	interval.Interval, interval.HessianPower, interval.LR = 3, 0.5, 0.05
	gnb := adahessian.Default()
	gnb.GNB, gnb.BatchSize, gnb.Interval, gnb.LR = true, 4, 2, 0.05
	for name, c := range map[string]adahessian.Config{"every_step": every, "interval_3": interval, "gnb": gnb} {
		t.Run(name, func(t *testing.T) {
			optimtest.Run(t, optimtest.Spec{WeightDecay: c.WeightDecay, New: func() optim.Optimizer {
				o, err := adahessian.New(c)
				require.NoError(t, err)
				return o
			}})
		})
	}
}
