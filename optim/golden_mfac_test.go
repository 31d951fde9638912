package optim_test

import (
	"path/filepath"
	"testing"

	"github.com/curvopt/curvopt/internal/golden"
	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/optim/mfac"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func init() {
	goldenOptimizers["mfac"] = goldenOptimizer{
		build: func(tr *golden.Trajectory, _ optim.ProbeSource) (optim.Optimizer, error) {
			c, err := mfacConfig(tr)
			if err != nil {
				return nil, err
			}
			return mfac.New(c)
		},
		// The reference keeps a momentum buffer v only when μ > 0.
		state: func(tr *golden.Trajectory) ([]string, error) {
			mu, err := tr.Float("momentum")
			if err != nil || mu == 0 {
				return nil, err
			}
			return []string{"v"}, nil
		},
		extras: []string{"g_used", "ring_slot", "ihvp"},
		check:  checkMFACStep,
	}
}

func mfacConfig(tr *golden.Trajectory) (mfac.Config, error) {
	var c mfac.Config
	var err error
	get := func(name string, dst *float64) {
		if err == nil {
			*dst, err = tr.Float(name)
		}
	}
	var m float64
	get("lr", &c.LR)
	get("momentum", &c.Momentum)
	get("weight_decay", &c.WeightDecay)
	get("ngrads", &m)
	get("damp", &c.Damp)
	c.NGrads = int(m)
	return c, err
}

// checkMFACStep checks M-FAC's per-step extras: g_used (∇L + wd·θ, from the
// gradient fed and our iterate), ring_slot (the window row overwritten) and
// ihvp (u = F⁻¹·g_used before momentum, as our optimizer computed it).
func checkMFACStep(t *testing.T, tr *golden.Trajectory, i int, opt optim.Optimizer, g, theta []float64, _, _ *optim.State) {
	name := filepath.Base(tr.Path)
	st := tr.Steps[i]
	m, ok := opt.(*mfac.MFAC)
	require.True(t, ok)
	if st.GUsed != nil {
		wd, err := tr.Float("weight_decay")
		require.NoError(t, err)
		gu := append([]float64(nil), g...)
		for j := range gu {
			gu[j] += wd * theta[j]
		}
		assert.LessOrEqual(t, golden.RelErr(gu, st.GUsed), goldenTol, "%s: steps[%d].g_used", name, i)
	}
	if st.RingSlot != nil {
		assert.Equal(t, *st.RingSlot, m.LastSlot(), "%s: steps[%d].ring_slot", name, i)
	}
	if st.IHVP != nil {
		assert.LessOrEqual(t, golden.RelErr(m.LastIHVP(nil), st.IHVP), goldenTol, "%s: steps[%d].ihvp", name, i)
	}
}
