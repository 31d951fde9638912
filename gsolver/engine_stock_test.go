package gsolver

import (
	"math"
	"testing"

	"github.com/curvopt/curvopt/hessian"
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
