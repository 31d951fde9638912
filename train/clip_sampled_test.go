package train

import (
	"errors"
	"math"
	"testing"

	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/optim/sophia"
	"gorgonia.org/tensor"
)

// sampledOracle is a one-parameter Oracle whose gradient and sampled-label
// gradient are fixed vectors; it provides SampledGrad only.
type sampledOracle struct {
	params []optim.Param
	grad   []float64
	sg     []float64
	calls  int
}

func newSampledOracle(grad, sg []float64) *sampledOracle {
	n := len(grad)
	return &sampledOracle{
		params: []optim.Param{{
			Name:  "w",
			Value: tensor.New(tensor.WithShape(n), tensor.WithBacking(make([]float64, n))),
			Grad:  tensor.New(tensor.WithShape(n), tensor.WithBacking(make([]float64, n))),
		}},
		grad: grad, sg: sg,
	}
}

func (o *sampledOracle) Params() []optim.Param { return o.params }
func (o *sampledOracle) Provides() optim.Needs { return optim.Needs{SampledGrad: true} }
func (o *sampledOracle) LossGrad() (float64, error) {
	copy(o.params[0].Grad.Float64s(), o.grad)
	return 1, nil
}
func (o *sampledOracle) LossGradHVP(v, out []*tensor.Dense) (float64, error) {
	return 0, optim.ErrNotProvided
}
func (o *sampledOracle) HVP(v, out []*tensor.Dense) error { return optim.ErrNotProvided }
func (o *sampledOracle) SampledGrad(out []*tensor.Dense) error {
	o.calls++
	copy(out[0].Float64s(), o.sg)
	return nil
}

// sophiaHessian runs one SophiaG step (k = 1, β₂ = 0.5, so h = 0.5·ĝ⊙ĝ
// after it) through Step with clip norm c and returns h.
func sophiaHessian(t *testing.T, c float64, sg []float64) []float64 {
	t.Helper()
	cfg := sophia.DefaultG()
	cfg.Interval, cfg.Beta2, cfg.WeightDecay = 1, 0.5, 0
	opt, err := sophia.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	eng := newSampledOracle([]float64{30, 40}, sg)
	res, err := Step(eng, opt, c)
	if err != nil {
		t.Fatalf("Step(clip %v): %v", c, err)
	}
	if res.GradNorm != 50 || eng.calls != 1 {
		t.Fatalf("Step(clip %v): grad norm %v (want 50), %d SampledGrad calls (want 1)", c, res.GradNorm, eng.calls)
	}
	st, err := opt.State()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st.Tensors {
		if s.Slot == "hessian" {
			return s.F64
		}
	}
	t.Fatalf("no hessian slot in %+v", st.Tensors)
	return nil
}

// TestStepClipsSampledGradLikeReference checks that with a clip norm the
// sampled-label gradient that SophiaG squares into h is clipped to that
// norm, as train_sophiag.py does (clip_grad_norm_(model.parameters(),
// grad_clip) between the sampled-label backward and update_hessian()):
// ĝ = (3, 4), ‖ĝ‖ = 5, clip 1 gives ĝ·1/(5 + 1e-6), so h = 0.5·ĝ⊙ĝ =
// 0.5·(9, 16)/(5 + 1e-6)². A ĝ within the norm, and no clip, leave it as is.
func TestStepClipsSampledGradLikeReference(t *testing.T) {
	k := 1 / (5 + 1e-6)
	for _, c := range []struct {
		name string
		clip float64
		sg   []float64
		want []float64
	}{
		{"clipped", 1, []float64{3, 4}, []float64{0.5 * 9 * k * k, 0.5 * 16 * k * k}},
		{"within the norm", 10, []float64{3, 4}, []float64{4.5, 8}},
		{"no clip", 0, []float64{3, 4}, []float64{4.5, 8}},
	} {
		got := sophiaHessian(t, c.clip, c.sg)
		for i := range c.want {
			if math.Abs(got[i]-c.want[i]) > 1e-12*c.want[i] {
				t.Errorf("%s: h[%d] = %v, want %v", c.name, i, got[i], c.want[i])
			}
		}
	}
}

// TestStepClipSampledRefusesNonFinite checks that a NaN sampled-label
// gradient under clipping is an error wrapping optim.ErrNonFinite.
func TestStepClipSampledRefusesNonFinite(t *testing.T) {
	cfg := sophia.DefaultG()
	cfg.Interval = 1
	opt, err := sophia.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	eng := newSampledOracle([]float64{1, 1}, []float64{math.NaN(), 1})
	if _, err := Step(eng, opt, 1); !errors.Is(err, optim.ErrNonFinite) {
		t.Fatalf("Step with a NaN sampled gradient: %v, want an error wrapping optim.ErrNonFinite", err)
	}
}
