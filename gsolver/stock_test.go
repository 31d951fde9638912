package gsolver

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/curvopt/curvopt/optim"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// stockMLP is an MLP written with stock Gorgonia ops, as a Gorgonia user
// writes one: Mul, BroadcastAdd (Broadcast then Add), Tanh, SoftMax and the
// log-likelihood loss against one-hot targets.
type stockMLP struct {
	g          *G.ExprGraph
	x, y, cost *G.Node
	learnables G.Nodes
	vm         G.VM
	xs, ys     *tensor.Dense // the data set: rows of inputs and one-hot targets
	batch      int
}

func newStockMLP(t *testing.T, batch int, seed uint64) *stockMLP {
	t.Helper()
	const in, hidden, classes, rows = 4, 8, 3, 96
	rng := rand.New(rand.NewPCG(seed, 1))
	// Three Gaussian blobs.
	xs := make([]float64, rows*in)
	ys := make([]float64, rows*classes)
	for r := 0; r < rows; r++ {
		c := r % classes
		ys[r*classes+c] = 1
		for j := 0; j < in; j++ {
			center := 0.0
			if j%classes == c {
				center = 2
			}
			xs[r*in+j] = center + 0.7*rng.NormFloat64()
		}
	}
	init := func(shape ...int) *tensor.Dense {
		d := tensor.New(tensor.Of(tensor.Float64), tensor.WithShape(shape...))
		for i := range d.Float64s() {
			d.Float64s()[i] = 0.5 * rng.NormFloat64()
		}
		return d
	}
	g := G.NewGraph()
	m := &stockMLP{g: g, batch: batch,
		xs: tensor.New(tensor.WithShape(rows, in), tensor.WithBacking(xs)),
		ys: tensor.New(tensor.WithShape(rows, classes), tensor.WithBacking(ys))}
	m.x = G.NewMatrix(g, tensor.Float64, G.WithShape(batch, in), G.WithName("x"))
	m.y = G.NewMatrix(g, tensor.Float64, G.WithShape(batch, classes), G.WithName("y"))
	w1 := G.NewMatrix(g, tensor.Float64, G.WithShape(in, hidden), G.WithName("w1"), G.WithValue(init(in, hidden)))
	b1 := G.NewVector(g, tensor.Float64, G.WithShape(hidden), G.WithName("b1"), G.WithValue(init(hidden)))
	w2 := G.NewMatrix(g, tensor.Float64, G.WithShape(hidden, classes), G.WithName("w2"), G.WithValue(init(hidden, classes)))
	b2 := G.NewVector(g, tensor.Float64, G.WithShape(classes), G.WithName("b2"), G.WithValue(init(classes)))
	m.learnables = G.Nodes{w1, b1, w2, b2}
	h := G.Must(G.Tanh(G.Must(G.BroadcastAdd(G.Must(G.Mul(m.x, w1)), b1, nil, []byte{0}))))
	out := G.Must(G.SoftMax(G.Must(G.BroadcastAdd(G.Must(G.Mul(h, w2)), b2, nil, []byte{0}))))
	m.cost = G.Must(G.Neg(G.Must(G.Mean(G.Must(G.HadamardProd(G.Must(G.Log(out)), m.y))))))
	_, err := G.Grad(m.cost, m.learnables...)
	require.NoError(t, err)
	m.vm = G.NewTapeMachine(g, G.BindDualValues(m.learnables...))
	t.Cleanup(func() { m.vm.Close() })
	return m
}

// run binds batch b and runs the machine, returning the cost.
func (m *stockMLP) run(t *testing.T, b int) float64 {
	t.Helper()
	rows := m.xs.Shape()[0] / m.batch
	lo := (b % rows) * m.batch
	xv, err := m.xs.Slice(G.S(lo, lo+m.batch))
	require.NoError(t, err)
	yv, err := m.ys.Slice(G.S(lo, lo+m.batch))
	require.NoError(t, err)
	require.NoError(t, G.Let(m.x, xv))
	require.NoError(t, G.Let(m.y, yv))
	require.NoError(t, m.vm.RunAll())
	return m.cost.Value().Data().(float64)
}

// TestStockMLPFirstOrder: a stock Gorgonia MLP and training loop train
// with every first-order optimizer through the solver.
func TestStockMLPFirstOrder(t *testing.T) {
	lr := map[string]float64{"sgd": 0.1, "adam": 0.02, "adamw": 0.02, "mfac": 0.02}
	for _, name := range []string{"sgd", "adam", "adamw", "mfac"} {
		t.Run(name, func(t *testing.T) {
			m := newStockMLP(t, 16, 3)
			opt := newOpt(t, name)
			require.NoError(t, opt.SetLR(lr[name]))
			solver, err := New(opt)
			require.NoError(t, err)
			var first, last float64
			const steps, window = 120, 6
			for step := 0; step < steps; step++ {
				c := m.run(t, step)
				require.False(t, math.IsNaN(c) || math.IsInf(c, 0), "step %d cost %v", step, c)
				if step < window {
					first += c / window
				}
				if step >= steps-window {
					last += c / window
				}
				require.NoError(t, solver.Step(G.NodesToValueGrads(m.learnables)))
				m.vm.Reset()
			}
			t.Logf("%s: mean cost of the first %d steps %.4f, of the last %d %.4f", name, window, first, window, last)
			assert.Less(t, last, 0.5*first, "the cost did not halve")
		})
	}
}

// TestStockAccumulates shows why the solver zeroes gradients: a
// TapeMachine with BindDualValues adds each run's gradient to the bound
// one, and after a solver step the bound gradients are zero.
func TestStockAccumulates(t *testing.T) {
	m := newStockMLP(t, 16, 3)
	grads := func() [][]float64 {
		var out [][]float64
		for _, n := range m.learnables {
			gv, err := n.Grad()
			require.NoError(t, err)
			out = append(out, append([]float64(nil), gv.Data().([]float64)...))
		}
		return out
	}
	m.run(t, 0)
	once := grads()
	m.vm.Reset()
	m.run(t, 0)
	twice := grads()
	m.vm.Reset()
	for i := range once {
		for j := range once[i] {
			require.InDelta(t, 2*once[i][j], twice[i][j], 1e-12)
		}
	}
	s, err := New(newOpt(t, "adam"))
	require.NoError(t, err)
	require.NoError(t, s.Step(G.NodesToValueGrads(m.learnables)))
	for i, g := range grads() {
		assert.Equal(t, make([]float64, len(g)), g, m.learnables[i].Name())
	}
	// The names are the nodes'.
	var names []string
	for _, p := range s.Params() {
		names = append(names, p.Name)
	}
	assert.Equal(t, []string{"w1", "b1", "w2", "b2"}, names)
	var _ optim.Optimizer = s.Optimizer()
}
