package sophia_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/optim/optimtest"
	"github.com/curvopt/curvopt/optim/sophia"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

// param makes a parameter of dtype dt with the given values and gradient.
func param(name string, dt tensor.Dtype, val, grad []float64) optim.Param {
	p := optim.Param{
		Name:  name,
		Value: tensor.New(tensor.Of(dt), tensor.WithShape(len(val))),
		Grad:  tensor.New(tensor.Of(dt), tensor.WithShape(len(val))),
	}
	optimtest.Unflatten([]*tensor.Dense{p.Value}, val)
	optimtest.Unflatten([]*tensor.Dense{p.Grad}, grad)
	return p
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*sophia.Config)
		field string
		value string
	}{
		{"lr zero", func(c *sophia.Config) { c.LR = 0 }, "lr", "0"},
		{"lr negative", func(c *sophia.Config) { c.LR = -1 }, "lr", "-1"},
		{"lr NaN", func(c *sophia.Config) { c.LR = math.NaN() }, "lr", "NaN"},
		{"beta1 one", func(c *sophia.Config) { c.Beta1 = 1 }, "beta1", "1"},
		{"beta2 negative", func(c *sophia.Config) { c.Beta2 = -0.1 }, "beta2", "-0.1"},
		{"rho zero", func(c *sophia.Config) { c.Rho = 0 }, "rho", "0"},
		{"rho negative", func(c *sophia.Config) { c.Rho = -0.04 }, "rho", "-0.04"},
		{"bs zero", func(c *sophia.Config) { c.BatchSize = 0 }, "bs", "0"},
		{"bs negative", func(c *sophia.Config) { c.BatchSize = -5 }, "bs", "-5"},
		{"k zero", func(c *sophia.Config) { c.Interval = 0 }, "hessian_interval", "0"},
		{"k negative", func(c *sophia.Config) { c.Interval = -3 }, "hessian_interval", "-3"},
		{"eps zero", func(c *sophia.Config) { c.Eps = 0 }, "eps", "0"},
		{"wd negative", func(c *sophia.Config) { c.WeightDecay = -0.1 }, "weight_decay", "-0.1"},
		{"estimator", func(c *sophia.Config) { c.Estimator = 7 }, "estimator", "7"},
	}
	for _, tc := range tests {
		for _, base := range []sophia.Config{sophia.DefaultG(), sophia.DefaultH()} {
			t.Run(tc.name, func(t *testing.T) {
				c := base
				tc.edit(&c)
				_, err := sophia.New(c)
				require.Error(t, err)
				var he *optim.HyperError
				require.ErrorAs(t, err, &he)
				assert.Equal(t, tc.field, he.Field)
				assert.Contains(t, err.Error(), tc.field)
				assert.Contains(t, err.Error(), tc.value)
			})
		}
	}
	for _, c := range []sophia.Config{sophia.DefaultG(), sophia.DefaultH()} {
		_, err := sophia.New(c)
		assert.NoError(t, err)
	}
	s, err := sophia.New(sophia.DefaultG())
	require.NoError(t, err)
	assert.Error(t, s.SetLR(0))
	assert.Equal(t, 1e-4, s.Config().LR)
	assert.NoError(t, s.SetLR(3e-4))
	assert.Equal(t, 3e-4, s.Config().LR)
}

func TestNeedsAndName(t *testing.T) {
	g, _ := sophia.New(sophia.DefaultG())
	h, _ := sophia.New(sophia.DefaultH())
	assert.Equal(t, "sophiag", g.Name())
	assert.Equal(t, "sophiah", h.Name())
	assert.Equal(t, optim.Needs{SampledGrad: true}, g.Needs())
	assert.Equal(t, optim.Needs{HVP: true}, h.Needs())
	var _ optim.Optimizer = g
	var _ optim.Requester = g
	var _ optim.Diagnostics = g
}

