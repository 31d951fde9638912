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

// torchModelCase is one case of nn/testdata/torch_models.json
// (gen_torch_models.py): reductions ⟨t, r_k⟩ and ‖t‖ per parameter.
type torchModelCase struct {
	Name          string               `json:"name"`
	Batch         int                  `json:"batch"`
	X             []float64            `json:"x"`
	Labels        []int                `json:"labels"`
	Loss          float64              `json:"loss"`
	Grad          map[string][]float64 `json:"grad"`
	HV            map[string][]float64 `json:"hv"`
	SampledLabels []int                `json:"sampled_labels"`
	SampledProbs  []float64            `json:"sampled_probs"`
	SampledGrad   map[string][]float64 `json:"sampled_grad"`
	Params        []string             `json:"params"`
}

// formula is sin(a·i + b·k + c) for i < n, as in gen_torch_models.py.
func formula(n, k int, a, b, c float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = math.Sin(a*float64(i) + b*float64(k) + c)
	}
	return out
}

// setFormulaParams gives the model the generator's deterministic parameters.
func setFormulaParams(t *testing.T, m *nn.Model) {
	t.Helper()
	info := m.ParamInfo()
	for k, p := range m.Params() {
		d := p.Value.Data().([]float64)
		s := formula(len(d), k, 0.61, 1.13, 0.2)
		for i, v := range s {
			switch info[k].Kind {
			case "weight":
				d[i] = v / math.Sqrt(float64(info[k].FanIn))
			case "bn_weight":
				d[i] = 1 + 0.1*v
			case "embedding":
				d[i] = 0.5 * v
			default:
				d[i] = 0.1 * v
			}
		}
	}
}

// fixedSampler returns the generator's sampled labels and checks that the
// probabilities it is given are torch's.
type fixedSampler struct {
	t      *testing.T
	labels []int
	probs  []float64
}

func (s fixedSampler) Sample(probs []float64, classes int, labels []int) error {
	if len(labels) != len(s.labels) {
		return fmt.Errorf("sampler: %d rows, want %d", len(labels), len(s.labels))
	}
	for r := range labels {
		labels[r] = s.labels[r]
		assert.InDelta(s.t, s.probs[r], probs[r*classes+s.labels[r]], 1e-12, "probability of row %d", r)
	}
	return nil
}

func checkReductions(t *testing.T, what string, names []string, ts []*tensor.Dense, want map[string][]float64, tol float64) {
	t.Helper()
	for k, name := range names {
		d := ts[k].Data().([]float64)
		r := formula(len(d), k, 0.23, 0.5, 1.0)
		var dot, sq float64
		for i, v := range d {
			dot += v * r[i]
			sq += v * v
		}
		w := want[name]
		require.Len(t, w, 2, "%s of %s missing", what, name)
		// Parameters whose derivative vanishes analytically (the key bias:
		// softmax ignores a shift shared by all keys) hold rounding noise.
		const floor = 1e-15
		scale := math.Max(w[1], floor) * math.Sqrt(float64(len(d)))
		assert.InDelta(t, w[0], dot, tol*scale+floor, "%s of %s: ⟨·, r⟩", what, name)
		assert.InDelta(t, w[1], math.Sqrt(sq), tol*w[1]+floor, "%s of %s: norm", what, name)
	}
}

func loadModelCase(t *testing.T, name string) (torchModelCase, *nn.Model) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "nn", "testdata", "torch_models.json"))
	require.NoError(t, err)
	var f struct{ Cases []torchModelCase }
	require.NoError(t, json.Unmarshal(b, &f))
	var tc torchModelCase
	for _, c := range f.Cases {
		if c.Name == name {
			tc = c
		}
	}
	require.Equal(t, name, tc.Name)
	spec, err := os.ReadFile(filepath.Join("..", "nn", "testdata", "dag_"+name+".json"))
	require.NoError(t, err)
	d, err := nn.ParseDAG(spec)
	require.NoError(t, err)
	m, err := nn.New(d, tensor.Float64, nil, 1)
	require.NoError(t, err)
	setFormulaParams(t, m)
	var names []string
	for _, p := range m.Params() {
		names = append(names, p.Name)
	}
	require.Equal(t, tc.Params, names, "parameter order")
	return tc, m
}

