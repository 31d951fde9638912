package optim_test

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/curvopt/curvopt/internal/golden"
	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/optim/optimtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

// goldenTol is the norm-wise relative error allowed against the reference
// trajectories (testdata/golden/README.md).
const goldenTol = 1e-9

// goldenFactory builds the optimizer a trajectory file names, from the file's
// hyperparameters (under the reference's names). probes replays the file's
// recorded random probes, for optimizers that draw them.
type goldenFactory func(tr *golden.Trajectory, probes optim.ProbeSource) (optim.Optimizer, error)

// goldenOptimizer is what the harness knows about one reference optimizer.
type goldenOptimizer struct {
	build goldenFactory
	// state returns the state entries the reference records after every
	// step, for the file's hyperparameters (nil: none).
	state func(tr *golden.Trajectory) ([]string, error)
	// extras lists the per-step fields a file may record for this optimizer.
	// probe, hz and hessian_grad are checked by the oracle (each must be
	// consumed at its step); the others by check.
	extras []string
	// check compares the optimizer-specific extras of step i after the
	// step: g is the gradient fed to it, theta the iterate before it, prev
	// and cur the exported states before and after it.
	check func(t *testing.T, tr *golden.Trajectory, i int, opt optim.Optimizer, g, theta []float64, prev, cur *optim.State)
}

// goldenOptimizers maps a file's "optimizer" field to the harness's
// knowledge of it. Each optimizer registers itself from its own
// golden_<name>_test.go.
var goldenOptimizers = map[string]goldenOptimizer{}

// fixedState returns a state function for an optimizer that always records
// the same entries.
func fixedState(keys ...string) func(*golden.Trajectory) ([]string, error) {
	return func(*golden.Trajectory) ([]string, error) { return keys, nil }
}

// loadGolden reads a trajectory file and checks it against what the harness
// consumes: a known optimizer, a construction that reads every
// hyperparameter, exactly the state entries the reference records at every
// step, and no per-step field the harness does not check. Every error names
// the file and the field.
func loadGolden(path string) (*golden.Trajectory, goldenOptimizer, error) {
	tr, err := golden.LoadTrajectory(path)
	if err != nil {
		return nil, goldenOptimizer{}, err
	}
	g, ok := goldenOptimizers[tr.Optimizer]
	if !ok {
		known := make([]string, 0, len(goldenOptimizers))
		for k := range goldenOptimizers {
			known = append(known, k)
		}
		sort.Strings(known)
		return nil, g, tr.Errorf("optimizer", "%q is unknown (known: %s)", tr.Optimizer, strings.Join(known, ", "))
	}
	if _, err := g.build(tr, nil); err != nil {
		return nil, g, fmt.Errorf("%s: building %s from hyper: %w", filepath.Base(path), tr.Optimizer, err)
	}
	if err := tr.CheckHyperConsumed(); err != nil {
		return nil, g, err
	}
	want := []string(nil)
	if g.state != nil {
		if want, err = g.state(tr); err != nil {
			return nil, g, err
		}
	}
	for i := range tr.Steps {
		st := &tr.Steps[i]
		have := st.StateKeys()
		for _, k := range want {
			if !slices.Contains(have, k) {
				return nil, g, tr.Errorf(fmt.Sprintf("steps[%d].state.%s", i, k), "missing (the %s reference records it after every step)", tr.Optimizer)
			}
		}
		for _, k := range have {
			if !slices.Contains(want, k) {
				return nil, g, tr.Errorf(fmt.Sprintf("steps[%d].state.%s", i, k), "not a state entry of %s (not checked)", tr.Optimizer)
			}
		}
		for _, x := range st.Extras() {
			if !slices.Contains(g.extras, x) {
				return nil, g, tr.Errorf(fmt.Sprintf("steps[%d].%s", i, x), "not recorded by %s (not checked)", tr.Optimizer)
			}
		}
	}
	return tr, g, nil
}

// TestGoldenTrajectories replays every optimizer-trajectory file in the
// golden directory (whatever its name), in replay mode (recorded gradients,
// probes and curvature) and in full mode (gradient A·θ + b and curvature A·v
// computed from our own iterate), and compares params_after, every recorded
// state entry and every per-step extra after every step.
func TestGoldenTrajectories(t *testing.T) {
	files, err := golden.Files(golden.KindTrajectory)
	require.NoError(t, err)
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			tr, g, err := loadGolden(path)
			require.NoError(t, err)
			for _, mode := range []string{"replay", "full"} {
				t.Run(mode, func(t *testing.T) { runTrajectory(t, tr, g, mode == "full") })
			}
		})
	}
}

