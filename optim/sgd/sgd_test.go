package sgd_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/optim/optimtest"
	"github.com/curvopt/curvopt/optim/sgd"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		name  string
		mod   func(*sgd.Config)
		field string
	}{
		{"zero lr", func(c *sgd.Config) { c.LR = 0 }, "lr"},
		{"negative lr", func(c *sgd.Config) { c.LR = -1 }, "lr"},
		{"NaN lr", func(c *sgd.Config) { c.LR = math.NaN() }, "lr"},
		{"momentum 1", func(c *sgd.Config) { c.Momentum = 1 }, "momentum"},
		{"negative momentum", func(c *sgd.Config) { c.Momentum = -0.1 }, "momentum"},
		{"dampening > 1", func(c *sgd.Config) { c.Dampening = 2 }, "dampening"},
		{"negative weight decay", func(c *sgd.Config) { c.WeightDecay = -1e-4 }, "weight_decay"},
		{"nesterov without momentum", func(c *sgd.Config) { c.Momentum = 0; c.Nesterov = true }, "momentum"},
		{"nesterov with dampening", func(c *sgd.Config) { c.Nesterov = true; c.Dampening = 0.5 }, "dampening"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := sgd.Default()
			tc.mod(&c)
			_, err := sgd.New(c)
			require.Error(t, err)
			var he *optim.HyperError
			require.ErrorAs(t, err, &he)
			assert.Equal(t, tc.field, he.Field)
			assert.Contains(t, err.Error(), tc.field)
		})
	}
}

// TestNesterovDampening checks the update against the formulas written out
// by hand for two steps on one scalar.
func TestNesterovDampening(t *testing.T) {
	for _, nesterov := range []bool{false, true} {
		c := sgd.Config{LR: 0.1, Momentum: 0.9, WeightDecay: 0.01, Nesterov: nesterov}
		if !nesterov {
			c.Dampening = 0.3
		}
		opt, err := sgd.New(c)
		require.NoError(t, err)
		p := optim.Param{Name: "w", Value: tensor.New(tensor.WithBacking([]float64{2})), Grad: tensor.New(tensor.WithBacking([]float64{0.5}))}
		theta, buf := 2.0, 0.0
		for step := 1; step <= 3; step++ {
			g := 0.5 * float64(step)
			p.Grad.Float64s()[0] = g
			require.NoError(t, opt.Step([]optim.Param{p}, nil))
			d := g + c.WeightDecay*theta
			if step == 1 {
				buf = d
			} else {
				buf = c.Momentum*buf + (1-c.Dampening)*d
			}
			s := buf
			if nesterov {
				s = d + c.Momentum*buf
			}
			theta -= c.LR * s
			assert.InDelta(t, theta, p.Value.Float64s()[0], 1e-15, "nesterov=%v step %d", nesterov, step)
		}
	}
}

func TestFloat32MatchesFloat64(t *testing.T) {
	q := optimtest.NewQuadratic(rand.New(rand.NewPCG(1, 1)), 0.1, []int{3, 4}, []int{4})
	optimtest.CheckFloat32(t, func() optim.Optimizer {
		o, err := sgd.New(sgd.Config{LR: 0.05, Momentum: 0.9, WeightDecay: 1e-3, Nesterov: true})
		require.NoError(t, err)
		return o
	}, q, 20, 1e-5)
}

func TestResumeBadInputState(t *testing.T) {
	q := optimtest.NewQuadratic(rand.New(rand.NewPCG(3, 1)), 0.1, []int{2, 3}, []int{3})
	newOpt := func() optim.Optimizer {
		o, err := sgd.New(sgd.Config{LR: 0.05, Momentum: 0.9, Dampening: 0.1})
		require.NoError(t, err)
		return o
	}
	for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
		optimtest.CheckResume(t, newOpt, q, dt, 9, 4)
	}
	optimtest.CheckBadGradient(t, newOpt(), q)
	optimtest.CheckStateMismatch(t, newOpt, q)
}

func TestNoAllocationPerStep(t *testing.T) {
	opt, err := sgd.New(sgd.Default())
	require.NoError(t, err)
	optimtest.CheckNoAllocs(t, opt, optimtest.NewQuadratic(rand.New(rand.NewPCG(4, 1)), 0.1, []int{8, 8}))
}

// TestSetLR: a valid rate is taken, an invalid one is refused with the
// configuration unchanged.
func TestSetLR(t *testing.T) {
	o, err := sgd.New(sgd.Config{LR: 0.1, Momentum: 0.9})
	require.NoError(t, err)
	require.NoError(t, o.SetLR(0.5))
	assert.Equal(t, 0.5, o.Config().LR)
	require.ErrorContains(t, o.SetLR(math.NaN()), "lr")
	assert.Equal(t, 0.5, o.Config().LR)
}
