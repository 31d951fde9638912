package nn

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// dagModel is the DAG part of a Model made by NewDAG.
type dagModel struct {
	d    DAG
	info *dagInfo
	drop *DropoutState
}

// NewDAG builds a model from a DAG with parameters of dtype dt, initialised
// from rng (see DAGNode for the rules; batch-norm and layer-norm γ = 1,
// β = 0). A nil rng leaves all weights zero (for loading values
// afterwards). Dropout masks are drawn from NewDropoutState(seed) (see
// Model.DropoutState).
func NewDAG(d DAG, dt tensor.Dtype, rng *rand.Rand, seed uint64) (*Model, error) {
	if err := checkFloat(dt); err != nil {
		return nil, err
	}
	info, err := d.check()
	if err != nil {
		return nil, err
	}
	m := &Model{dt: dt, info: info.params, classes: info.classes, example: append([]int{}, d.InputShape...),
		dag: &dagModel{d: d, info: info, drop: NewDropoutState(seed)}}
	for i, n := range d.Nodes {
		lo, hi := info.first[i], len(info.params)
		if i+1 < len(d.Nodes) {
			hi = info.first[i+1]
		}
		for _, pi := range info.params[lo:hi] {
			t := tensor.New(tensor.Of(dt), tensor.WithShape(pi.Shape...))
			initDAGParam(t, pi, n.InitStd, rng)
			m.params = append(m.params, Param{Name: pi.Name, Value: t})
		}
		if n.Op == OpBatchNorm2d {
			c := info.params[lo].Shape[0]
			r := &bnRunning{layer: i, name: n.Name, momentum: n.momentum(),
				mean: tensor.New(tensor.Of(dt), tensor.WithShape(c)), vari: tensor.New(tensor.Of(dt), tensor.WithShape(c))}
			fill(r.vari, func() float64 { return 1 })
			m.bn = append(m.bn, r)
		}
	}
	return m, nil
}

func initDAGParam(t *tensor.Dense, pi ParamInfo, std float64, rng *rand.Rand) {
	switch pi.Kind {
	case "bn_weight":
		fill(t, func() float64 { return 1 })
		return
	case "bn_bias":
		return
	}
	if rng == nil {
		return
	}
	switch {
	case std > 0 && pi.Kind == "bias":
	case std > 0:
		fill(t, func() float64 { return std * rng.NormFloat64() })
	case pi.Kind == "embedding":
		fill(t, rng.NormFloat64)
	default:
		bound := 1 / math.Sqrt(float64(pi.FanIn))
		fill(t, func() float64 { return (2*rng.Float64() - 1) * bound })
	}
}

// DAG returns the model's DAG and true for a model made by NewDAG.
func (m *Model) DAG() (DAG, bool) {
	if m.dag == nil {
		return DAG{}, false
	}
	return m.dag.d, true
}

// RowsPerExample is the number of logit rows (and labels) per example: 1,
// or T for a model whose output is [T, classes] (next-token prediction).
func (m *Model) RowsPerExample() int {
	if m.dag == nil {
		return 1
	}
	return m.dag.info.rows
}

// DropoutState returns the state that fixes the dropout masks of a DAG
// model's training graphs (nil for a layer-list model): the masks stay the
// same for every run until Next, so the gradient and the Hessian-vector
// product of one step see the same function. The engine calls Next at
// every SetBatch.
func (m *Model) DropoutState() *DropoutState {
	if m.dag == nil {
		return nil
	}
	return m.dag.drop
}

