package benchmarks

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/curvopt/curvopt/hessian"
	"github.com/curvopt/curvopt/nn"
	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/train"
	"gorgonia.org/tensor"
)

// dagWorkload is one DAG model at one batch size: resnet20 on CIFAR-sized
// images (batch 128) and gpt-tiny (nn.GPT's defaults, context 64) on
// 65-token-vocabulary text (batch 16, 1024 positions), float32.
type dagWorkload struct {
	name  string
	dag   func() (nn.DAG, error)
	batch int
}

func dagWorkloads() []dagWorkload {
	return []dagWorkload{
		{"resnet20", func() (nn.DAG, error) { return nn.ResNet(20, 3, 32, 10) }, 128},
		{"gpt-tiny", func() (nn.DAG, error) { return nn.GPT(nn.GPTConfig{Vocab: 65}) }, 16},
	}
}

// newDAGEngine builds w's model with a fixed seed and an engine answering
// needs, bound to one fixed random batch (uniform pixels or tokens,
// uniform labels, one per logit row).
func newDAGEngine(b *testing.B, w dagWorkload, needs optim.Needs) *hessian.Engine {
	b.Helper()
	d, err := w.dag()
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	m, err := nn.New(d, tensor.Float32, rng, 1)
	if err != nil {
		b.Fatal(err)
	}
	e, err := hessian.New(m, needs, hessian.WithRand(rand.New(rand.NewPCG(3, 4))))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.Close() })
	x := tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(append([]int{w.batch}, m.InputShape()...)...))
	for i := range x.Float32s() {
		if d.Tokens > 0 {
			x.Float32s()[i] = float32(rng.IntN(d.Tokens))
		} else {
			x.Float32s()[i] = rng.Float32()
		}
	}
	labels := make([]int, w.batch*m.RowsPerExample())
	for i := range labels {
		labels[i] = rng.IntN(m.Classes())
	}
	if err := e.SetBatch(x, labels); err != nil {
		b.Fatal(err)
	}
	return e
}

// BenchmarkDAG times resnet20's and gpt-tiny's queries (gradient, H·v,
// sampled-label gradient) and full steps of SGD, Adam, SophiaG and
// AdaHessian (the issue-21 target: at most 2.2x an Adam step), the
// workloads benchmarks/torch/peer_dag.py times in PyTorch.
func BenchmarkDAG(b *testing.B) {
	for _, w := range dagWorkloads() {
		b.Run(fmt.Sprintf("model=%s/query=grad", w.name), func(b *testing.B) {
			e := newDAGEngine(b, w, optim.Needs{})
			loop(b, "grad", func() error { _, err := e.LossGrad(); return err })
		})
		b.Run(fmt.Sprintf("model=%s/query=hvp", w.name), func(b *testing.B) {
			e := newDAGEngine(b, w, optim.Needs{HVP: true})
			v, out := optim.Like(e.Params()), optim.Like(e.Params())
			if err := optim.NewRandomProbes(optim.Gaussian, 1).Fill(v); err != nil {
				b.Fatal(err)
			}
			loop(b, "hvp", func() error { return e.HVP(v, out) })
		})
		b.Run(fmt.Sprintf("model=%s/query=gnb", w.name), func(b *testing.B) {
			e := newDAGEngine(b, w, optim.Needs{SampledGrad: true})
			out := optim.Like(e.Params())
			loop(b, "gnb", func() error { return e.SampledGrad(out) })
		})
		for _, name := range []string{"sgd", "adam", "sophiag", "adahessian"} {
			b.Run(fmt.Sprintf("model=%s/opt=%s", w.name, name), func(b *testing.B) {
				opt, err := train.NewOptimizer(name, nil, w.batch, 1)
				if err != nil {
					b.Fatal(err)
				}
				e := newDAGEngine(b, w, opt.Needs())
				loop(b, name, func() error {
					_, err := train.Step(e, opt, 0)
					return err
				})
			})
		}
	}
}
