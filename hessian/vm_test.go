package hessian

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/curvopt/curvopt/hessian/internal/vm"
	"github.com/curvopt/curvopt/nn"
	"github.com/curvopt/curvopt/optim"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

// zooCase is one model of the machine tests: the kinds of graph the
// engine compiles (MLP, CNN with pooling, ResNet with batch norm and skip
// connections, a two-block GPT with attention, layer norm and dropout:
// gpt-tiny's ops at a smaller width and context).
type zooCase struct {
	name   string
	dag    func(t *testing.T) nn.DAG
	dt     tensor.Dtype
	batch  int // examples per batch
	tokens int // token ids in [0, tokens) as input
}

func zoo() []zooCase {
	return []zooCase{
		{name: "mlp", dt: tensor.Float64, batch: 6, dag: func(*testing.T) nn.DAG { return nn.MLP(12, []int{16, 8}, 5) }},
		{name: "cnn", dt: tensor.Float32, batch: 4, dag: func(*testing.T) nn.DAG { return nn.CNN(3, 8, 10) }},
		{name: "resnet8", dt: tensor.Float32, batch: 4, dag: func(t *testing.T) nn.DAG {
			d, err := nn.ResNet(8, 3, 8, 10)
			require.NoError(t, err)
			return d
		}},
		{name: "gpt", dt: tensor.Float32, batch: 3, tokens: 11, dag: func(t *testing.T) nn.DAG {
			d, err := nn.GPT(nn.GPTConfig{Vocab: 11, Context: 8, Layers: 2, Heads: 2, Width: 16, Dropout: 0.2})
			require.NoError(t, err)
			return d
		}},
	}
}

// engine builds the case's model (the same parameters for every call) and
// an engine over it with every need.
func (c zooCase) engine(t *testing.T, opts ...Option) *Engine {
	t.Helper()
	m, err := nn.New(c.dag(t), c.dt, rand.New(rand.NewPCG(5, 9)), 3)
	require.NoError(t, err)
	opts = append([]Option{WithRand(rand.New(rand.NewPCG(2, 4)))}, opts...)
	e, err := New(m, optim.Needs{HVP: true, SampledGrad: true}, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { e.Close() })
	return e
}

// draw returns the case's input batch and labels for draw k.
func (c zooCase) draw(e *Engine, k uint64) (*tensor.Dense, []int) {
	rng := rand.New(rand.NewPCG(k, 77))
	m := e.Model()
	x := tensor.New(tensor.Of(c.dt), tensor.WithShape(append([]int{c.batch}, m.InputShape()...)...))
	for i := 0; i < x.Size(); i++ {
		v := rng.NormFloat64()
		if c.tokens > 0 {
			v = float64(rng.IntN(c.tokens))
		}
		if c.dt == tensor.Float64 {
			x.Float64s()[i] = v
		} else {
			x.Float32s()[i] = float32(v)
		}
	}
	labels := make([]int, c.batch*m.RowsPerExample())
	for i := range labels {
		labels[i] = rng.IntN(m.Classes())
	}
	return x, labels
}

// paramTensors returns one tensor per parameter, filled from rng (nil:
// zeros).
func paramTensors(e *Engine, rng *rand.Rand) []*tensor.Dense {
	var out []*tensor.Dense
	for _, p := range e.Params() {
		d := tensor.New(tensor.Of(p.Value.Dtype()), tensor.WithShape(p.Value.Shape().Clone()...))
		if rng != nil {
			for i := 0; i < d.Size(); i++ {
				if v := rng.NormFloat64(); d.Dtype() == tensor.Float64 {
					d.Float64s()[i] = v
				} else {
					d.Float32s()[i] = float32(v)
				}
			}
		}
		out = append(out, d)
	}
	return out
}

// sameBits fails unless a and b hold the same bits.
func sameBits(t *testing.T, a, b *tensor.Dense, what string) {
	t.Helper()
	require.Equal(t, a.Shape(), b.Shape(), what)
	switch x := a.Data().(type) {
	case []float64:
		y := b.Data().([]float64)
		for i := range x {
			if math.Float64bits(x[i]) != math.Float64bits(y[i]) {
				t.Fatalf("%s: entry %d is %v with the machine, %v with the tape machine", what, i, y[i], x[i])
			}
		}
	case []float32:
		y := b.Data().([]float32)
		for i := range x {
			if math.Float32bits(x[i]) != math.Float32bits(y[i]) {
				t.Fatalf("%s: entry %d is %v with the machine, %v with the tape machine", what, i, y[i], x[i])
			}
		}
	}
}