// TestGNBSchedule checks on a diagonal problem that SophiaG queries the
// sampled gradient after steps k, 2k, ... at the updated θ, and that the
// update matches the formula.
func TestGNBSchedule(t *testing.T) {
	c := sophia.Config{Estimator: sophia.GNB, LR: 0.1, Beta1: 0.5, Beta2: 0.9, Rho: 0.5, WeightDecay: 0.2, BatchSize: 2, Interval: 3, Eps: 1e-15}
	s, err := sophia.New(c)
	require.NoError(t, err)
	o := optimtest.NewDiagOracle(nil, [][]float64{{2, -1}})
	ps := []optim.Param{param("w", tensor.Float64, []float64{1, -1}, []float64{0.3, -0.2})}
	theta := []float64{1, -1}
	m, h := []float64{0, 0}, []float64{0, 0}
	g := []float64{0.3, -0.2}
	for step := 1; step <= 7; step++ {
		require.NoError(t, s.Step(ps, o))
		for j := range theta {
			theta[j] *= 1 - c.LR*c.WeightDecay
			m[j] = c.Beta1*m[j] + (1-c.Beta1)*g[j]
			r := math.Min(math.Abs(m[j])/(c.Rho*float64(c.BatchSize)*h[j]+c.Eps), 1)
			sgn := math.Copysign(1, m[j])
			theta[j] -= c.LR * sgn * r
		}
		if step%3 == 0 {
			for j := range h {
				h[j] = c.Beta2*h[j] + (1-c.Beta2)*o.SG[0][j]*o.SG[0][j]
			}
		}
		assert.Equal(t, step/3, o.SGs, "step %d: sampled-gradient queries", step)
		assert.InDeltaSlice(t, theta, ps[0].Value.Float64s(), 1e-15, "step %d", step)
		st, err := s.State()
		require.NoError(t, err)
		assert.InDeltaSlice(t, h, st.Find("w", "hessian").Float64s(), 1e-15)
		assert.InDeltaSlice(t, m, st.Find("w", "exp_avg").Float64s(), 1e-15)
	}
}

// TestNegativeCurvatureClip: on a Hessian with negative and zero diagonal
// entries the Hutchinson h goes negative; every coordinate must then move by
// exactly the full sign step lr·sign(m), never more (Sophia#34).
func TestNegativeCurvatureClip(t *testing.T) {
	c := sophia.DefaultH()
	c.LR, c.WeightDecay, c.Rho, c.Probe, c.Interval = 0.01, 0, 0.04, optim.Rademacher, 1
	s, err := sophia.New(c)
	require.NoError(t, err)
	diag := [][]float64{{-3, -0.5, 0, 2}}
	o := optimtest.NewDiagOracle(diag, nil)
	g := []float64{0.7, -0.2, 0.1, 1e-3}
	ps := []optim.Param{param("w", tensor.Float64, []float64{0, 0, 0, 0}, g)}
	require.NoError(t, s.Step(ps, o))
	st, _ := s.State()
	h := st.Find("w", "hessian").Float64s()
	assert.Less(t, h[0], 0.0)
	assert.Less(t, h[1], 0.0)
	got := ps[0].Value.Float64s()
	for j := 0; j < 3; j++ {
		assert.Equal(t, -c.LR*math.Copysign(1, g[j]), got[j], "coordinate %d (h = %v) must take the full sign step", j, h[j])
	}
	// Positive curvature: the clipped Newton-like step m/(ρ·bs·h) < lr.
	m3 := (1 - c.Beta1) * g[3]
	want := -c.LR * m3 / (c.Rho*float64(c.BatchSize)*h[3] + c.Eps)
	assert.InDelta(t, want, got[3], 1e-18)
	assert.Less(t, math.Abs(got[3]), c.LR)
	// One unclipped coordinate of four.
	assert.Equal(t, 0.25, s.WinRate())
	// Many steps on a concave problem: no step ever exceeds lr.
	for i := 0; i < 20; i++ {
		before := append([]float64(nil), got...)
		require.NoError(t, s.Step(ps, o))
		for j := range got {
			assert.LessOrEqual(t, math.Abs(got[j]-before[j]), c.LR*(1+1e-12))
		}
	}
}

// TestWinRate crafts h and m: with β1 = 0, m = g; with β2 = 0 and k = 1, h
// after step 1 is ĝ⊙ĝ.
func TestWinRate(t *testing.T) {
	c := sophia.Config{Estimator: sophia.GNB, LR: 0.1, Beta1: 0, Beta2: 0, Rho: 0.5, BatchSize: 2, Interval: 1, Eps: 1e-15}
	s, err := sophia.New(c)
	require.NoError(t, err)
	assert.Equal(t, 0.0, s.WinRate())
	o := optimtest.NewDiagOracle(nil, [][]float64{{1, 1, 1, 1}, {2, 0.5}})
	ps := []optim.Param{
		param("a", tensor.Float64, make([]float64, 4), []float64{1, 1, 1, 1}),
		param("b", tensor.Float64, make([]float64, 2), []float64{1, 1}),
	}
	require.NoError(t, s.Step(ps, o))
	assert.Equal(t, 0.0, s.WinRate(), "h = 0 on the first step: everything clipped")
	// ρ·bs·h = [1 1 1 1], [4 0.25].
	optimtest.Unflatten([]*tensor.Dense{ps[0].Grad, ps[1].Grad}, []float64{0.5, 2, -0.5, 0, 3, 0.3})
	require.NoError(t, s.Step(ps, o))
	// unclipped: 0.5, −0.5, 0 (of a) and 3 (of b): 4 of 6.
	assert.InDelta(t, 4.0/6, s.WinRate(), 1e-15)
	assert.Equal(t, map[string]float64{"win_rate": s.WinRate()}, s.Diagnostics())
}

