package nn

import (
	"fmt"
	"math"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Net is the forward graph of a Model for one batch size.
type Net struct {
	// X is the input node [N, input_shape...]; bind a value to it before running.
	X *gorgonia.Node
	// Params are the parameter nodes in model order, bound to the model's tensors.
	Params []*gorgonia.Node
	// Logits is the output [N·R, classes], R = RowsPerExample (1 except
	// for sequence models).
	Logits *gorgonia.Node
	// Train reports whether batch norm uses batch statistics (training mode).
	Train bool
	// bnStats are, in training mode, each batch-norm layer's batch mean and
	// biased variance nodes [C] and element count per channel.
	bnStats []bnStat
}

type bnStat struct {
	run        *bnRunning
	mean, vari *gorgonia.Node
	moments    *gorgonia.Node // fused batch norm: BNMoments, (μ, σ²) [2, C]; mean and vari are nil
	count      int            // values per channel on this process
	sync       BatchReducer   // non-nil: mean and vari are the global batch's
}

// Build adds the model's forward computation for a batch of size batch to
// g. In training mode batch norm uses batch statistics (differentiated
// through) and dropout is applied; otherwise batch norm uses the running
// statistics and dropout is the identity. Every op is one of this
// package's twice-differentiable ops. Per-example shapes map to graph
// shapes as: [C, H, W] → [N, C, H, W], [F] → [N, F], [T, D] → [N·T, D]
// (sequence rows sample by sample), token input [T] → [N, T]. A ReLU read
// only by the max pooling that follows it is built as one fused op
// (ReLUMaxPool2d: the same values and derivatives of both orders, fewer
// passes over memory).
func (m *Model) Build(g *gorgonia.ExprGraph, batch int, train bool) (*Net, error) {
	if batch < 1 {
		return nil, fmt.Errorf("nn: batch size %d < 1", batch)
	}
	xs := append(tensor.Shape{batch}, m.d.InputShape...)
	net := &Net{Train: train}
	net.X = gorgonia.NewTensor(g, m.dt, xs.Dims(), gorgonia.WithShape(xs...), gorgonia.WithName("x"))
	for _, p := range m.params {
		n := gorgonia.NewTensor(g, m.dt, p.Value.Shape().Dims(), gorgonia.WithShape(p.Value.Shape().Clone()...),
			gorgonia.WithName(p.Name), gorgonia.WithValue(p.Value))
		net.Params = append(net.Params, n)
	}
	d, info := m.d, m.info
	fused := d.fusedReLUPools()
	fusedBN := d.fusedBNReLUs()
	fusedAdd := d.fusedAddReLUs()
	nodes := map[string]*gorgonia.Node{DAGInput: net.X}
	bi := 0
	for i := 0; i < len(d.Nodes); i++ {
		n := d.Nodes[i]
		ps := net.Params[info.first[i]:]
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
			if train && m.sync == nil {
				relu := fusedBN[i]
				h, st, err = m.fusedBatchNorm(x, ps[0], ps[1], m.bn[bi], n.eps(), relu)
				if relu {
					i++
					n = d.Nodes[i]
				}
			} else {
				h, st, err = m.batchNorm(g, x, ps[0], ps[1], m.bn[bi], n.eps(), train)
			}
			bi++
			if train && err == nil {
				net.bnStats = append(net.bnStats, st)
			}
		case OpLinear:
			if h, err = MatMul(x, ps[0], false, false); err == nil && !n.NoBias {
				h, err = BiasAdd(h, ps[1])
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
			if fusedAdd[i] {
				if h, err = AddReLU(ins[0], ins[1]); err == nil {
					i++
					n = d.Nodes[i]
				}
				break
			}
			h, err = AddN(ins...)
		case OpReLU:
			if fused[i] {
				p := d.Nodes[i+1]
				if h, err = ReLUMaxPool2d(x, p.Kernel, p.stride()); err != nil {
					break
				}
				i++
				n = p
				break
			}
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
				h, err = Dropout(x, n.P, m.drop, uint64(i))
			}
		case OpAvgPool2d:
			h, err = AvgPool2d(x, n.Kernel, n.stride())
		case OpMaxPool2d:
			h, err = MaxPool2d(x, n.Kernel, n.stride())
		case OpGlobalAvgPool:
			h, err = GlobalAvgPool(x)
		case OpFlatten:
			h, err = Flatten(x)
		default:
			err = fmt.Errorf("unknown op")
		}
		if err != nil {
			return nil, fmt.Errorf("nn: DAG node %d (%s %q): %w", i, n.Op, n.Name, err)
		}
		nodes[n.Name] = h
	}
	net.Logits = nodes[d.Output]
	return net, nil
}

// fusedReLUPools reports, per node, whether it is a ReLU that Build fuses
// with the max pooling that follows it: the next node is a max pooling of
// this ReLU, and nothing else (no other node, not the output) reads it.
func (d DAG) fusedReLUPools() []bool {
	return d.fusedNext(OpReLU, OpMaxPool2d, func(DAGNode) bool { return true })
}

