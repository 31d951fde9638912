package nn

import (
	"fmt"
	"math"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// minParallel is the number of elements below which elementwise kernels run
// on one goroutine.
const minParallel = 1 << 15

// forEach runs f over [0, n) split across the workers.
func forEach(n int, f func(lo, hi int)) {
	parallelFor(n, numWorkers(), minParallel, func(_, lo, hi int) { f(lo, hi) })
}

func sameShapes(name string, ns ...*gorgonia.Node) error {
	for _, n := range ns[1:] {
		if !shapeOf(n).Eq(shapeOf(ns[0])) {
			return fmt.Errorf("nn: %s: shapes %v and %v differ", name, shapeOf(ns[0]), shapeOf(n))
		}
		if dtypeOf(n) != dtypeOf(ns[0]) {
			return fmt.Errorf("nn: %s: dtypes %v and %v differ", name, dtypeOf(ns[0]), dtypeOf(n))
		}
	}
	return nil
}

// addNOp sums n tensors of one shape. Each input's derivative is the upstream
// gradient itself. Inputs that were ChanBcast(b) nodes are taken as b and
// broadcast inside the sum (bias[i] set; their derivative is ChanSum(G)), so
// the broadcast tensor is never materialised.
type addNOp struct {
	base
	bias            []bool
	outer, c, inner int
}

// AddN returns the elementwise sum of the nodes (at least one, equal shapes).
func AddN(ns ...*gorgonia.Node) (*gorgonia.Node, error) {
	if len(ns) == 0 {
		return nil, fmt.Errorf("nn: AddN of no nodes")
	}
	if len(ns) == 1 {
		return ns[0], nil
	}
	if err := sameShapes("AddN", ns...); err != nil {
		return nil, err
	}
	ins := make([]tensor.Shape, len(ns))
	for i := range ins {
		ins[i] = shapeOf(ns[0])
	}
	// Fold ChanBcast inputs into the sum (keeping at least one full tensor).
	ops := append([]*gorgonia.Node{}, ns...)
	var bias []bool
	var layout *chanBcastOp
	full := 0
	for _, n := range ns {
		if _, ok := n.Op().(*chanBcastOp); !ok {
			full++
		}
	}
	if full > 0 && full < len(ns) {
		bias = make([]bool, len(ns))
		for i, n := range ns {
			cb, ok := n.Op().(*chanBcastOp)
			if !ok {
				continue
			}
			cs := children(n)
			if len(cs) != 1 {
				continue
			}
			bias[i], ops[i], ins[i], layout = true, cs[0], shapeOf(cs[0]), cb
		}
	}
	op := &addNOp{base: newBase(fmt.Sprintf("AddN(%d)", len(ns)), dtypeOf(ns[0]), shapeOf(ns[0]), ins...)}
	if layout != nil {
		op.bias, op.outer, op.c, op.inner = bias, layout.outer, layout.c, layout.inner
	}
	return apply(op, ops...)
}

func (op *addNOp) twiceDifferentiable() {}

func (op *addNOp) Do(vs ...gorgonia.Value) (gorgonia.Value, error) {
	if op.bias != nil {
		return run(&op.base, vs,
			func(in [][]float64, out []float64) { addNBias(in, op.bias, out, op.outer, op.c, op.inner) },
			func(in [][]float32, out []float32) { addNBias(in, op.bias, out, op.outer, op.c, op.inner) })
	}
	return run(&op.base, vs, addN[float64], addN[float32])
}

func addN[T Float](in [][]T, out []T) {
	forEach(len(out), func(lo, hi int) {
		// tile by tile, all inputs into a tile while it is in L1: with
		// three or more inputs the partial sums are not streamed through
		// memory once per input (the order of the additions, and so the
		// sums, are the same)
		for t0 := lo; t0 < hi; t0 += addNTile {
			t1 := min(t0+addNTile, hi)
			o := out[t0:t1]
			vecAdd(in[0][t0:t1], in[1][t0:t1], o)
			for _, x := range in[2:] {
				vecAdd(o, x[t0:t1], o)
			}
		}
	})
}

// addNTile is addN's tile in elements (16 kB of float64, 8 kB of float32:
// the tile and one input's share stay well inside L1).
const addNTile = 2048

// addNBias is addN where the inputs with bias[i] are [C] vectors broadcast
// along axis 1 of [outer, C, inner]; inputs are added in order, one
// [C, inner] block at a time (in cache), the first two in one pass.
func addNBias[T Float](in [][]T, bias []bool, out []T, outer, c, inner int) {
	blk := c * inner
	if inner == 1 {
		// [outer, C] rows: a bias is a row of its own, so each row is one
		// vector add per input (the same additions in the same order).
		parallelFor(outer, numWorkers(), max(1, minParallel/blk), func(_, lo, hi int) {
			for o := lo; o < hi; o++ {
				d := out[o*c : (o+1)*c]
				vecAdd(biasRow(in[0], bias[0], o, c), biasRow(in[1], bias[1], o, c), d)
				for k := 2; k < len(in); k++ {
					vecAdd(d, biasRow(in[k], bias[k], o, c), d)
				}
			}
		})
		return
	}
	parallelFor(outer, numWorkers(), max(1, minParallel/blk), func(_, lo, hi int) {
		for o := lo; o < hi; o++ {
			for ch := 0; ch < c; ch++ {
				off := o*blk + ch*inner
				d := out[off : off+inner]
				// The first two inputs (AddN has at least two); a + b = b + a
				// exactly, so a bias first or second is the same sum.
				x0, x1 := in[0], in[1]
				switch {
				case bias[0] && bias[1]:
					v := x0[ch] + x1[ch]
					for i := range d {
						d[i] = v
					}
				case bias[0]:
					vecAddScalar(x1[off:off+inner], d, x0[ch])
				case bias[1]:
					vecAddScalar(x0[off:off+inner], d, x1[ch])
				default:
					vecAdd(x0[off:off+inner], x1[off:off+inner], d)
				}
				for k := 2; k < len(in); k++ {
					if bias[k] {
						vecAddScalar(d, d, in[k][ch])
						continue
					}
					vecAdd(d, in[k][off:off+inner], d)
				}
			}
		}
	})
}

// biasRow is row o of x [outer, C], or x itself for a bias [C].
func biasRow[T Float](x []T, bias bool, o, c int) []T {
	if bias {
		return x[:c]
	}
	return x[o*c : (o+1)*c]
}

func (op *addNOp) DiffWRT(n int) []bool {
	d := make([]bool, n)
	for i := range d {
		d[i] = true
	}
	return d
}

func (op *addNOp) SymDiff(in gorgonia.Nodes, _, g *gorgonia.Node) (gorgonia.Nodes, error) {
	out := make(gorgonia.Nodes, len(in))
	for i := range out {
		out[i] = g
		if op.bias != nil && op.bias[i] {
			d, err := ChanSum(g)
			if err != nil {
				return nil, err
			}
			out[i] = d
		}
	}
	return out, nil
}

// scaleOp computes y = c·x for a constant c. Its derivative is scaleOp(c).
type scaleOp struct {
	base
	c float64
}

// Scale returns c·x.
func Scale(x *gorgonia.Node, c float64) (*gorgonia.Node, error) {
	op := &scaleOp{base: newBase(fmt.Sprintf("Scale(%g)", c), dtypeOf(x), shapeOf(x), shapeOf(x)), c: c}
	return apply(op, x)
}

func (op *scaleOp) twiceDifferentiable() {}

func (op *scaleOp) Do(vs ...gorgonia.Value) (gorgonia.Value, error) {
	return run(&op.base, vs,
		func(in [][]float64, out []float64) { scale(in[0], out, op.c) },
		func(in [][]float32, out []float32) { scale(in[0], out, op.c) })
}

func scale[T Float](x, y []T, c float64) {
	cc := T(c)
	forEach(len(y), func(lo, hi int) { vecScale(x[lo:hi], y[lo:hi], cc) })
}

func (op *scaleOp) DiffWRT(int) []bool { return []bool{true} }

func (op *scaleOp) SymDiff(_ gorgonia.Nodes, _, g *gorgonia.Node) (gorgonia.Nodes, error) {
	d, err := Scale(g, op.c)
	if err != nil {
		return nil, err
	}
	return gorgonia.Nodes{d}, nil
}

// Sub returns a − b.
func Sub(a, b *gorgonia.Node) (*gorgonia.Node, error) {
	nb, err := Scale(b, -1)
	if err != nil {
		return nil, err
	}
	return AddN(a, nb)
}

// mulOp is the elementwise (Hadamard) product y = a⊙b, with ∂/∂a = G⊙b and
// ∂/∂b = G⊙a.
type mulOp struct{ base }

// Mul returns a⊙b for equal shapes.
func Mul(a, b *gorgonia.Node) (*gorgonia.Node, error) {
	if err := sameShapes("Mul", a, b); err != nil {
		return nil, err
	}
	op := &mulOp{base: newBase("Mul", dtypeOf(a), shapeOf(a), shapeOf(a), shapeOf(a))}
	return apply(op, a, b)
}

func (op *mulOp) twiceDifferentiable() {}

func (op *mulOp) Do(vs ...gorgonia.Value) (gorgonia.Value, error) {
	return run(&op.base, vs, mul[float64], mul[float32])
}

func mul[T Float](in [][]T, out []T) {
	a, b := in[0], in[1]
	forEach(len(out), func(lo, hi int) { vecMul(a[lo:hi], b[lo:hi], out[lo:hi]) })
}

func (op *mulOp) DiffWRT(int) []bool { return []bool{true, true} }

func (op *mulOp) SymDiff(in gorgonia.Nodes, _, g *gorgonia.Node) (gorgonia.Nodes, error) {
	da, err := Mul(g, in[1])
	if err != nil {
		return nil, err
	}
	db, err := Mul(g, in[0])
	if err != nil {
		return nil, err
	}
	return gorgonia.Nodes{da, db}, nil
}

// maskMulOp computes y = g⊙[x > 0] (a NaN in x passes g through, so ReLU
// propagates NaN). ReLU is maskMul(x, x): its derivative
// with respect to the mask input is zero (the step function is flat, so the
// ReLU has no curvature), and with respect to g it is maskMul(x, G).
type maskMulOp struct{ base }

// MaskMul returns g⊙[x > 0].
func MaskMul(x, g *gorgonia.Node) (*gorgonia.Node, error) {
	if err := sameShapes("MaskMul", x, g); err != nil {
		return nil, err
	}
	op := &maskMulOp{base: newBase("MaskMul", dtypeOf(x), shapeOf(x), shapeOf(x), shapeOf(x))}
	return apply(op, x, g)
}

// ReLU returns max(x, 0), with derivative 0 at 0 and second derivative 0.
func ReLU(x *gorgonia.Node) (*gorgonia.Node, error) { return MaskMul(x, x) }

func (op *maskMulOp) twiceDifferentiable() {}

func (op *maskMulOp) Do(vs ...gorgonia.Value) (gorgonia.Value, error) {
	return run(&op.base, vs, maskMul[float64], maskMul[float32])
}

func maskMul[T Float](in [][]T, out []T) {
	x, g := in[0], in[1]
	forEach(len(out), func(lo, hi int) {
		switch xs := any(x[lo:hi]).(type) {
		case []float32:
			maskMul32(xs, any(g[lo:hi]).([]float32), any(out[lo:hi]).([]float32))
		case []float64:
			maskMul64(xs, any(g[lo:hi]).([]float64), any(out[lo:hi]).([]float64))
		}
	})
}

// maskMul32 sets o = g where x > 0 (or x is a positive NaN) and 0 elsewhere,
// without branches: for the IEEE bits b of x, (−b & ^b) has its sign bit
// set exactly when b > 0 as a signed integer, i.e. x > +0.
func maskMul32(x, g, o []float32) {
	g, o = g[:len(x)], o[:len(x)]
	if haveEW && len(x) >= 8 {
		n := len(x) &^ 7
		ewMaskMul32(&x[0], &g[0], &o[0], n)
		x, g, o = x[n:], g[n:], o[n:]
	}
	for i, v := range x {
		b := int32(math.Float32bits(v))
		m := uint32((-b & ^b) >> 31)
		o[i] = math.Float32frombits(math.Float32bits(g[i]) & m)
	}
}

func maskMul64(x, g, o []float64) {
	g, o = g[:len(x)], o[:len(x)]
	for i, v := range x {
		b := int64(math.Float64bits(v))
		m := uint64((-b & ^b) >> 63)
		o[i] = math.Float64frombits(math.Float64bits(g[i]) & m)
	}
}

func (op *maskMulOp) DiffWRT(int) []bool { return []bool{false, true} }

func (op *maskMulOp) SymDiff(in gorgonia.Nodes, _, g *gorgonia.Node) (gorgonia.Nodes, error) {
	d, err := MaskMul(in[0], g)
	if err != nil {
		return nil, err
	}
	return gorgonia.Nodes{nil, d}, nil
}

// tanhOp computes y = tanh(x); its derivative is tanhBwdOp(y, G) = G⊙(1 − y²).
type tanhOp struct{ base }

// Tanh returns tanh(x).
func Tanh(x *gorgonia.Node) (*gorgonia.Node, error) {
	op := &tanhOp{base: newBase("Tanh", dtypeOf(x), shapeOf(x), shapeOf(x))}
	return apply(op, x)
}

func (op *tanhOp) twiceDifferentiable() {}

func (op *tanhOp) Do(vs ...gorgonia.Value) (gorgonia.Value, error) {
	return run(&op.base, vs, tanhK[float64], tanhK[float32])
}

func tanhK[T Float](in [][]T, out []T) {
	x := in[0]
	forEach(len(out), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			out[i] = T(math.Tanh(float64(x[i])))
		}
	})
}

