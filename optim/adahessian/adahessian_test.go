package adahessian_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/optim/adahessian"
	"github.com/curvopt/curvopt/optim/optimtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

func param(name string, dt tensor.Dtype, shape []int, val, grad []float64) optim.Param {
	p := optim.Param{
		Name:  name,
		Value: tensor.New(tensor.Of(dt), tensor.WithShape(shape...)),
		Grad:  tensor.New(tensor.Of(dt), tensor.WithShape(shape...)),
	}
	optimtest.Unflatten([]*tensor.Dense{p.Value}, val)
	optimtest.Unflatten([]*tensor.Dense{p.Grad}, grad)
	return p
}

func seq(n int, f func(int) float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = f(i)
	}
	return out
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name, field, value string
		edit               func(*adahessian.Config)
	}{
		{"lr zero", "lr", "0", func(c *adahessian.Config) { c.LR = 0 }},
		{"lr NaN", "lr", "NaN", func(c *adahessian.Config) { c.LR = math.NaN() }},
		{"beta1", "beta1", "1", func(c *adahessian.Config) { c.Beta1 = 1 }},
		{"beta2", "beta2", "-0.5", func(c *adahessian.Config) { c.Beta2 = -0.5 }},
		{"eps", "eps", "0", func(c *adahessian.Config) { c.Eps = 0 }},
		{"wd", "weight_decay", "-1", func(c *adahessian.Config) { c.WeightDecay = -1 }},
		{"power zero", "hessian_power", "0", func(c *adahessian.Config) { c.HessianPower = 0 }},
		{"power big", "hessian_power", "1.5", func(c *adahessian.Config) { c.HessianPower = 1.5 }},
		{"interval", "hessian_interval", "0", func(c *adahessian.Config) { c.Interval = 0 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := adahessian.Default()
			tc.edit(&c)
			_, err := adahessian.New(c)
			var he *optim.HyperError
			require.ErrorAs(t, err, &he)
			assert.Equal(t, tc.field, he.Field)
			assert.Contains(t, err.Error(), tc.value)
		})
	}
	a, err := adahessian.New(adahessian.Default())
	require.NoError(t, err)
	assert.Equal(t, optim.Needs{HVP: true}, a.Needs())
	assert.Error(t, a.SetLR(-1))
	assert.NoError(t, a.SetLR(0.1))
	var _ optim.Requester = a
}

func TestBlockSize(t *testing.T) {
	for _, tc := range []struct {
		shape []int
		want  int
	}{{[]int{5}, 1}, {[]int{4, 3}, 1}, {[]int{2, 3, 5}, 5}, {[]int{2, 3, 3, 3}, 9}, {[]int{2, 1, 2, 3, 3}, 18}} {
		assert.Equal(t, tc.want, adahessian.BlockSize(tc.shape), "%v", tc.shape)
	}
}

// TestSpatialAveraging: with a diagonal Hessian and Rademacher probes,
// D = |diag| averaged over each block; after one step v = (1−β2)·D⊙D.
func TestSpatialAveraging(t *testing.T) {
	shapes := [][]int{{2, 2, 3}, {2, 1, 2, 2}, {3, 2}, {4}}
	var diag [][]float64
	var ps []optim.Param
	for i, s := range shapes {
		n := 1
		for _, d := range s {
			n *= d
		}
		d := seq(n, func(j int) float64 { return float64((j*5+i)%7) - 3 })
		diag = append(diag, d)
		ps = append(ps, param(string(rune('a'+i)), tensor.Float64, s, make([]float64, n), seq(n, func(j int) float64 { return 1 })))
	}
	c := adahessian.Default()
	a, _ := adahessian.New(c)
	require.NoError(t, a.Step(ps, optimtest.NewDiagOracle(diag, nil)))
	st, _ := a.State()
	for i, p := range ps {
		b := adahessian.BlockSize(p.Value.Shape())
		v := st.Find(p.Name, "exp_hessian_diag_sq").Float64s()
		for s := 0; s < len(v); s += b {
			mean := 0.0
			for j := s; j < s+b; j++ {
				mean += math.Abs(diag[i][j])
			}
			mean /= float64(b)
			for j := s; j < s+b; j++ {
				assert.InDelta(t, (1-c.Beta2)*mean*mean, v[j], 1e-15, "param %s entry %d", p.Name, j)
			}
		}
	}
}

// TestUpdateFormula checks two steps against the formula, with weight decay
// and Hessian power 0.5, and the refresh interval (v's EMA keeps advancing
// with the reused D).
func TestUpdateFormula(t *testing.T) {
	c := adahessian.Config{LR: 0.1, Beta1: 0.8, Beta2: 0.9, Eps: 1e-3, WeightDecay: 0.05, HessianPower: 0.5, Interval: 2}
	a, err := adahessian.New(c)
	require.NoError(t, err)
	diag := [][]float64{{2, -4, 0.5}}
	o := optimtest.NewDiagOracle(diag, nil)
	g := []float64{0.5, 0.25, -1}
	ps := []optim.Param{param("w", tensor.Float64, []int{3}, []float64{1, -1, 2}, g)}
	theta, m, v := []float64{1, -1, 2}, make([]float64, 3), make([]float64, 3)
	for step := 1; step <= 4; step++ {
		require.NoError(t, a.Step(ps, o))
		assert.Equal(t, (step+1)/2, o.HVPs, "HVP only on steps 1, 3")
		for j := range theta {
			d := math.Abs(diag[0][j])
			m[j] = c.Beta1*m[j] + (1-c.Beta1)*g[j]
			v[j] = c.Beta2*v[j] + (1-c.Beta2)*d*d
			bc1 := 1 - math.Pow(c.Beta1, float64(step))
			bc2 := 1 - math.Pow(c.Beta2, float64(step))
			den := math.Pow(math.Sqrt(v[j]), 0.5)/math.Pow(math.Sqrt(bc2), 0.5) + c.Eps
			theta[j] -= c.LR * (m[j]/bc1/den + c.WeightDecay*theta[j])
		}
		assert.InDeltaSlice(t, theta, ps[0].Value.Float64s(), 1e-14, "step %d", step)
	}
}

