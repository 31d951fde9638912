package nn

import (
	"fmt"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// matMulOp computes C = op(A)·op(B) for matrices, op(X) = X or Xᵀ.
//
// It is bilinear, so its derivatives are again matMulOps: for C = A·B with
// upstream G, ∂/∂A = G·Bᵀ and ∂/∂B = Aᵀ·G (the transposed variants follow by
// transposing these identities).
type matMulOp struct {
	base
	tA, tB  bool
	m, n, k int
	bt64    []float64 // transposed-operand scratch
	bt32    []float32
	gb      []sgemmBufs // GEMM packing buffers, per worker
}

// MatMul returns op(a)·op(b), where op transposes when tA (tB) is set.
func MatMul(a, b *gorgonia.Node, tA, tB bool) (*gorgonia.Node, error) {
	sa, sb := shapeOf(a), shapeOf(b)
	if sa.Dims() != 2 || sb.Dims() != 2 {
		return nil, fmt.Errorf("nn: MatMul wants matrices, got shapes %v and %v", sa, sb)
	}
	if dtypeOf(a) != dtypeOf(b) {
		return nil, fmt.Errorf("nn: MatMul dtypes %v and %v differ", dtypeOf(a), dtypeOf(b))
	}
	m, ka := sa[0], sa[1]
	if tA {
		m, ka = ka, m
	}
	kb, n := sb[0], sb[1]
	if tB {
		kb, n = n, kb
	}
	if ka != kb {
		return nil, fmt.Errorf("nn: MatMul inner dimensions differ: %v (transposed %v) and %v (transposed %v)", sa, tA, sb, tB)
	}
	op := &matMulOp{base: newBase(fmt.Sprintf("MatMul(%v,%v)", tA, tB), dtypeOf(a), tensor.Shape{m, n}, sa, sb), tA: tA, tB: tB, m: m, n: n, k: ka}
	return apply(op, a, b)
}

func (op *matMulOp) twiceDifferentiable() {}

func (op *matMulOp) Do(vs ...gorgonia.Value) (gorgonia.Value, error) {
	return run(&op.base, vs,
		func(in [][]float64, out []float64) { matMulK(op, &op.bt64, in[0], in[1], out) },
		func(in [][]float32, out []float32) { matMulK(op, &op.bt32, in[0], in[1], out) })
}

// matMulK computes the product; A·Bᵀ with enough rows goes through a
// transposed copy of B (kept in bt) because pure-Go BLAS computes A·Bᵀ with
// dot products, several times slower than the plain product.
func matMulK[T Float](op *matMulOp, bt *[]T, a, b, out []T) {
	lda, ldb := op.ins[0][1], op.ins[1][1]
	if op.tB && !op.tA && op.m >= 8 && !transposeCheap[T]() {
		if len(*bt) != op.k*op.n {
			*bt = make([]T, op.k*op.n)
		}
		t := *bt
		// b is [n, k]; t = bᵀ is [k, n].
		for r := 0; r < op.n; r++ {
			for c, v := range b[r*ldb : r*ldb+op.k] {
				t[c*op.n+r] = v
			}
		}
		gemmRows(op, false, false, a, lda, t, op.n, out)
		return
	}
	gemmRows(op, op.tA, op.tB, a, lda, b, ldb, out)
}

// gemmRows computes out = op(a)·op(b), splitting the rows of out over the
// workers when the product is large and the BLAS runs single-threaded
// (OpenBLAS as configured here, or the native float32 kernel; gonum's
// pure-Go GEMM parallelises by itself). Each row block is an independent
// product, so the result does not depend on the split.
func gemmRows[T Float](op *matMulOp, tA, tB bool, a []T, lda int, b []T, ldb int, out []T) {
	m, n, k := op.m, op.n, op.k
	workers := 1
	if transposeCheap[T]() && m*n*k >= 1<<20 && m >= 2*sgemmMR {
		workers = numWorkers()
	}
	if len(op.gb) < workers {
		op.gb = make([]sgemmBufs, workers)
	}
	// Row blocks of a multiple of the kernel's 4 rows.
	per := ((m+workers-1)/workers + sgemmMR - 1) / sgemmMR * sgemmMR
	parallelFor((m+per-1)/per, workers, 2, func(w, lo, hi int) {
		for blk := lo; blk < hi; blk++ {
			i0, i1 := blk*per, min(m, (blk+1)*per)
			ao := i0 * lda
			if tA {
				ao = i0
			}
			gemmBuf(&op.gb[w], tA, tB, i1-i0, n, k, 1, a[ao:], lda, b, ldb, 0, out[i0*n:], n)
		}
	})
}

func (op *matMulOp) DiffWRT(int) []bool { return []bool{true, true} }

func (op *matMulOp) SymDiff(in gorgonia.Nodes, _, g *gorgonia.Node) (gorgonia.Nodes, error) {
	a, b := in[0], in[1]
	var da, db *gorgonia.Node
	var err error
	switch {
	case !op.tA && !op.tB: // C = A B: dA = G Bᵀ, dB = Aᵀ G
		if da, err = MatMul(g, b, false, true); err == nil {
			db, err = MatMul(a, g, true, false)
		}
	case !op.tA && op.tB: // C = A Bᵀ: dA = G B, dB = Gᵀ A
		if da, err = MatMul(g, b, false, false); err == nil {
			db, err = MatMul(g, a, true, false)
		}
	case op.tA && !op.tB: // C = Aᵀ B: dA = B Gᵀ, dB = A G
		if da, err = MatMul(b, g, false, true); err == nil {
			db, err = MatMul(a, g, false, false)
		}
	default: // C = Aᵀ Bᵀ: dA = Bᵀ Gᵀ, dB = Gᵀ Aᵀ
		if da, err = MatMul(b, g, true, true); err == nil {
			db, err = MatMul(g, a, true, true)
		}
	}
	if err != nil {
		return nil, err
	}
	return gorgonia.Nodes{da, db}, nil
}

// channelLayout views a shape as [outer, channels, inner] with the channel
// axis at index 1: [N, C] (inner 1) or [N, C, H, W] (inner H·W).
func channelLayout(s tensor.Shape) (outer, c, inner int, err error) {
	if s.Dims() < 2 {
		return 0, 0, 0, fmt.Errorf("nn: channel ops want at least 2 dimensions, got shape %v", s)
	}
	inner = 1
	for _, d := range s[2:] {
		inner *= d
	}
	return s[0], s[1], inner, nil
}

// biasAddOp computes y = x + b broadcast along axis 1 (the channel or feature
// axis). ∂/∂x = G, ∂/∂b = Σ over all axes but 1 of G (chanSumOp).
type biasAddOp struct {
	base
	outer, c, inner int
}

// BiasAdd returns x + b, with b of shape [x.shape[1]] broadcast over the
// other axes of x.
func BiasAdd(x, b *gorgonia.Node) (*gorgonia.Node, error) {
	sx, sb := shapeOf(x), shapeOf(b)
	outer, c, inner, err := channelLayout(sx)
	if err != nil {
		return nil, err
	}
	if sb.TotalSize() != c || sb.Dims() != 1 {
		return nil, fmt.Errorf("nn: BiasAdd: bias shape %v does not match axis 1 of %v", sb, sx)
	}
	op := &biasAddOp{base: newBase("BiasAdd", dtypeOf(x), sx, sx, sb), outer: outer, c: c, inner: inner}
	return apply(op, x, b)
}

func (op *biasAddOp) twiceDifferentiable() {}

func (op *biasAddOp) Do(vs ...gorgonia.Value) (gorgonia.Value, error) {
	return run(&op.base, vs,
		func(in [][]float64, out []float64) { biasAdd(in[0], in[1], out, op.outer, op.c, op.inner) },
		func(in [][]float32, out []float32) { biasAdd(in[0], in[1], out, op.outer, op.c, op.inner) })
}

func biasAdd[T Float](x, b, y []T, outer, c, inner int) {
	parallelFor(outer, numWorkers(), 8, func(_, lo, hi int) {
		if inner == 1 { // [outer, C] rows: one contiguous run per row
			b := b[:c]
			for o := lo; o < hi; o++ {
				xs, ys := x[o*c:o*c+c], y[o*c:o*c+c]
				for i, bv := range b {
					ys[i] = xs[i] + bv
				}
			}
			return
		}
		for o := lo; o < hi; o++ {
			for ch := 0; ch < c; ch++ {
				off := (o*c + ch) * inner
				vecAddScalar(x[off:off+inner], y[off:off+inner], b[ch])
			}
		}
	})
}

func (op *biasAddOp) DiffWRT(int) []bool { return []bool{true, true} }

func (op *biasAddOp) SymDiff(_ gorgonia.Nodes, _, g *gorgonia.Node) (gorgonia.Nodes, error) {
	db, err := ChanSum(g)
	if err != nil {
		return nil, err
	}
	return gorgonia.Nodes{g, db}, nil
}

// chanSumOp reduces [outer, C, inner] to [C] by summing (in float64).
// It is linear; its derivative broadcasts the upstream [C] back (chanBcastOp).
type chanSumOp struct {
	base
	outer, c, inner int
}

// ChanSum returns s[c] = Σ over all axes but axis 1 of x.
func ChanSum(x *gorgonia.Node) (*gorgonia.Node, error) {
	sx := shapeOf(x)
	outer, c, inner, err := channelLayout(sx)
	if err != nil {
		return nil, err
	}
	op := &chanSumOp{base: newBase("ChanSum", dtypeOf(x), tensor.Shape{c}, sx), outer: outer, c: c, inner: inner}
	return apply(op, x)
}

func (op *chanSumOp) twiceDifferentiable() {}

func (op *chanSumOp) Do(vs ...gorgonia.Value) (gorgonia.Value, error) {
	return run(&op.base, vs,
		func(in [][]float64, out []float64) { chanSum(in[0], out, op.outer, op.c, op.inner) },
		func(in [][]float32, out []float32) { chanSum(in[0], out, op.outer, op.c, op.inner) })
}

func chanSum[T Float](x, s []T, outer, c, inner int) {
	work := 1
	if outer*c*inner >= minParallel {
		work = numWorkers()
	}
	if inner == 1 {
		parallelFor(c, work, chanSumRowsCols, func(_, lo, hi int) { chanSumRows(x, s, outer, c, lo, hi) })
		return
	}
	parallelFor(c, work, 2, func(_, lo, hi int) {
		for ch := lo; ch < hi; ch++ {
			// One float64 sum per [inner] run (vectorised for float32),
			// alternating between two accumulators.
			var a0, a1 float64
			for o := 0; o < outer; o++ {
				off := (o*c + ch) * inner
				if o%2 == 0 {
					a0 += sumF64(x[off : off+inner])
				} else {
					a1 += sumF64(x[off : off+inner])
				}
			}
			s[ch] = T(a0 + a1)
		}
	})
}

// chanSumRowsMax is the most columns chanSumRows sums with its
// accumulators on the stack; chanSumRowsCols the fewest one worker takes.
const (
	chanSumRowsMax  = 512
	chanSumRowsCols = 8
)

// chanSumRows is chanSum of columns [lo, hi) of an [outer, C] matrix
// (inner = 1): the rows are added in order into float64 accumulators, one
// per column, reading each row's columns as one contiguous run. Every
// column is summed in the same order as chanSum's general loop, so the
// results are the same bits however the columns are split over workers.
func chanSumRows[T Float](x, s []T, outer, c, lo, hi int) {
	var acc [chanSumRowsMax]float64
	var a []float64
	if hi-lo <= chanSumRowsMax {
		a = acc[:hi-lo]
	} else {
		a = make([]float64, hi-lo)
	}
	for o := 0; o < outer; o++ {
		for i, v := range x[o*c+lo : o*c+hi] {
			a[i] += float64(v)
		}
	}
	for i, v := range a {
		s[lo+i] = T(v)
	}
}

func (op *chanSumOp) DiffWRT(int) []bool { return []bool{true} }

func (op *chanSumOp) SymDiff(_ gorgonia.Nodes, _, g *gorgonia.Node) (gorgonia.Nodes, error) {
	d, err := ChanBcast(g, op.ins[0])
	if err != nil {
		return nil, err
	}
	return gorgonia.Nodes{d}, nil
}

// chanBcastOp broadcasts b [C] to a shape [outer, C, inner] along axis 1.
// Its derivative is chanSumOp.
type chanBcastOp struct {
	base
	outer, c, inner int
}

// ChanBcast returns b broadcast along axis 1 of shape.
func ChanBcast(b *gorgonia.Node, shape tensor.Shape) (*gorgonia.Node, error) {
	outer, c, inner, err := channelLayout(shape)
	if err != nil {
		return nil, err
	}
	if sb := shapeOf(b); sb.Dims() != 1 || sb[0] != c {
		return nil, fmt.Errorf("nn: ChanBcast: shape %v does not match axis 1 of %v", sb, shape)
	}
	op := &chanBcastOp{base: newBase("ChanBcast", dtypeOf(b), shape, shapeOf(b)), outer: outer, c: c, inner: inner}
	return apply(op, b)
}

func (op *chanBcastOp) twiceDifferentiable() {}

func (op *chanBcastOp) Do(vs ...gorgonia.Value) (gorgonia.Value, error) {
	return run(&op.base, vs,
		func(in [][]float64, out []float64) { chanBcast(in[0], out, op.outer, op.c, op.inner) },
		func(in [][]float32, out []float32) { chanBcast(in[0], out, op.outer, op.c, op.inner) })
}

func chanBcast[T Float](b, y []T, outer, c, inner int) {
	for o := 0; o < outer; o++ {
		for ch := 0; ch < c; ch++ {
			off := (o*c + ch) * inner
			v := b[ch]
			ys := y[off : off+inner]
			for i := range ys {
				ys[i] = v
			}
		}
	}
}

func (op *chanBcastOp) DiffWRT(int) []bool { return []bool{true} }

func (op *chanBcastOp) SymDiff(_ gorgonia.Nodes, _, g *gorgonia.Node) (gorgonia.Nodes, error) {
	d, err := ChanSum(g)
	if err != nil {
		return nil, err
	}
	return gorgonia.Nodes{d}, nil
}
