package optim_test

import (
	"math"
	"testing"

	"github.com/curvopt/curvopt/optim"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

func TestRandomProbesDeterministicAndResumable(t *testing.T) {
	for _, kind := range []optim.ProbeKind{optim.Rademacher, optim.Gaussian} {
		mk := func() []*tensor.Dense {
			return []*tensor.Dense{tensor.New(tensor.Of(tensor.Float64), tensor.WithShape(100)), tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(3, 5))}
		}
		a, b := optim.NewRandomProbes(kind, 7), optim.NewRandomProbes(kind, 7)
		x, y := mk(), mk()
		require.NoError(t, a.Fill(x))
		require.NoError(t, b.Fill(y))
		assert.Equal(t, x[0].Float64s(), y[0].Float64s())
		assert.Equal(t, x[1].Float32s(), y[1].Float32s())

		saved, err := a.MarshalBinary()
		require.NoError(t, err)
		require.NoError(t, a.Fill(x))
		c := optim.NewRandomProbes(kind, 99)
		require.NoError(t, c.UnmarshalBinary(saved))
		require.NoError(t, c.Fill(y))
		assert.Equal(t, x[0].Float64s(), y[0].Float64s(), "restored source draws the same probe")

		if kind == optim.Rademacher {
			sum := 0.0
			for _, v := range x[0].Float64s() {
				require.True(t, v == 1 || v == -1)
				sum += v
			}
			assert.Less(t, math.Abs(sum), 40.0)
		}
	}
}

func TestCheckParams(t *testing.T) {
	v := tensor.New(tensor.Of(tensor.Float64), tensor.WithShape(2, 2))
	cases := []struct {
		name string
		p    optim.Param
		want string
	}{
		{"nil grad", optim.Param{Name: "w", Value: v}, "nil gradient"},
		{"shape", optim.Param{Name: "w", Value: v, Grad: tensor.New(tensor.Of(tensor.Float64), tensor.WithShape(4))}, "shape"},
		{"dtype", optim.Param{Name: "w", Value: v, Grad: tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(2, 2))}, "dtype"},
		{"inf", optim.Param{Name: "w", Value: v, Grad: tensor.New(tensor.WithShape(2, 2), tensor.WithBacking([]float64{0, math.Inf(1), 0, 0}))}, "entry 1"},
		{"int", optim.Param{Name: "w", Value: tensor.New(tensor.Of(tensor.Int), tensor.WithShape(2)), Grad: tensor.New(tensor.Of(tensor.Int), tensor.WithShape(2))}, "dtype"},
	}
	for _, tc := range cases {
		err := optim.CheckParams("x", []optim.Param{tc.p})
		require.Error(t, err, tc.name)
		assert.Contains(t, err.Error(), `"w"`, tc.name)
		assert.Contains(t, err.Error(), tc.want, tc.name)
	}
	require.NoError(t, optim.CheckParams("x", []optim.Param{{Name: "s", Value: tensor.New(tensor.FromScalar(1.0)), Grad: tensor.New(tensor.FromScalar(2.0))}}))
	require.Error(t, optim.CheckParams("x", nil))
}

func TestValidator(t *testing.T) {
	v := optim.Validator{Optimizer: "demo"}
	v.Positive("lr", 0.1)
	v.Unit("beta", 0.5)
	require.NoError(t, v.Err())
	v.PowerInterval("power", 1.5)
	v.Positive("lr", -1) // only the first failure is kept
	err := v.Err()
	require.Error(t, err)
	assert.Equal(t, "demo: invalid power = 1.5: must be in (0, 1]", err.Error())
}

func TestStateImportMismatch(t *testing.T) {
	p := []optim.Param{{Name: "w", Value: tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(2, 3))}}
	var s optim.State
	s.ExportSlot("m", p, []*tensor.Dense{tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(2, 3))})
	_, err := s.ImportSlot("x", "m", p)
	require.NoError(t, err)

	other := []optim.Param{{Name: "w", Value: tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(3, 2))}}
	_, err = s.ImportSlot("x", "m", other)
	require.ErrorContains(t, err, "shape [2 3], want (3, 2)")

	_, err = s.ImportSlot("x", "v", p)
	require.ErrorContains(t, err, `no "v" for param "w"`)

	extra := []optim.Param{{Name: "u", Value: p[0].Value}}
	_, err = s.ImportSlot("x", "m", extra)
	require.ErrorContains(t, err, `"u"`)
}

func TestRandomProbesNoAllocation(t *testing.T) {
	r := optim.NewRandomProbes(optim.Rademacher, 1)
	ts := []*tensor.Dense{tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(64))}
	assert.Zero(t, testing.AllocsPerRun(10, func() { _ = r.Fill(ts) }))
}

type provider struct {
	optim.NoCurvature
	n optim.Needs
}

func (p provider) Provides() optim.Needs { return p.n }

func TestCheckOracle(t *testing.T) {
	hvp := optim.Needs{HVP: true}
	gnb := optim.Needs{SampledGrad: true}
	require.NoError(t, optim.CheckOracle("x", optim.Needs{}, nil))
	require.ErrorIs(t, optim.CheckOracle("x", hvp, nil), optim.ErrNotProvided)
	require.ErrorContains(t, optim.CheckOracle("x", hvp, optim.NoCurvature{}), "HVP")
	require.ErrorContains(t, optim.CheckOracle("x", gnb, provider{n: hvp}), "SampledGrad")
	require.NoError(t, optim.CheckOracle("x", gnb, provider{n: optim.Needs{HVP: true, SampledGrad: true}}))
}
