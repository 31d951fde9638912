package nn

import (
	"fmt"
	"math"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// bmmOp is the batched matrix product C[b] = op(A[b])·op(B[b]) for
// A [Bt, ·, ·], B [Bt, ·, ·] (torch.bmm, with optional transposes). Like
// MatMul it is bilinear, so its derivatives are bmmOps again.
type bmmOp struct {
	base
	tA, tB  bool
	bt      int
	m, n, k int
	gb      []sgemmBufs
}

// BatchMatMul returns op(a[b])·op(b[b]) for every b of the leading axis of
// the 3-D tensors a and b, op transposing when tA (tB) is set.
func BatchMatMul(a, b *gorgonia.Node, tA, tB bool) (*gorgonia.Node, error) {
	sa, sb := shapeOf(a), shapeOf(b)
	if sa.Dims() != 3 || sb.Dims() != 3 || sa[0] != sb[0] {
		return nil, fmt.Errorf("nn: BatchMatMul wants [B, ·, ·] tensors of one batch, got %v and %v", sa, sb)
	}
	if dtypeOf(a) != dtypeOf(b) {
		return nil, fmt.Errorf("nn: BatchMatMul dtypes %v and %v differ", dtypeOf(a), dtypeOf(b))
	}
	m, ka := sa[1], sa[2]
	if tA {
		m, ka = ka, m
	}
	kb, n := sb[1], sb[2]
	if tB {
		kb, n = n, kb
	}
	if ka != kb {
		return nil, fmt.Errorf("nn: BatchMatMul inner dimensions differ: %v (transposed %v) and %v (transposed %v)", sa, tA, sb, tB)
	}
	op := &bmmOp{base: newBase(fmt.Sprintf("BatchMatMul(%v,%v)", tA, tB), dtypeOf(a), tensor.Shape{sa[0], m, n}, sa, sb), tA: tA, tB: tB, bt: sa[0], m: m, n: n, k: ka}
	return apply(op, a, b)
}

func (op *bmmOp) twiceDifferentiable() {}

func (op *bmmOp) Do(vs ...gorgonia.Value) (gorgonia.Value, error) {
	return run(&op.base, vs,
		func(in [][]float64, out []float64) { bmmK(op, in[0], in[1], out) },
		func(in [][]float32, out []float32) { bmmK(op, in[0], in[1], out) })
}

func bmmK[T Float](op *bmmOp, a, b, out []T) {
	w := numWorkers()
	if len(op.gb) < w {
		op.gb = make([]sgemmBufs, w)
	}
	sa, sb := op.ins[0], op.ins[1]
	la, lb, lc := sa[1]*sa[2], sb[1]*sb[2], op.m*op.n
	parallelFor(op.bt, w, 2, func(wk, lo, hi int) {
		for i := lo; i < hi; i++ {
			gemmBuf(&op.gb[wk], op.tA, op.tB, op.m, op.n, op.k, 1, a[i*la:(i+1)*la], sa[2], b[i*lb:(i+1)*lb], sb[2], 0, out[i*lc:(i+1)*lc], op.n)
		}
	})
}

func (op *bmmOp) DiffWRT(int) []bool { return []bool{true, true} }

func (op *bmmOp) SymDiff(in gorgonia.Nodes, _, g *gorgonia.Node) (gorgonia.Nodes, error) {
	a, b := in[0], in[1]
	var da, db *gorgonia.Node
	var err error
	switch {
	case !op.tA && !op.tB:
		if da, err = BatchMatMul(g, b, false, true); err == nil {
			db, err = BatchMatMul(a, g, true, false)
		}
	case !op.tA && op.tB:
		if da, err = BatchMatMul(g, b, false, false); err == nil {
			db, err = BatchMatMul(g, a, true, false)
		}
	case op.tA && !op.tB:
		if da, err = BatchMatMul(b, g, false, true); err == nil {
			db, err = BatchMatMul(a, g, false, false)
		}
	default:
		if da, err = BatchMatMul(b, g, true, true); err == nil {
			db, err = BatchMatMul(g, a, true, true)
		}
	}
	if err != nil {
		return nil, err
	}
	return gorgonia.Nodes{da, db}, nil
}

// transposeOp permutes the axes of x: y has shape x.shape[perm[i]] and
// y[i₀…] = x[…] with axis i of y being axis perm[i] of x (torch.permute,
// copied). Its derivative is the inverse permutation. The input may be
// read through a view shape (a reshape of it) and the output given another
// shape with the same elements, so reshape–permute–reshape is one copy.
type transposeOp struct {
	base
	perm []int
	view tensor.Shape // the input's shape as permuted
}

// Transpose returns x with its axes permuted by perm (a copy).
func Transpose(x *gorgonia.Node, perm ...int) (*gorgonia.Node, error) {
	return permuteView(x, shapeOf(x), nil, perm)
}

// permuteView permutes x read as view (same number of elements) and gives
// the result shape out (nil: the permuted view shape).
func permuteView(x *gorgonia.Node, view, out tensor.Shape, perm []int) (*gorgonia.Node, error) {
	s := shapeOf(x)
	if view.TotalSize() != s.TotalSize() {
		return nil, fmt.Errorf("nn: Transpose: view %v of shape %v", view, s)
	}
	if len(perm) != view.Dims() {
		return nil, fmt.Errorf("nn: Transpose: permutation %v for shape %v", perm, view)
	}
	seen := make([]bool, len(perm))
	pv := make(tensor.Shape, len(perm))
	for i, p := range perm {
		if p < 0 || p >= len(perm) || seen[p] {
			return nil, fmt.Errorf("nn: Transpose: %v is not a permutation of %d axes", perm, len(perm))
		}
		seen[p] = true
		pv[i] = view[p]
	}
	if out == nil {
		out = pv
	} else if out.TotalSize() != pv.TotalSize() {
		return nil, fmt.Errorf("nn: Transpose: output shape %v for %v", out, pv)
	}
	op := &transposeOp{base: newBase(fmt.Sprintf("Transpose%v", perm), dtypeOf(x), out, s), perm: append([]int{}, perm...), view: view.Clone()}
	return apply(op, x)
}

func (op *transposeOp) twiceDifferentiable() {}

func (op *transposeOp) Do(vs ...gorgonia.Value) (gorgonia.Value, error) {
	return run(&op.base, vs,
		func(in [][]float64, out []float64) { permuteK(op.view, op.perm, in[0], out) },
		func(in [][]float32, out []float32) { permuteK(op.view, op.perm, in[0], out) })
}

// permuteK writes y = x permuted; the innermost output axis is walked with
// the stride of its source axis.
func permuteK[T Float](xs tensor.Shape, perm []int, x, y []T) {
	nd := len(perm)
	xstr := make([]int, nd)
	st := 1
	for i := nd - 1; i >= 0; i-- {
		xstr[i] = st
		st *= xs[i]
	}
	ys := make([]int, nd)
	ystr := make([]int, nd) // stride in x of each output axis
	for i, p := range perm {
		ys[i], ystr[i] = xs[p], xstr[p]
	}
	last, ls := ys[nd-1], ystr[nd-1]
	rows := len(y) / max(1, last)
	idx := make([]int, nd)
	for r := 0; r < rows; r++ {
		off := 0
		for i := 0; i < nd-1; i++ {
			off += idx[i] * ystr[i]
		}
		yr := y[r*last : (r+1)*last]
		for j := range yr {
			yr[j] = x[off+j*ls]
		}
		for i := nd - 2; i >= 0; i-- {
			idx[i]++
			if idx[i] < ys[i] {
				break
			}
			idx[i] = 0
		}
	}
}

func (op *transposeOp) DiffWRT(int) []bool { return []bool{true} }

func (op *transposeOp) SymDiff(_ gorgonia.Nodes, _, g *gorgonia.Node) (gorgonia.Nodes, error) {
	inv := make([]int, len(op.perm))
	pv := make(tensor.Shape, len(op.perm))
	for i, p := range op.perm {
		inv[p] = i
		pv[i] = op.view[p]
	}
	d, err := permuteView(g, pv, op.ins[0], inv)
	if err != nil {
		return nil, err
	}
	return gorgonia.Nodes{d}, nil
}

// SplitHeads turns x [N·T, H·Dh] (rows sample-major) into [N·H, T, Dh], the
// layout of per-head attention.
func SplitHeads(x *gorgonia.Node, n, t, heads int) (*gorgonia.Node, error) {
	s := shapeOf(x)
	if s.Dims() != 2 || s[0] != n*t || s[1]%heads != 0 {
		return nil, fmt.Errorf("nn: SplitHeads: shape %v does not split into %d samples × %d positions × %d heads", s, n, t, heads)
	}
	dh := s[1] / heads
	return permuteView(x, tensor.Shape{n, t, heads, dh}, tensor.Shape{n * heads, t, dh}, []int{0, 2, 1, 3})
}

// MergeHeads is the inverse of SplitHeads: [N·H, T, Dh] → [N·T, H·Dh].
func MergeHeads(x *gorgonia.Node, n, heads int) (*gorgonia.Node, error) {
	s := shapeOf(x)
	if s.Dims() != 3 || s[0] != n*heads {
		return nil, fmt.Errorf("nn: MergeHeads: shape %v is not [%d·%d, T, Dh]", s, n, heads)
	}
	t, dh := s[1], s[2]
	return permuteView(x, tensor.Shape{n, heads, t, dh}, tensor.Shape{n * t, heads * dh}, []int{0, 2, 1, 3})
}

// causalMaskOp sets the entries of x [B, T, T] above the diagonal (key j
// after query i) to fill and keeps the others. With fill −∞ it is the causal
// mask of attention scores (softmax then gives those keys weight 0). Its
// derivative zeroes the same entries: the op again with fill 0.
type causalMaskOp struct {
	base
	t    int
	fill float64
}

// CausalMask returns x [B, T, T] with x[b, i, j] = −∞ for j > i.
func CausalMask(x *gorgonia.Node) (*gorgonia.Node, error) {
	return causalMask(x, math.Inf(-1))
}

func causalMask(x *gorgonia.Node, fill float64) (*gorgonia.Node, error) {
	s := shapeOf(x)
	if s.Dims() != 3 || s[1] != s[2] {
		return nil, fmt.Errorf("nn: CausalMask wants scores [B, T, T], got %v", s)
	}
	op := &causalMaskOp{base: newBase(fmt.Sprintf("CausalMask(%g)", fill), dtypeOf(x), s, s), t: s[1], fill: fill}
	return apply(op, x)
}

func (op *causalMaskOp) twiceDifferentiable() {}

func (op *causalMaskOp) Do(vs ...gorgonia.Value) (gorgonia.Value, error) {
	return run(&op.base, vs,
		func(in [][]float64, out []float64) { causalK(in[0], out, op.t, op.fill) },
		func(in [][]float32, out []float32) { causalK(in[0], out, op.t, op.fill) })
}

func causalK[T Float](x, y []T, t int, fill float64) {
	f := T(fill)
	for r := 0; r < len(y)/t; r++ {
		i := r % t
		xr, yr := x[r*t:(r+1)*t], y[r*t:(r+1)*t]
		copy(yr[:i+1], xr[:i+1])
		for j := i + 1; j < t; j++ {
			yr[j] = f
		}
	}
}

func (op *causalMaskOp) DiffWRT(int) []bool { return []bool{true} }

func (op *causalMaskOp) SymDiff(_ gorgonia.Nodes, _, g *gorgonia.Node) (gorgonia.Nodes, error) {
	d, err := causalMask(g, 0)
	if err != nil {
		return nil, err
	}
	return gorgonia.Nodes{d}, nil
}
