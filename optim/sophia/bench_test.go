package sophia_test

import (
	"testing"

	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/optim/adam"
	"github.com/curvopt/curvopt/optim/sophia"
	"gorgonia.org/tensor"
)

// nopOracle answers every query with zeros already in out (no work, no
// allocation), so a benchmark measures the optimizer alone.
type nopOracle struct{}

func (nopOracle) HVP(v, out []*tensor.Dense) error      { return nil }
func (nopOracle) SampledGrad(out []*tensor.Dense) error { return nil }

func benchParams(dt tensor.Dtype, n int) []optim.Param {
	p := optim.Param{Name: "w", Value: tensor.New(tensor.Of(dt), tensor.WithShape(n)), Grad: tensor.New(tensor.Of(dt), tensor.WithShape(n))}
	switch dt {
	case tensor.Float32:
		g := p.Grad.Float32s()
		for j := range g {
			g[j] = float32(j%7) - 3
		}
	case tensor.Float64:
		g := p.Grad.Float64s()
		for j := range g {
			g[j] = float64(j%7) - 3
		}
	}
	return []optim.Param{p}
}

func benchStep(b *testing.B, opt optim.Optimizer, ps []optim.Param, o optim.Oracle) {
	for i := 0; i < 10; i++ { // warm up, including a first Hessian refresh
		if err := opt.Step(ps, o); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	n := 0
	for _, p := range ps {
		n += p.Value.Shape().TotalSize()
	}
	b.SetBytes(int64(n) * int64(ps[0].Value.Dtype().Size()))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := opt.Step(ps, o); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStep compares the SophiaG update (no Hessian refresh during the
// timing) with AdamW on 1M float32 parameters, and SophiaG with its GNB
// refresh every 10 steps (oracle cost excluded).
func BenchmarkStep(b *testing.B) {
	const n = 1 << 20
	b.Run("sophiag-update/float32", func(b *testing.B) {
		c := sophia.DefaultG()
		c.Interval = 1 << 30
		opt, _ := sophia.New(c)
		benchStep(b, opt, benchParams(tensor.Float32, n), nopOracle{})
	})
	b.Run("adamw/float32", func(b *testing.B) {
		opt, _ := adam.New(adam.DefaultW())
		benchStep(b, opt, benchParams(tensor.Float32, n), nopOracle{})
	})
	b.Run("sophiag-k10/float32", func(b *testing.B) {
		opt, _ := sophia.New(sophia.DefaultG())
		benchStep(b, opt, benchParams(tensor.Float32, n), nopOracle{})
	})
	b.Run("sophiag-update/float64", func(b *testing.B) {
		c := sophia.DefaultG()
		c.Interval = 1 << 30
		opt, _ := sophia.New(c)
		benchStep(b, opt, benchParams(tensor.Float64, n), nopOracle{})
	})
}
