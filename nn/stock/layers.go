package stock

// Layer ops: gorgonia.Conv2d's composition, MaxPool2D, BatchNorm, Dropout,
// Transpose.

import (
	"fmt"

	"github.com/curvopt/curvopt/nn"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// transpose rewrites gorgonia.Transpose; the last node of gorgonia.Conv2d's
// composition becomes one nn.Conv2d.
func (r *Rewriter) transpose(n, a *gorgonia.Node) (*gorgonia.Node, error) {
	if out, ok, err := r.conv(n); ok || err != nil {
		return out, err
	}
	pattern, ok := intsField(n.Op(), "pattern")
	if !ok {
		return nil, r.refuse(n, "cannot read its axis pattern", "nn.Transpose")
	}
	t, err := r.node(a)
	if err != nil {
		return nil, err
	}
	return nn.Transpose(t, pattern...)
}

// matchConv recognises the end of gorgonia.Conv2d(x, w, kernel, pad,
// stride, dilation), which Gorgonia builds as
//
//	Transpose(Reshape(Mul(Reshape(Im2Col(x)), Reshape(w)ᵀ), [b, h, w, o]), 0, 3, 1, 2)
//
// and returns x, w and the im2col node; ok is false when n is not the end
// of that composition.
func (r *Rewriter) matchConv(n *gorgonia.Node) (x, w, col *gorgonia.Node, ok bool) {
	if n.Op() == nil || r.cat.kindOf(n.Op()) != kTranspose {
		return nil, nil, nil, false
	}
	pattern, _ := intsField(n.Op(), "pattern")
	if len(pattern) != 4 || pattern[0] != 0 || pattern[1] != 3 || pattern[2] != 1 || pattern[3] != 2 {
		return nil, nil, nil, false
	}
	step := func(m *gorgonia.Node, k kind) *gorgonia.Node {
		if m == nil || m.Op() == nil || r.cat.kindOf(m.Op()) != k {
			return nil
		}
		return m
	}
	first := func(m *gorgonia.Node, i int) *gorgonia.Node {
		if m == nil {
			return nil
		}
		cs := children(m)
		if i >= len(cs) {
			return nil
		}
		return cs[i]
	}
	res := step(first(n, 0), kReshape)
	mm := step(first(res, 0), kMatMul)
	if mm == nil {
		return nil, nil, nil, false
	}
	if tA, _ := boolField(mm.Op(), "transA"); tA {
		return nil, nil, nil, false
	}
	if tB, _ := boolField(mm.Op(), "transB"); !tB {
		return nil, nil, nil, false
	}
	patch := step(first(mm, 0), kReshape)
	flat := step(first(mm, 1), kReshape)
	col = step(first(patch, 0), kIm2Col)
	w = first(flat, 0)
	if col == nil || w == nil || w.Shape().Dims() != 4 {
		return nil, nil, nil, false
	}
	return first(col, 0), w, col, true
}

// convWords names gorgonia.Conv2d's composite in refusals.
const convWords = "convolution (gorgonia.Conv2d)"

// conv rewrites the end of gorgonia.Conv2d's composition (matchConv) as
// nn.Conv2d(x, w, stride, pad). ok is false when n is not such a node.
func (r *Rewriter) conv(n *gorgonia.Node) (*gorgonia.Node, bool, error) {
	x, w, col, ok := r.matchConv(n)
	if !ok {
		return nil, false, nil
	}
	p := map[string]int{}
	for _, f := range []string{"h", "w", "padH", "padW", "strideH", "strideW", "dilationH", "dilationW"} {
		v, ok := intField(col.Op(), f)
		if !ok {
			return nil, true, r.refuseAs(n, convWords, "cannot read the convolution's parameters", "nn.Conv2d")
		}
		p[f] = v
	}
	ws := w.Shape()
	if p["h"] != p["w"] || p["padH"] != p["padW"] || p["strideH"] != p["strideW"] || p["dilationH"] != 1 || p["dilationW"] != 1 || ws[2] != p["h"] || ws[3] != p["w"] {
		return nil, true, r.refuseAs(n, convWords, fmt.Sprintf("a convolution with kernel %d×%d, padding (%d, %d), stride (%d, %d), dilation (%d, %d): nn.Conv2d takes a square kernel, one padding, one stride and no dilation",
			p["h"], p["w"], p["padH"], p["padW"], p["strideH"], p["strideW"], p["dilationH"], p["dilationW"]), "a square kernel with equal paddings and strides and dilation 1, or nn ops of your own")
	}
	tx, err := r.operand(n, x)
	if err != nil {
		return nil, true, err
	}
	tw, err := r.operand(n, w)
	if err != nil {
		return nil, true, err
	}
	out, err := nn.Conv2d(tx, tw, p["strideH"], p["padH"])
	if err != nil {
		return nil, true, fmt.Errorf("stock: rewriting the convolution at node %q: %w", n.Name(), err)
	}
	if !sameShape(out.Shape(), n.Shape()) {
		return nil, true, r.refuseAs(n, convWords, fmt.Sprintf("nn.Conv2d gives shape %v", out.Shape()), "nn.Conv2d")
	}
	return out, true, nil
}

// maxPool rewrites gorgonia.MaxPool2D with a square window, one stride and
// no padding as nn.MaxPool2d.
func (r *Rewriter) maxPool(n, a *gorgonia.Node) (*gorgonia.Node, error) {
	p := map[string]int{}
	for _, f := range []string{"h", "w", "padNorth", "padSouth", "padWest", "padEast", "strideH", "strideW"} {
		v, ok := intField(n.Op(), f)
		if !ok {
			return nil, r.refuse(n, "cannot read the pooling's parameters", "nn.MaxPool2d")
		}
		p[f] = v
	}
	if p["h"] != p["w"] || p["strideH"] != p["strideW"] || p["padNorth"] != 0 || p["padSouth"] != 0 || p["padWest"] != 0 || p["padEast"] != 0 {
		return nil, r.refuse(n, fmt.Sprintf("max pooling over %d×%d windows, stride (%d, %d), padding (%d, %d, %d, %d): nn.MaxPool2d takes square windows, one stride and no padding",
			p["h"], p["w"], p["strideH"], p["strideW"], p["padNorth"], p["padSouth"], p["padWest"], p["padEast"]), "square windows with equal strides and no padding")
	}
	t, err := r.node(a)
	if err != nil {
		return nil, err
	}
	out, err := nn.MaxPool2d(t, p["h"], p["strideH"])
	if err != nil {
		return nil, err
	}
	if !sameShape(out.Shape(), n.Shape()) {
		return nil, r.refuse(n, fmt.Sprintf("nn.MaxPool2d gives shape %v", out.Shape()), "nn.MaxPool2d")
	}
	return out, nil
}

// dropout rewrites gorgonia.Dropout as nn.Dropout with the node's id as
// its mask id (the identity in evaluation mode, or when the stock op is
// not in training mode or drops nothing).
func (r *Rewriter) dropout(n, a *gorgonia.Node) (*gorgonia.Node, error) {
	t, err := r.node(a)
	if err != nil {
		return nil, err
	}
	if r.opts.Eval || !dropoutActive(n.Op()) {
		return t, nil
	}
	p, ok := floatField(n.Op(), "probability")
	if !ok {
		return nil, r.refuse(n, "cannot read its probability", "nn.Dropout")
	}
	if r.opts.Dropout == nil {
		return nil, r.refuse(n, "no dropout state was given to draw its mask per step", "a rewriter with Options.Dropout set")
	}
	r.drops++
	return nn.Dropout(t, p, r.opts.Dropout, uint64(n.ID()))
}

// batchNorm rewrites gorgonia.BatchNorm's op in training mode: per channel
// (axis 1), (x − μ)/√(σ² + eps) with μ and the biased σ² over the batch
// (and the spatial axes), built from nn's channel ops so the statistics
// are differentiated through. Gorgonia applies the scale and bias with
// broadcast ops after it, which are rewritten on their own.
func (r *Rewriter) batchNorm(n, a *gorgonia.Node) (*gorgonia.Node, error) {
	train, ok := boolField(n.Op(), "training")
	eps, ok2 := floatField(n.Op(), "epsilon")
	if !ok || !ok2 {
		return nil, r.refuse(n, "cannot read its mode and epsilon", "nn's batch norm (an nn.DAG with batchnorm2d)")
	}
	if !train {
		return nil, r.refuse(n, "batch norm in evaluation mode (running statistics) is not rewritten", "the training mode (batch statistics)")
	}
	s := a.Shape()
	if s.Dims() != 2 && s.Dims() != 4 {
		return nil, r.refuse(n, fmt.Sprintf("input of shape %v", s), "a [N, C] or [N, C, H, W] input")
	}
	x, err := r.node(a)
	if err != nil {
		return nil, err
	}
	x4 := s
	if s.Dims() == 2 {
		x4 = tensor.Shape{s[0], s[1], 1, 1}
		if x, err = nn.Reshape(x, x4); err != nil {
			return nil, err
		}
	}
	count := float64(x4[0] * x4[2] * x4[3])
	sum, err := nn.ChanSum(x)
	if err != nil {
		return nil, err
	}
	negMean, err := nn.Scale(sum, -1/count)
	if err != nil {
		return nil, err
	}
	mb, err := nn.ChanBcast(negMean, x4)
	if err != nil {
		return nil, err
	}
	xc, err := nn.AddN(x, mb)
	if err != nil {
		return nil, err
	}
	sq, err := nn.ChanDot(xc, xc)
	if err != nil {
		return nil, err
	}
	v, err := nn.Scale(sq, 1/count)
	if err != nil {
		return nil, err
	}
	inv, err := nn.Rsqrt(v, eps)
	if err != nil {
		return nil, err
	}
	y, err := nn.ChanMul(xc, inv)
	if err != nil {
		return nil, err
	}
	return asShape(y, s)
}

// slice rewrites one gorgonia.Slice step (one op per sliced axis) as
// nn.Slice, dropping the axis when the slice is a single index, as
// Gorgonia does.
func (r *Rewriter) slice(n, a *gorgonia.Node) (*gorgonia.Node, error) {
	t, err := r.node(a)
	if err != nil {
		return nil, err
	}
	sl, ok := n.Op().(interface{ IsSlice() tensor.Slice })
	along, ok2 := intField(n.Op(), "along")
	if !ok || !ok2 {
		return nil, r.refuse(n, "cannot read the slice", "nn.Slice")
	}
	s := sl.IsSlice()
	in := a.Shape()
	if s == nil { // the whole axis
		return asShape(t, n.Shape())
	}
	start, end, step := s.Start(), s.End(), s.Step()
	if end < 0 || end > in[along] {
		end = in[along]
	}
	if step > 1 && end-start > 1 {
		return nil, r.refuse(n, fmt.Sprintf("a slice with step %d", step), "a slice with step 1 (nn.Slice), or nn.Transpose and nn.Reshape")
	}
	if along < 0 || along >= in.Dims() {
		return nil, r.refuse(n, fmt.Sprintf("a slice along axis %d of %v", along, in), "nn.Slice")
	}
	t, err = asShape(t, in)
	if err != nil {
		return nil, err
	}
	out, err := nn.Slice(t, along, start, end)
	if err != nil {
		return nil, fmt.Errorf("stock: rewriting the slice at node %q: %w", n.Name(), err)
	}
	return asShape(out, n.Shape())
}

// concat rewrites gorgonia.Concat as nn.Concat (a sum of zero-padded
// inputs).
func (r *Rewriter) concat(n *gorgonia.Node, kids []*gorgonia.Node) (*gorgonia.Node, error) {
	axis, ok := intField(n.Op(), "axis")
	if !ok {
		return nil, r.refuse(n, "cannot read the axis", "nn.Concat")
	}
	ts := make([]*gorgonia.Node, len(kids))
	for i, c := range kids {
		t, err := r.operand(n, c)
		if err != nil {
			return nil, err
		}
		if ts[i], err = asShape(t, c.Shape()); err != nil {
			return nil, err
		}
	}
	out, err := nn.Concat(axis, ts...)
	if err != nil {
		return nil, fmt.Errorf("stock: rewriting the concatenation at node %q: %w", n.Name(), err)
	}
	return asShape(out, n.Shape())
}