func (op *tanhOp) DiffWRT(int) []bool { return []bool{true} }

func (op *tanhOp) SymDiff(_ gorgonia.Nodes, y, g *gorgonia.Node) (gorgonia.Nodes, error) {
	d, err := tanhBwd(y, g)
	if err != nil {
		return nil, err
	}
	return gorgonia.Nodes{d}, nil
}

// tanhBwdOp computes G⊙(1 − y²). Its derivatives: ∂/∂y = −2·y⊙G⊙U,
// ∂/∂G = U⊙(1 − y²) = tanhBwd(y, U).
type tanhBwdOp struct{ base }

func tanhBwd(y, g *gorgonia.Node) (*gorgonia.Node, error) {
	if err := sameShapes("TanhBwd", y, g); err != nil {
		return nil, err
	}
	op := &tanhBwdOp{base: newBase("TanhBwd", dtypeOf(y), shapeOf(y), shapeOf(y), shapeOf(y))}
	return apply(op, y, g)
}

func (op *tanhBwdOp) twiceDifferentiable() {}

func (op *tanhBwdOp) Do(vs ...gorgonia.Value) (gorgonia.Value, error) {
	return run(&op.base, vs, tanhBwdK[float64], tanhBwdK[float32])
}

func tanhBwdK[T Float](in [][]T, out []T) {
	y, g := in[0], in[1]
	forEach(len(out), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			out[i] = g[i] * (1 - y[i]*y[i])
		}
	})
}

