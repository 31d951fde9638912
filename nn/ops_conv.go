package nn

import (
	"fmt"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// convGeom is the geometry of a 2-D cross-correlation on NCHW tensors.
type convGeom struct {
	n, c, h, w     int // input
	o, k, s, p     int // output channels, kernel, stride, padding
	oh, ow         int // output spatial size
	ckk, pix, plen int // C·K·K, OH·OW, H·W
}

func newConvGeom(xs, ws tensor.Shape, stride, pad int) (convGeom, error) {
	if xs.Dims() != 4 || ws.Dims() != 4 {
		return convGeom{}, fmt.Errorf("nn: Conv2d wants 4-D input and kernel, got %v and %v", xs, ws)
	}
	if stride < 1 || pad < 0 {
		return convGeom{}, fmt.Errorf("nn: Conv2d stride %d must be ≥ 1 and padding %d ≥ 0", stride, pad)
	}
	g := convGeom{n: xs[0], c: xs[1], h: xs[2], w: xs[3], o: ws[0], k: ws[2], s: stride, p: pad}
	if ws[1] != g.c || ws[3] != ws[2] {
		return convGeom{}, fmt.Errorf("nn: Conv2d kernel %v does not fit input %v (want [O, %d, K, K])", ws, xs, g.c)
	}
	g.oh = (g.h+2*pad-g.k)/stride + 1
	g.ow = (g.w+2*pad-g.k)/stride + 1
	if g.h+2*pad < g.k || g.w+2*pad < g.k {
		return convGeom{}, fmt.Errorf("nn: Conv2d kernel %d larger than padded input %dx%d", g.k, g.h+2*pad, g.w+2*pad)
	}
	g.ckk, g.pix, g.plen = g.c*g.k*g.k, g.oh*g.ow, g.h*g.w
	return g, nil
}

func (g convGeom) xShape() tensor.Shape { return tensor.Shape{g.n, g.c, g.h, g.w} }
func (g convGeom) wShape() tensor.Shape { return tensor.Shape{g.o, g.c, g.k, g.k} }
func (g convGeom) yShape() tensor.Shape { return tensor.Shape{g.n, g.o, g.oh, g.ow} }
func (g convGeom) String() string {
	return fmt.Sprintf("k%d s%d p%d", g.k, g.s, g.p)
}

// colRange returns the output columns [lo, hi) whose input column jj·S+q−P
// lies inside [0, W).
func (g convGeom) colRange(q int) (lo, hi int) {
	lo = 0
	for lo < g.ow && lo*g.s+q-g.p < 0 {
		lo++
	}
	hi = g.ow
	for hi > lo && (hi-1)*g.s+q-g.p >= g.w {
		hi--
	}
	return lo, hi
}

// im2col writes the patches of one sample x [C, H, W] into col [C·K·K, OH·OW]:
// col[(c·K+p)·K+q][i·OW+j] = xpad[c][i·S+p][j·S+q].
func im2col[T Float](g *convGeom, x, col []T) {
	for c := 0; c < g.c; c++ {
		xc := x[c*g.plen : (c+1)*g.plen]
		for p := 0; p < g.k; p++ {
			for q := 0; q < g.k; q++ {
				row := col[((c*g.k+p)*g.k+q)*g.pix:][:g.pix]
				jlo, jhi := g.colRange(q)
				for i := 0; i < g.oh; i++ {
					r := row[i*g.ow : (i+1)*g.ow]
					h := i*g.s + p - g.p
					if h < 0 || h >= g.h {
						clear(r)
						continue
					}
					clear(r[:jlo])
					clear(r[jhi:])
					xr := xc[h*g.w:]
					w0 := jlo*g.s + q - g.p
					if g.s == 1 {
						copy(r[jlo:jhi], xr[w0:w0+jhi-jlo])
					} else {
						for j := jlo; j < jhi; j++ {
							r[j] = xr[w0]
							w0 += g.s
						}
					}
				}
			}
		}
	}
}

// col2im adds the patches of col [C·K·K, OH·OW] back into x [C, H, W] (the
// adjoint of im2col); x must be zeroed by the caller.
func col2im[T Float](g *convGeom, col, x []T) {
	for c := 0; c < g.c; c++ {
		xc := x[c*g.plen : (c+1)*g.plen]
		for p := 0; p < g.k; p++ {
			for q := 0; q < g.k; q++ {
				row := col[((c*g.k+p)*g.k+q)*g.pix:][:g.pix]
				jlo, jhi := g.colRange(q)
				for i := 0; i < g.oh; i++ {
					h := i*g.s + p - g.p
					if h < 0 || h >= g.h {
						continue
					}
					r := row[i*g.ow : (i+1)*g.ow]
					xr := xc[h*g.w:]
					w0 := jlo*g.s + q - g.p
					if g.s == 1 {
						xs := xr[w0 : w0+jhi-jlo]
						for j, v := range r[jlo:jhi] {
							xs[j] += v
						}
					} else {
						for j := jlo; j < jhi; j++ {
							xr[w0] += r[j]
							w0 += g.s
						}
					}
				}
			}
		}
	}
}

// convScratch holds per-worker buffers of one conv op, allocated on first use
// and reused by every later run.
type convScratch[T Float] struct {
	col [][]T // per worker, C·K·K × OH·OW
	acc [][]T // per worker, O × C·K·K (weight gradient only)
}

func getScratch[T Float](s *any, g *convGeom, withAcc bool) *convScratch[T] {
	if sc, ok := (*s).(*convScratch[T]); ok {
		return sc
	}
	w := numWorkers()
	sc := &convScratch[T]{col: make([][]T, w)}
	for i := range sc.col {
		sc.col[i] = make([]T, g.ckk*g.pix)
	}
	if withAcc {
		sc.acc = make([][]T, w)
		for i := range sc.acc {
			sc.acc[i] = make([]T, g.o*g.ckk)
		}
	}
	*s = sc
	return sc
}

// convFwd: y[n] = W[O, CKK] · im2col(x[n]).
func convFwd[T Float](g *convGeom, s *any, x, wt, y []T) {
	sc := getScratch[T](s, g, false)
	xl, yl := g.c*g.plen, g.o*g.pix
	parallelFor(g.n, len(sc.col), 2, func(w, lo, hi int) {
		col := sc.col[w]
		for n := lo; n < hi; n++ {
			im2col(g, x[n*xl:(n+1)*xl], col)
			gemm(false, false, g.o, g.pix, g.ckk, 1, wt, g.ckk, col, g.pix, 0, y[n*yl:(n+1)*yl], g.pix)
		}
	})
}

// convBwdX: dx[n] = col2im(Wᵀ · gy[n]).
func convBwdX[T Float](g *convGeom, s *any, gy, wt, dx []T) {
	sc := getScratch[T](s, g, false)
	xl, yl := g.c*g.plen, g.o*g.pix
	parallelFor(g.n, len(sc.col), 2, func(w, lo, hi int) {
		col := sc.col[w]
		for n := lo; n < hi; n++ {
			gemm(true, false, g.ckk, g.pix, g.o, 1, wt, g.ckk, gy[n*yl:(n+1)*yl], g.pix, 0, col, g.pix)
			d := dx[n*xl : (n+1)*xl]
			clear(d)
			col2im(g, col, d)
		}
	})
}

// im2colT writes the transposed patch matrix of one sample:
// colT[i·OW+j][(c·K+p)·K+q] = xpad[c][i·S+p][j·S+q], so that the weight
// gradient is a plain (untransposed) product, which pure-Go BLAS runs far
// faster than one with a transposed operand.
func im2colT[T Float](g *convGeom, x, colT []T) {
	for i := 0; i < g.oh; i++ {
		for j := 0; j < g.ow; j++ {
			dst := colT[(i*g.ow+j)*g.ckk:][:g.ckk]
			h0, w0 := i*g.s-g.p, j*g.s-g.p
			d := 0
			for c := 0; c < g.c; c++ {
				xc := x[c*g.plen : (c+1)*g.plen]
				for p := 0; p < g.k; p++ {
					h := h0 + p
					if h < 0 || h >= g.h {
						clear(dst[d : d+g.k])
						d += g.k
						continue
					}
					xr := xc[h*g.w : (h+1)*g.w]
					for q := 0; q < g.k; q++ {
						w := w0 + q
						if w >= 0 && w < g.w {
							dst[d] = xr[w]
						} else {
							dst[d] = 0
						}
						d++
					}
				}
			}
		}
	}
}

// convBwdW: dW = Σₙ gy[n] · im2colT(x[n]), accumulated per worker.
func convBwdW[T Float](g *convGeom, s *any, x, gy, dw []T) {
	sc := getScratch[T](s, g, true)
	xl, yl := g.c*g.plen, g.o*g.pix
	var used [64]bool
	workers := min(len(sc.col), len(used))
	parallelFor(g.n, workers, 2, func(w, lo, hi int) {
		colT, acc := sc.col[w], sc.acc[w]
		used[w] = true
		for n := lo; n < hi; n++ {
			im2colT(g, x[n*xl:(n+1)*xl], colT)
			var beta T
			if n > lo {
				beta = 1
			}
			gemm(false, false, g.o, g.ckk, g.pix, 1, gy[n*yl:(n+1)*yl], g.pix, colT, g.ckk, beta, acc, g.ckk)
		}
	})
	clear(dw)
	for w := 0; w < workers; w++ {
		if !used[w] {
			continue
		}
		for i, v := range sc.acc[w] {
			dw[i] += v
		}
	}
}

// convKind selects which of the three bilinear maps of a convolution an op
// computes. With T(x, W, G) = ⟨G, conv(x, W)⟩:
//
//	fwd:  y  = conv(x, W)     = ∂T/∂G
//	bwdX: dx = convBwdX(G, W) = ∂T/∂x
//	bwdW: dW = convBwdW(x, G) = ∂T/∂W
//
// so the derivatives of each are the other two, and the set is closed under
// differentiation (exact Hessian-vector products through convolutions).
type convKind int

const (
	convKindFwd convKind = iota
	convKindBwdX
	convKindBwdW
)

type convOp struct {
	base
	kind    convKind
	g       convGeom
	scratch any
}

func newConv(kind convKind, g convGeom, dt tensor.Dtype, a, b *gorgonia.Node) (*gorgonia.Node, error) {
	var out, sa, sb tensor.Shape
	var name string
	switch kind {
	case convKindFwd:
		out, sa, sb, name = g.yShape(), g.xShape(), g.wShape(), "Conv2d"
	case convKindBwdX:
		out, sa, sb, name = g.xShape(), g.yShape(), g.wShape(), "Conv2dBwdX"
	default:
		out, sa, sb, name = g.wShape(), g.xShape(), g.yShape(), "Conv2dBwdW"
	}
	if !shapeOf(a).Eq(sa) || !shapeOf(b).Eq(sb) {
		return nil, fmt.Errorf("nn: %s: input shapes %v, %v, want %v, %v", name, shapeOf(a), shapeOf(b), sa, sb)
	}
	op := &convOp{base: newBase(fmt.Sprintf("%s(%v)", name, g), dt, out, sa, sb), kind: kind, g: g}
	return apply(op, a, b)
}

// Conv2d returns the cross-correlation of x [N, C, H, W] with w [O, C, K, K]
// at the given stride and zero padding, as torch.nn.functional.conv2d
// without bias: y[n,o,i,j] = Σ_{c,p,q} w[o,c,p,q]·xpad[n,c,i·S+p,j·S+q].
func Conv2d(x, w *gorgonia.Node, stride, pad int) (*gorgonia.Node, error) {
	if dtypeOf(x) != dtypeOf(w) {
		return nil, fmt.Errorf("nn: Conv2d dtypes %v and %v differ", dtypeOf(x), dtypeOf(w))
	}
	g, err := newConvGeom(shapeOf(x), shapeOf(w), stride, pad)
	if err != nil {
		return nil, err
	}
	return newConv(convKindFwd, g, dtypeOf(x), x, w)
}

func (op *convOp) twiceDifferentiable() {}

func (op *convOp) Do(vs ...gorgonia.Value) (gorgonia.Value, error) {
	g := &op.g
	switch op.kind {
	case convKindFwd:
		return run(&op.base, vs,
			func(in [][]float64, out []float64) { convFwd(g, &op.scratch, in[0], in[1], out) },
			func(in [][]float32, out []float32) { convFwd(g, &op.scratch, in[0], in[1], out) })
	case convKindBwdX:
		return run(&op.base, vs,
			func(in [][]float64, out []float64) { convBwdX(g, &op.scratch, in[0], in[1], out) },
			func(in [][]float32, out []float32) { convBwdX(g, &op.scratch, in[0], in[1], out) })
	default:
		return run(&op.base, vs,
			func(in [][]float64, out []float64) { convBwdW(g, &op.scratch, in[0], in[1], out) },
			func(in [][]float32, out []float32) { convBwdW(g, &op.scratch, in[0], in[1], out) })
	}
}

func (op *convOp) DiffWRT(int) []bool { return []bool{true, true} }

func (op *convOp) SymDiff(in gorgonia.Nodes, _, u *gorgonia.Node) (gorgonia.Nodes, error) {
	a, b := in[0], in[1]
	dt := op.dt
	var da, db *gorgonia.Node
	var err error
	switch op.kind {
	case convKindFwd: // a = x, b = W, u ~ y
		if da, err = newConv(convKindBwdX, op.g, dt, u, b); err == nil {
			db, err = newConv(convKindBwdW, op.g, dt, a, u)
		}
	case convKindBwdX: // a = G, b = W, u ~ x
		if da, err = newConv(convKindFwd, op.g, dt, u, b); err == nil {
			db, err = newConv(convKindBwdW, op.g, dt, u, a)
		}
	default: // a = x, b = G, u ~ W
		if da, err = newConv(convKindBwdX, op.g, dt, b, u); err == nil {
			db, err = newConv(convKindFwd, op.g, dt, a, u)
		}
	}
	if err != nil {
		return nil, err
	}
	return gorgonia.Nodes{da, db}, nil
}
