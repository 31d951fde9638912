package adam_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/optim/adam"
	"github.com/curvopt/curvopt/optim/optimtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		name  string
		mod   func(*adam.Config)
		field string
	}{
		{"zero lr", func(c *adam.Config) { c.LR = 0 }, "lr"},
		{"NaN lr", func(c *adam.Config) { c.LR = math.NaN() }, "lr"},
		{"inf lr", func(c *adam.Config) { c.LR = math.Inf(1) }, "lr"},
		{"beta1 = 1", func(c *adam.Config) { c.Beta1 = 1 }, "beta1"},
		{"beta2 < 0", func(c *adam.Config) { c.Beta2 = -0.5 }, "beta2"},
		{"zero eps", func(c *adam.Config) { c.Eps = 0 }, "eps"},
		{"negative weight decay", func(c *adam.Config) { c.WeightDecay = -1 }, "weight_decay"},
	}
	for _, tc := range cases {
		for _, w := range []bool{false, true} {
			c := adam.Default()
			if w {
				c = adam.DefaultW()
			}
			tc.mod(&c)
			_, err := adam.New(c)
			require.Error(t, err, tc.name)
			var he *optim.HyperError
			require.ErrorAs(t, err, &he)
			assert.Equal(t, tc.field, he.Field)
			assert.Contains(t, err.Error(), tc.field)
			assert.Contains(t, err.Error(), map[bool]string{false: "adam", true: "adamw"}[w])
		}
	}
}

func TestDecoupledVersusCoupled(t *testing.T) {
	// One step from θ = 1, g = 0 with weight decay: AdamW only shrinks θ by
	// (1 − η·λ); Adam's L2 term makes the gradient λ·θ, so the first step has
	// size η (Adam's first step is ±η whatever the gradient's scale).
	for _, dec := range []bool{false, true} {
		c := adam.Config{LR: 0.1, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.5, Decoupled: dec}
		opt, err := adam.New(c)
		require.NoError(t, err)
		p := optim.Param{Name: "w", Value: tensor.New(tensor.WithBacking([]float64{1})), Grad: tensor.New(tensor.WithBacking([]float64{0}))}
		require.NoError(t, opt.Step([]optim.Param{p}, nil))
		got := p.Value.Float64s()[0]
		if dec {
			assert.InDelta(t, 1-0.1*0.5, got, 1e-15)
		} else {
			assert.InDelta(t, 1-0.1*0.5/(0.5+1e-8), got, 1e-12)
		}
	}
}

func TestFloat32MatchesFloat64(t *testing.T) {
	q := optimtest.NewQuadratic(rand.New(rand.NewPCG(1, 1)), 0.1, []int{3, 4}, []int{4})
	optimtest.CheckFloat32(t, func() optim.Optimizer {
		o, err := adam.New(adam.DefaultW())
		require.NoError(t, err)
		return o
	}, q, 20, 1e-5)
}

func TestResumeBadInputState(t *testing.T) {
	q := optimtest.NewQuadratic(rand.New(rand.NewPCG(3, 1)), 0.1, []int{2, 3}, []int{3})
	for _, c := range []adam.Config{adam.Default(), adam.DefaultW()} {
		newOpt := func() optim.Optimizer {
			o, err := adam.New(c)
			require.NoError(t, err)
			return o
		}
		for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
			optimtest.CheckResume(t, newOpt, q, dt, 9, 4)
		}
		optimtest.CheckBadGradient(t, newOpt(), q)
		optimtest.CheckStateMismatch(t, newOpt, q)
	}
}

func TestNoAllocationPerStep(t *testing.T) {
	opt, err := adam.New(adam.Default())
	require.NoError(t, err)
	optimtest.CheckNoAllocs(t, opt, optimtest.NewQuadratic(rand.New(rand.NewPCG(4, 1)), 0.1, []int{8, 8}))
}

func BenchmarkStep(b *testing.B) {
	for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
		b.Run(dt.String(), func(b *testing.B) {
			n := 1 << 20
			p := optim.Param{Name: "w", Value: tensor.New(tensor.Of(dt), tensor.WithShape(n)), Grad: tensor.New(tensor.Of(dt), tensor.WithShape(n))}
			opt, _ := adam.New(adam.DefaultW())
			ps := []optim.Param{p}
			_ = opt.Step(ps, nil)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := opt.Step(ps, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestSetLR: a valid rate is taken, an invalid one is refused with the
// configuration unchanged.
func TestSetLR(t *testing.T) {
	o, err := adam.New(adam.Config{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8})
	require.NoError(t, err)
	require.NoError(t, o.SetLR(0.5))
	assert.Equal(t, 0.5, o.Config().LR)
	require.ErrorContains(t, o.SetLR(-1), "lr")
	assert.Equal(t, 0.5, o.Config().LR)
}
