package optim_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/curvopt/curvopt/internal/golden"
	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/optim/optimtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

// goldenTol is the norm-wise relative error allowed against the reference
// trajectories (../shared/golden/README.md).
const goldenTol = 1e-9

// goldenFactory builds the optimizer a trajectory file names, from the file's
// hyperparameters (under the reference's names). probes replays the file's
// recorded random probes, for optimizers that draw them.
type goldenFactory func(tr *golden.Trajectory, probes optim.ProbeSource) (optim.Optimizer, error)

// goldenFactories maps a file's "optimizer" field to its factory. Each
// optimizer registers itself from its own golden_<name>_test.go.
var goldenFactories = map[string]goldenFactory{}

// TestGoldenTrajectories replays every opt_*.json in the golden directory,
// in replay mode (recorded gradients, probes and curvature) and in full mode
// (gradient A·θ + b and curvature A·v computed from our own iterate), and
// compares params_after and every recorded state entry after every step.
func TestGoldenTrajectories(t *testing.T) {
	files, err := golden.Files("opt_*.json")
	require.NoError(t, err)
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			tr, err := golden.LoadTrajectory(path)
			require.NoError(t, err)
			factory, ok := goldenFactories[tr.Optimizer]
			if !ok {
				t.Skipf("optimizer %q (file %s) is not implemented yet", tr.Optimizer, filepath.Base(path))
			}
			for _, mode := range []string{"replay", "full"} {
				t.Run(mode, func(t *testing.T) { runTrajectory(t, tr, factory, mode == "full") })
			}
		})
	}
}

func runTrajectory(t *testing.T, tr *golden.Trajectory, factory goldenFactory, full bool) {
	params := make([]optim.Param, len(tr.Params))
	for i, p := range tr.Params {
		params[i] = optim.Param{
			Name:  p.Name,
			Value: tensor.New(tensor.WithShape(p.Shape...), tensor.WithBacking(append([]float64(nil), p.Init...))),
			Grad:  tensor.New(tensor.Of(tensor.Float64), tensor.WithShape(p.Shape...)),
		}
	}
	or := &goldenOracle{tr: tr, params: params, full: full}
	opt, err := factory(tr, &replayProbes{or: or})
	require.NoError(t, err)

	for i, st := range tr.Steps {
		or.step = i
		or.usedHZ, or.usedHessGrad, or.usedProbe = false, false, false
		theta := optimtest.Flatten(params)
		g := st.Grad
		if full {
			assert.LessOrEqual(t, golden.ScalarRelErr(quadLoss(tr.Problem.A, tr.Problem.B, theta), st.Loss), goldenTol, "step %d: loss", i+1)
			g = add(golden.MatVec(tr.Problem.A, theta), tr.Problem.B)
			require.LessOrEqual(t, golden.RelErr(g, st.Grad), goldenTol, "step %d: gradient at our iterate", i+1)
		}
		unflattenGrad(params, g)
		require.NoError(t, opt.Step(params, or), "step %d", i+1)

		e := golden.RelErr(optimtest.Flatten(params), st.ParamsAfter)
		require.LessOrEqual(t, e, goldenTol, "step %d: params_after", i+1)

		// Every recorded curvature input must have been consumed at this step.
		if st.HZ != nil {
			assert.True(t, or.usedHZ, "step %d: the file records hz but the optimizer made no HVP query", i+1)
		}
		if st.HessianGrad != nil {
			assert.True(t, or.usedHessGrad, "step %d: the file records hessian_grad but the optimizer made no sampled-gradient query", i+1)
		}
		if st.Probe != nil {
			assert.True(t, or.usedProbe, "step %d: the file records a probe but the optimizer drew none", i+1)
		}

		exported, err := opt.State()
		require.NoError(t, err)
		require.NotEmpty(t, st.State == nil || len(st.State) > 0)
		for key, raw := range st.State {
			if key == "step" {
				var want float64
				require.NoError(t, json.Unmarshal(raw, &want))
				assert.Equal(t, want, float64(exported.Step), "step %d: state.step", i+1)
				continue
			}
			var want []float64
			require.NoError(t, json.Unmarshal(raw, &want), "state %q", key)
			got, err := slotFlat(exported, key, params)
			require.NoError(t, err, "step %d", i+1)
			assert.LessOrEqual(t, golden.RelErr(got, want), goldenTol, "step %d: state %q", i+1, key)
		}
	}

	// The exported state must load into a fresh optimizer and export the same.
	exported, err := opt.State()
	require.NoError(t, err)
	fresh, err := factory(tr, &replayProbes{or: or})
	require.NoError(t, err)
	require.NoError(t, fresh.LoadState(params, exported))
	again, err := fresh.State()
	require.NoError(t, err)
	assert.Equal(t, exported.Step, again.Step)
	assert.Equal(t, len(exported.Tensors), len(again.Tensors))
}