// TestDAGModelsAgainstTorch runs resnet8 (3×8×8 images, batch 4) and a
// small GPT (2 layers, 2 heads, width 16, context 8, 11 tokens, batch 3)
// through the engine and compares with PyTorch double backprop: training
// loss, gradient, H·v and the gradient against sampled labels (the
// generator's labels; the softmax probabilities the engine samples from
// are checked against torch's), then H·v and the gradient against central
// differences along v.
func TestDAGModelsAgainstTorch(t *testing.T) {
	for _, name := range []string{"resnet8", "gpt_small"} {
		t.Run(name, func(t *testing.T) {
			tc, m := loadModelCase(t, name)
			eng, err := New(m, optim.Needs{HVP: true, SampledGrad: true},
				WithSampler(fixedSampler{t: t, labels: tc.SampledLabels, probs: tc.SampledProbs}))
			require.NoError(t, err)
			defer eng.Close()
			xs := append([]int{tc.Batch}, m.InputShape()...)
			x := tensor.New(tensor.WithShape(xs...), tensor.WithBacking(append([]float64{}, tc.X...)))
			require.NoError(t, eng.SetBatch(x, tc.Labels))
			loss, err := eng.LossGrad()
			require.NoError(t, err)
			assert.InDelta(t, tc.Loss, loss, 1e-11*tc.Loss)
			params := eng.Params()
			grads := make([]*tensor.Dense, len(params))
			v := make([]*tensor.Dense, len(params))
			hv := make([]*tensor.Dense, len(params))
			sg := make([]*tensor.Dense, len(params))
			for k, p := range params {
				grads[k] = p.Grad.Clone().(*tensor.Dense)
				n := p.Value.Shape().TotalSize()
				v[k] = tensor.New(tensor.WithShape(p.Value.Shape().Clone()...), tensor.WithBacking(formula(n, k, 0.37, 0.91, math.Pi/2)))
				hv[k] = tensor.New(tensor.Of(tensor.Float64), tensor.WithShape(p.Value.Shape().Clone()...))
				sg[k] = tensor.New(tensor.Of(tensor.Float64), tensor.WithShape(p.Value.Shape().Clone()...))
			}
			checkReductions(t, "gradient", tc.Params, grads, tc.Grad, 1e-9)
			require.NoError(t, eng.HVP(v, hv))
			checkReductions(t, "H·v", tc.Params, hv, tc.HV, 1e-9)
			require.NoError(t, eng.SampledGrad(sg))
			assert.Equal(t, tc.SampledLabels, eng.SampledLabels())
			checkReductions(t, "sampled-label gradient", tc.Params, sg, tc.SampledGrad, 1e-9)

			// Central differences along v of the loss (⟨g, v⟩) and of the
			// gradient (H·v), in float64.
			dim := eng.Dim()
			vf, gf, hf := make([]float64, dim), make([]float64, dim), make([]float64, dim)
			eng.flatten(v, vf)
			eng.flatten(grads, gf)
			eng.flatten(hv, hf)
			// A small step: with these parameters resnet8's loss has large
			// third derivatives (batch norm over 16 values per channel in
			// the last stage, ReLU kinks), and steps of 1e-5 along v leave
			// the quadratic regime.
			const h = 1e-7
			shift := func(s float64) (float64, []float64) {
				for k, p := range params {
					d, vd := p.Value.Data().([]float64), v[k].Data().([]float64)
					for i := range d {
						d[i] += s * vd[i]
					}
				}
				l, err := eng.LossGrad()
				require.NoError(t, err)
				g := make([]float64, dim)
				require.NoError(t, eng.GradFlat(g))
				return l, g
			}
			lp, gp := shift(h)
			lm, gm := shift(-2 * h)
			shift(h)
			var gv float64
			for i := range vf {
				gv += gf[i] * vf[i]
			}
			assert.InDelta(t, gv, (lp-lm)/(2*h), 1e-7*math.Abs(gv), "⟨g, v⟩ vs finite differences")
			var num, den float64
			for i := range hf {
				fd := (gp[i] - gm[i]) / (2 * h)
				num += (fd - hf[i]) * (fd - hf[i])
				den += hf[i] * hf[i]
			}
			rel := math.Sqrt(num / den)
			t.Logf("%s: %d parameters, loss %.6f, H·v vs finite differences: rel %.2e", name, dim, loss, rel)
			assert.Less(t, rel, 1e-7, "H·v vs finite differences of the gradient")
		})
	}
}