// TestMachineMatchesTape runs the engine's every query on vm.Machine (with
// every buffer poisoned with NaN before its op writes it, so that an op
// reading a stale value from a reused buffer shows) and on gorgonia's tape
// machine, on the model zoo, over two batches with a parameter update in
// between, and requires the same bits: losses, gradients, H·v (fused and
// alone), sampled-label gradients and labels, batch-norm running
// statistics and the evaluation loss.
func TestMachineMatchesTape(t *testing.T) {
	for _, c := range zoo() {
		t.Run(c.name, func(t *testing.T) {
			ref := c.engine(t, withTapeMachine())
			got := c.engine(t, withPoison())
			v := paramTensors(ref, rand.New(rand.NewPCG(8, 8)))
			for step := uint64(1); step <= 2; step++ {
				for _, e := range []*Engine{ref, got} {
					x, labels := c.draw(e, step)
					require.NoError(t, e.SetBatch(x, labels))
				}
				lr, err := ref.LossGrad()
				require.NoError(t, err)
				lg, err := got.LossGrad()
				require.NoError(t, err)
				require.Equal(t, math.Float64bits(lr), math.Float64bits(lg), "loss")
				for i, p := range ref.Params() {
					sameBits(t, p.Grad, got.Params()[i].Grad, "gradient of "+p.Name)
				}
				sameBits(t, ref.Logits(), got.Logits(), "logits")

				hr, hg := paramTensors(ref, nil), paramTensors(got, nil)
				lr, err = ref.LossGradHVP(v, hr)
				require.NoError(t, err)
				lg, err = got.LossGradHVP(v, hg)
				require.NoError(t, err)
				require.Equal(t, math.Float64bits(lr), math.Float64bits(lg), "loss of LossGradHVP")
				for i, p := range ref.Params() {
					sameBits(t, hr[i], hg[i], "H·v (fused) of "+p.Name)
					sameBits(t, p.Grad, got.Params()[i].Grad, "gradient (fused) of "+p.Name)
				}
				require.NoError(t, ref.HVP(v, hr))
				require.NoError(t, got.HVP(v, hg))
				for i, p := range ref.Params() {
					sameBits(t, hr[i], hg[i], "H·v of "+p.Name)
				}
				require.NoError(t, ref.SampledGrad(hr))
				require.NoError(t, got.SampledGrad(hg))
				require.Equal(t, ref.SampledLabels(), got.SampledLabels(), "sampled labels")
				for i, p := range ref.Params() {
					sameBits(t, hr[i], hg[i], "sampled gradient of "+p.Name)
				}
				for _, name := range ref.Model().BatchNormNames() {
					mr, vr, err := ref.Model().RunningStats(name)
					require.NoError(t, err)
					mg, vg, err := got.Model().RunningStats(name)
					require.NoError(t, err)
					sameBits(t, mr, mg, "running mean of "+name)
					sameBits(t, vr, vg, "running variance of "+name)
				}
				x, labels := c.draw(ref, 100+step)
				er, cr, err := ref.EvalLoss(x, labels)
				require.NoError(t, err)
				eg, cg, err := got.EvalLoss(x, labels)
				require.NoError(t, err)
				require.Equal(t, math.Float64bits(er), math.Float64bits(eg), "evaluation loss")
				require.Equal(t, cr, cg, "evaluation accuracy")
				// the same update of both models' parameters
				for i, p := range ref.Params() {
					for _, d := range []*tensor.Dense{p.Value, got.Params()[i].Value} {
						if d.Dtype() == tensor.Float64 {
							for k, g := range p.Grad.Float64s() {
								d.Float64s()[k] -= 0.1 * g
							}
						} else {
							for k, g := range p.Grad.Float32s() {
								d.Float32s()[k] -= 0.1 * g
							}
						}
					}
				}
			}
		})
	}
}

// machinesOf returns the training machines of the engine's current graph.
func machinesOf(t *testing.T, e *Engine) map[string]*vm.Machine {
	t.Helper()
	p, err := e.current()
	require.NoError(t, err)
	out := map[string]*vm.Machine{}
	for name, m := range map[string]any{"gradient": p.mGrad, "gradient and H·v": p.mHVP, "H·v": p.mHV} {
		vmm, ok := m.(*vm.Machine)
		require.True(t, ok, "%s machine is %T", name, m)
		out[name] = vmm
	}
	return out
}