func (op *tanhBwdOp) DiffWRT(int) []bool { return []bool{true, true} }

func (op *tanhBwdOp) SymDiff(in gorgonia.Nodes, _, u *gorgonia.Node) (gorgonia.Nodes, error) {
	y, g := in[0], in[1]
	yg, err := Mul(y, g)
	if err != nil {
		return nil, err
	}
	ygu, err := Mul(yg, u)
	if err != nil {
		return nil, err
	}
	dy, err := Scale(ygu, -2)
	if err != nil {
		return nil, err
	}
	dg, err := tanhBwd(y, u)
	if err != nil {
		return nil, err
	}
	return gorgonia.Nodes{dy, dg}, nil
}

// rsqrtOp computes y = 1/√(x + eps); its derivative is rsqrtBwdOp(y, G) =
// −½·y³⊙G.
type rsqrtOp struct {
	base
	eps float64
}

// Rsqrt returns 1/√(x + eps) elementwise.
func Rsqrt(x *gorgonia.Node, eps float64) (*gorgonia.Node, error) {
	op := &rsqrtOp{base: newBase(fmt.Sprintf("Rsqrt(%g)", eps), dtypeOf(x), shapeOf(x), shapeOf(x)), eps: eps}
	return apply(op, x)
}

func (op *rsqrtOp) twiceDifferentiable() {}

