package nn

import (
	"fmt"
	"math"
	"unsafe"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// poolState is shared by a max-pool forward op and the gather/scatter ops
// derived from it: the forward op records, for every output cell, the flat
// index (h·W + w) of its window's first maximum in row-major window order,
// and the derived ops, which always run later in the same pass (they depend
// on the forward output through the loss), route values through it.
type poolState struct {
	n, c, h, w int
	k, s       int
	oh, ow     int
	// relu: the op is MaxPool(ReLU(x)), fused. A window whose maximum is
	// not > 0 (ReLU maps it to 0 with zero derivative) gets index −1:
	// gather yields 0 there and scatter routes nothing.
	relu bool
	idx  []int32 // [N·C·OH·OW]
}

func (st *poolState) xShape() tensor.Shape { return tensor.Shape{st.n, st.c, st.h, st.w} }
func (st *poolState) yShape() tensor.Shape { return tensor.Shape{st.n, st.c, st.oh, st.ow} }

// poolFwdPlanes32 fills idx with each window's first maximum (row-major
// window order, strict >) and writes the maxima to y, for planes [lo, hi).
// Floats are compared through order-preserving integer keys so that the
// selection compiles to conditional moves instead of mispredicted branches.
func poolFwdPlanes32(st *poolState, x, y []float32, lo, hi int) {
	plen, olen := st.h*st.w, st.oh*st.ow
	if st.k == 2 && st.s == 2 {
		pool22Planes32(st, x, y, lo, hi)
		return
	}
	for pl := lo; pl < hi; pl++ {
		xp := x[pl*plen : (pl+1)*plen]
		yp, ip := y[pl*olen:(pl+1)*olen], st.idx[pl*olen:(pl+1)*olen]
		for i := 0; i < st.oh; i++ {
			for j := 0; j < st.ow; j++ {
				h0, w0 := i*st.s, j*st.s
				best := h0*st.w + w0
				b := int32(math.Float32bits(xp[best]))
				bk := b ^ ((b >> (32 - 1)) & 0x7fffffff)
				for p := 0; p < st.k; p++ {
					row := (h0+p)*st.w + w0
					for q, v := range xp[row : row+st.k] {
						b := int32(math.Float32bits(v))
						k, c := b^((b>>(32-1))&0x7fffffff), row+q
						if k > bk {
							best = c
						}
						if k > bk {
							bk = k
						}
					}
				}
				// The key is > 0 exactly when the bits are, i.e. when the
				// ReLU's mask (maskMul) passes the value.
				if st.relu && bk <= 0 {
					yp[i*st.ow+j], ip[i*st.ow+j] = 0, -1
				} else {
					yp[i*st.ow+j], ip[i*st.ow+j] = xp[best], int32(best)
				}
			}
		}
	}
}

// poolFwdPlanes64 is poolFwdPlanes32 for float64.
// It fills idx with each window's first maximum (row-major
// window order, strict >) and writes the maxima to y, for planes [lo, hi).
// Floats are compared through order-preserving integer keys so that the
// selection compiles to conditional moves instead of mispredicted branches.
func poolFwdPlanes64(st *poolState, x, y []float64, lo, hi int) {
	plen, olen := st.h*st.w, st.oh*st.ow
	if st.k == 2 && st.s == 2 {
		pool22Planes64(st, x, y, lo, hi)
		return
	}
	for pl := lo; pl < hi; pl++ {
		xp := x[pl*plen : (pl+1)*plen]
		yp, ip := y[pl*olen:(pl+1)*olen], st.idx[pl*olen:(pl+1)*olen]
		for i := 0; i < st.oh; i++ {
			for j := 0; j < st.ow; j++ {
				h0, w0 := i*st.s, j*st.s
				best := h0*st.w + w0
				b := int64(math.Float64bits(xp[best]))
				bk := b ^ ((b >> (64 - 1)) & 0x7fffffffffffffff)
				for p := 0; p < st.k; p++ {
					row := (h0+p)*st.w + w0
					for q, v := range xp[row : row+st.k] {
						b := int64(math.Float64bits(v))
						k, c := b^((b>>(64-1))&0x7fffffffffffffff), row+q
						if k > bk {
							best = c
						}
						if k > bk {
							bk = k
						}
					}
				}
				// The key is > 0 exactly when the bits are, i.e. when the
				// ReLU's mask (maskMul) passes the value.
				if st.relu && bk <= 0 {
					yp[i*st.ow+j], ip[i*st.ow+j] = 0, -1
				} else {
					yp[i*st.ow+j], ip[i*st.ow+j] = xp[best], int32(best)
				}
			}
		}
	}
}

// poolFwd fills st.idx with each window's first maximum and writes the
// maxima to y, split over planes.
func poolFwd[T Float](st *poolState, x, y []T) {
	parallelFor(st.n*st.c, numWorkers(), 4, func(_, lo, hi int) {
		switch xs := any(x).(type) {
		case []float32:
			poolFwdPlanes32(st, xs, any(y).([]float32), lo, hi)
		case []float64:
			poolFwdPlanes64(st, xs, any(y).([]float64), lo, hi)
		}
	})
}

// poolGather: y[o] = h[argmax(o)] (h has the input's shape; 0 where the
// index is −1).
func poolGather[T Float](st *poolState, h, y []T) {
	planes, plen, olen := st.n*st.c, st.h*st.w, st.oh*st.ow
	parallelFor(planes, numWorkers(), 4, func(_, lo, hi int) {
		for pl := lo; pl < hi; pl++ {
			hp, yp, ip := h[pl*plen:(pl+1)*plen], y[pl*olen:(pl+1)*olen], st.idx[pl*olen:(pl+1)*olen]
			yp = yp[:len(ip)]
			if !st.relu {
				for o, i := range ip {
					yp[o] = hp[i]
				}
				continue
			}
			for o, i := range ip {
				var v T
				if i >= 0 {
					v = hp[i]
				}
				yp[o] = v
			}
		}
	})
}

// poolScatter: dx = 0; dx[argmax(o)] += g[o] (overlapping windows add up;
// index −1 routes nothing).
func poolScatter[T Float](st *poolState, g, dx []T) {
	planes, plen, olen := st.n*st.c, st.h*st.w, st.oh*st.ow
	tiled := st.k == 2 && st.s == 2 && 2*st.oh == st.h && 2*st.ow == st.w
	parallelFor(planes, numWorkers(), 4, func(_, lo, hi int) {
		for pl := lo; pl < hi; pl++ {
			dp, gp, ip := dx[pl*plen:(pl+1)*plen], g[pl*olen:(pl+1)*olen], st.idx[pl*olen:(pl+1)*olen]
			if tiled {
				scatter22(st, gp, ip, dp)
				continue
			}
			clear(dp)
			if !st.relu {
				for o, i := range ip {
					dp[i] += gp[o]
				}
				continue
			}
			for o, i := range ip {
				if i >= 0 {
					dp[i] += gp[o]
				}
			}
		}
	})
}

// scatter22 is poolScatter for one plane of 2×2, stride-2 windows that tile
// the input exactly: each window's four cells are zeroed and then its value
// stored at its argmax, so no separate clearing pass is needed.
func scatter22[T Float](st *poolState, gp []T, ip []int32, dp []T) {
	w, ow := st.w, st.ow
	for i := 0; i < st.oh; i++ {
		d0 := dp[2*i*w : 2*i*w+2*ow]
		d1 := dp[(2*i+1)*w : (2*i+1)*w+2*ow]
		gr, ir := gp[i*ow:i*ow+ow], ip[i*ow:i*ow+ow]
		j0 := 0
		if unsafe.Sizeof(gr[0]) == 4 && haveAVX512 && ow >= 8 {
			j0 = ow &^ 7
			scatter22Row32((*float32)(unsafe.Pointer(&gr[0])), &ir[0], (*float32)(unsafe.Pointer(&d0[0])),
				(*float32)(unsafe.Pointer(&d1[0])), j0, int32(2*i*w), int32(w))
		}
		for j := j0; j < ow; j++ {
			q0, q1 := d0[2*j:2*j+2], d1[2*j:2*j+2]
			q0[0], q0[1], q1[0], q1[1] = 0, 0, 0, 0
		}
		for j := j0; j < ow; j++ {
			if b := ir[j]; b >= 0 {
				dp[b] = gr[j]
			}
		}
	}
}

type poolKind int

const (
	poolKindFwd     poolKind = iota // MaxPool(x): inputs (x)
	poolKindGather                  // inputs (x, h): h at x's argmax positions
	poolKindScatter                 // inputs (x, g): g routed to x's argmax positions
)

// poolOp implements max pooling as a pair of linear maps selected by the
// argmax of x: gather (input-shaped → output-shaped) and its adjoint scatter.
// MaxPool(x) = gather_x(x) with a zero derivative through the argmax, so
// ∂MaxPool/∂x = scatter_x(G), ∂scatter_x(g)/∂g = gather_x(U) and
// ∂gather_x(h)/∂h = scatter_x(U): closed under differentiation, and the
// argmax contributes no curvature (as in torch).
type poolOp struct {
	base
	kind poolKind
	st   *poolState
}

// MaxPool2d returns the max pooling of x [N, C, H, W] over K×K windows at
// stride S without padding; the output is [N, C, ⌊(H−K)/S⌋+1, ⌊(W−K)/S⌋+1].
// Windows may overlap (S < K). The gradient goes to each window's first
// maximum in row-major window order.
func MaxPool2d(x *gorgonia.Node, k, s int) (*gorgonia.Node, error) {
	return maxPool2d(x, k, s, false)
}

// ReLUMaxPool2d returns MaxPool2d(ReLU(x), k, s) as one op: the same values,
// gradients and Hessian-vector products (both maps are piecewise linear with
// zero curvature, and ReLU commutes with the maximum), in fewer passes.
func ReLUMaxPool2d(x *gorgonia.Node, k, s int) (*gorgonia.Node, error) {
	return maxPool2d(x, k, s, true)
}

func maxPool2d(x *gorgonia.Node, k, s int, relu bool) (*gorgonia.Node, error) {
	xs := shapeOf(x)
	if xs.Dims() != 4 {
		return nil, fmt.Errorf("nn: MaxPool2d wants a 4-D input, got %v", xs)
	}
	if k < 1 || s < 1 || k > xs[2] || k > xs[3] {
		return nil, fmt.Errorf("nn: MaxPool2d kernel %d stride %d invalid for input %v", k, s, xs)
	}
	st := &poolState{n: xs[0], c: xs[1], h: xs[2], w: xs[3], k: k, s: s, relu: relu}
	st.oh, st.ow = (st.h-k)/s+1, (st.w-k)/s+1
	st.idx = make([]int32, st.n*st.c*st.oh*st.ow)
	name := "MaxPool2d"
	if relu {
		name = "ReLUMaxPool2d"
	}
	op := &poolOp{base: newBase(fmt.Sprintf("%s(k%d s%d)", name, k, s), dtypeOf(x), st.yShape(), xs), kind: poolKindFwd, st: st}
	return apply(op, x)
}

func newPoolDerived(kind poolKind, st *poolState, dt tensor.Dtype, x, a *gorgonia.Node) (*gorgonia.Node, error) {
	var out, sa tensor.Shape
	name := "MaxPoolGather"
	if kind == poolKindGather {
		out, sa = st.yShape(), st.xShape()
	} else {
		out, sa, name = st.xShape(), st.yShape(), "MaxPoolScatter"
	}
	if !shapeOf(a).Eq(sa) {
		return nil, fmt.Errorf("nn: %s: input shape %v, want %v", name, shapeOf(a), sa)
	}
	if st.relu {
		name = "ReLU" + name
	}
	op := &poolOp{base: newBase(fmt.Sprintf("%s(k%d s%d)", name, st.k, st.s), dt, out, st.xShape(), sa), kind: kind, st: st}
	return apply(op, x, a)
}

func (op *poolOp) twiceDifferentiable() {}

func (op *poolOp) Do(vs ...gorgonia.Value) (gorgonia.Value, error) {
	st := op.st
	switch op.kind {
	case poolKindFwd:
		return run(&op.base, vs,
			func(in [][]float64, out []float64) { poolFwd(st, in[0], out) },
			func(in [][]float32, out []float32) { poolFwd(st, in[0], out) })
	case poolKindGather:
		return run(&op.base, vs,
			func(in [][]float64, out []float64) { poolGather(st, in[1], out) },
			func(in [][]float32, out []float32) { poolGather(st, in[1], out) })
	default:
		return run(&op.base, vs,
			func(in [][]float64, out []float64) { poolScatter(st, in[1], out) },
			func(in [][]float32, out []float32) { poolScatter(st, in[1], out) })
	}
}

func (op *poolOp) DiffWRT(n int) []bool {
	if op.kind == poolKindFwd {
		return []bool{true}
	}
	return []bool{false, true}
}

func (op *poolOp) SymDiff(in gorgonia.Nodes, _, u *gorgonia.Node) (gorgonia.Nodes, error) {
	x := in[0]
	switch op.kind {
	case poolKindFwd:
		d, err := newPoolDerived(poolKindScatter, op.st, op.dt, x, u)
		if err != nil {
			return nil, err
		}
		return gorgonia.Nodes{d}, nil
	case poolKindGather:
		d, err := newPoolDerived(poolKindScatter, op.st, op.dt, x, u)
		if err != nil {
			return nil, err
		}
		return gorgonia.Nodes{nil, d}, nil
	default:
		d, err := newPoolDerived(poolKindGather, op.st, op.dt, x, u)
		if err != nil {
			return nil, err
		}
		return gorgonia.Nodes{nil, d}, nil
	}
}

// pool22Planes32 is the 2×2, stride-2 case of poolFwdPlanes32, branch
// free: the window's largest key is found with max, its first position with
// conditional moves (checked last to first), and the maximum's value is
// recovered from its key (the key map is an involution on the bits).
func pool22Planes32(st *poolState, x, y []float32, lo, hi int) {
	w, oh, ow := st.w, st.oh, st.ow
	plen, olen := st.h*w, oh*ow
	// Without ReLU nothing is masked (no key is < lim) or clamped; with
	// it, keys ≤ 0 (values the ReLU zeroes) give index −1 and value +0.
	var lim, clamp int32 = -1 << (32 - 1), -1 << (32 - 1)
	if st.relu {
		lim, clamp = 1, 0
	}
	w1 := int32(w)
	for pl := lo; pl < hi; pl++ {
		xp := x[pl*plen : (pl+1)*plen]
		yp, ip := y[pl*olen:(pl+1)*olen], st.idx[pl*olen:(pl+1)*olen]
		for i := 0; i < oh; i++ {
			r0 := xp[2*i*w : 2*i*w+2*ow]
			r1 := xp[(2*i+1)*w : (2*i+1)*w+2*ow]
			yr, ir := yp[i*ow:i*ow+ow], ip[i*ow:i*ow+ow]
			base := int32(2 * i * w)
			j0 := 0
			if haveAVX512 && ow >= 8 {
				j0 = ow &^ 7
				pool22Row32(&r0[0], &r1[0], &yr[0], &ir[0], j0, base, w1, lim, clamp)
			}
			for j := j0; j < ow; j++ {
				p0, p1 := r0[2*j:2*j+2], r1[2*j:2*j+2]
				a0, a1 := int32(math.Float32bits(p0[0])), int32(math.Float32bits(p0[1]))
				c0, c1 := int32(math.Float32bits(p1[0])), int32(math.Float32bits(p1[1]))
				k0 := a0 ^ ((a0 >> (32 - 1)) & 0x7fffffff)
				k1 := a1 ^ ((a1 >> (32 - 1)) & 0x7fffffff)
				k2 := c0 ^ ((c0 >> (32 - 1)) & 0x7fffffff)
				k3 := c1 ^ ((c1 >> (32 - 1)) & 0x7fffffff)
				mk := max(max(k0, k1), max(k2, k3))
				pos := w1 + 1
				if k2 == mk {
					pos = w1
				}
				if k1 == mk {
					pos = 1
				}
				if k0 == mk {
					pos = 0
				}
				idx := base + int32(2*j) + pos
				if mk < lim {
					idx = -1
				}
				mk = max(mk, clamp)
				ir[j] = idx
				yr[j] = math.Float32frombits(uint32(mk ^ ((mk >> (32 - 1)) & 0x7fffffff)))
			}
		}
	}
}

// pool22Planes64 is the 2×2, stride-2 case of poolFwdPlanes64, branch
// free: the window's largest key is found with max, its first position with
// conditional moves (checked last to first), and the maximum's value is
// recovered from its key (the key map is an involution on the bits).
func pool22Planes64(st *poolState, x, y []float64, lo, hi int) {
	w, oh, ow := st.w, st.oh, st.ow
	plen, olen := st.h*w, oh*ow
	// Without ReLU nothing is masked (no key is < lim) or clamped; with
	// it, keys ≤ 0 (values the ReLU zeroes) give index −1 and value +0.
	var lim, clamp int64 = -1 << (64 - 1), -1 << (64 - 1)
	if st.relu {
		lim, clamp = 1, 0
	}
	w1 := int32(w)
	for pl := lo; pl < hi; pl++ {
		xp := x[pl*plen : (pl+1)*plen]
		yp, ip := y[pl*olen:(pl+1)*olen], st.idx[pl*olen:(pl+1)*olen]
		for i := 0; i < oh; i++ {
			r0 := xp[2*i*w : 2*i*w+2*ow]
			r1 := xp[(2*i+1)*w : (2*i+1)*w+2*ow]
			yr, ir := yp[i*ow:i*ow+ow], ip[i*ow:i*ow+ow]
			base := int32(2 * i * w)
			for j := range yr {
				p0, p1 := r0[2*j:2*j+2], r1[2*j:2*j+2]
				a0, a1 := int64(math.Float64bits(p0[0])), int64(math.Float64bits(p0[1]))
				c0, c1 := int64(math.Float64bits(p1[0])), int64(math.Float64bits(p1[1]))
				k0 := a0 ^ ((a0 >> (64 - 1)) & 0x7fffffffffffffff)
				k1 := a1 ^ ((a1 >> (64 - 1)) & 0x7fffffffffffffff)
				k2 := c0 ^ ((c0 >> (64 - 1)) & 0x7fffffffffffffff)
				k3 := c1 ^ ((c1 >> (64 - 1)) & 0x7fffffffffffffff)
				mk := max(max(k0, k1), max(k2, k3))
				pos := w1 + 1
				if k2 == mk {
					pos = w1
				}
				if k1 == mk {
					pos = 1
				}
				if k0 == mk {
					pos = 0
				}
				idx := base + int32(2*j) + pos
				if mk < lim {
					idx = -1
				}
				mk = max(mk, clamp)
				ir[j] = idx
				yr[j] = math.Float64frombits(uint64(mk ^ ((mk >> (64 - 1)) & 0x7fffffffffffffff)))
			}
		}
	}
}
