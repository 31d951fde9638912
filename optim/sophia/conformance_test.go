package sophia_test

import (
	"testing"

	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/optim/optimtest"
	"github.com/curvopt/curvopt/optim/sophia"
	"github.com/stretchr/testify/require"
)

// TestConformance runs the exported conformance suite (optimtest.Run).
func TestConformance(t *testing.T) {
	g := sophia.DefaultG()
	g.Interval, g.BatchSize, g.LR = 2, 4, 1e-2
	h := sophia.DefaultH()
	h.Interval, h.LR = 2, 1e-2
	for name, c := range map[string]sophia.Config{"sophiag": g, "sophiah": h} {
		t.Run(name, func(t *testing.T) {
			optimtest.Run(t, optimtest.Spec{WeightDecay: c.WeightDecay, New: func() optim.Optimizer {
				o, err := sophia.New(c)
				require.NoError(t, err)
				return o
			}})
		})
	}
}
