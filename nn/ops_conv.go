package nn

import (
	"bytes"
	"fmt"
	"unsafe"

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

// colCache holds the im2col columns of every sample of one conv input,
// [N][C·K·K × OH·OW], together with a copy of the input they were built
// from. It is shared by the ops of one convolution family whose first
// operand is the same node (Conv2d(x, W) and Conv2dBwdW(x, G), or the
// Conv2d(u, ·) and Conv2dBwdW(u, ·) a second differentiation creates), so
// the weight gradient reuses the forward pass's columns.
//
// Reuse is exact whatever order a machine runs the ops in: an op uses the
// columns only when its input is bitwise equal to the saved copy (im2col is
// a pure function of the input's bits); otherwise it rebuilds them.
type colCache[T Float] struct {
	x   []T
	col []T
	ok  bool
}

// colShare is the type-erased handle the ops of one family share, and
// the number of ops that joined it. A family of one op (a forward-only
// convolution, as in an evaluation graph) keeps no cache: its columns are
// built per sample into a per-worker buffer and dropped.
type colShare struct {
	c       any
	members int
}

// joinShare returns s, or a new share where s is nil, with one more
// member.
func joinShare(s *colShare) *colShare {
	if s == nil {
		s = &colShare{}
	}
	s.members++
	return s
}

func cacheOf[T Float](s *colShare, g *convGeom) *colCache[T] {
	if c, ok := s.c.(*colCache[T]); ok {
		return c
	}
	c := &colCache[T]{x: make([]T, g.n*g.c*g.plen), col: make([]T, g.n*g.ckk*g.pix)}
	s.c = c
	return c
}

// equalBits reports whether a and b hold the same bits.
func equalBits[T Float](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	if len(a) == 0 {
		return true
	}
	sz := int(unsafe.Sizeof(a[0]))
	ab := unsafe.Slice((*byte)(unsafe.Pointer(&a[0])), len(a)*sz)
	bb := unsafe.Slice((*byte)(unsafe.Pointer(&b[0])), len(b)*sz)
	return bytes.Equal(ab, bb)
}

// columns returns the columns of x, rebuilding them (in parallel over
// samples) unless x equals the input they were built from.
func columns[T Float](s *colShare, g *convGeom, x []T) []T {
	c := cacheOf[T](s, g)
	if c.ok && equalBits(c.x, x) {
		return c.col
	}
	c.ok = false
	xl, cl := g.c*g.plen, g.ckk*g.pix
	parallelFor(g.n, numWorkers(), 2, func(_, lo, hi int) {
		for n := lo; n < hi; n++ {
			im2col(g, x[n*xl:(n+1)*xl], c.col[n*cl:(n+1)*cl])
		}
		copy(c.x[lo*xl:hi*xl], x[lo*xl:hi*xl])
	})
	c.ok = true
	return c.col
}

// convScratch holds per-worker buffers of one conv op, allocated on first use
// and reused by every later run.
type convScratch[T Float] struct {
	col [][]T         // per worker, C·K·K × OH·OW (backward-input columns)
	acc [][]T         // per worker, O × C·K·K (weight gradient)
	gyT [][]T         // per worker, OH·OW × O (pure-Go weight gradient)
	gb  []sgemmBufs   // per worker, GEMM packing buffers
	dot [][16]float32 // per worker, gemmABtDot's sums
	// Implicit-GEMM path (conv_implicit.go).
	xp   [][]T // per worker, padded input planes
	yp   [][]T // per worker, widened output or output gradient
	taps []T   // the nine repacked weight taps (one per call)
}

func getScratch[T Float](s *any) *convScratch[T] {
	if sc, ok := (*s).(*convScratch[T]); ok {
		return sc
	}
	w := numWorkers()
	sc := &convScratch[T]{col: make([][]T, w), acc: make([][]T, w), gyT: make([][]T, w), gb: make([]sgemmBufs, w), dot: make([][16]float32, w),
		xp: make([][]T, w), yp: make([][]T, w)}
	*s = sc
	return sc
}

func grow[T Float](b *[]T, n int) []T {
	if len(*b) < n {
		*b = make([]T, n)
	}
	return (*b)[:n]
}

// convFwd: y[n] = W[O, CKK] · im2col(x[n]). The columns go into the
// family's cache, each sample's built right before its product (while they
// are in cache), unless the cache already holds them for this input (the
// producer, Conv2d's own forward op, always rebuilds them).
func convFwd[T Float](g *convGeom, s *any, share *colShare, producer bool, x, wt, bias, y []T) {
	sc := getScratch[T](s)
	xl, yl, cl := g.c*g.plen, g.o*g.pix, g.ckk*g.pix
	// A family of one op (or none: share nil, an implicit geometry whose
	// forward takes im2col) keeps no columns for later: each sample's go
	// into the worker's own buffer (N times less memory).
	alone := share == nil || share.members <= 1
	var c *colCache[T]
	fresh := false
	if !alone {
		c = cacheOf[T](share, g)
		fresh = !producer && c.ok && equalBits(c.x, x)
		c.ok = false
	}
	parallelFor(g.n, len(sc.gb), 2, func(w, lo, hi int) {
		for n := lo; n < hi; n++ {
			var col []T
			if alone {
				col = grow(&sc.col[w], cl)
			} else {
				col = c.col[n*cl : (n+1)*cl]
			}
			if !fresh {
				im2col(g, x[n*xl:(n+1)*xl], col)
			}
			yn := y[n*yl : (n+1)*yl]
			gemmBuf(&sc.gb[w], false, false, g.o, g.pix, g.ckk, 1, wt, g.ckk, col, g.pix, 0, yn, g.pix)
			if bias != nil {
				for o, bv := range bias[:g.o] {
					r := yn[o*g.pix : (o+1)*g.pix]
					for i := range r {
						r[i] += bv
					}
				}
			}
		}
		if !fresh && !alone {
			copy(c.x[lo*xl:hi*xl], x[lo*xl:hi*xl])
		}
	})
	if !alone {
		c.ok = true
	}
}

// convBwdX: dx[n] = col2im(Wᵀ · gy[n]).
func convBwdX[T Float](g *convGeom, s *any, gy, wt, dx []T) {
	sc := getScratch[T](s)
	xl, yl := g.c*g.plen, g.o*g.pix
	parallelFor(g.n, len(sc.col), 2, func(w, lo, hi int) {
		col := grow(&sc.col[w], g.ckk*g.pix)
		for n := lo; n < hi; n++ {
			gemmBuf(&sc.gb[w], true, false, g.ckk, g.pix, g.o, 1, wt, g.ckk, gy[n*yl:(n+1)*yl], g.pix, 0, col, g.pix)
			d := dx[n*xl : (n+1)*xl]
			clear(d)
			col2im(g, col, d)
		}
	})
}

// convBwdW: dW = Σₙ gy[n] · im2col(x[n])ᵀ, accumulated per worker, with the
// columns from the family's cache. OpenBLAS takes the transposed operand
// directly; for pure-Go BLAS, which computes A·Bᵀ with slow dot products,
// the (small) gy[n] is transposed instead and dWᵀ = Σₙ im2col(x[n])·gy[n]ᵀ
// is accumulated as a plain product.
//
// With the native kernels the transposed form is also taken when the output
// channels fill whole micro-kernel panels (O a multiple of NR): the
// columns, the big operand, are then read in place, and only gy[n] (9×
// smaller for a 3×3 conv) is transposed, instead of packing a transposed
// copy of the columns. BenchmarkConvBwdW, ResNet-20's 3×3 convs at batch
// 128 (AVX-512, NR = 32): O = 32 ~35 ms against ~43, O = 64 ~10 against
// ~34; at O = 16 the panel would be half padding and the plain form is
// kept (~60 against ~78).
//
// Fastest, for float32 on CPUs with AVX-512 where the sizes allow
// (canDot), gy[n]·colsᵀ is taken as dot products along OH·OW with both
// operands read in place (gemmABtDot): nothing is packed or transposed.
func convBwdW[T Float](g *convGeom, s *any, share *colShare, x, gy, dw []T) {
	var z T
	form := bwdWPlain
	switch {
	case unsafe.Sizeof(z) == 4 && canDot(g.o, g.ckk, g.pix):
		form = bwdWDot
	case !transposeCheap[T]() || (haveSgemmKernel && g.o%nrOf[T]() == 0):
		form = bwdWTrans
	}
	convBwdWPath(g, s, share, x, gy, dw, form)
}

// The forms of the conv weight gradient.
const (
	bwdWPlain = iota // gy[n]·colsᵀ through gemm
	bwdWTrans        // dWᵀ = cols·gy[n]ᵀ through gemm, gy[n] transposed first
	bwdWDot          // gy[n]·colsᵀ through gemmABtDot (float32, canDot only)
)

// convBwdWPath is convBwdW in the given form.
func convBwdWPath[T Float](g *convGeom, s *any, share *colShare, x, gy, dw []T, form int) {
	trans := form == bwdWTrans
	sc := getScratch[T](s)
	cols := columns(share, g, x)
	yl, cl := g.o*g.pix, g.ckk*g.pix
	var used [64]bool
	workers := min(len(sc.acc), len(used))
	parallelFor(g.n, workers, 2, func(w, lo, hi int) {
		acc := grow(&sc.acc[w], g.o*g.ckk)
		used[w] = true
		for n := lo; n < hi; n++ {
			var beta T
			if n > lo {
				beta = 1
			}
			col, gyn := cols[n*cl:(n+1)*cl], gy[n*yl:(n+1)*yl]
			if form == bwdWDot {
				a32, b32, c32 := any(gyn).([]float32), any(col).([]float32), any(acc).([]float32)
				gemmABtDot(g.o, g.ckk, g.pix, a32, g.pix, b32, g.pix, c32, g.ckk, n > lo, &sc.dot[w])
				continue
			}
			if !trans {
				gemmBuf(&sc.gb[w], false, true, g.o, g.ckk, g.pix, 1, gyn, g.pix, col, g.pix, beta, acc, g.ckk)
				continue
			}
			t := grow(&sc.gyT[w], g.pix*g.o)
			transpose(gyn, t, g.o, g.pix)
			gemmBuf(&sc.gb[w], false, false, g.ckk, g.o, g.pix, 1, col, g.pix, t, g.o, beta, acc, g.o)
		}
	})
	clear(dw)
	for w := 0; w < workers; w++ {
		if !used[w] {
			continue
		}
		a := sc.acc[w][:g.o*g.ckk]
		if !trans {
			for i, v := range a {
				dw[i] += v
			}
			continue
		}
		// a is dWᵀ [CKK, O].
		for o := 0; o < g.o; o++ {
			row := dw[o*g.ckk : (o+1)*g.ckk]
			for k := range row {
				row[k] += a[k*g.o+o]
			}
		}
	}
}

// transpose writes the transpose of a [rows, cols] into t [cols, rows].
func transpose[T Float](a, t []T, rows, cols int) {
	const b = 32
	for r0 := 0; r0 < rows; r0 += b {
		r1 := min(r0+b, rows)
		for c0 := 0; c0 < cols; c0 += b {
			c1 := min(c0+b, cols)
			for r := r0; r < r1; r++ {
				ar := a[r*cols : r*cols+cols]
				for c := c0; c < c1; c++ {
					t[c*rows+r] = ar[c]
				}
			}
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
	// share is the column cache of the first operand (fwd, bwdW), shared
	// with the other ops of the family built on the same node; nil for
	// implicit geometries (g.implicit()), which build no columns.
	share *colShare
	// bias: a forward op with a third input b [O] added per output channel.
	bias bool
	// producer marks the forward op Conv2d builds: it always rebuilds the
	// columns (its input normally changes every run); derived ops reuse them.
	producer bool
}

func newConv(kind convKind, g convGeom, dt tensor.Dtype, share *colShare, a, b *gorgonia.Node) (*gorgonia.Node, error) {
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
	if kind != convKindBwdX && !g.implicit() {
		share = joinShare(share)
	}
	op := &convOp{base: newBase(fmt.Sprintf("%s(%v)", name, g), dt, out, sa, sb), kind: kind, g: g, share: share}
	return apply(op, a, b)
}

// Conv2d returns the cross-correlation of x [N, C, H, W] with w [O, C, K, K]
// at the given stride and zero padding, as torch.nn.functional.conv2d
// without bias: y[n,o,i,j] = Σ_{c,p,q} w[o,c,p,q]·xpad[n,c,i·S+p,j·S+q].
func Conv2d(x, w *gorgonia.Node, stride, pad int) (*gorgonia.Node, error) {
	return conv2d(x, w, nil, stride, pad)
}

// Conv2dBias returns Conv2d(x, w, stride, pad) + b, b [O] broadcast over
// the output channels, as one op (the bias is added to each sample's output
// while it is in cache). Its derivative with respect to b is ChanSum(G).
func Conv2dBias(x, w, b *gorgonia.Node, stride, pad int) (*gorgonia.Node, error) {
	if b == nil {
		return nil, fmt.Errorf("nn: Conv2dBias: nil bias")
	}
	return conv2d(x, w, b, stride, pad)
}

func conv2d(x, w, b *gorgonia.Node, stride, pad int) (*gorgonia.Node, error) {
	if dtypeOf(x) != dtypeOf(w) {
		return nil, fmt.Errorf("nn: Conv2d dtypes %v and %v differ", dtypeOf(x), dtypeOf(w))
	}
	g, err := newConvGeom(shapeOf(x), shapeOf(w), stride, pad)
	if err != nil {
		return nil, err
	}
	if b == nil {
		y, err := newConv(convKindFwd, g, dtypeOf(x), nil, x, w)
		if err != nil {
			return nil, err
		}
		y.Op().(*convOp).producer = true
		return y, nil
	}
	if dtypeOf(b) != dtypeOf(x) {
		return nil, fmt.Errorf("nn: Conv2dBias: bias dtype %v, want %v", dtypeOf(b), dtypeOf(x))
	}
	if sb := shapeOf(b); sb.Dims() != 1 || sb[0] != g.o {
		return nil, fmt.Errorf("nn: Conv2dBias: bias shape %v, want [%d]", sb, g.o)
	}
	op := &convOp{base: newBase(fmt.Sprintf("Conv2dBias(%v)", g), dtypeOf(x), g.yShape(), g.xShape(), g.wShape(), tensor.Shape{g.o}),
		kind: convKindFwd, g: g, producer: true, bias: true}
	if !g.implicit() {
		op.share = joinShare(nil)
	}
	return apply(op, x, w, b)
}

func (op *convOp) twiceDifferentiable() {}

func (op *convOp) Do(vs ...gorgonia.Value) (gorgonia.Value, error) {
	g := &op.g
	if g.implicit() {
		return op.doImplicit(vs)
	}
	switch op.kind {
	case convKindFwd:
		return run(&op.base, vs,
			func(in [][]float64, out []float64) {
				convFwd(g, &op.scratch, op.share, op.producer, in[0], in[1], biasOf(in), out)
			},
			func(in [][]float32, out []float32) {
				convFwd(g, &op.scratch, op.share, op.producer, in[0], in[1], biasOf(in), out)
			})
	case convKindBwdX:
		return run(&op.base, vs,
			func(in [][]float64, out []float64) { convBwdX(g, &op.scratch, in[0], in[1], out) },
			func(in [][]float32, out []float32) { convBwdX(g, &op.scratch, in[0], in[1], out) })
	default:
		return run(&op.base, vs,
			func(in [][]float64, out []float64) { convBwdW(g, &op.scratch, op.share, in[0], in[1], out) },
			func(in [][]float32, out []float32) { convBwdW(g, &op.scratch, op.share, in[0], in[1], out) })
	}
}

func biasOf[T Float](in [][]T) []T {
	if len(in) > 2 {
		return in[2]
	}
	return nil
}

func (op *convOp) DiffWRT(n int) []bool {
	if op.bias {
		return []bool{true, true, true}
	}
	return []bool{true, true}
}

func (op *convOp) SymDiff(in gorgonia.Nodes, _, u *gorgonia.Node) (gorgonia.Nodes, error) {
	a, b := in[0], in[1]
	dt := op.dt
	var da, db *gorgonia.Node
	var err error
	switch op.kind {
	case convKindFwd: // a = x, b = W, u ~ y
		if da, err = newConv(convKindBwdX, op.g, dt, nil, u, b); err == nil {
			db, err = newConv(convKindBwdW, op.g, dt, op.share, a, u)
		}
	case convKindBwdX: // a = G, b = W, u ~ x: both derivatives take columns of u
		var sh *colShare // implicit geometries keep no columns
		if !op.g.implicit() {
			sh = &colShare{}
		}
		if da, err = newConv(convKindFwd, op.g, dt, sh, u, b); err == nil {
			db, err = newConv(convKindBwdW, op.g, dt, sh, u, a)
		}
	default: // a = x, b = G, u ~ W
		if da, err = newConv(convKindBwdX, op.g, dt, nil, b, u); err == nil {
			db, err = newConv(convKindFwd, op.g, dt, op.share, a, u)
		}
	}
	if err != nil {
		return nil, err
	}
	if op.bias {
		dbias, err := ChanSum(u)
		if err != nil {
			return nil, err
		}
		return gorgonia.Nodes{da, db, dbias}, nil
	}
	return gorgonia.Nodes{da, db}, nil
}

// addTo sets dst[i] += src[i] (equal lengths).
func addTo[T Float](dst, src []T) { vecAdd(dst[:len(src)], src, dst) }
