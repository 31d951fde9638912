package nn

import (
	"unsafe"

	"gorgonia.org/gorgonia"
)

// Implicit-GEMM 3×3 convolution (kernel 3, stride 1, padding 1: ResNet's
// 3×3 convs), with no im2col column matrix. convGeom.implicit selects
// these geometries: they keep no column cache and their weight gradient
// is always implicit; convGeom.implicitFwd decides, by plane width,
// whether the forward and input gradient are implicit too or take im2col
// with per-worker columns.
//
// Let one sample's input x [C, H, W] be copied into a zero-padded plane
// buffer Xp [C, (H+2)(W+2)] (row stride Wp = W+2, plane stride
// Pl = (H+2)·Wp, plus padSlack zeros after the last plane), and number
// the taps k = 3·kh + kw with offset off_k = kh·Wp + kw. The output on a
// widened grid Y' [O, H·Wp] (each output row followed by two extra columns) is
//
//	Y'[o, i·Wp + j] = Σ_k Σ_c W[o, c, kh, kw] · Xp[c, off_k + i·Wp + j]
//	                = Σ_k (W_k · Xp[:, off_k : off_k + H·Wp])[o, i·Wp + j]
//
// with W_k [O, C] the weights of tap k: nine GEMMs whose B operand is the
// padded buffer read in place through a shifted view (rows Pl apart). For
// j < W, i·Wp + j + off_k = (i+kh)·Wp + (j+kw) with j + kw < Wp, so the
// element read is xpad[c, i+kh, j+kw] and Y'[o, i·Wp+j] = y[o, i, j]; the
// two extra columns j = W, W+1 read across a row edge and are dropped when
// Y' is compacted to [O, H, W]. The last element any view reads is
// (C−1)·Pl + off_8 + H·Wp − 1 = C·Pl + 1, so the buffer holds at least
// two slack elements (padSlack).
//
// The input gradient dx = ∂⟨G, conv(x, W)⟩/∂x is the same convolution of
// G [O, H, W] with the flipped, transposed kernel W'[c, o, kh, kw] =
// W[o, c, 2−kh, 2−kw] (same padding): tap k of W' is W_{8−k}ᵀ.
//
// The weight gradient is, per tap,
//
//	dW_k [O, C] = Σ_n G'_n · Xp_n[:, off_k : off_k + H·Wp]ᵀ
//
// with G'_n [O, H·Wp] the output gradient widened with zeros in the two
// extra columns of each row (so the cross-row reads they pair with add
// nothing). It reads the conv's input x, which the graph keeps alive
// anyway, so no column cache is built or kept for these convolutions.
//
// Arithmetic: (W+2)/W times im2col's GEMM work (1.06× at W = 32, 1.25×
// at W = 8), without writing and reading a column matrix 9× the input.

// padSlack is the number of zeros after the last padded plane: 2 (see
// above), plus 32 (the widest micro-kernel panel) for implicitGemm's
// ragged panels, which read past the views' last column.
const padSlack = 2 + 32

// implicit reports whether a convolution of geometry g keeps no column
// cache and takes the implicit-GEMM weight gradient (kernel 3, stride 1,
// padding 1); every other geometry goes through im2col with a column
// cache shared by its family.
func (g convGeom) implicit() bool { return g.k == 3 && g.s == 1 && g.p == 1 }

// implicitFwd reports whether an implicit geometry's forward and input
// gradient take the implicit-GEMM path too: for planes at least
// implicitMinW wide. Narrower planes take im2col with each sample's
// columns in a per-worker buffer (no cache, as an evaluation graph's
// forward does), where the widened grid's (W+2)/W extra work and the
// ragged last micro-kernel panel cost more than the columns.
func (g convGeom) implicitFwd() bool { return g.implicit() && g.w >= implicitMinW }

