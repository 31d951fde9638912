package hessian

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/curvopt/curvopt/nn"
	"github.com/curvopt/curvopt/optim"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

type goldenTensor struct {
	Name  string    `json:"name"`
	Shape []int     `json:"shape"`
	Data  []float64 `json:"data"`
}

type goldenCurv struct {
	Kind           string         `json:"kind"`
	Model          nn.Spec        `json:"model"`
	Params         []goldenTensor `json:"params"`
	X              goldenTensor   `json:"x"`
	Labels         []int          `json:"labels"`
	Logits         goldenTensor   `json:"logits"`
	Loss           float64        `json:"loss"`
	Grad           []goldenTensor `json:"grad"`
	V              []goldenTensor `json:"v"`
	HV             []goldenTensor `json:"hv"`
	Probe          []goldenTensor `json:"probe"`
	HutchinsonDiag []goldenTensor `json:"hutchinson_diag"`
	SampledLabels  []int          `json:"sampled_labels"`
	GNBGrad        []goldenTensor `json:"gnb_grad"`
}

// goldenDir returns $GOLDEN_DIR or ../shared/golden relative to the module
// root (the directory holding go.mod).
func goldenDir(t *testing.T) string {
	if d := os.Getenv("GOLDEN_DIR"); d != "" {
		return d
	}
	wd, err := os.Getwd()
	require.NoError(t, err)
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(d, "..", "shared", "golden")
		}
		if filepath.Dir(d) == d {
			t.Fatalf("no go.mod above %s; set GOLDEN_DIR", wd)
		}
	}
}

// relErr is the norm-wise relative error max|a−r| / max|r|.
func relErr(a, r []float64) float64 {
	var num, den float64
	for i := range r {
		num = math.Max(num, math.Abs(a[i]-r[i]))
		den = math.Max(den, math.Abs(r[i]))
	}
	if den == 0 {
		return num
	}
	return num / den
}

func flatGolden(t *testing.T, e *Engine, ts []goldenTensor, what string) []float64 {
	t.Helper()
	require.Len(t, ts, len(e.blocks), "%s: one entry per parameter", what)
	out := make([]float64, e.Dim())
	for i, b := range e.blocks {
		require.Equal(t, b.Name, ts[i].Name, "%s: parameter order", what)
		require.Len(t, ts[i].Data, b.Size, "%s: size of %s", what, b.Name)
		copy(out[b.Offset:], ts[i].Data)
	}
	return out
}

func denseFrom(shape []int, data []float64) *tensor.Dense {
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(append([]float64{}, data...)))
}

// replayProbes is a ProbeSource that fills the recorded probe.
type replayProbes struct{ ts []goldenTensor }

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
	files, err := filepath.Glob(filepath.Join(goldenDir(t), "curv_*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "no curvature golden files in %s", goldenDir(t))
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			require.NoError(t, err)
			var gf goldenCurv
			require.NoError(t, json.Unmarshal(raw, &gf))
			require.Equal(t, "curvature", gf.Kind)

			m, err := nn.New(gf.Model, tensor.Float64, nil)
			require.NoError(t, err)
			ps := m.Params()
			require.Len(t, gf.Params, len(ps))
			for i, p := range ps {
				require.Equal(t, p.Name, gf.Params[i].Name)
				require.Equal(t, []int(p.Value.Shape()), gf.Params[i].Shape, p.Name)
				copy(p.Value.Data().([]float64), gf.Params[i].Data)
			}
			e, err := New(m, optim.Needs{HVP: true, SampledGrad: true},
				WithSampler(FixedSampler{Labels: gf.SampledLabels}), WithProbes(replayProbes{gf.Probe}))
			require.NoError(t, err)
			defer e.Close()
			require.NoError(t, e.SetBatch(denseFrom(gf.X.Shape, gf.X.Data), gf.Labels))

			loss, err := e.LossGrad()
			require.NoError(t, err)
			assert.LessOrEqual(t, math.Abs(loss-gf.Loss)/math.Abs(gf.Loss), tol, "loss %v want %v", loss, gf.Loss)
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
