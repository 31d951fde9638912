package optim_test

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/curvopt/curvopt/internal/golden"
	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/optim/mfac"
	"github.com/curvopt/curvopt/optim/optimtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

func init() {
	goldenFactories["mfac"] = func(tr *golden.Trajectory, _ optim.ProbeSource) (optim.Optimizer, error) {
		c, err := mfacConfig(tr)
		if err != nil {
			return nil, err
		}
		return mfac.New(c)
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

// TestGoldenMFACSteps replays every M-FAC trajectory in the golden directory
// and checks, at every step, the per-step extras the files record: g_used
// (∇L + wd·θ, recomputed here from the recorded gradient and our iterate),
// ring_slot (the window row overwritten) and ihvp (u = F⁻¹·g_used before
// momentum), besides params_after.
func TestGoldenMFACSteps(t *testing.T) {
	files, err := golden.Files("opt_*.json")
	require.NoError(t, err)
	n := 0
	for _, path := range files {
		tr, err := golden.LoadTrajectory(path)
		require.NoError(t, err)
		if tr.Optimizer != "mfac" {
			continue
		}
		n++
		t.Run(filepath.Base(path), func(t *testing.T) {
			c, err := mfacConfig(tr)
			require.NoError(t, err)
			opt, err := mfac.New(c)
			require.NoError(t, err)
			params := make([]optim.Param, len(tr.Params))
			for i, p := range tr.Params {
				params[i] = optim.Param{
					Name:  p.Name,
					Value: tensor.New(tensor.WithShape(p.Shape...), tensor.WithBacking(append([]float64(nil), p.Init...))),
					Grad:  tensor.New(tensor.Of(tensor.Float64), tensor.WithShape(p.Shape...)),
				}
			}
			worst := 0.0
			for i, st := range tr.Steps {
				var gUsed, ihvp []float64
				var slot int
				require.NoError(t, json.Unmarshal(st.Extra["g_used"], &gUsed), "step %d: g_used", i+1)
				require.NoError(t, json.Unmarshal(st.Extra["ihvp"], &ihvp), "step %d: ihvp", i+1)
				require.NoError(t, json.Unmarshal(st.Extra["ring_slot"], &slot), "step %d: ring_slot", i+1)

				theta := optimtest.Flatten(params)
				g := append([]float64(nil), st.Grad...)
				if c.WeightDecay > 0 {
					for j := range g {
						g[j] += c.WeightDecay * theta[j]
					}
				}
				require.LessOrEqual(t, golden.RelErr(g, gUsed), goldenTol, "step %d: g_used", i+1)

				unflattenGrad(params, st.Grad)
				require.NoError(t, opt.Step(params, nil), "step %d", i+1)
				assert.Equal(t, slot, opt.LastSlot(), "step %d: ring_slot", i+1)
				e := golden.RelErr(opt.LastIHVP(nil), ihvp)
				worst = max(worst, e)
				require.LessOrEqual(t, e, goldenTol, "step %d: ihvp", i+1)
				e = golden.RelErr(optimtest.Flatten(params), st.ParamsAfter)
				worst = max(worst, e)
				require.LessOrEqual(t, e, goldenTol, "step %d: params_after", i+1)
			}
			t.Logf("%d steps, worst rel err (ihvp, params_after) %.2g", len(tr.Steps), worst)
		})
	}
	require.NotZero(t, n, "no mfac trajectory in the golden directory")
}