// implicitMinW is implicitFwd's threshold. With the eight-row nine-tap
// kernel (sgemmKernel8x32T9), BenchmarkConv3x3 on a quiet 2-core AVX-512
// machine, float32, batch 128, O = C, three runs of 20 calls at 64×8×8:
// forward implicit 3.3–3.8 ms against per-worker im2col's 4.3–4.7 ms, input
// gradient 3.8–4.0 against 4.6. (Before that kernel, with nine 4×32 calls a
// tile, CPU time under load, implicit / im2col: forward 0.83 at 16×32×32,
// 1.01 at 32×16×16, 0.95 at 32×12×12, 1.25 at 64×8×8; input gradient 0.79,
// 0.98, 0.91, 1.18, and the threshold was 12.) Narrower planes were not
// measured.
const implicitMinW = 8

// padDims returns the padded row stride Wp = W+2, plane stride
// Pl = (H+2)·Wp, and widened output length L = H·Wp.
func (g *convGeom) padDims() (wp, pl, l int) {
	wp = g.w + 2
	return wp, (g.h + 2) * wp, g.h * wp
}

// padPlanes writes x [ch, h, w] into xp [ch, (h+2)(w+2)] + padSlack with a
// zero border of one and zero slack. It writes every element of xp, so the
// buffer needs no clearing.
func padPlanes[T Float](x, xp []T, ch, h, w int) {
	wp := w + 2
	pl := (h + 2) * wp
	for c := 0; c < ch; c++ {
		xs := x[c*h*w : (c+1)*h*w]
		d := xp[c*pl : (c+1)*pl]
		clear(d[:wp+1]) // top row and the left pad of row 1
		for i := 0; i < h; i++ {
			row := d[(i+1)*wp+1 : (i+2)*wp+1]
			copy(row[:w], xs[i*w:(i+1)*w])
			row[w], row[w+1] = 0, 0 // right pad of row i+1, left pad of row i+2
		}
		clear(d[(h+1)*wp:]) // bottom row
	}
	clear(xp[ch*pl : ch*pl+padSlack])
}

// widenRows writes src [rows, w] into dst [rows, w+2] with zeros in the two
// extra columns of each row.
func widenRows[T Float](src, dst []T, rows, w int) {
	wp := w + 2
	for r := 0; r < rows; r++ {
		d := dst[r*wp : (r+1)*wp]
		copy(d[:w], src[r*w:(r+1)*w])
		d[w], d[w+1] = 0, 0
	}
}

// widenRowsT writes the transpose of src [o, h·w] widened, dst [h·(w+2), o]:
// dst[(i·(w+2)+j)·o + c] = src[c, i, j] for j < w and 0 for j = w, w+1.
func widenRowsT[T Float](src, dst []T, o, h, w int) {
	wp := w + 2
	for i := 0; i < h; i++ {
		for j := w; j < wp; j++ {
			clear(dst[(i*wp+j)*o : (i*wp+j+1)*o])
		}
	}
	const b = 16
	for c0 := 0; c0 < o; c0 += b {
		c1 := min(c0+b, o)
		for i := 0; i < h; i++ {
			for c := c0; c < c1; c++ {
				s := src[(c*h+i)*w : (c*h+i+1)*w]
				d := dst[i*wp*o+c:]
				for j, v := range s {
					d[j*o] = v
				}
			}
		}
	}
}