// fusedNext reports, per node, whether it has op first and is followed by a
// node of op next whose only input it is, with nothing else (no other node,
// not the output) reading it: the pairs Build fuses into one op.
func (d DAG) fusedNext(first, next string, ok func(n DAGNode) bool) []bool {
	uses := map[string]int{d.Output: 1}
	for _, n := range d.Nodes {
		for _, in := range n.Inputs {
			uses[in]++
		}
	}
	fused := make([]bool, len(d.Nodes))
	for i, n := range d.Nodes {
		if n.Op != first || i+1 == len(d.Nodes) || uses[n.Name] != 1 || !ok(n) {
			continue
		}
		p := d.Nodes[i+1]
		fused[i] = p.Op == next && len(p.Inputs) == 1 && p.Inputs[0] == n.Name
	}
	return fused
}

// fusedAddReLUs reports, per node, whether it is a sum of two inputs that
// Build fuses with the ReLU that follows it (AddReLU: a residual block's
// sum and activation).
func (d DAG) fusedAddReLUs() []bool {
	return d.fusedNext(OpAdd, OpReLU, func(n DAGNode) bool { return len(n.Inputs) == 2 })
}

// fusedBNReLUs reports, per node, whether it is a batch norm that Build
// fuses with the ReLU that follows it in training mode: the next node is a
// ReLU of this batch norm, and nothing else (no other node, not the output)
// reads it.
func (d DAG) fusedBNReLUs() []bool {
	return d.fusedNext(OpBatchNorm2d, OpReLU, func(DAGNode) bool { return true })
}

// fusedBatchNorm builds training-mode batch norm with per-process batch
// statistics as the fused ops S = BNMoments(x), BNApply(x, S, γ, β) (with
// the following ReLU when relu is set): the same values and derivatives of
// both orders as batchNorm's composed ops, in a few passes over memory.
func (m *Model) fusedBatchNorm(x, gamma, beta *gorgonia.Node, run *bnRunning, eps float64, relu bool) (*gorgonia.Node, bnStat, error) {
	xs := shapeOf(x)
	s, err := BNMoments(x)
	if err != nil {
		return nil, bnStat{}, err
	}
	y, err := BNApply(x, s, gamma, beta, eps, relu)
	if err != nil {
		return nil, bnStat{}, err
	}
	return y, bnStat{run: run, moments: s, count: xs[0] * xs[2] * xs[3]}, nil
}

// batchNorm builds y = (x − μ)·γ/√(σ² + eps) + β per channel. In training
// mode μ and the biased σ² are the batch statistics over (N, H, W), built
// from twice-differentiable ops so the statistics are differentiated
// through (over the global batch of a data-parallel run with a
// BatchReducer: see SetBatchReducer); otherwise they are the running
// statistics.
func (m *Model) batchNorm(g *gorgonia.ExprGraph, x, gamma, beta *gorgonia.Node, run *bnRunning, eps float64, train bool) (*gorgonia.Node, bnStat, error) {
	xs := shapeOf(x)
	count := xs[0] * xs[2] * xs[3]
	var mean, vari *gorgonia.Node
	var xc *gorgonia.Node
	var err error
	// The broadcasts are folded into the ops that use them (AddN takes a
	// ChanBcast input as a per-channel bias, ChanMul and ChanDot scale and
	// reduce per channel), so no full-size broadcast tensor is made.
	var negMean *gorgonia.Node
	if train {
		s, err := ChanSum(x)
		if err != nil {
			return nil, bnStat{}, err
		}
		if mean, err = Scale(s, 1/float64(count)); err != nil {
			return nil, bnStat{}, err
		}
		if mean, err = m.batchMean(mean); err != nil { // the global batch's (SetBatchReducer)
			return nil, bnStat{}, err
		}
		// −μ from μ, so the mean node is computed (UpdateRunningStats reads it).
		if negMean, err = Scale(mean, -1); err != nil {
			return nil, bnStat{}, err
		}
	} else {
		c := xs[1]
		mean = gorgonia.NewTensor(g, m.dt, 1, gorgonia.WithShape(c), gorgonia.WithName(run.name+".running_mean"), gorgonia.WithValue(run.mean))
		vari = gorgonia.NewTensor(g, m.dt, 1, gorgonia.WithShape(c), gorgonia.WithName(run.name+".running_var"), gorgonia.WithValue(run.vari))
		var err error
		if negMean, err = Scale(mean, -1); err != nil {
			return nil, bnStat{}, err
		}
	}
	mb, err := ChanBcast(negMean, xs)
	if err != nil {
		return nil, bnStat{}, err
	}
	if xc, err = AddN(x, mb); err != nil {
		return nil, bnStat{}, err
	}
	if train {
		sq, err := ChanDot(xc, xc)
		if err != nil {
			return nil, bnStat{}, err
		}
		if vari, err = Scale(sq, 1/float64(count)); err != nil {
			return nil, bnStat{}, err
		}
		if vari, err = m.batchMean(vari); err != nil {
			return nil, bnStat{}, err
		}
	}
	r, err := Rsqrt(vari, eps)
	if err != nil {
		return nil, bnStat{}, err
	}
	sc, err := Mul(r, gamma)
	if err != nil {
		return nil, bnStat{}, err
	}
	y, err := ChanAffine(xc, sc, beta) // ChanMul then BiasAdd, in one pass
	if err != nil {
		return nil, bnStat{}, err
	}
	st := bnStat{run: run, mean: mean, vari: vari, count: count}
	if train {
		st.sync = m.sync
	}
	return y, st, nil
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