func TestOracleErrors(t *testing.T) {
	mk := func() (*adahessian.AdaHessian, []optim.Param) {
		a, _ := adahessian.New(adahessian.Default())
		return a, []optim.Param{param("w", tensor.Float64, []int{2}, []float64{1, 2}, []float64{1, 1})}
	}
	for _, o := range []optim.Oracle{nil, optim.NoCurvature{}} {
		a, ps := mk()
		err := a.Step(ps, o)
		require.Error(t, err)
		assert.ErrorIs(t, err, optim.ErrNotProvided)
		assert.Contains(t, err.Error(), "HVP")
		assert.Equal(t, []float64{1, 2}, ps[0].Value.Float64s())
	}
	a, ps := mk()
	o := optimtest.NewDiagOracle([][]float64{{1, 1}}, nil)
	o.HVPErr = optimtest.ErrTestNotProvided
	err := a.Step(ps, o)
	assert.ErrorIs(t, err, optim.ErrNotProvided)
	assert.Equal(t, []float64{1, 2}, ps[0].Value.Float64s())
	assert.Zero(t, a.Steps())

	o.HVPErr, o.NaNAt = nil, 1
	err = a.Step(ps, o)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"w"`)
	assert.Equal(t, []float64{1, 2}, ps[0].Value.Float64s())
	assert.Zero(t, a.Steps())
	o.NaNAt = -1
	require.NoError(t, a.Step(ps, o))
}

func TestBadGradientAndStateMismatch(t *testing.T) {
	q := optimtest.NewQuadratic(rand.New(rand.NewPCG(1, 2)), 0.1, []int{2, 1, 2, 2}, []int{4})
	newOpt := func() optim.Optimizer {
		a, _ := adahessian.New(adahessian.Default())
		return a
	}
	optimtest.CheckBadGradient(t, newOpt(), q)
	optimtest.CheckStateMismatch(t, newOpt, q)
}

func TestResumeBitIdentical(t *testing.T) {
	for _, interval := range []int{1, 3} {
		q := optimtest.NewQuadratic(rand.New(rand.NewPCG(5, 6)), -0.1, []int{2, 2, 3}, []int{2, 1, 2, 2}, []int{3})
		newOpt := func() optim.Optimizer {
			c := adahessian.Default()
			c.Interval, c.Seed, c.WeightDecay, c.LR = interval, 11, 1e-3, 0.05
			a, _ := adahessian.New(c)
			return a
		}
		for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
			optimtest.CheckResume(t, newOpt, q, dt, 10, 4)
		}
	}
}

func TestFloat32MatchesFloat64(t *testing.T) {
	q := optimtest.NewQuadratic(rand.New(rand.NewPCG(3, 4)), 0.5, []int{2, 1, 3}, []int{4})
	var res [2][]float64
	for i, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		c := adahessian.Default()
		c.LR, c.Seed = 0.05, 1
		a, _ := adahessian.New(c)
		ps := q.Params(dt, rand.New(rand.NewPCG(9, 9)))
		for k := 0; k < 15; k++ {
			q.Grad(ps)
			require.NoError(t, a.Step(ps, q))
		}
		res[i] = optimtest.Flatten(ps)
	}
	for j := range res[0] {
		assert.InDelta(t, res[0][j], res[1][j], 1e-5*(1+math.Abs(res[0][j])), "entry %d", j)
	}
}

func TestNoAllocationPerStep(t *testing.T) {
	for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
		for _, power := range []float64{1, 0.5} {
			c := adahessian.Default()
			c.HessianPower, c.Probes = power, optim.NewRandomProbes(optim.Rademacher, 1)
			a, _ := adahessian.New(c)
			o := optimtest.NewDiagOracle([][]float64{seq(12, func(j int) float64 { return float64(j) }), {5, 6}}, nil)
			ps := []optim.Param{
				param("conv", dt, []int{2, 2, 3}, seq(12, func(j int) float64 { return 1 }), seq(12, func(j int) float64 { return float64(j%3) - 1 })),
				param("b", dt, []int{2}, []float64{1, 2}, []float64{1, -1}),
			}
			require.NoError(t, a.Step(ps, o))
			assert.Zero(t, testing.AllocsPerRun(20, func() { _ = a.Step(ps, o) }), "%v power %v", dt, power)
		}
	}
}

func BenchmarkStep(b *testing.B) {
	const n = 1 << 20
	for _, power := range []float64{1, 0.5} {
		b.Run("float32/power"+map[float64]string{1: "1", 0.5: "0.5"}[power], func(b *testing.B) {
			c := adahessian.Default()
			c.HessianPower = power
			a, _ := adahessian.New(c)
			ps := []optim.Param{param("w", tensor.Float32, []int{n / 9, 1, 3, 3}, make([]float64, n/9*9), seq(n/9*9, func(j int) float64 { return float64(j%7) - 3 }))}
			o := nopOracle{}
			if err := a.Step(ps, o); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := a.Step(ps, o); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// nopOracle leaves out as it is (zeros), without work or allocation.
type nopOracle struct{}

func (nopOracle) HVP(v, out []*tensor.Dense) error      { return nil }
func (nopOracle) SampledGrad(out []*tensor.Dense) error { return nil }