// implicitSample computes out [co, h, w] = Σ_k taps_k · Xp shifted by off_k
// (+ bias[o] per output channel when bias is non-nil) from the padded
// input xp [ci, (h+2)(w+2)] + padSlack, through yp [co, h·(w+2)].
// taps holds the nine [co, ci] tap matrices, tap k at k·co·ci.
func implicitSample[T Float](gb *sgemmBufs, ci, co, h, w int, taps, xp, yp, out, bias []T) {
	wp := w + 2
	if compactOK[T](co, h, w) {
		implicitGemmCompact(ci, co, h, w, taps, xp, out)
		if bias != nil {
			for o := 0; o < co; o++ {
				d := out[o*h*w : (o+1)*h*w]
				vecAddScalar(d, d, bias[o])
			}
		}
		return
	}
	implicitGemm(gb, ci, co, h*wp, (h+2)*wp, wp, taps, xp, yp)
	l := h * wp
	for o := 0; o < co; o++ {
		var bv T
		if bias != nil {
			bv = bias[o]
		}
		for i := 0; i < h; i++ {
			d := out[(o*h+i)*w : (o*h+i+1)*w]
			s := yp[o*l+i*wp : o*l+i*wp+w]
			if bias == nil {
				copy(d, s)
				continue
			}
			for j, v := range s {
				d[j] = v + bv
			}
		}
	}
}

// implicitGemm computes yp [co, l] = Σ_k taps_k · xp[:, off_k : off_k+l]
// (rows pl apart). With the native kernels, each 4×NR tile of yp takes
// its nine taps in turn, the micro-kernel accumulating into the tile
// while it is in L1 (instead of nine sweeps over yp): B is read in place,
// A in place with the float32 AVX-512 kernel or else the row block's nine
// taps packed once. The ragged right panel and bottom row block go
// through a tile buffer: their panel reads run up to NR−1 elements past
// column l of the last channel, which padSlack covers, and those columns
// are dropped. Builds without the native kernels take nine gemm calls.
func implicitGemm[T Float](gb *sgemmBufs, ci, co, l, pl, wp int, taps, xp, yp []T) {
	if !haveSgemmKernel {
		for k := 0; k < 9; k++ {
			off := (k/3)*wp + k%3
			var beta T
			if k > 0 {
				beta = 1
			}
			gemmBuf(gb, false, false, co, l, ci, 1, taps[k*co*ci:(k+1)*co*ci], ci, xp[off:], pl, beta, yp, l)
		}
		return
	}
	nr0 := nrOf[T]()
	inPlace := nr0 == 32 // the float32 AVX-512 kernel reads A in place
	var offs [9]int
	for k := range offs {
		offs[k] = (k/3)*wp + k%3
	}
	abuf, _, tile := bufsFor[T](gb)
	ap := growT(abuf, 9*ci*sgemmMR)
	i0 := 0
	if inPlace {
		// eight rows at a time with the eight-row kernel (half the B
		// traffic per product); the rest below by four
		for ; i0+2*sgemmMR <= co; i0 += 2 * sgemmMR {
			for j0 := 0; j0 < l; j0 += nr0 {
				nr := min(nr0, l-j0)
				c, ldc := &tile[0], nr0
				if nr == nr0 {
					c, ldc = &yp[i0*l+j0], l
				}
				_ = xp[offs[8]+j0+(ci-1)*pl+nr0-1] // the farthest read (see below)
				kernelT9x8(ci, &taps[i0*ci], ci, co*ci, &xp[j0], pl, &offs, 16, c, ldc)
				if nr < nr0 {
					for r := 0; r < 2*sgemmMR; r++ {
						copy(yp[(i0+r)*l+j0:(i0+r)*l+j0+nr], tile[r*nr0:r*nr0+nr])
					}
				}
			}
		}
	}
	for ; i0 < co; i0 += sgemmMR {
		mr := min(sgemmMR, co-i0)
		packed := !inPlace || mr < sgemmMR
		if packed {
			for k := 0; k < 9; k++ {
				packA(false, taps[k*co*ci:(k+1)*co*ci], ci, i0, mr, 0, ci, ap[k*ci*sgemmMR:(k+1)*ci*sgemmMR])
			}
		}
		for j0 := 0; j0 < l; j0 += nr0 {
			nr := min(nr0, l-j0)
			direct := mr == sgemmMR && nr == nr0
			c, ldc := &tile[0], nr0
			if direct {
				c, ldc = &yp[i0*l+j0], l
			}
			if !packed {
				// the nine taps accumulated in registers, one store;
				// reads stay within xp as the per-tap calls' did (the
				// farthest at offs[8] + j0 + (ci−1)·pl + 31)
				_ = xp[offs[8]+j0+(ci-1)*pl+nr0-1]
				kernelT9(ci, &taps[i0*ci], ci, co*ci, &xp[j0], pl, &offs, 16, c, ldc)
			} else {
				for k, off := range offs {
					kernel(ci, ap[k*ci*sgemmMR:], &xp[off+j0], pl, c, ldc, k > 0, nil)
				}
			}
			if !direct {
				for r := 0; r < mr; r++ {
					copy(yp[(i0+r)*l+j0:(i0+r)*l+j0+nr], tile[r*nr0:r*nr0+nr])
				}
			}
		}
	}
}