func TestOracleErrors(t *testing.T) {
	for _, est := range []sophia.Estimator{sophia.GNB, sophia.Hutchinson} {
		c := sophia.DefaultG()
		c.Estimator, c.Interval = est, 1
		mk := func() (*sophia.Sophia, []optim.Param) {
			s, err := sophia.New(c)
			require.NoError(t, err)
			return s, []optim.Param{param("w", tensor.Float64, []float64{1, 2}, []float64{0.5, -0.5})}
		}
		what := map[sophia.Estimator]string{sophia.GNB: "SampledGrad", sophia.Hutchinson: "HVP"}[est]
		t.Run(est.String()+"/nil", func(t *testing.T) {
			for _, o := range []optim.Oracle{nil, optim.NoCurvature{}} {
				s, ps := mk()
				err := s.Step(ps, o)
				require.Error(t, err)
				assert.ErrorIs(t, err, optim.ErrNotProvided)
				assert.Contains(t, err.Error(), what)
				assert.Equal(t, []float64{1, 2}, ps[0].Value.Float64s())
				assert.Zero(t, s.Steps())
			}
		})
		t.Run(est.String()+"/not provided", func(t *testing.T) {
			s, ps := mk()
			o := optimtest.NewDiagOracle([][]float64{{1, 1}}, [][]float64{{1, 1}})
			o.HVPErr, o.SGErr = optimtest.ErrTestNotProvided, optimtest.ErrTestNotProvided
			err := s.Step(ps, o)
			require.Error(t, err)
			assert.ErrorIs(t, err, optim.ErrNotProvided)
			assert.Contains(t, err.Error(), what)
			st, _ := s.State()
			if est == sophia.Hutchinson {
				assert.Equal(t, []float64{1, 2}, ps[0].Value.Float64s(), "SophiaH queries before the update")
				assert.Zero(t, s.Steps())
			} else {
				assert.Equal(t, int64(1), s.Steps(), "SophiaG queries after the update")
				assert.Equal(t, []float64{0, 0}, st.Find("w", "hessian").Float64s(), "h untouched")
			}
		})
		t.Run(est.String()+"/non-finite", func(t *testing.T) {
			s, ps := mk()
			o := optimtest.NewDiagOracle([][]float64{{1, 1}}, [][]float64{{1, 1}})
			require.NoError(t, s.Step(ps, o))
			before, _ := s.State()
			theta := append([]float64(nil), ps[0].Value.Float64s()...)
			o.NaNAt = 1
			err := s.Step(ps, o)
			require.Error(t, err)
			assert.Contains(t, err.Error(), `"w"`)
			after, _ := s.State()
			assert.Equal(t, before.Find("w", "hessian").Float64s(), after.Find("w", "hessian").Float64s(), "h must not change")
			for _, x := range after.Find("w", "exp_avg").Float64s() {
				assert.False(t, math.IsNaN(x))
			}
			if est == sophia.Hutchinson {
				assert.Equal(t, theta, ps[0].Value.Float64s())
				assert.Equal(t, before.Find("w", "exp_avg").Float64s(), after.Find("w", "exp_avg").Float64s())
				// The kept probe is reused on retry.
				o.NaNAt = -1
				v := o.LastV[0].Float64s()
				probe := append([]float64(nil), v...)
				require.NoError(t, s.Step(ps, o))
				assert.Equal(t, probe, o.LastV[0].Float64s())
			}
		})
	}
	// A huge (finite) sampled gradient would overflow h: refused, h unchanged.
	c := sophia.DefaultG()
	c.Interval = 1
	s, _ := sophia.New(c)
	ps := []optim.Param{param("w", tensor.Float32, []float64{1}, []float64{1})}
	err := s.Step(ps, optimtest.NewDiagOracle(nil, [][]float64{{1e30}}))
	require.Error(t, err)
	st, _ := s.State()
	assert.Equal(t, []float64{0}, st.Find("w", "hessian").Float64s())
	assert.Contains(t, err.Error(), `"w"`)
}

