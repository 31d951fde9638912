package nn

// Slicing along one axis and its adjoint, zero padding (for nn/stock's
// rewrites of gorgonia.Slice and gorgonia.Concat). Both are linear and each
// is the other's derivative, so the family is closed under
// differentiation.

import (
	"fmt"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// rangeOp is Slice (pad false: x → x[…, start:end, …] along axis) or Pad
// (pad true: the slice's adjoint, placing x at [start, end) of a zero
// tensor whose axis has size full).
type rangeOp struct {
	base
	pad              bool
	axis, start, end int
	full             int // the axis' size of the unsliced tensor
	outer, inner     int
}

// Slice returns x[…, start:end, …] along axis (a copy; step 1).
func Slice(x *gorgonia.Node, axis, start, end int) (*gorgonia.Node, error) {
	s := shapeOf(x)
	if axis < 0 || axis >= s.Dims() || start < 0 || end > s[axis] || start >= end {
		return nil, fmt.Errorf("nn: Slice [%d:%d] along axis %d of %v", start, end, axis, s)
	}
	out := s.Clone()
	out[axis] = end - start
	return applyRange(x, false, axis, start, end, s[axis], out)
}

// Pad returns x placed at [start, start+len) along axis of a zero tensor
// whose axis has size full: the adjoint of Slice.
func Pad(x *gorgonia.Node, axis, start, full int) (*gorgonia.Node, error) {
	s := shapeOf(x)
	if axis < 0 || axis >= s.Dims() || start < 0 || start+s[axis] > full {
		return nil, fmt.Errorf("nn: Pad %v at %d along axis %d to size %d", s, start, axis, full)
	}
	out := s.Clone()
	out[axis] = full
	return applyRange(x, true, axis, start, start+s[axis], full, out)
}

// Concat returns the concatenation of xs along axis, as the sum of each
// one padded to its place.
func Concat(axis int, xs ...*gorgonia.Node) (*gorgonia.Node, error) {
	if len(xs) == 0 {
		return nil, fmt.Errorf("nn: Concat of no nodes")
	}
	full := 0
	for _, x := range xs {
		s := shapeOf(x)
		if axis < 0 || axis >= s.Dims() {
			return nil, fmt.Errorf("nn: Concat along axis %d of %v", axis, s)
		}
		full += s[axis]
	}
	parts := make([]*gorgonia.Node, len(xs))
	off := 0
	for i, x := range xs {
		p, err := Pad(x, axis, off, full)
		if err != nil {
			return nil, err
		}
		parts[i], off = p, off+shapeOf(x)[axis]
	}
	return AddN(parts...)
}

func applyRange(x *gorgonia.Node, pad bool, axis, start, end, full int, out tensor.Shape) (*gorgonia.Node, error) {
	s := shapeOf(x)
	name := "Slice"
	if pad {
		name = "Pad"
	}
	op := &rangeOp{base: newBase(fmt.Sprintf("%s(%d,%d:%d/%d)", name, axis, start, end, full), dtypeOf(x), out, s),
		pad: pad, axis: axis, start: start, end: end, full: full, outer: 1, inner: 1}
	for _, d := range s[:axis] {
		op.outer *= d
	}
	for _, d := range s[axis+1:] {
		op.inner *= d
	}
	return apply(op, x)
}

func (op *rangeOp) twiceDifferentiable() {}

func (op *rangeOp) Do(vs ...gorgonia.Value) (gorgonia.Value, error) {
	return run(&op.base, vs,
		func(in [][]float64, out []float64) { rangeCopy(op, in[0], out) },
		func(in [][]float32, out []float32) { rangeCopy(op, in[0], out) })
}

func rangeCopy[T Float](op *rangeOp, x, y []T) {
	w := (op.end - op.start) * op.inner // the slice's run per outer index
	fw := op.full * op.inner
	at := op.start * op.inner
	if op.pad {
		clear(y)
	}
	for o := 0; o < op.outer; o++ {
		if op.pad {
			copy(y[o*fw+at:o*fw+at+w], x[o*w:(o+1)*w])
		} else {
			copy(y[o*w:(o+1)*w], x[o*fw+at:o*fw+at+w])
		}
	}
}

func (op *rangeOp) DiffWRT(int) []bool { return []bool{true} }

func (op *rangeOp) SymDiff(_ gorgonia.Nodes, _, g *gorgonia.Node) (gorgonia.Nodes, error) {
	var d *gorgonia.Node
	var err error
	if op.pad {
		d, err = Slice(g, op.axis, op.start, op.end)
	} else {
		d, err = Pad(g, op.axis, op.start, op.full)
	}
	if err != nil {
		return nil, err
	}
	return gorgonia.Nodes{d}, nil
}