// compactOK reports whether implicitGemmCompact can write a sample's
// output directly: the float32 AVX-512 kernels, output channels in blocks
// of four, rows a multiple of 16 wide (each 16-column half of a 32-column
// tile then lies within one row) and a whole number of tiles.
func compactOK[T Float](co, h, w int) bool {
	return nrOf[T]() == 32 && co%sgemmMR == 0 && w%16 == 0 && (h*w)%32 == 0
}

// implicitGemmCompact is implicitGemm writing out [co, h·w] directly, with
// no widened grid: the 32 outputs p … p+31 of a tile are two runs of 16
// within rows, read from the padded planes at their widened positions
// (i·Wp + j for output p = i·w + j; the second run seg = 16, or 18 where it
// starts the next row, after the first).
func implicitGemmCompact[T Float](ci, co, h, w int, taps, xp, out []T) {
	wp := w + 2
	pl := (h + 2) * wp
	lc := h * w
	var offs [9]int
	for k := range offs {
		offs[k] = (k/3)*wp + k%3
	}
	for p := 0; p < lc; p += 32 {
		i, j := p/w, p%w
		bw, seg := i*wp+j, 16
		if j+16 == w {
			seg = 18
		}
		_ = xp[offs[8]+bw+seg+15+(ci-1)*pl] // the farthest read
		i0 := 0
		for ; i0+2*sgemmMR <= co; i0 += 2 * sgemmMR {
			kernelT9x8(ci, &taps[i0*ci], ci, co*ci, &xp[bw], pl, &offs, seg, &out[i0*lc+p], lc)
		}
		for ; i0 < co; i0 += sgemmMR {
			kernelT9(ci, &taps[i0*ci], ci, co*ci, &xp[bw], pl, &offs, seg, &out[i0*lc+p], lc)
		}
	}
}

// implicitConv runs implicitSample over the batch in parallel: in [N, ci,
// H, W] → out [N, co, H, W], with the taps already repacked in sc.taps.
func implicitConv[T Float](g *convGeom, sc *convScratch[T], ci, co int, in, bias, out []T) {
	_, pl, l := g.padDims()
	il, ol := ci*g.plen, co*g.plen
	taps := sc.taps[:9*co*ci]
	parallelFor(g.n, len(sc.gb), 2, func(w, lo, hi int) {
		xp := grow(&sc.xp[w], ci*pl+padSlack)
		yp := grow(&sc.yp[w], co*l)
		for n := lo; n < hi; n++ {
			padPlanes(in[n*il:(n+1)*il], xp, ci, g.h, g.w)
			implicitSample(&sc.gb[w], ci, co, g.h, g.w, taps, xp, yp, out[n*ol:(n+1)*ol], bias)
		}
	})
}

