package nn

import (
	"fmt"
	"math"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// axisGeom is a shape viewed as [outer, n, inner] around a non-negative
// axis: the geometry of the axis ops (AxisSum, AxisBcast, Softmax).
type axisGeom struct {
	axis            int
	outer, n, inner int
}

// axisOf views shape s around axis (negative counts from the end).
func axisOf(s tensor.Shape, axis int) (axisGeom, error) {
	if axis < 0 {
		axis += s.Dims()
	}
	if axis < 0 || axis >= s.Dims() {
		return axisGeom{}, fmt.Errorf("nn: axis %d out of range for shape %v", axis, s)
	}
	g := axisGeom{axis: axis, outer: 1, n: s[axis], inner: 1}
	for _, d := range s[:axis] {
		g.outer *= d
	}
	for _, d := range s[axis+1:] {
		g.inner *= d
	}
	return g, nil
}

// reducedShape is s without axis (non-negative; [1] if nothing is left).
func reducedShape(s tensor.Shape, axis int) tensor.Shape {
	r := append(append(tensor.Shape{}, s[:axis]...), s[axis+1:]...)
	if len(r) == 0 {
		r = tensor.Shape{1}
	}
	return r
}

// axisSumOp sums x over one axis: [outer, n, inner] → [outer, inner]
// (summed in float64). It is linear; its derivative broadcasts back
// (axisBcastOp), whose derivative is this op again.
type axisSumOp struct {
	base
	axisGeom
	acc [][]float64 // per-worker float64 accumulators (inner > 1)
}

// AxisSum returns the sum of x over axis (negative counts from the end); the
// result has x's shape without that axis.
func AxisSum(x *gorgonia.Node, axis int) (*gorgonia.Node, error) {
	s := shapeOf(x)
	g, err := axisOf(s, axis)
	if err != nil {
		return nil, err
	}
	op := &axisSumOp{base: newBase(fmt.Sprintf("AxisSum(%d)", g.axis), dtypeOf(x), reducedShape(s, g.axis), s), axisGeom: g}
	return apply(op, x)
}

func (op *axisSumOp) twiceDifferentiable() {}

func (op *axisSumOp) Do(vs ...gorgonia.Value) (gorgonia.Value, error) {
	if op.acc == nil {
		op.acc = make([][]float64, numWorkers())
	}
	return run(&op.base, vs,
		func(in [][]float64, out []float64) { axisSum(in[0], out, op.outer, op.n, op.inner, op.acc) },
		func(in [][]float32, out []float32) { axisSum(in[0], out, op.outer, op.n, op.inner, op.acc) })
}

// axisSum sums x [outer, n, inner] over n in float64; for inner > 1 it
// walks x row by row (contiguous) into a per-worker accumulator. With one
// outer block and many rows the rows are split over the workers and the
// partial sums added at the end.
func axisSum[T Float](x, y []T, outer, n, inner int, acc [][]float64) {
	if inner == 1 {
		parallelFor(outer, numWorkers(), max(1, minParallel/max(1, n)), func(_, lo, hi int) {
			for o := lo; o < hi; o++ {
				var a float64
				for _, v := range x[o*n : (o+1)*n] {
					a += float64(v)
				}
				y[o] = T(a)
			}
		})
		return
	}
	if outer == 1 {
		partialSums(y, n, inner, n*inner < minParallel, acc, func(a []float64, lo, hi int) {
			for k := lo; k < hi; k++ {
				for i, v := range x[k*inner : (k+1)*inner] {
					a[i] += float64(v)
				}
			}
		})
		return
	}
	parallelFor(outer, len(acc), max(1, minParallel/max(1, n*inner)), func(w, lo, hi int) {
		a := growF64(&acc[w], inner)
		for o := lo; o < hi; o++ {
			clear(a)
			for k := 0; k < n; k++ {
				for i, v := range x[(o*n+k)*inner : (o*n+k+1)*inner] {
					a[i] += float64(v)
				}
			}
			for i, v := range a {
				y[o*inner+i] = T(v)
			}
		}
	})
}

// partialSums splits n items over the workers of acc (one when small),
// each adding its items into its own float64 accumulator of the given
// width (add), and writes the workers' accumulators, added in worker
// order, to out[:width].
func partialSums[T Float](out []T, n, width int, small bool, acc [][]float64, add func(a []float64, lo, hi int)) {
	workers := len(acc)
	if small {
		workers = 1
	}
	var used [64]bool
	workers = min(workers, len(used))
	parallelFor(n, workers, 1, func(w, lo, hi int) {
		used[w] = true
		a := growF64(&acc[w], width)
		clear(a)
		add(a, lo, hi)
	})
	for i := range out[:width] {
		var s float64
		for w := 0; w < workers; w++ {
			if used[w] {
				s += acc[w][i]
			}
		}
		out[i] = T(s)
	}
}

func growF64(b *[]float64, n int) []float64 {
	if len(*b) < n {
		*b = make([]float64, n)
	}
	return (*b)[:n]
}

func (op *axisSumOp) DiffWRT(int) []bool { return []bool{true} }

func (op *axisSumOp) SymDiff(_ gorgonia.Nodes, _, g *gorgonia.Node) (gorgonia.Nodes, error) {
	d, err := AxisBcast(g, op.ins[0], op.axis)
	if err != nil {
		return nil, err
	}
	return gorgonia.Nodes{d}, nil
}

// axisBcastOp repeats v [outer, inner] n times along axis of shape. Its
// derivative is axisSumOp.
type axisBcastOp struct {
	base
	axisGeom
}

// AxisBcast returns v repeated along axis to the given shape; v has shape
// without that axis (as AxisSum returns).
func AxisBcast(v *gorgonia.Node, shape tensor.Shape, axis int) (*gorgonia.Node, error) {
	g, err := axisOf(shape, axis)
	if err != nil {
		return nil, err
	}
	if shapeOf(v).TotalSize() != g.outer*g.inner {
		return nil, fmt.Errorf("nn: AxisBcast: shape %v does not match %v without axis %d", shapeOf(v), shape, g.axis)
	}
	op := &axisBcastOp{base: newBase(fmt.Sprintf("AxisBcast(%d)", g.axis), dtypeOf(v), shape, shapeOf(v)), axisGeom: g}
	return apply(op, v)
}

func (op *axisBcastOp) twiceDifferentiable() {}

func (op *axisBcastOp) Do(vs ...gorgonia.Value) (gorgonia.Value, error) {
	return run(&op.base, vs,
		func(in [][]float64, out []float64) { axisBcast(in[0], out, op.outer, op.n, op.inner) },
		func(in [][]float32, out []float32) { axisBcast(in[0], out, op.outer, op.n, op.inner) })
}

func axisBcast[T Float](v, y []T, outer, n, inner int) {
	for o := 0; o < outer; o++ {
		src := v[o*inner : (o+1)*inner]
		for k := 0; k < n; k++ {
			if inner == 1 {
				y[o*n+k] = src[0]
				continue
			}
			copy(y[(o*n+k)*inner:], src)
		}
	}
}

func (op *axisBcastOp) DiffWRT(int) []bool { return []bool{true} }

func (op *axisBcastOp) SymDiff(_ gorgonia.Nodes, _, g *gorgonia.Node) (gorgonia.Nodes, error) {
	d, err := AxisSum(g, op.axis)
	if err != nil {
		return nil, err
	}
	if !shapeOf(d).Eq(op.ins[0]) {
		if d, err = Reshape(d, op.ins[0]); err != nil {
			return nil, err
		}
	}
	return gorgonia.Nodes{d}, nil
}

// softmaxOp computes y = softmax(x) along one axis (max-shifted, in float64).
// Its derivative is y⊙(G − ⟨G, y⟩) with the inner product along the axis,
// built from Mul, AxisSum, AxisBcast and AddN, which are twice
// differentiable, and y itself (this op), so the family is closed.
type softmaxOp struct {
	base
	axisGeom
}

// Softmax returns softmax(x) along axis (negative counts from the end), as
// torch.softmax(x, dim=axis).
func Softmax(x *gorgonia.Node, axis int) (*gorgonia.Node, error) {
	s := shapeOf(x)
	g, err := axisOf(s, axis)
	if err != nil {
		return nil, err
	}
	op := &softmaxOp{base: newBase(fmt.Sprintf("Softmax(%d)", g.axis), dtypeOf(x), s, s), axisGeom: g}
	return apply(op, x)
}

func (op *softmaxOp) twiceDifferentiable() {}

func (op *softmaxOp) Do(vs ...gorgonia.Value) (gorgonia.Value, error) {
	return run(&op.base, vs,
		func(in [][]float64, out []float64) { softmaxAxis(in[0], out, op.outer, op.n, op.inner) },
		func(in [][]float32, out []float32) { softmaxAxis(in[0], out, op.outer, op.n, op.inner) })
}

func softmaxAxis[T Float](x, y []T, outer, n, inner int) {
	parallelFor(outer*inner, numWorkers(), max(1, minParallel/max(1, n)), func(_, lo, hi int) {
		for r := lo; r < hi; r++ {
			o, i := r/inner, r%inner
			base := o*n*inner + i
			m := math.Inf(-1)
			for k := 0; k < n; k++ {
				m = math.Max(m, float64(x[base+k*inner]))
			}
			var s float64
			for k := 0; k < n; k++ {
				e := math.Exp(float64(x[base+k*inner]) - m)
				s += e
				y[base+k*inner] = T(e)
			}
			for k := 0; k < n; k++ {
				y[base+k*inner] = T(float64(y[base+k*inner]) / s)
			}
		}
	})
}

func (op *softmaxOp) DiffWRT(int) []bool { return []bool{true} }

func (op *softmaxOp) SymDiff(_ gorgonia.Nodes, y, g *gorgonia.Node) (gorgonia.Nodes, error) {
	gy, err := Mul(g, y)
	if err != nil {
		return nil, err
	}
	s, err := AxisSum(gy, op.axis)
	if err != nil {
		return nil, err
	}
	sb, err := AxisBcast(s, op.shape, op.axis)
	if err != nil {
		return nil, err
	}
	ysb, err := Mul(y, sb)
	if err != nil {
		return nil, err
	}
	d, err := Sub(gy, ysb)
	if err != nil {
		return nil, err
	}
	return gorgonia.Nodes{d}, nil
}

// LayerNorm normalises x over its last axis and applies the affine map:
// y = (x − μ)/√(σ² + eps)·γ + β, μ and the biased σ² taken over the last
// axis, γ and β of shape [D] (D the last axis), as torch.nn.LayerNorm(D).
// It is composed of twice-differentiable ops (AxisSum, AxisBcast, Mul,
// Rsqrt, …), so its first and second derivatives are exact.
func LayerNorm(x, gamma, beta *gorgonia.Node, eps float64) (*gorgonia.Node, error) {
	s := shapeOf(x)
	if s.Dims() < 1 {
		return nil, fmt.Errorf("nn: LayerNorm wants at least one axis, got %v", s)
	}
	d := s[s.Dims()-1]
	for _, p := range []*gorgonia.Node{gamma, beta} {
		if p == nil {
			continue
		}
		if ps := shapeOf(p); ps.Dims() != 1 || ps[0] != d {
			return nil, fmt.Errorf("nn: LayerNorm: parameter %q has shape %v, want [%d]", p.Name(), ps, d)
		}
	}
	sum, err := AxisSum(x, -1)
	if err != nil {
		return nil, err
	}
	mean, err := Scale(sum, 1/float64(d))
	if err != nil {
		return nil, err
	}
	mb, err := AxisBcast(mean, s, -1)
	if err != nil {
		return nil, err
	}
	xc, err := Sub(x, mb)
	if err != nil {
		return nil, err
	}
	x2, err := Mul(xc, xc)
	if err != nil {
		return nil, err
	}
	sq, err := AxisSum(x2, -1)
	if err != nil {
		return nil, err
	}
	v, err := Scale(sq, 1/float64(d))
	if err != nil {
		return nil, err
	}
	r, err := Rsqrt(v, eps)
	if err != nil {
		return nil, err
	}
	rb, err := AxisBcast(r, s, -1)
	if err != nil {
		return nil, err
	}
	y, err := Mul(xc, rb)
	if err != nil {
		return nil, err
	}
	rows := tensor.Shape{s.TotalSize() / d, d}
	if gamma == nil && beta == nil {
		return y, nil
	}
	if !s.Eq(rows) {
		if y, err = Reshape(y, rows); err != nil {
			return nil, err
		}
	}
	if gamma != nil {
		gb, err := AxisBcast(gamma, rows, 0)
		if err != nil {
			return nil, err
		}
		if y, err = Mul(y, gb); err != nil {
			return nil, err
		}
	}
	if beta != nil {
		if y, err = BiasAdd(y, beta); err != nil {
			return nil, err
		}
	}
	if !s.Eq(rows) {
		return Reshape(y, s)
	}
	return y, nil
}
