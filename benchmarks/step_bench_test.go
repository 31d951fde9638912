package benchmarks

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/curvopt/curvopt/hessian"
	"github.com/curvopt/curvopt/nn"
	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/train"
	"gorgonia.org/tensor"
)

// workload is one model at one batch size.
type workload struct {
	name  string
	spec  nn.DAG
	batch int
	slow  bool // skipped in short mode
}

func workloads() []workload {
	return []workload{
		{name: "mlp", spec: nn.MLP(784, []int{128}, 10), batch: 128},
		{name: "cnn", spec: nn.CNN(3, 32, 10), batch: 64, slow: true},
	}
}

// shortMode reports whether the quick subset was asked for (-short or
// CURVOPT_BENCH_SHORT=1).
func shortMode() bool {
	return testing.Short() || os.Getenv("CURVOPT_BENCH_SHORT") != ""
}

// dtypes returns the dtypes to time for w: float32 always, float64 for the
// MLP outside short mode (the CNN in float64 only doubles a long run).
func dtypes(w workload) []tensor.Dtype {
	if shortMode() || w.slow {
		return []tensor.Dtype{tensor.Float32}
	}
	return []tensor.Dtype{tensor.Float32, tensor.Float64}
}

func forEach(b *testing.B, f func(b *testing.B, w workload, dt tensor.Dtype)) {
	for _, w := range workloads() {
		if w.slow && shortMode() {
			continue
		}
		for _, dt := range dtypes(w) {
			b.Run(fmt.Sprintf("model=%s/dtype=%s", w.name, dt), func(b *testing.B) { f(b, w, dt) })
		}
	}
}

// newEngine builds w's model in dtype dt with a fixed seed, an engine that
// answers needs, and binds one fixed random batch (uniform [0,1) inputs,
// uniform labels).
func newEngine(b *testing.B, w workload, dt tensor.Dtype, needs optim.Needs, opts ...hessian.Option) *hessian.Engine {
	b.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	m, err := nn.New(w.spec, dt, rng, 0)
	if err != nil {
		b.Fatalf("model %s: %v", w.name, err)
	}
	e, err := hessian.New(m, needs, append(opts, hessian.WithRand(rand.New(rand.NewPCG(3, 4))))...)
	if err != nil {
		b.Fatalf("engine %s: %v", w.name, err)
	}
	b.Cleanup(func() { e.Close() })
	shape := append([]int{w.batch}, m.InputShape()...)
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
	labels := make([]int, w.batch)
	for i := range labels {
		labels[i] = rng.IntN(m.Classes())
	}
	if err := e.SetBatch(x, labels); err != nil {
		b.Fatalf("SetBatch %s: %v", w.name, err)
	}
	return e
}

// BenchmarkStep times one full training step of every optimizer with its
// default hyperparameters: train.Step, i.e. the optimizer's curvature
// request (H·z for optimizers that probe) computed with the loss and
// gradient in one graph run, then opt.Step, which makes any query that
// comes after its update. The batch is fixed, so the step repeatedly descends on it.
func BenchmarkStep(b *testing.B) {
	forEach(b, func(b *testing.B, w workload, dt tensor.Dtype) {
		for _, name := range train.Optimizers() {
			b.Run("opt="+name, func(b *testing.B) { benchStep(b, w, dt, name, 0) })
		}
		// SophiaG with its GNB estimate on a quarter of the batch, as the
		// Sophia paper does with a sub-batch (bs follows).
		b.Run("opt=sophiag-gnbquarter", func(b *testing.B) { benchStep(b, w, dt, "sophiag", w.batch/4) })
	})
}

// benchStep times name's full step; gnb > 0 computes the sampled-label
// gradient on the first gnb rows of the batch.
func benchStep(b *testing.B, w workload, dt tensor.Dtype, name string, gnb int) {
	predictions := w.batch
	var opts []hessian.Option
	if gnb > 0 {
		predictions = gnb
		opts = append(opts, hessian.WithGNBBatch(gnb))
	}
	opt, err := train.NewOptimizer(name, nil, predictions, 1)
	if err != nil {
		b.Skipf("optimizer %s unavailable: %v", name, err)
	}
	e := newEngine(b, w, dt, opt.Needs(), opts...)
	step := func() {
		if _, err := train.Step(e, opt, 0); err != nil {
			b.Fatalf("%s: step: %v", name, err)
		}
	}
	// Warm-up: compile, allocate the optimizer's buffers, and pass any
	// first-step special case (Sophia's and AdaHessian's first Hessian).
	for i := 0; i < 2; i++ {
		step()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		step()
	}
}

// BenchmarkQuery times the engine's queries alone: the gradient (forward and
// backward), the exact H·v by double backprop, Hutchinson's z⊙(H·z), and the
// sampled-label (GNB) gradient.
func BenchmarkQuery(b *testing.B) {
	forEach(b, func(b *testing.B, w workload, dt tensor.Dtype) {
		b.Run("query=grad", func(b *testing.B) { benchGrad(b, w, dt) })
		b.Run("query=hvp", func(b *testing.B) { benchHVP(b, w, dt) })
		b.Run("query=hutchinson", func(b *testing.B) { benchHutchinson(b, w, dt) })
		b.Run("query=gnb", func(b *testing.B) { benchGNB(b, w, dt) })
	})
}

func loop(b *testing.B, what string, f func() error) {
	b.Helper()
	if err := f(); err != nil { // warm-up
		b.Fatalf("%s: %v", what, err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := f(); err != nil {
			b.Fatalf("%s: %v", what, err)
		}
	}
}

func benchGrad(b *testing.B, w workload, dt tensor.Dtype) {
	e := newEngine(b, w, dt, optim.Needs{})
	loop(b, "grad", func() error { _, err := e.LossGrad(); return err })
}

func benchHVP(b *testing.B, w workload, dt tensor.Dtype) {
	e := newEngine(b, w, dt, optim.Needs{HVP: true})
	v, out := optim.Like(e.Params()), optim.Like(e.Params())
	if err := optim.NewRandomProbes(optim.Gaussian, 1).Fill(v); err != nil {
		b.Fatal(err)
	}
	loop(b, "hvp", func() error { return e.HVP(v, out) })
}

func benchHutchinson(b *testing.B, w workload, dt tensor.Dtype) {
	e := newEngine(b, w, dt, optim.Needs{HVP: true})
	out := optim.Like(e.Params())
	loop(b, "hutchinson", func() error { return e.Hutchinson(out) })
}

func benchGNB(b *testing.B, w workload, dt tensor.Dtype) {
	e := newEngine(b, w, dt, optim.Needs{SampledGrad: true})
	out := optim.Like(e.Params())
	loop(b, "gnb", func() error {
		err := e.SampledGrad(out)
		if errors.Is(err, optim.ErrNotProvided) {
			return fmt.Errorf("engine built without SampledGrad: %w", err)
		}
		return err
	})
}