// goldenOracle answers curvature queries from the file (replay) or from the
// quadratic itself (full).
type goldenOracle struct {
	tr                              *golden.Trajectory
	params                          []optim.Param
	full                            bool
	step                            int
	usedHZ, usedHessGrad, usedProbe bool
}

func (o *goldenOracle) HVP(v, out []*tensor.Dense) error {
	st := o.tr.Steps[o.step]
	o.usedHZ = true
	if o.full {
		optimtest.Unflatten(out, golden.MatVec(o.tr.Problem.A, optimtest.FlattenT(v)))
		return nil
	}
	if st.HZ == nil {
		return fmt.Errorf("step %d: HVP query, but the file records no hz there", o.step+1)
	}
	if st.Probe != nil && golden.RelErr(optimtest.FlattenT(v), st.Probe) != 0 {
		return fmt.Errorf("step %d: HVP asked for a vector other than the recorded probe", o.step+1)
	}
	optimtest.Unflatten(out, st.HZ)
	return nil
}

func (o *goldenOracle) SampledGrad(out []*tensor.Dense) error {
	st := o.tr.Steps[o.step]
	o.usedHessGrad = true
	if o.full {
		if o.tr.Problem.AHessian == nil {
			return fmt.Errorf("step %d: sampled-gradient query, but the problem has no A_hessian", o.step+1)
		}
		optimtest.Unflatten(out, add(golden.MatVec(o.tr.Problem.AHessian, optimtest.Flatten(o.params)), o.tr.Problem.BHessian))
		return nil
	}
	if st.HessianGrad == nil {
		return fmt.Errorf("step %d: sampled-gradient query, but the file records no hessian_grad there", o.step+1)
	}
	optimtest.Unflatten(out, st.HessianGrad)
	return nil
}

// replayProbes hands out the probe recorded for the current step.
type replayProbes struct{ or *goldenOracle }

func (r *replayProbes) Fill(out []*tensor.Dense) error {
	st := r.or.tr.Steps[r.or.step]
	if st.Probe == nil {
		return fmt.Errorf("step %d: probe drawn, but the file records none there", r.or.step+1)
	}
	r.or.usedProbe = true
	optimtest.Unflatten(out, st.Probe)
	return nil
}

func slotFlat(s *optim.State, slot string, params []optim.Param) ([]float64, error) {
	var out []float64
	for _, p := range params {
		st := s.Find(p.Name, slot)
		if st == nil {
			return nil, fmt.Errorf("exported state has no %q for param %q", slot, p.Name)
		}
		out = append(out, st.Float64s()...)
	}
	return out, nil
}

func quadLoss(a [][]float64, b, x []float64) float64 {
	ax := golden.MatVec(a, x)
	s := 0.0
	for i := range x {
		s += 0.5*x[i]*ax[i] + b[i]*x[i]
	}
	return s
}

func add(a, b []float64) []float64 {
	out := make([]float64, len(a))
	for i := range a {
		out[i] = a[i] + b[i]
	}
	return out
}

func unflattenGrad(ps []optim.Param, g []float64) {
	off := 0
	for _, p := range ps {
		off += copy(p.Grad.Float64s(), g[off:])
	}
}