func (op *rsqrtOp) Do(vs ...gorgonia.Value) (gorgonia.Value, error) {
	return run(&op.base, vs,
		func(in [][]float64, out []float64) { rsqrtK(in[0], out, op.eps) },
		func(in [][]float32, out []float32) { rsqrtK(in[0], out, op.eps) })
}

func rsqrtK[T Float](x, y []T, eps float64) {
	for i, v := range x {
		y[i] = T(1 / math.Sqrt(float64(v)+eps))
	}
}

func (op *rsqrtOp) DiffWRT(int) []bool { return []bool{true} }

func (op *rsqrtOp) SymDiff(_ gorgonia.Nodes, y, g *gorgonia.Node) (gorgonia.Nodes, error) {
	d, err := rsqrtBwd(y, g)
	if err != nil {
		return nil, err
	}
	return gorgonia.Nodes{d}, nil
}

// rsqrtBwdOp computes −½·y³⊙G. Derivatives: ∂/∂y = −1.5·y²⊙G⊙U,
// ∂/∂G = rsqrtBwd(y, U).
type rsqrtBwdOp struct{ base }

func rsqrtBwd(y, g *gorgonia.Node) (*gorgonia.Node, error) {
	if err := sameShapes("RsqrtBwd", y, g); err != nil {
		return nil, err
	}
	op := &rsqrtBwdOp{base: newBase("RsqrtBwd", dtypeOf(y), shapeOf(y), shapeOf(y), shapeOf(y))}
	return apply(op, y, g)
}