func TestBadGradientAndStateMismatch(t *testing.T) {
	for _, est := range []sophia.Estimator{sophia.GNB, sophia.Hutchinson} {
		q := optimtest.NewQuadratic(rand.New(rand.NewPCG(1, 2)), 0.1, []int{3, 2}, []int{4})
		newOpt := func() optim.Optimizer {
			c := sophia.DefaultG()
			c.Estimator, c.Interval, c.LR = est, 2, 1e-2
			s, err := sophia.New(c)
			require.NoError(t, err)
			return s
		}
		optimtest.CheckBadGradient(t, newOpt(), q)
		optimtest.CheckStateMismatch(t, newOpt, q)
	}
}

func TestResumeBitIdentical(t *testing.T) {
	for _, est := range []sophia.Estimator{sophia.GNB, sophia.Hutchinson} {
		for _, kind := range []optim.ProbeKind{optim.Gaussian, optim.Rademacher} {
			q := optimtest.NewQuadratic(rand.New(rand.NewPCG(7, 8)), -0.2, []int{2, 3, 2}, []int{5})
			newOpt := func() optim.Optimizer {
				c := sophia.DefaultG()
				c.Estimator, c.Interval, c.LR, c.BatchSize, c.Probe, c.Seed = est, 3, 1e-2, 8, kind, 42
				s, err := sophia.New(c)
				require.NoError(t, err)
				return s
			}
			for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
				optimtest.CheckResume(t, newOpt, q, dt, 11, 5)
			}
		}
	}
}

func TestProbeBlob(t *testing.T) {
	c := sophia.DefaultH()
	s, _ := sophia.New(c)
	q := optimtest.NewQuadratic(rand.New(rand.NewPCG(1, 1)), 0.1, []int{4})
	ps := q.Params(tensor.Float64, rand.New(rand.NewPCG(2, 2)))
	q.Grad(ps)
	require.NoError(t, s.Step(ps, q))
	st, err := s.State()
	require.NoError(t, err)
	require.Contains(t, st.Blobs, "probes")

	// A probe source that cannot restore state refuses the blob.
	c.Probes = constProbes{}
	other, _ := sophia.New(c)
	err = other.LoadState(ps, st)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "probe")

	// A restorable source refuses a state without the blob.
	delete(st.Blobs, "probes")
	fresh, _ := sophia.New(sophia.DefaultH())
	assert.Error(t, fresh.LoadState(ps, st))
}

type constProbes struct{}

func (constProbes) Fill(out []*tensor.Dense) error {
	for _, t := range out {
		optimtest.Unflatten([]*tensor.Dense{t}, make([]float64, t.Shape().TotalSize()))
	}
	return nil
}

// TestRequest: Request returns the probe the coming Step needs H·u for,
// the same one when called twice, and nil on steps without an HVP query; an
// answered request is used as data (no oracle query), an unanswered one is
// queried from the oracle.
func TestRequest(t *testing.T) {
	c := sophia.DefaultH()
	c.Interval = 2
	s, _ := sophia.New(c)
	o := optimtest.NewDiagOracle([][]float64{{1, 2, 3}}, nil)
	ps := []optim.Param{param("w", tensor.Float64, []float64{1, 2, 3}, []float64{1, 1, 1})}
	for step := 1; step <= 4; step++ {
		r, err := s.Request(ps)
		require.NoError(t, err)
		if step%2 == 0 {
			assert.Nil(t, r, "step %d", step)
			require.NoError(t, s.Step(ps, o))
			assert.Equal(t, (step+1)/2, o.HVPs)
			continue
		}
		require.Len(t, r.V, 1)
		want := append([]float64(nil), r.V[0].Float64s()...)
		r2, err := s.Request(ps)
		require.NoError(t, err)
		assert.Equal(t, want, r2.V[0].Float64s(), "drawn once")
		require.NoError(t, s.Step(ps, o))
		assert.Equal(t, want, o.LastV[0].Float64s())
	}
	g, _ := sophia.New(sophia.DefaultG())
	r, err := g.Request(ps)
	assert.NoError(t, err)
	assert.Nil(t, r)

	// Answered: Step uses Out and makes no query; the estimate is u⊙Out.
	s, _ = sophia.New(c)
	o = optimtest.NewDiagOracle([][]float64{{1, 2, 3}}, nil)
	r, err = s.Request(ps)
	require.NoError(t, err)
	u := append([]float64(nil), r.V[0].Float64s()...)
	copy(r.Out[0].Float64s(), []float64{5, 7, 11})
	r.Answer()
	require.NoError(t, s.Step(ps, o))
	assert.Zero(t, o.HVPs, "an answered request must not query the oracle")
	st, _ := s.State()
	h := st.Find("w", "hessian").Float64s()
	for j, hz := range []float64{5, 7, 11} {
		assert.InDelta(t, (1-c.Beta2)*u[j]*hz, h[j], 1e-15, "entry %d", j)
	}
}

