package nn

import (
	"fmt"
	"hash"
	"hash/fnv"

	"github.com/chewxy/hm"
	"github.com/curvopt/curvopt/internal/num"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Float is the element type of the project's numeric kernels (the
// module's one constraint, internal/num).
type Float = num.Float

// secondOrderSafe marks the ops of this package whose SymDiff emits ops that
// are themselves correctly differentiable, so that a second reverse pass
// through the backward graph is exact. Ops without the mark may appear in a
// graph that is differentiated once but are refused by AuditSecondOrder.
type secondOrderSafe interface{ twiceDifferentiable() }

// base holds what every op of this package shares: the dtype, the input and
// output shapes fixed at graph-construction time, and the output buffer the op
// overwrites on every run (so a run allocates nothing): its own, allocated at
// the first run, or one an executor gave it with SetOutput.
type base struct {
	name  string
	dt    tensor.Dtype
	ins   []tensor.Shape
	shape tensor.Shape
	out   *tensor.Dense
	// run's argument slices, reused by every run (an op's runs never
	// overlap: it owns its output buffer)
	ds   []*tensor.Dense
	in32 [][]float32
	in64 [][]float64
}

func newBase(name string, dt tensor.Dtype, out tensor.Shape, ins ...tensor.Shape) base {
	return base{name: name, dt: dt, ins: ins, shape: out.Clone()}
}

// Arity is the number of inputs.
func (b *base) Arity() int { return len(b.ins) }

// Type is the op's function type, built from the fixed input and output ranks.
func (b *base) Type() hm.Type {
	ts := make([]hm.Type, 0, len(b.ins)+1)
	for _, s := range b.ins {
		ts = append(ts, gorgonia.TensorType{Dims: s.Dims(), Of: b.dt})
	}
	ts = append(ts, gorgonia.TensorType{Dims: b.shape.Dims(), Of: b.dt})
	return hm.NewFnType(ts...)
}

// InferShape returns the output shape fixed at construction.
func (b *base) InferShape(...gorgonia.DimSizer) (tensor.Shape, error) { return b.shape.Clone(), nil }

// ReturnsPtr is false: the op returns its own buffer, never an input.
func (b *base) ReturnsPtr() bool { return false }

// CallsExtern is false.
func (b *base) CallsExtern() bool { return false }

// OverwritesInput is -1: inputs are never written.
func (b *base) OverwritesInput() int { return -1 }

// WriteHash writes the op's identity. Every op value is unique (its address is
// part of the hash) because it owns its output buffer.
func (b *base) WriteHash(h hash.Hash) { fmt.Fprintf(h, "%s%p", b.name, b) }

// Hashcode returns the op's hash.
func (b *base) Hashcode() uint32 {
	h := fnv.New32a()
	b.WriteHash(h)
	return h.Sum32()
}

// String returns the op's name.
func (b *base) String() string { return b.name }

// checkInputs verifies the number, dtype and shape of the run-time inputs.
// The returned slice is reused by the next call.
func (b *base) checkInputs(vs []gorgonia.Value) ([]*tensor.Dense, error) {
	if len(vs) != len(b.ins) {
		return nil, fmt.Errorf("%s: got %d inputs, want %d", b.name, len(vs), len(b.ins))
	}
	if len(b.ds) != len(vs) {
		b.ds = make([]*tensor.Dense, len(vs))
	}
	ds := b.ds
	for i, v := range vs {
		d, ok := v.(*tensor.Dense)
		if !ok {
			return nil, fmt.Errorf("%s: input %d is %T, want *tensor.Dense", b.name, i, v)
		}
		if d.Dtype() != b.dt {
			return nil, fmt.Errorf("%s: input %d has dtype %v, want %v", b.name, i, d.Dtype(), b.dt)
		}
		if d.Shape().TotalSize() != b.ins[i].TotalSize() {
			return nil, fmt.Errorf("%s: input %d has shape %v, want %v", b.name, i, d.Shape(), b.ins[i])
		}
		ds[i] = d
	}
	return ds, nil
}

// slice returns the backing slice of d as []T (d's dtype must be T's)
// without allocating: num.Slice, the module's one unsafe cast.
func slice[T Float](d *tensor.Dense) []T { return num.Slice[T](d) }

// run dispatches a generic kernel on the op's dtype after checking inputs.
func run(b *base, vs []gorgonia.Value, f64 func(in [][]float64, out []float64), f32 func(in [][]float32, out []float32)) (gorgonia.Value, error) {
	ds, err := b.checkInputs(vs)
	if err != nil {
		return nil, err
	}
	if b.out == nil {
		// allocated at the first run unless SetOutput gave one
		b.out = tensor.New(tensor.Of(b.dt), tensor.WithShape(b.shape.Clone()...))
	}
	switch b.dt {
	case tensor.Float64:
		if len(b.in64) != len(ds) {
			b.in64 = make([][]float64, len(ds))
		}
		in := b.in64
		for i, d := range ds {
			in[i] = slice[float64](d)
		}
		f64(in, slice[float64](b.out))
	case tensor.Float32:
		if len(b.in32) != len(ds) {
			b.in32 = make([][]float32, len(ds))
		}
		in := b.in32
		for i, d := range ds {
			in[i] = slice[float32](d)
		}
		f32(in, slice[float32](b.out))
	default:
		return nil, fmt.Errorf("%s: unsupported dtype %v", b.name, b.dt)
	}
	return b.out, nil
}

// apply adds op applied to children to their graph.
func apply(op gorgonia.Op, children ...*gorgonia.Node) (*gorgonia.Node, error) {
	n, err := gorgonia.ApplyOp(op, children...)
	if err != nil {
		return nil, fmt.Errorf("nn: applying %v: %w", op, err)
	}
	return n, nil
}

// shapeOf returns the node's shape.
func shapeOf(n *gorgonia.Node) tensor.Shape { return n.Shape() }

// dtypeOf returns the node's dtype.
func dtypeOf(n *gorgonia.Node) tensor.Dtype { return n.Dtype() }

func checkFloat(dt tensor.Dtype) error {
	if dt != tensor.Float64 && dt != tensor.Float32 {
		return fmt.Errorf("nn: unsupported dtype %v (want float32 or float64)", dt)
	}
	return nil
}