// convFwdImplicit is convFwd for implicit geometries: y = conv(x, W) + bias
// with taps_k[o, c] = W[o, c, k].
func convFwdImplicit[T Float](g *convGeom, s *any, x, wt, bias, y []T) {
	sc := getScratch[T](s)
	taps := grow(&sc.taps, 9*g.o*g.c)
	for o := 0; o < g.o; o++ {
		for c := 0; c < g.c; c++ {
			wr := wt[(o*g.c+c)*9 : (o*g.c+c+1)*9]
			for k, v := range wr {
				taps[(k*g.o+o)*g.c+c] = v
			}
		}
	}
	implicitConv(g, sc, g.c, g.o, x, bias, y)
}

// convBwdXImplicit is convBwdX for implicit geometries: dx = conv(gy, W')
// with W'[c, o, kh, kw] = W[o, c, 2−kh, 2−kw], i.e. taps_k[c, o] =
// W[o, c, 8−k].
func convBwdXImplicit[T Float](g *convGeom, s *any, gy, wt, dx []T) {
	sc := getScratch[T](s)
	taps := grow(&sc.taps, 9*g.o*g.c)
	for o := 0; o < g.o; o++ {
		for c := 0; c < g.c; c++ {
			wr := wt[(o*g.c+c)*9 : (o*g.c+c+1)*9]
			for k, v := range wr {
				taps[((8-k)*g.c+c)*g.o+o] = v
			}
		}
	}
	implicitConv(g, sc, g.o, g.c, gy, nil, dx)
}

// implicitBwdWForm picks the form of the implicit weight gradient by the
// same rules as convBwdW, for the per-tap product [O, L]·[C, L]ᵀ; the dot
// form widens C to a multiple of four (dotChannels), so a
// network's first convolution (C = 3) takes it too.
func implicitBwdWForm[T Float](g *convGeom) int {
	var z T
	_, _, l := g.padDims()
	switch {
	case unsafe.Sizeof(z) == 4 && canDot(g.o, dotChannels(g.c), l):
		return bwdWDot
	case !transposeCheap[T]() || (haveSgemmKernel && g.o%nrOf[T]() == 0):
		return bwdWTrans
	}
	return bwdWPlain
}

// dotChannels is the number of input planes the dot form of the implicit
// weight gradient works on: c rounded up to the dot kernel's four rows (the
// products with the planes past c are computed and dropped). For ResNet's
// first convolution (C = 3, O = 16, 32×32 at batch 128) the plain form
// multiplies 16×3 blocks with 32-column kernels (7–9 ms of a 225 ms
// ResNet-20 gradient); the dot form does a third more work at the kernel's
// full rate (1.2–2 ms).
func dotChannels(c int) int { return (c + 3) &^ 3 }

