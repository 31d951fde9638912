package hessian

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/curvopt/curvopt/internal/golden"
	"github.com/curvopt/curvopt/optim"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

func flatGolden(t *testing.T, e *Engine, ts []golden.NamedTensor, what string) []float64 {
	t.Helper()
	var names []string
	var sizes []int
	for _, b := range e.blocks {
		names, sizes = append(names, b.Name), append(sizes, b.Size)
	}
	out, err := golden.Flat(ts, names, sizes)
	require.NoError(t, err, what)
	return out
}

// relErr is testdata/golden/README.md's norm-wise relative error.
func relErr(a, r []float64) float64 { return golden.RelErr(a, r) }

// replayProbes is a ProbeSource that fills the recorded probe.
type replayProbes struct{ ts []golden.NamedTensor }

func (r replayProbes) Fill(out []*tensor.Dense) error {
	if len(out) != len(r.ts) {
		return fmt.Errorf("replay: %d tensors, have %d", len(out), len(r.ts))
	}
	for i, t := range out {
		copy(t.Data().([]float64), r.ts[i].Data)
	}
	return nil
}

func flatOf(e *Engine, ts []*tensor.Dense) []float64 {
	out := make([]float64, e.Dim())
	e.flatten(ts, out)
	return out
}

// TestGoldenCurvature checks logits, loss, gradient, H·v, the Hutchinson
// estimate and the sampled-label gradient against every curv_*.json golden
// file produced by torch 1.13 double backprop in float64.
func TestGoldenCurvature(t *testing.T) {
	const tol = 1e-9
	files, err := golden.Files(golden.KindCurvature)
	require.NoError(t, err)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			gf, err := golden.LoadCurvature(f)
			require.NoError(t, err)
			m, err := gf.NewModel()
			require.NoError(t, err)
			e, err := New(m, optim.Needs{HVP: true, SampledGrad: true},
				WithSampler(FixedSampler{Labels: gf.SampledLabels}), WithProbes(replayProbes{gf.Probe}))
			require.NoError(t, err)
			defer e.Close()
			require.NoError(t, e.SetBatch(gf.Input(), gf.Labels))

			loss, err := e.LossGrad()
			require.NoError(t, err)
			assert.LessOrEqual(t, golden.ScalarRelErr(loss, gf.Loss), tol, "loss %v want %v", loss, gf.Loss)
			lg := e.Logits()
			require.NotNil(t, lg)
			assert.Equal(t, gf.Logits.Shape, []int(lg.Shape()))
			assert.LessOrEqual(t, relErr(lg.Data().([]float64), gf.Logits.Data), tol, "logits")

			g := make([]float64, e.Dim())
			require.NoError(t, e.GradFlat(g))
			assert.LessOrEqual(t, relErr(g, flatGolden(t, e, gf.Grad, "grad")), tol, "grad")

			hv := make([]float64, e.Dim())
			require.NoError(t, e.HVPFlat(flatGolden(t, e, gf.V, "v"), hv))
			eHV := relErr(hv, flatGolden(t, e, gf.HV, "hv"))
			assert.LessOrEqual(t, eHV, tol, "hv")

			hd := optim.Like(e.Params())
			require.NoError(t, e.Hutchinson(hd))
			assert.LessOrEqual(t, relErr(flatOf(e, hd), flatGolden(t, e, gf.HutchinsonDiag, "hutchinson_diag")), tol, "hutchinson_diag")

			sg := optim.Like(e.Params())
			require.NoError(t, e.SampledGrad(sg))
			assert.Equal(t, gf.SampledLabels, e.SampledLabels())
			assert.LessOrEqual(t, relErr(flatOf(e, sg), flatGolden(t, e, gf.GNBGrad, "gnb_grad")), tol, "gnb_grad")
			t.Logf("%s: hv rel. error %.2e", filepath.Base(f), eHV)
		})
	}
}