func runTrajectory(t *testing.T, tr *golden.Trajectory, g goldenOptimizer, full bool) {
	name := filepath.Base(tr.Path)
	params := make([]optim.Param, len(tr.Params))
	for i, p := range tr.Params {
		params[i] = optim.Param{
			Name:  p.Name,
			Value: tensor.New(tensor.WithShape(p.Shape...), tensor.WithBacking(append([]float64(nil), p.Init...))),
			Grad:  tensor.New(tensor.Of(tensor.Float64), tensor.WithShape(p.Shape...)),
		}
	}
	or := &goldenOracle{tr: tr, params: params, full: full}
	opt, err := g.build(tr, &replayProbes{or: or})
	require.NoError(t, err)

	prev, err := opt.State()
	require.NoError(t, err)
	for i, st := range tr.Steps {
		or.step = i
		or.usedHZ, or.usedHessGrad, or.usedProbe = false, false, false
		theta := optimtest.Flatten(params)
		grad := st.Grad
		if full {
			assert.LessOrEqual(t, golden.ScalarRelErr(quadLoss(tr.Problem.A, tr.Problem.B, theta), *st.Loss), goldenTol, "%s: steps[%d].loss", name, i)
			grad = add(golden.MatVec(tr.Problem.A, theta), tr.Problem.B)
			require.LessOrEqual(t, golden.RelErr(grad, st.Grad), goldenTol, "%s: steps[%d].grad: gradient at our iterate", name, i)
		}
		unflattenGrad(params, grad)
		require.NoError(t, opt.Step(params, or), "%s: step %d", name, i+1)

		e := golden.RelErr(optimtest.Flatten(params), st.ParamsAfter)
		require.LessOrEqual(t, e, goldenTol, "%s: steps[%d].params_after", name, i)

		// Every recorded curvature input must have been consumed at this step.
		if st.HZ != nil {
			assert.True(t, or.usedHZ, "%s: steps[%d].hz: recorded, but the optimizer made no HVP query", name, i)
		}
		if st.HessianGrad != nil {
			assert.True(t, or.usedHessGrad, "%s: steps[%d].hessian_grad: recorded, but the optimizer made no sampled-gradient query", name, i)
		}
		if st.Probe != nil {
			assert.True(t, or.usedProbe, "%s: steps[%d].probe: recorded, but the optimizer drew none", name, i)
		}

		cur, err := opt.State()
		require.NoError(t, err)
		if st.StateStep != nil {
			assert.Equal(t, *st.StateStep, float64(cur.Step), "%s: steps[%d].state.step", name, i)
		}
		for key, want := range st.StateVecs {
			got, err := slotFlat(cur, key, params)
			require.NoError(t, err, "%s: steps[%d].state.%s", name, i, key)
			assert.LessOrEqual(t, golden.RelErr(got, want), goldenTol, "%s: steps[%d].state.%s", name, i, key)
		}
		if g.check != nil {
			g.check(t, tr, i, opt, grad, theta, prev, cur)
		}
		prev = cur
	}

	// The exported state must load into a fresh optimizer and export the
	// same values.
	exported, err := opt.State()
	require.NoError(t, err)
	fresh, err := g.build(tr, &replayProbes{or: or})
	require.NoError(t, err)
	require.NoError(t, fresh.LoadState(params, exported))
	again, err := fresh.State()
	require.NoError(t, err)
	assert.Equal(t, exported, again, "%s: state after State/LoadState/State", name)
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
	if st.Probe != nil && golden.RelErr(optimtest.FlattenT(v), st.Probe) != 0 {
		return fmt.Errorf("step %d: HVP asked for a vector other than the recorded probe", o.step+1)
	}
	if o.full {
		optimtest.Unflatten(out, golden.MatVec(o.tr.Problem.A, optimtest.FlattenT(v)))
		return nil
	}
	if st.HZ == nil {
		return fmt.Errorf("step %d: HVP query, but the file records no hz there", o.step+1)
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

// sqrtNonNeg is √max(x, 0).
func sqrtNonNeg(x float64) float64 { return math.Sqrt(math.Max(x, 0)) }