func (op *rsqrtBwdOp) twiceDifferentiable() {}

func (op *rsqrtBwdOp) Do(vs ...gorgonia.Value) (gorgonia.Value, error) {
	return run(&op.base, vs, rsqrtBwdK[float64], rsqrtBwdK[float32])
}

func rsqrtBwdK[T Float](in [][]T, out []T) {
	y, g := in[0], in[1]
	for i := range out {
		out[i] = -0.5 * y[i] * y[i] * y[i] * g[i]
	}
}

func (op *rsqrtBwdOp) DiffWRT(int) []bool { return []bool{true, true} }

func (op *rsqrtBwdOp) SymDiff(in gorgonia.Nodes, _, u *gorgonia.Node) (gorgonia.Nodes, error) {
	y, g := in[0], in[1]
	yy, err := Mul(y, y)
	if err != nil {
		return nil, err
	}
	yyg, err := Mul(yy, g)
	if err != nil {
		return nil, err
	}
	yygu, err := Mul(yyg, u)
	if err != nil {
		return nil, err
	}
	dy, err := Scale(yygu, -1.5)
	if err != nil {
		return nil, err
	}
	dg, err := rsqrtBwd(y, u)
	if err != nil {
		return nil, err
	}
	return gorgonia.Nodes{dy, dg}, nil
}

// reshapeOp copies x into a tensor of another shape with the same number of
// elements (row-major order). It copies rather than aliases because the
// TapeMachine may reuse the memory of a non-copying reshape. Its derivative
// is the reshape back.
type reshapeOp struct{ base }

// Reshape returns a copy of x with the given shape.
func Reshape(x *gorgonia.Node, shape tensor.Shape) (*gorgonia.Node, error) {
	if shape.TotalSize() != shapeOf(x).TotalSize() {
		return nil, fmt.Errorf("nn: Reshape %v to %v changes the number of elements", shapeOf(x), shape)
	}
	op := &reshapeOp{base: newBase(fmt.Sprintf("Reshape%v", shape), dtypeOf(x), shape, shapeOf(x))}
	return apply(op, x)
}

// Flatten returns a copy of x [N, ...] reshaped to [N, Π rest].
func Flatten(x *gorgonia.Node) (*gorgonia.Node, error) {
	s := shapeOf(x)
	if s.Dims() < 2 {
		return nil, fmt.Errorf("nn: Flatten wants at least 2 dimensions, got %v", s)
	}
	return Reshape(x, tensor.Shape{s[0], s.TotalSize() / s[0]})
}

func (op *reshapeOp) twiceDifferentiable() {}

func (op *reshapeOp) Do(vs ...gorgonia.Value) (gorgonia.Value, error) {
	return run(&op.base, vs,
		func(in [][]float64, out []float64) { copy(out, in[0]) },
		func(in [][]float32, out []float32) { copy(out, in[0]) })
}

func (op *reshapeOp) DiffWRT(int) []bool { return []bool{true} }

func (op *reshapeOp) SymDiff(_ gorgonia.Nodes, _, g *gorgonia.Node) (gorgonia.Nodes, error) {
	d, err := Reshape(g, op.ins[0])
	if err != nil {
		return nil, err
	}
	return gorgonia.Nodes{d}, nil
}
