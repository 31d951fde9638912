package nn

import (
	"fmt"
	"math"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// The ops that only appear in the second-derivative graphs of the fused
// batch norm (ops_bn.go): row picks of the [k, C] statistics and the
// closed-form linear and coefficient ops its SymDiffs build.

// ---------------------------------------------------------------- rows

// bnPickOp is row i of a [k, C] node; bnPutOp the [k, C] node that is zero
// but for row i. Each is the other's derivative.
type bnPickOp struct {
	base
	i, k, c int
	put     bool
}

func bnPick(r *gorgonia.Node, i int) (*gorgonia.Node, error) {
	s := shapeOf(r)
	if s.Dims() != 2 || i < 0 || i >= s[0] {
		return nil, fmt.Errorf("nn: BNPick: row %d of %v", i, s)
	}
	op := &bnPickOp{base: newBase("BNPick", dtypeOf(r), tensor.Shape{s[1]}, s), i: i, k: s[0], c: s[1]}
	return apply(op, r)
}

func bnPut(u *gorgonia.Node, i, k int) (*gorgonia.Node, error) {
	s := shapeOf(u)
	if s.Dims() != 1 || i < 0 || i >= k {
		return nil, fmt.Errorf("nn: BNPut: row %d of %d from %v", i, k, s)
	}
	op := &bnPickOp{base: newBase("BNPut", dtypeOf(u), tensor.Shape{k, s[0]}, s), i: i, k: k, c: s[0], put: true}
	return apply(op, u)
}

func (op *bnPickOp) twiceDifferentiable() {}

func (op *bnPickOp) Do(vs ...gorgonia.Value) (gorgonia.Value, error) {
	return run(&op.base, vs,
		func(in [][]float64, out []float64) { pickRow(in[0], out, op) },
		func(in [][]float32, out []float32) { pickRow(in[0], out, op) })
}

func pickRow[T Float](in, out []T, op *bnPickOp) {
	if op.put {
		clear(out)
		copy(out[op.i*op.c:(op.i+1)*op.c], in)
		return
	}
	copy(out, in[op.i*op.c:(op.i+1)*op.c])
}

func (op *bnPickOp) DiffWRT(int) []bool { return []bool{true} }

func (op *bnPickOp) SymDiff(_ gorgonia.Nodes, _, g *gorgonia.Node) (gorgonia.Nodes, error) {
	var d *gorgonia.Node
	var err error
	if op.put {
		d, err = bnPick(g, op.i)
	} else {
		d, err = bnPut(g, op.i, op.k)
	}
	if err != nil {
		return nil, err
	}
	return gorgonia.Nodes{d}, nil
}

// ---------------------------------------------------------------- second-derivative ops

// Mask modes of bnLin.
const (
	bnMaskNone = iota // K0 + K1·(x−μ) + K2·t
	bnMaskT           // K0 + K1·(x−μ) + K2·m⊙t
	bnMaskAll         // m⊙(K0 + K1·(x−μ) + K2·t)
)

// bnLinOp is out = K0 + K1·(x − μ) + K2·t per channel with K = [3, C]
// coefficients, masked as its mode says (m = [a > 0] under ReLU, else 1);
// without useT the t term is left out. It only appears in
// second-derivative graphs.
type bnLinOp struct {
	base
	bnGeom
	mode int
	useT bool
}

func bnLin(x, s, a, t, k *gorgonia.Node, g bnGeom, mode int, useT bool) (*gorgonia.Node, error) {
	if err := sameShapes("BNLin", x, a, t); err != nil {
		return nil, err
	}
	op := &bnLinOp{base: newBase("BNLin", dtypeOf(x), shapeOf(x), shapeOf(x), shapeOf(s), shapeOf(x), shapeOf(x), shapeOf(k)), bnGeom: g, mode: mode, useT: useT}
	return apply(op, x, s, a, t, k)
}

func (op *bnLinOp) Do(vs ...gorgonia.Value) (gorgonia.Value, error) {
	return run(&op.base, vs,
		func(in [][]float64, out []float64) { bnLinKernel(in, out, op) },
		func(in [][]float32, out []float32) { bnLinKernel(in, out, op) })
}

func bnLinKernel[T Float](in [][]T, out []T, op *bnLinOp) {
	x, s, a, t, k := in[0], in[1], in[2], in[3], in[4]
	c := op.c
	bnLinRows(x, s, a, t, out, op.bnGeom, op.mode, op.useT, func(ch int) (k0, k1, k2 float64) {
		return float64(k[ch]), float64(k[c+ch]), float64(k[2*c+ch])
	})
}

// bnLinRows sets out = K0 + K1·(x − μ) + K2·t row by row (masked by mode),
// with channel ch's coefficients from coef.
func bnLinRows[T Float](x, s, a, t, out []T, g bnGeom, mode int, useT bool, coef func(ch int) (k0, k1, k2 float64)) {
	c, inner := g.c, g.inner
	mask := g.relu && mode != bnMaskNone
	parallelFor(g.outer, numWorkers(), max(1, minParallel/max(1, c*inner)), func(_, lo, hi int) {
		for o := lo; o < hi; o++ {
			for ch := 0; ch < c; ch++ {
				k0, k1, k2 := coef(ch)
				mu := float64(s[ch])
				off := (o*c + ch) * inner
				xr, or := x[off:off+inner], out[off:off+inner]
				switch {
				case !useT:
					vecAddScalar(xr, or, T(-mu)) // centred first, as the composed ops (and torch) do
					vecScaleAdd(or, or, T(k1), T(k0))
				default:
					var ar []T
					if mask && mode == bnMaskT {
						ar = a[off : off+inner]
					}
					linRow(xr, t[off:off+inner], ar, or, T(mu), T(k1), T(k2), T(k0))
				}
				if mask && mode == bnMaskAll {
					maskRow(a[off:off+inner], or, or)
				}
			}
		}
	})
}

// linRow sets o = (b + k1·(x − mu)) + k2·t', t' = t where a > 0 and 0
// elsewhere when a is not nil, else t (the AVX2 kernels for float32). x is
// centred before it is scaled, so a large mean does not cancel digits.
func linRow[T Float](x, t, a, o []T, mu, k1, k2, b T) {
	o, t = o[:len(x)], t[:len(x)]
	i := 0
	if xs, ok := any(x).([]float32); ok && haveEW && len(xs) >= 8 {
		i = len(xs) &^ 7
		ts, os := any(t).([]float32), any(o).([]float32)
		if a != nil {
			ewLinMask32(&xs[0], &ts[0], &any(a).([]float32)[0], &os[0], i, float32(mu), float32(k1), float32(k2), float32(b))
		} else {
			ewLin32(&xs[0], &ts[0], &xs[0], &os[0], i, float32(mu), float32(k1), float32(k2), float32(b))
		}
	}
	for ; i < len(x); i++ {
		tv := t[i]
		if a != nil && !positive(a[i]) {
			tv = 0
		}
		o[i] = (b + k1*(x[i]-mu)) + k2*tv
	}
}

// positive reports whether v > +0 by its bits, as maskMul32 does: positive
// numbers and NaNs with the sign bit clear.
func positive[T Float](v T) bool {
	f := float64(v)
	return f > 0 || (f != f && !math.Signbit(f))
}

// bnCoefOp computes per-channel coefficients ([rows, C], or [C] when rows
// is 0) from small inputs with f, in float64. It only appears in
// second-derivative graphs.
type bnCoefOp struct {
	base
	c   int
	f   func(c int, in [][]float64, out []float64)
	in  [][]float64
	out []float64
}

func bnCoef(name string, g bnGeom, rows int, f func(c int, in [][]float64, out []float64), ins ...*gorgonia.Node) (*gorgonia.Node, error) {
	shape := tensor.Shape{g.c}
	if rows > 0 {
		shape = tensor.Shape{rows, g.c}
	}
	shapes := make([]tensor.Shape, len(ins))
	for i, n := range ins {
		shapes[i] = shapeOf(n)
	}
	op := &bnCoefOp{base: newBase(name, dtypeOf(ins[0]), shape, shapes...), c: g.c, f: f}
	return apply(op, ins...)
}

func (op *bnCoefOp) Do(vs ...gorgonia.Value) (gorgonia.Value, error) {
	return run(&op.base, vs,
		func(in [][]float64, out []float64) { op.f(op.c, in, out) },
		func(in [][]float32, out []float32) { coefF32(op, in, out) })
}

func coefF32(op *bnCoefOp, in [][]float32, out []float32) {
	if len(op.in) != len(in) {
		op.in = make([][]float64, len(in))
	}
	for i, v := range in {
		op.in[i] = growF64(&op.in[i], len(v))
		for j, e := range v {
			op.in[i][j] = float64(e)
		}
	}
	o := growF64(&op.out, len(out))
	op.f(op.c, op.in, o)
	for j, e := range o {
		out[j] = float32(e)
	}
}
