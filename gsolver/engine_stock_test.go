package gsolver

import (
	"math"
	"testing"

	"github.com/curvopt/curvopt/hessian"
	"github.com/curvopt/curvopt/train"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// spec is the engine's description of the stock MLP: its own loss.
func (m *stockMLP) spec() hessian.GraphSpec {
	ps := make([]hessian.GraphParam, len(m.learnables))
	for i, n := range m.learnables {
		ps[i] = hessian.GraphParam{Node: n}
	}
	return hessian.GraphSpec{Input: m.x, Targets: m.y, Loss: m.cost, Params: ps}
}

// TestStockEngineSolver: a curvature optimizer through the solver on a
// stock graph (the user's machine's gradient, the engine fed from the x
// and y nodes) makes the updates it makes when driven on the engine alone
// (SetBatch, LossGrad, Step), batch after batch, up to the rounding of the
// two gradients (stock gorgonia.Grad against nn.Backprop of the rewrite).
func TestStockEngineSolver(t *testing.T) {
	for _, name := range []string{"adahessian", "sophiah", "sophiag"} {
		t.Run(name, func(t *testing.T) {
			a, b := newStockMLP(t, 16, 3), newStockMLP(t, 16, 3)
			optA, optB := newOpt(t, name), newOpt(t, name)
			engA, err := hessian.NewGraph(a.g, a.spec(), optA.Needs())
			require.NoError(t, err)
			defer engA.Close()
			engB, err := hessian.NewGraph(b.g, b.spec(), optB.Needs())
			require.NoError(t, err)
			defer engB.Close()
			s, err := New(optA, WithEngine(engA, a.x, a.y))
			require.NoError(t, err)
			labels := make([]int, 16)
			for step := 0; step < 12; step++ {
				a.run(t, step)
				require.NoError(t, s.Step(G.NodesToValueGrads(a.learnables)))
				a.vm.Reset()

				lo := (step % 6) * 16
				xv, err := b.xs.Slice(G.S(lo, lo+16))
				require.NoError(t, err)
				for r := range labels {
					for c := 0; c < 3; c++ {
						if b.ys.Float64s()[(lo+r)*3+c] == 1 {
							labels[r] = c
						}
					}
				}
				require.NoError(t, engB.SetBatch(xv.(*tensor.Dense), labels))
				_, err = engB.LossGrad()
				require.NoError(t, err)
				require.NoError(t, optB.Step(engB.Params(), engB))

				for i, n := range a.learnables {
					va := n.Value().Data().([]float64)
					vb := b.learnables[i].Value().Data().([]float64)
					for j := range va {
						require.InDelta(t, vb[j], va[j], 1e-9*math.Max(1, math.Abs(vb[j])), "step %d %s[%d]", step, n.Name(), j)
					}
				}
			}
		})
	}
}

// TestForGraph: ForGraph switches the stock MLP's loop to each of the seven
// optimizers by one line; the curvature ones get an engine, which Close
// closes.
func TestForGraph(t *testing.T) {
	lr := map[string]float64{"sgd": 0.1, "adam": 0.02, "adamw": 0.02, "mfac": 0.02, "adahessian": 0.05, "sophiah": 0.02, "sophiag": 0.01}
	for _, name := range train.Optimizers() {
		t.Run(name, func(t *testing.T) {
			m := newStockMLP(t, 16, 3)
			opt := newOpt(t, name)
			require.NoError(t, opt.SetLR(lr[name]))
			solver, err := ForGraph(opt, m.g, m.x, m.y, m.cost, m.learnables)
			require.NoError(t, err)
			n := opt.Needs()
			require.Equal(t, n.HVP || n.SampledGrad, solver.engine != nil)
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
			require.NoError(t, solver.Close())
			require.NoError(t, solver.Close())
			if solver.engine != nil {
				_, err := solver.engine.LossGrad()
				require.ErrorIs(t, err, hessian.ErrClosed)
			}
		})
	}
}

// TestForGraphRefusal: a graph the engine refuses (Gorgonia's example's
// stabilised loss, LogSoftMax(z) + Log(y)) is an error naming the
// optimizer and what the engine says.
func TestForGraphRefusal(t *testing.T) {
	m := newStockMLP(t, 16, 3)
	g := m.g
	h := G.Must(G.Tanh(G.Must(G.BroadcastAdd(G.Must(G.Mul(m.x, m.learnables[0])), m.learnables[1], nil, []byte{0}))))
	sm := G.Must(G.SoftMax(G.Must(G.BroadcastAdd(G.Must(G.Mul(h, m.learnables[2])), m.learnables[3], nil, []byte{0}))))
	bad := G.Must(G.Neg(G.Must(G.Mean(G.Must(G.Log(G.Must(G.HadamardProd(sm, m.y))))))))
	_, err := ForGraph(newOpt(t, "adahessian"), g, m.x, m.y, bad, m.learnables)
	require.Error(t, err)
	t.Log(err)
	assert.Contains(t, err.Error(), "gsolver: adahessian needs the curvature engine over the graph")
}

// TestForGraphBindOnce: a batch buffer bound once before ForGraph and
// refilled in place (instead of gorgonia.Let before each run) is what both
// the user's machine and the engine read: the step equals one whose batch
// was bound with gorgonia.Let.
func TestForGraphBindOnce(t *testing.T) {
	step := func(bindOnce bool) []float64 {
		m := newStockMLP(t, 16, 3)
		buf := tensor.New(tensor.Of(tensor.Float64), tensor.WithShape(16, 4))
		ybuf := tensor.New(tensor.Of(tensor.Float64), tensor.WithShape(16, 3))
		if bindOnce {
			require.NoError(t, G.Let(m.x, buf))
			require.NoError(t, G.Let(m.y, ybuf))
		}
		solver, err := ForGraph(newOpt(t, "sophiah"), m.g, m.x, m.y, m.cost, m.learnables)
		require.NoError(t, err)
		defer solver.Close()
		copy(buf.Float64s(), m.xs.Float64s()[:64])
		copy(ybuf.Float64s(), m.ys.Float64s()[:48])
		if !bindOnce {
			require.NoError(t, G.Let(m.x, buf))
			require.NoError(t, G.Let(m.y, ybuf))
		}
		require.NoError(t, m.vm.RunAll())
		require.NoError(t, solver.Step(G.NodesToValueGrads(m.learnables)))
		m.vm.Reset()
		assert.Same(t, buf, m.x.Value(), "the user's binding stays")
		var out []float64
		for _, l := range m.learnables {
			out = append(out, l.Value().(*tensor.Dense).Float64s()...)
		}
		return out
	}
	assert.Equal(t, step(false), step(true))
}

// TestForGraphNoBatch: a Step before any batch was bound to x is refused,
// naming gorgonia.Let.
func TestForGraphNoBatch(t *testing.T) {
	m := newStockMLP(t, 16, 3)
	solver, err := ForGraph(newOpt(t, "sophiah"), m.g, m.x, m.y, m.cost, m.learnables)
	require.NoError(t, err)
	defer solver.Close()
	require.NoError(t, m.vm.RunAll()) // on the engine's zeros
	err = solver.Step(G.NodesToValueGrads(m.learnables))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `input node "x" has had no batch bound`)
}
