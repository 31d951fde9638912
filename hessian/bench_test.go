package hessian

import (
	"math/rand/v2"
	"testing"

	"github.com/curvopt/curvopt/nn"
	"github.com/curvopt/curvopt/optim"
	"gorgonia.org/tensor"
)

func benchEngine(b *testing.B, spec nn.DAG, dt tensor.Dtype, n int, needs optim.Needs) *Engine {
	b.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	m, err := nn.New(spec, dt, rng, 0)
	if err != nil {
		b.Fatal(err)
	}
	e, err := New(m, needs)
	if err != nil {
		b.Fatal(err)
	}
	shape := append([]int{n}, m.InputShape()...)
	x := tensor.New(tensor.Of(dt), tensor.WithShape(shape...))
	switch d := x.Data().(type) {
	case []float64:
		for i := range d {
			d[i] = rng.Float64()
		}
	case []float32:
		for i := range d {
			d[i] = rng.Float32()
		}
	}
	labels := make([]int, n)
	for i := range labels {
		labels[i] = rng.IntN(m.Classes())
	}
	if err := e.SetBatch(x, labels); err != nil {
		b.Fatal(err)
	}
	return e
}

func benchGrad(b *testing.B, spec nn.DAG, dt tensor.Dtype, n int) {
	e := benchEngine(b, spec, dt, n, optim.Needs{})
	if _, err := e.LossGrad(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := e.LossGrad(); err != nil {
			b.Fatal(err)
		}
	}
}

// benchHVP times one H·v (forward, backward and the second backward pass).
func benchHVP(b *testing.B, spec nn.DAG, dt tensor.Dtype, n int) {
	e := benchEngine(b, spec, dt, n, optim.Needs{HVP: true})
	v, out := optim.Like(e.Params()), optim.Like(e.Params())
	if err := optim.NewRandomProbes(optim.Gaussian, 1).Fill(v); err != nil {
		b.Fatal(err)
	}
	if err := e.HVP(v, out); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := e.HVP(v, out); err != nil {
			b.Fatal(err)
		}
	}
}

var (
	mlpSpec = nn.MLP(784, []int{128}, 10)
	cnnSpec = nn.CNN(3, 32, 10)
)

func BenchmarkMLPGrad32(b *testing.B) { benchGrad(b, mlpSpec, tensor.Float32, 128) }
func BenchmarkMLPGrad64(b *testing.B) { benchGrad(b, mlpSpec, tensor.Float64, 128) }
func BenchmarkMLPHVP32(b *testing.B)  { benchHVP(b, mlpSpec, tensor.Float32, 128) }
func BenchmarkMLPHVP64(b *testing.B)  { benchHVP(b, mlpSpec, tensor.Float64, 128) }
func BenchmarkCNNGrad32(b *testing.B) { benchGrad(b, cnnSpec, tensor.Float32, 64) }
func BenchmarkCNNGrad64(b *testing.B) { benchGrad(b, cnnSpec, tensor.Float64, 64) }
func BenchmarkCNNHVP32(b *testing.B)  { benchHVP(b, cnnSpec, tensor.Float32, 64) }
func BenchmarkCNNHVP64(b *testing.B)  { benchHVP(b, cnnSpec, tensor.Float64, 64) }

// benchSampled times one SampledGrad (forward, sampling, backward), on the
// whole batch or, with gnb > 0, on its first gnb rows (WithGNBBatch).
func benchSampled(b *testing.B, spec nn.DAG, n, gnb int) {
	dt := tensor.Float32
	rng := rand.New(rand.NewPCG(1, 2))
	m, err := nn.New(spec, dt, rng, 0)
	if err != nil {
		b.Fatal(err)
	}
	opts := []Option{WithRand(rand.New(rand.NewPCG(3, 4)))}
	if gnb > 0 {
		opts = append(opts, WithGNBBatch(gnb))
	}
	e, err := New(m, optim.Needs{SampledGrad: true}, opts...)
	if err != nil {
		b.Fatal(err)
	}
	shape := append([]int{n}, m.InputShape()...)
	x := tensor.New(tensor.Of(dt), tensor.WithShape(shape...))
	for i := range x.Float32s() {
		x.Float32s()[i] = rng.Float32()
	}
	labels := make([]int, n)
	if err := e.SetBatch(x, labels); err != nil {
		b.Fatal(err)
	}
	out := optim.Like(e.Params())
	if err := e.SampledGrad(out); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := e.SampledGrad(out); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMLPSampledGrad32(b *testing.B)     { benchSampled(b, mlpSpec, 128, 0) }
func BenchmarkMLPSampledGradHalf32(b *testing.B) { benchSampled(b, mlpSpec, 128, 64) }