// convBwdWImplicit is convBwdW for implicit geometries: dW_k = Σ_n G'_n ·
// Xp_n shifted by off_kᵀ, accumulated per worker and scattered into
// dw[o, c, k]. Forms (as for convBwdW): bwdWPlain takes G'·Xpᵀ through
// gemm (packing the transposed view); bwdWTrans takes dW_kᵀ = Xp·G'ᵀ with
// G' widened and transposed once per sample, the shifted views read in
// place as A; bwdWDot (float32, canDot) takes dot products along L with
// both operands in place.
func convBwdWImplicit[T Float](g *convGeom, s *any, x, gy, dw []T, form int) {
	sc := getScratch[T](s)
	wp, pl, l := g.padDims()
	// cs planes of x (in the dot form c and whatever the buffer holds after them)
	cs := g.c
	if form == bwdWDot {
		cs = dotChannels(g.c)
	}
	xl, yl, oc := g.c*g.plen, g.o*g.plen, g.o*cs
	trans := form == bwdWTrans
	var used [64]bool
	workers := min(len(sc.acc), len(used))
	parallelFor(g.n, workers, 2, func(w, lo, hi int) {
		used[w] = true
		acc := grow(&sc.acc[w], 9*oc)
		// planes c … cs−1 are read as they are: only the dropped rows
		// c ≥ C of the dot products see them
		xp := grow(&sc.xp[w], cs*pl+padSlack)
		gp := grow(&sc.yp[w], g.o*l)
		for n := lo; n < hi; n++ {
			padPlanes(x[n*xl:(n+1)*xl], xp, g.c, g.h, g.w)
			gyn := gy[n*yl : (n+1)*yl]
			if trans {
				widenRowsT(gyn, gp, g.o, g.h, g.w)
			} else {
				widenRows(gyn, gp, g.o*g.h, g.w)
			}
			var beta T
			if n > lo {
				beta = 1
			}
			for k := 0; k < 9; k++ {
				off := (k/3)*wp + k%3
				ak := acc[k*oc : (k+1)*oc]
				switch form {
				case bwdWDot:
					a32, b32, c32 := any(gp).([]float32), any(xp[off:]).([]float32), any(ak).([]float32)
					gemmABtDot(g.o, cs, l, a32, l, b32, pl, c32, cs, n > lo, &sc.dot[w])
				case bwdWTrans: // ak is dW_kᵀ [C, O]
					gemmBuf(&sc.gb[w], false, false, g.c, g.o, l, 1, xp[off:], pl, gp, g.o, beta, ak, g.o)
				default:
					gemmBuf(&sc.gb[w], false, true, g.o, g.c, l, 1, gp, l, xp[off:], pl, beta, ak, g.c)
				}
			}
		}
	})
	clear(dw)
	for w := 0; w < workers; w++ {
		if !used[w] {
			continue
		}
		a := sc.acc[w][:9*oc]
		for k := 0; k < 9; k++ {
			ak := a[k*oc : (k+1)*oc]
			for o := 0; o < g.o; o++ {
				for c := 0; c < g.c; c++ {
					v := ak[o*cs+c]
					if trans {
						v = ak[c*g.o+o]
					}
					dw[(o*g.c+c)*9+k] += v
				}
			}
		}
	}
}

// doImplicit is Do for implicit geometries.
func (op *convOp) doImplicit(vs []gorgonia.Value) (gorgonia.Value, error) {
	g := &op.g
	switch op.kind {
	case convKindFwd:
		return run(&op.base, vs,
			func(in [][]float64, out []float64) { implicitFwdOrCols(g, &op.scratch, in[0], in[1], biasOf(in), out) },
			func(in [][]float32, out []float32) { implicitFwdOrCols(g, &op.scratch, in[0], in[1], biasOf(in), out) })
	case convKindBwdX:
		return run(&op.base, vs,
			func(in [][]float64, out []float64) { implicitBwdXOrCols(g, &op.scratch, in[0], in[1], out) },
			func(in [][]float32, out []float32) { implicitBwdXOrCols(g, &op.scratch, in[0], in[1], out) })
	default:
		return run(&op.base, vs,
			func(in [][]float64, out []float64) {
				convBwdWImplicit(g, &op.scratch, in[0], in[1], out, implicitBwdWForm[float64](g))
			},
			func(in [][]float32, out []float32) {
				convBwdWImplicit(g, &op.scratch, in[0], in[1], out, implicitBwdWForm[float32](g))
			})
	}
}

// implicitFwdOrCols is the forward of an implicit geometry: implicit GEMM
// where implicitFwd, else im2col into per-worker columns (no cache).
func implicitFwdOrCols[T Float](g *convGeom, s *any, x, wt, bias, y []T) {
	if g.implicitFwd() {
		convFwdImplicit(g, s, x, wt, bias, y)
		return
	}
	convFwd(g, s, nil, false, x, wt, bias, y)
}

// implicitBwdXOrCols is the input gradient of an implicit geometry:
// implicit GEMM where implicitFwd, else im2col's (which keeps no cache).
func implicitBwdXOrCols[T Float](g *convGeom, s *any, gy, wt, dx []T) {
	if g.implicitFwd() {
		convBwdXImplicit(g, s, gy, wt, dx)
		return
	}
	convBwdX(g, s, gy, wt, dx)
}