// TestMachinePeakBelowTape checks, with the plan's own accounting, that
// every training machine of the zoo holds fewer bytes of op outputs at its
// peak than the tape machine, which keeps them all, and that the buffers
// the engine's arena really allocated for them are below the tape's too.
func TestMachinePeakBelowTape(t *testing.T) {
	for _, c := range zoo() {
		t.Run(c.name, func(t *testing.T) {
			e := c.engine(t)
			x, labels := c.draw(e, 1)
			require.NoError(t, e.SetBatch(x, labels))
			v, out := paramTensors(e, rand.New(rand.NewPCG(1, 1))), paramTensors(e, nil)
			_, err := e.LossGradHVP(v, out)
			require.NoError(t, err)
			require.NoError(t, e.HVP(v, out))
			_, err = e.LossGrad()
			require.NoError(t, err)
			var tapeAll int64
			for name, m := range machinesOf(t, e) {
				p := m.Plan()
				t.Logf("%-16s ops %4d: tape %8d B, planned peak %8d B (%.2f of the tape; kept %d, peak live %d, slots %d)",
					name, p.Ops, p.Tape, p.Peak(), float64(p.Peak())/float64(p.Tape), p.Kept, p.PeakLive, p.Slots)
				require.Less(t, p.Peak(), p.Tape, "%s: planned peak", name)
				require.LessOrEqual(t, p.PeakLive, p.Slots, "%s", name)
				tapeAll = max(tapeAll, p.Tape) // the H·v-and-gradient machine holds every node of the others
			}
			cur, err := e.current()
			require.NoError(t, err)
			t.Logf("arena: %d B for the three machines; tape: %d B", cur.arena.Bytes(), tapeAll)
			require.Less(t, cur.arena.Bytes(), tapeAll)
		})
	}
}

// TestMachineAllocs compares the allocations of a gradient step and of a
// fused gradient and H·v step (after a first run) on vm.Machine and on the
// tape machine. The machine allocates its buffers at the first run and
// nothing afterwards; the tape machine allocates per instruction.
func TestMachineAllocs(t *testing.T) {
	for _, c := range zoo() {
		t.Run(c.name, func(t *testing.T) {
			allocs := map[bool][2]float64{}
			for _, tape := range []bool{true, false} {
				var opts []Option
				if tape {
					opts = append(opts, withTapeMachine())
				}
				e := c.engine(t, opts...)
				x, labels := c.draw(e, 1)
				require.NoError(t, e.SetBatch(x, labels))
				v, out := paramTensors(e, rand.New(rand.NewPCG(1, 1))), paramTensors(e, nil)
				grad := func() {
					if _, err := e.LossGrad(); err != nil {
						t.Fatal(err)
					}
				}
				hvp := func() {
					if _, err := e.LossGradHVP(v, out); err != nil {
						t.Fatal(err)
					}
				}
				grad()
				hvp()
				allocs[tape] = [2]float64{testing.AllocsPerRun(3, grad), testing.AllocsPerRun(3, hvp)}
			}
			t.Logf("allocations per run, gradient: tape %.0f, machine %.0f; gradient and H·v: tape %.0f, machine %.0f",
				allocs[true][0], allocs[false][0], allocs[true][1], allocs[false][1])
			// What remains on the machine is the kernels' own (closures and
			// goroutines of nn's parallel loops): at most half the tape's.
			require.LessOrEqual(t, allocs[false][0], allocs[true][0]/2, "allocations of a gradient run")
			require.LessOrEqual(t, allocs[false][1], allocs[true][1]/2, "allocations of a gradient and H·v run")
		})
	}
}

// TestMachineMatchesTapeGNBBatch: the sampled-label gradient on its own
// graph of a sub-batch (WithGNBBatch) has the tape machine's bits too.
func TestMachineMatchesTapeGNBBatch(t *testing.T) {
	for _, c := range zoo() {
		t.Run(c.name, func(t *testing.T) {
			ref := c.engine(t, withTapeMachine(), WithGNBBatch(2))
			got := c.engine(t, withPoison(), WithGNBBatch(2))
			for step := uint64(1); step <= 2; step++ {
				for _, e := range []*Engine{ref, got} {
					x, labels := c.draw(e, step)
					require.NoError(t, e.SetBatch(x, labels))
				}
				hr, hg := paramTensors(ref, nil), paramTensors(got, nil)
				require.NoError(t, ref.SampledGrad(hr))
				require.NoError(t, got.SampledGrad(hg))
				require.Equal(t, ref.SampledLabels(), got.SampledLabels(), "sampled labels")
				for i, p := range ref.Params() {
					sameBits(t, hr[i], hg[i], "sampled gradient of "+p.Name)
				}
			}
		})
	}
}
