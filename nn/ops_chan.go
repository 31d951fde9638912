package nn

import (
	"fmt"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// chanMulOp is y = x ⊙ s broadcast along axis 1 (x [outer, C, inner],
// s [C]) without materialising the broadcast. Its derivatives are
// ChanMul(G, s) for x and ChanDot(G, x) for s; ChanDot's are ChanMul
// again, so the pair is closed under differentiation.
type chanMulOp struct {
	base
	outer, c, inner int
}

// ChanMul returns x scaled per channel (axis 1) by s [C].
func ChanMul(x, s *gorgonia.Node) (*gorgonia.Node, error) {
	sx := shapeOf(x)
	outer, c, inner, err := channelLayout(sx)
	if err != nil {
		return nil, err
	}
	if ss := shapeOf(s); ss.Dims() != 1 || ss[0] != c || dtypeOf(s) != dtypeOf(x) {
		return nil, fmt.Errorf("nn: ChanMul: scale %v %v does not match axis 1 of %v %v", dtypeOf(s), ss, dtypeOf(x), sx)
	}
	op := &chanMulOp{base: newBase("ChanMul", dtypeOf(x), sx, sx, shapeOf(s)), outer: outer, c: c, inner: inner}
	return apply(op, x, s)
}

func (op *chanMulOp) twiceDifferentiable() {}

func (op *chanMulOp) Do(vs ...gorgonia.Value) (gorgonia.Value, error) {
	return run(&op.base, vs,
		func(in [][]float64, out []float64) { chanMul(in[0], in[1], out, op.outer, op.c, op.inner) },
		func(in [][]float32, out []float32) { chanMul(in[0], in[1], out, op.outer, op.c, op.inner) })
}

func chanMul[T Float](x, s, y []T, outer, c, inner int) {
	if inner == 1 { // [outer, C] rows: one vector product per row
		parallelFor(outer, numWorkers(), max(1, minParallel/max(1, c)), func(_, lo, hi int) {
			for o := lo; o < hi; o++ {
				vecMul(x[o*c:(o+1)*c], s[:c], y[o*c:(o+1)*c])
			}
		})
		return
	}
	parallelFor(outer, numWorkers(), max(1, minParallel/max(1, c*inner)), func(_, lo, hi int) {
		for o := lo; o < hi; o++ {
			for ch, sv := range s[:c] {
				off := (o*c + ch) * inner
				vecScale(x[off:off+inner], y[off:off+inner], sv)
			}
		}
	})
}

func (op *chanMulOp) DiffWRT(int) []bool { return []bool{true, true} }

func (op *chanMulOp) SymDiff(in gorgonia.Nodes, _, g *gorgonia.Node) (gorgonia.Nodes, error) {
	dx, err := ChanMul(g, in[1])
	if err != nil {
		return nil, err
	}
	ds, err := ChanDot(g, in[0])
	if err != nil {
		return nil, err
	}
	return gorgonia.Nodes{dx, ds}, nil
}

// chanDotOp is d[c] = Σ over all axes but 1 of a⊙b (a, b [outer, C, inner]),
// accumulated in float64: the per-channel inner product. Its derivatives
// are ChanMul(b, U) for a and ChanMul(a, U) for b.
type chanDotOp struct {
	base
	outer, c, inner int
	acc             [][]float64
}

// ChanDot returns the per-channel (axis 1) inner product of a and b, [C].
func ChanDot(a, b *gorgonia.Node) (*gorgonia.Node, error) {
	if err := sameShapes("ChanDot", a, b); err != nil {
		return nil, err
	}
	sa := shapeOf(a)
	outer, c, inner, err := channelLayout(sa)
	if err != nil {
		return nil, err
	}
	op := &chanDotOp{base: newBase("ChanDot", dtypeOf(a), tensor.Shape{c}, sa, sa), outer: outer, c: c, inner: inner}
	return apply(op, a, b)
}

func (op *chanDotOp) twiceDifferentiable() {}

func (op *chanDotOp) Do(vs ...gorgonia.Value) (gorgonia.Value, error) {
	if op.acc == nil {
		op.acc = make([][]float64, numWorkers())
	}
	return run(&op.base, vs,
		func(in [][]float64, out []float64) { chanDot(in[0], in[1], out, op.outer, op.c, op.inner, op.acc) },
		func(in [][]float32, out []float32) { chanDot(in[0], in[1], out, op.outer, op.c, op.inner, op.acc) })
}

// chanDot splits the outer blocks over the workers, each accumulating its
// per-channel sums in float64, and adds the workers' sums in order.
func chanDot[T Float](a, b, d []T, outer, c, inner int, acc [][]float64) {
	partialSums(d, outer, c, outer*c*inner < minParallel, acc, func(s []float64, lo, hi int) {
		for o := lo; o < hi; o++ {
			for ch := 0; ch < c; ch++ {
				off := (o*c + ch) * inner
				s[ch] += dotF64(a[off:off+inner], b[off:off+inner])
			}
		}
	})
}

func (op *chanDotOp) DiffWRT(int) []bool { return []bool{true, true} }

func (op *chanDotOp) SymDiff(in gorgonia.Nodes, _, u *gorgonia.Node) (gorgonia.Nodes, error) {
	da, err := ChanMul(in[1], u)
	if err != nil {
		return nil, err
	}
	db, err := ChanMul(in[0], u)
	if err != nil {
		return nil, err
	}
	return gorgonia.Nodes{da, db}, nil
}

// chanAffineOp is y = x ⊙ s + b with s, b [C] broadcast along axis 1 of x
// [outer, C, inner]: ChanMul and BiasAdd in one pass, each element's product
// rounded before the sum as the two ops did. Its derivatives are theirs:
// ChanMul(G, s) for x, ChanDot(G, x) for s, ChanSum(G) for b.
type chanAffineOp struct {
	base
	outer, c, inner int
}

// ChanAffine returns x scaled per channel (axis 1) by s [C] plus b [C]:
// BiasAdd(ChanMul(x, s), b) as one op.
func ChanAffine(x, s, b *gorgonia.Node) (*gorgonia.Node, error) {
	sx := shapeOf(x)
	outer, c, inner, err := channelLayout(sx)
	if err != nil {
		return nil, err
	}
	for _, v := range []*gorgonia.Node{s, b} {
		if sv := shapeOf(v); sv.Dims() != 1 || sv[0] != c || dtypeOf(v) != dtypeOf(x) {
			return nil, fmt.Errorf("nn: ChanAffine: %v %v does not match axis 1 of %v %v", dtypeOf(v), sv, dtypeOf(x), sx)
		}
	}
	op := &chanAffineOp{base: newBase("ChanAffine", dtypeOf(x), sx, sx, shapeOf(s), shapeOf(b)), outer: outer, c: c, inner: inner}
	return apply(op, x, s, b)
}

func (op *chanAffineOp) twiceDifferentiable() {}

func (op *chanAffineOp) Do(vs ...gorgonia.Value) (gorgonia.Value, error) {
	return run(&op.base, vs,
		func(in [][]float64, out []float64) { chanAffine(in[0], in[1], in[2], out, op.outer, op.c, op.inner) },
		func(in [][]float32, out []float32) { chanAffine(in[0], in[1], in[2], out, op.outer, op.c, op.inner) })
}

func chanAffine[T Float](x, s, b, y []T, outer, c, inner int) {
	parallelFor(outer, numWorkers(), max(1, minParallel/max(1, c*inner)), func(_, lo, hi int) {
		for o := lo; o < hi; o++ {
			for ch := 0; ch < c; ch++ {
				off := (o*c + ch) * inner
				vecScaleAdd(x[off:off+inner], y[off:off+inner], s[ch], b[ch])
			}
		}
	})
}

func (op *chanAffineOp) DiffWRT(int) []bool { return []bool{true, true, true} }

func (op *chanAffineOp) SymDiff(in gorgonia.Nodes, _, g *gorgonia.Node) (gorgonia.Nodes, error) {
	dx, err := ChanMul(g, in[1])
	if err != nil {
		return nil, err
	}
	ds, err := ChanDot(g, in[0])
	if err != nil {
		return nil, err
	}
	db, err := ChanSum(g)
	if err != nil {
		return nil, err
	}
	return gorgonia.Nodes{dx, ds, db}, nil
}