// TestFloat32MatchesFloat64 runs the same problem in both dtypes.
func TestFloat32MatchesFloat64(t *testing.T) {
	for _, est := range []sophia.Estimator{sophia.GNB, sophia.Hutchinson} {
		q := optimtest.NewQuadratic(rand.New(rand.NewPCG(3, 3)), 0.5, []int{3, 3}, []int{3})
		var res [2][]float64
		for i, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
			c := sophia.DefaultG()
			c.Estimator, c.Interval, c.LR, c.BatchSize, c.Probe = est, 2, 1e-2, 1, optim.Rademacher
			s, _ := sophia.New(c)
			ps := q.Params(dt, rand.New(rand.NewPCG(9, 9)))
			for k := 0; k < 15; k++ {
				q.Grad(ps)
				require.NoError(t, s.Step(ps, q))
			}
			res[i] = optimtest.Flatten(ps)
		}
		scale := 0.0
		for _, x := range res[0] {
			scale = math.Max(scale, math.Abs(x))
		}
		for j := range res[0] {
			assert.InDelta(t, res[0][j], res[1][j], 1e-5*scale, "%v entry %d", est, j)
		}
	}
}

// TestNoAllocationPerStep covers the update and the refresh (k = 1), with
// the default probe source (optim.RandomProbes, whose Fill does not
// allocate).
func TestNoAllocationPerStep(t *testing.T) {
	for _, est := range []sophia.Estimator{sophia.GNB, sophia.Hutchinson} {
		for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
			c := sophia.DefaultG()
			c.Estimator, c.Interval, c.Probes = est, 1, optim.NewRandomProbes(optim.Rademacher, 1)
			s, _ := sophia.New(c)
			o := optimtest.NewDiagOracle([][]float64{{1, 2, 3, 4}, {5, 6}}, [][]float64{{1, 2, 3, 4}, {5, 6}})
			ps := []optim.Param{
				param("a", dt, []float64{1, 2, 3, 4}, []float64{1, -1, 1, -1}),
				param("b", dt, []float64{1, 2}, []float64{1, -1}),
			}
			require.NoError(t, s.Step(ps, o))
			allocs := testing.AllocsPerRun(20, func() { _ = s.Step(ps, o) })
			assert.Zero(t, allocs, "%v %v", est, dt)
		}
	}
}

// twos is a probe source that draws z = 2 everywhere.
type twos struct{}

func (twos) Fill(out []*tensor.Dense) error {
	for _, o := range out {
		optimtest.Unflatten([]*tensor.Dense{o}, []float64{2, 2})
	}
	return nil
}

// TestHutchinsonEstimateOverflow: in float32, H·z = 2e38 is finite but
// z⊙(H·z) = 4e38 is not; SophiaH refuses the step with ErrNonFinite naming
// the parameter and the Hessian EMA, and nothing changes (h stays finite).
func TestHutchinsonEstimateOverflow(t *testing.T) {
	c := sophia.DefaultH()
	c.Probes, c.Interval = twos{}, 1
	s, err := sophia.New(c)
	require.NoError(t, err)
	ps := []optim.Param{param("w", tensor.Float32, []float64{1, -1}, []float64{0.5, -0.5})}
	o := optimtest.NewDiagOracle([][]float64{{1, 1}}, nil)
	require.NoError(t, s.Step(ps, o))
	before, err := s.State()
	require.NoError(t, err)
	theta := append([]float32(nil), ps[0].Value.Float32s()...)
	o.Diag = [][]float64{{1e38, 1}}
	err = s.Step(ps, o)
	require.ErrorIs(t, err, optim.ErrNonFinite)
	assert.Contains(t, err.Error(), `"w"`)
	assert.Contains(t, err.Error(), "Hessian EMA")
	after, err := s.State()
	require.NoError(t, err)
	assert.Equal(t, before, after)
	assert.Equal(t, theta, ps[0].Value.Float32s())
}