// buildDAG adds the DAG's forward graph to g for net (input and parameter
// nodes already made). Per-example shapes map to graph shapes as: [C, H, W]
// → [N, C, H, W], [F] → [N, F], [T, D] → [N·T, D] (sequence rows sample
// by sample), token input [T] → [N, T].
func (m *Model) buildDAG(g *gorgonia.ExprGraph, net *Net, batch int, train bool) error {
	d, info := m.dag.d, m.dag.info
	nodes := map[string]*gorgonia.Node{DAGInput: net.X}
	bi := 0
	for i, n := range d.Nodes {
		lo := info.first[i]
		ps := net.Params[lo:]
		ins := make([]*gorgonia.Node, len(n.Inputs))
		for j, s := range n.Inputs {
			ins[j] = nodes[s]
		}
		var h *gorgonia.Node
		var err error
		x := ins[0]
		switch n.Op {
		case OpConv2d:
			if n.NoBias {
				h, err = Conv2d(x, ps[0], n.stride(), n.Pad)
			} else {
				h, err = Conv2dBias(x, ps[0], ps[1], n.stride(), n.Pad)
			}
		case OpBatchNorm2d:
			var st bnStat
			h, st, err = m.batchNorm(g, x, ps[0], ps[1], m.bn[bi], n.eps(), train)
			bi++
			if train && err == nil {
				net.bnStats = append(net.bnStats, st)
			}
		case OpLinear:
			if h, err = MatMul(x, ps[0], false, false); err == nil && !n.NoBias {
				h, err = AddRowVector(h, ps[1])
			}
		case OpLayerNorm:
			h, err = LayerNorm(x, ps[0], ps[1], n.eps())
		case OpEmbedding:
			h, err = Embedding(ps[0], x)
		case OpPosEmbedding:
			h, err = m.posEmbedding(g, x, ps[0], batch, n.Name)
		case OpAttention:
			h, err = MultiHeadAttention(ins[0], ins[1], ins[2], batch, info.shapes[n.Inputs[0]][0], n.Heads, !n.NoCausal)
		case OpAdd:
			h, err = AddN(ins...)
		case OpReLU:
			h, err = ReLU(x)
		case OpTanh:
			h, err = Tanh(x)
		case OpSigmoid:
			h, err = Sigmoid(x)
		case OpGELU:
			h, err = GELU(x)
		case OpGELUTanh:
			h, err = GELUTanh(x)
		case OpDropout:
			h = x
			if train && n.P > 0 {
				h, err = Dropout(x, n.P, m.dag.drop, uint64(i))
			}
		case OpAvgPool2d:
			h, err = AvgPool2d(x, n.Kernel, n.stride())
		case OpMaxPool2d:
			h, err = MaxPool2d(x, n.Kernel, n.stride())
		case OpGlobalAvgPool:
			h, err = GlobalAvgPool(x)
		case OpFlatten:
			h, err = Reshape(x, tensor.Shape{batch, shapeOf(x).TotalSize() / batch})
		default:
			err = fmt.Errorf("unknown op")
		}
		if err != nil {
			return fmt.Errorf("nn: DAG node %d (%s %q): %w", i, n.Op, n.Name, err)
		}
		nodes[n.Name] = h
	}
	net.Logits = nodes[d.Output]
	return nil
}

// posEmbedding adds row t mod T of the position table p [T, D] to row t of
// x [N·T, D], as a gather of p at constant positions.
func (m *Model) posEmbedding(g *gorgonia.ExprGraph, x, p *gorgonia.Node, batch int, name string) (*gorgonia.Node, error) {
	t := shapeOf(p)[0]
	pos := tensor.New(tensor.Of(m.dt), tensor.WithShape(batch*t))
	i := 0
	fill(pos, func() float64 { v := float64(i % t); i++; return v })
	pn := gorgonia.NewTensor(g, m.dt, 1, gorgonia.WithShape(batch*t), gorgonia.WithName(name+".positions"), gorgonia.WithValue(pos))
	pe, err := Embedding(p, pn)
	if err != nil {
		return nil, err
	}
	return AddN(x, pe)
}

// MultiHeadAttention is multi-head scaled dot-product attention of q, k, v
// [N·T, D] (rows sample by sample, n samples of t positions) with the given
// number of heads: per sample and head, softmax(q·kᵀ/√(D/H) + M)·v with M
// the causal mask (−∞ above the diagonal) when causal is set, the heads
// merged back to [N·T, D]. It is composed of SplitHeads, BatchMatMul,
// Scale, CausalMask, Softmax and MergeHeads, so it is twice differentiable.
func MultiHeadAttention(q, k, v *gorgonia.Node, n, t, heads int, causal bool) (*gorgonia.Node, error) {
	split := func(x *gorgonia.Node) (*gorgonia.Node, error) { return SplitHeads(x, n, t, heads) }
	qh, err := split(q)
	if err != nil {
		return nil, err
	}
	kh, err := split(k)
	if err != nil {
		return nil, err
	}
	vh, err := split(v)
	if err != nil {
		return nil, err
	}
	s, err := BatchMatMul(qh, kh, false, true)
	if err != nil {
		return nil, err
	}
	dh := shapeOf(q)[1] / heads
	if s, err = Scale(s, 1/math.Sqrt(float64(dh))); err != nil {
		return nil, err
	}
	if causal {
		if s, err = CausalMask(s); err != nil {
			return nil, err
		}
	}
	p, err := Softmax(s, -1)
	if err != nil {
		return nil, err
	}
	o, err := BatchMatMul(p, vh, false, false)
	if err != nil {
		return nil, err
	}
	return MergeHeads(o, n, heads)
}

// BatchNormNames returns the names of the model's batch-norm layers (or
// nodes), in model order: the names RunningStats takes.
func (m *Model) BatchNormNames() []string {
	names := make([]string, len(m.bn))
	for i, r := range m.bn {
		names[i] = r.name
	}
	return names
}
