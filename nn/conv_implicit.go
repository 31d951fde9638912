package nn

import (
	"unsafe"

	"gorgonia.org/gorgonia"
)

// Implicit-GEMM convolution (kernel 3, stride 1, padding 1: ResNet's 3×3
// convs; and stride 2, below), with no im2col column matrix.
// convGeom.implicit selects these geometries: they keep no column cache
// and their weight gradient is always implicit; convGeom.implicitFwd
// decides, by plane width, whether the forward and input gradient are
// implicit too or take im2col with per-worker columns.
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
//
// Stride 2 (kernel 3 with padding 1, kernel 1 with padding 0) goes through
// the same kernels by splitting the padded input into phase planes: Xq_ab
// [u, v] = xpad[2u + a, 2v + b] for a, b < min(2, K), each Hq × Wq with
// Hq = OH + (K−1)/2, Wq = OW + (K−1)/2 (phasePlanes). Output (i, j)'s tap
// (kh, kw) reads xpad[2i + kh, 2j + kw] = Xq_{kh mod 2, kw mod 2}[i + kh/2,
// j + kw/2]: a view of one phase plane shifted by (kh/2)·Wq + kw/2, so with
// off_k that phase plane's start plus this shift the sums above hold with Wq
// for Wp (convGeom.padDims, tapOffsets). The forward and the weight
// gradient of a ResNet stage's first conv and of its projection shortcut
// thus keep no column cache (extra work (OW+1)/OW for kernel 3, none for
// kernel 1); their input gradient, a transposed strided convolution, is
// one implicit product per phase of dx (convBwdXStrided, conv_strided.go).

// padSlack is the number of zeros after the last padded plane: 2 (see
// above), plus 32 (the widest micro-kernel panel) for implicitGemm's
// ragged panels, which read past the views' last column.
const padSlack = 2 + 32

// implicit reports whether a convolution of geometry g keeps no column
// cache and takes the implicit-GEMM weight gradient (kernel 3, stride 1,
// padding 1); every other geometry goes through im2col with a column
// cache shared by its family.
//
// Stride 2 with kernel 3 and padding 1 (a ResNet stage's first conv) or
// kernel 1 and padding 0 (its projection shortcut) is implicit too: x is
// split into phase planes (phasePlanes), in which every tap reads a
// contiguous shifted view as at stride 1, so the forward and the weight
// gradient take the same kernels and keep no columns, and the input
// gradient goes phase by phase (convBwdXStrided).
func (g convGeom) implicit() bool {
	switch {
	case g.k == 3 && g.s == 1 && g.p == 1:
		return true
	case g.s == 2 && (g.k == 3 && g.p == 1 || g.k == 1 && g.p == 0):
		return true
	}
	return false
}

// implicitFwd reports whether an implicit geometry's forward and input
// gradient take the implicit-GEMM path too: for planes at least
// implicitMinW wide. Narrower planes take im2col with each sample's
// columns in a per-worker buffer (no cache, as an evaluation graph's
// forward does), where the widened grid's (W+2)/W extra work and the
// ragged last micro-kernel panel cost more than the columns.
func (g convGeom) implicitFwd() bool { return g.implicit() && g.ow >= implicitMinW }

// implicitBwdX reports whether the input gradient is implicit too: at
// stride 1 the convolution of G with the flipped kernel, at stride 2 one
// such convolution per phase of the input (convBwdXStrided).
func (g convGeom) implicitBwdX() bool { return g.implicitFwd() }

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

// padDims returns the row stride Wq = OW + E of the phase planes
// (phasePlanes; E = (K−1)/S, the farthest a tap reaches past an output's
// own position), the stride Pl of one channel's planes (F² phases of Hq·Wq,
// F = min(S, K), Hq = OH + E), and the widened output length L = OH·Wq.
// For kernel 3, stride 1, padding 1 these are the zero-padded plane's W+2,
// (H+2)(W+2) and H·(W+2).
func (g *convGeom) padDims() (wq, pl, l int) {
	e := (g.k - 1) / g.s
	wq, hq, f := g.ow+e, g.oh+e, min(g.s, g.k)
	return wq, f * f * hq * wq, g.oh * wq
}

// tapOffsets returns each tap's offset into a channel's phase planes, tap
// t = kh·K + kw reading phase (kh mod S, kw mod S) from row kh/S, column
// kw/S (off_t = kh·Wp + kw at stride 1), the number of taps K², and the
// largest offset:
//
//	Y'[o, i·Wq + j] = Σ_t Σ_c W[o, c, t] · Xq[c, off_t + i·Wq + j]
//
// which is y[o, i, j] for j < OW. Reads stay within a channel's planes but
// for the last one's junk columns (1 past it at stride 2, 2 at stride 1;
// padSlack covers them).
func (g *convGeom) tapOffsets() (offs [9]int, nt, far int) {
	wq, pl, _ := g.padDims()
	f := min(g.s, g.k)
	plane := pl / (f * f)
	for kh := 0; kh < g.k; kh++ {
		for kw := 0; kw < g.k; kw++ {
			off := ((kh%g.s)*f+kw%g.s)*plane + (kh/g.s)*wq + kw/g.s
			offs[kh*g.k+kw] = off
			far = max(far, off)
		}
	}
	return offs, g.k * g.k, far
}

// tapPlan is what the tap kernels need of a geometry (padDims and
// tapOffsets), derived once per call rather than per sample.
type tapPlan struct {
	wq, pl, l int
	offs      [9]int
	nt, far   int
}

func (g *convGeom) tapPlan() tapPlan {
	p := tapPlan{}
	p.wq, p.pl, p.l = g.padDims()
	p.offs, p.nt, p.far = g.tapOffsets()
	return p
}

// padPlanes writes x [ch, h, w] into xp [ch, (h+2)(w+2)] + padSlack with a
// zero border of one and zero slack. It writes every element of xp, so the
// buffer needs no clearing.
func padPlanes[T Float](x, xp []T, ch, h, w int) {
	wp := w + 2
	pl := (h + 2) * wp
	x32, fast := any(x).([]float32)
	fast = fast && haveEW && w%8 == 0 && h > 0 && w > 0
	for c := 0; c < ch; c++ {
		xs := x[c*h*w : (c+1)*h*w]
		d := xp[c*pl : (c+1)*pl]
		clear(d[:wp+1]) // top row and the left pad of row 1
		if fast {
			// the rows and their right pads (with the next row's
			// left) through the AVX2 copy: a memmove call per row
			// otherwise (BenchmarkOperandCopies/padPlanes)
			d32 := any(d).([]float32)
			_ = d32[h*wp+wp] // the last pad written: row h's right one, row h+1's left
			padRows32(&x32[c*h*w], &d32[wp+1], h, w, wp)
			clear(d[(h+1)*wp:]) // bottom row
			continue
		}
		for i := 0; i < h; i++ {
			row := d[(i+1)*wp+1 : (i+2)*wp+1]
			copy(row[:w], xs[i*w:(i+1)*w])
			row[w], row[w+1] = 0, 0 // right pad of row i+1, left pad of row i+2
		}
		clear(d[(h+1)*wp:]) // bottom row
	}
	clear(xp[ch*pl : ch*pl+padSlack])
}

// widenRows writes src [rows, w] into dst [rows, wq] with zeros in the
// wq − w extra columns of each row.
func widenRows[T Float](src, dst []T, rows, w, wq int) {
	if s32, ok := any(src).([]float32); ok && haveEW && w%8 == 0 && wq == w+2 && rows > 0 && w > 0 {
		// the rows and their two zeros through padRows32 (a memmove call
		// per row otherwise)
		d32 := any(dst).([]float32)
		_, _ = s32[rows*w-1], d32[rows*wq-1]
		padRows32(&s32[0], &d32[0], rows, w, wq)
		return
	}
	for r := 0; r < rows; r++ {
		d := dst[r*wq : (r+1)*wq]
		copy(d[:w], src[r*w:(r+1)*w])
		clear(d[w:])
	}
}

// widenRowsT writes the transpose of src [o, h·w] widened, dst [h·wp, o]:
// dst[(i·wp+j)·o + c] = src[c, i, j] for j < w and 0 for w ≤ j < wp.
func widenRowsT[T Float](src, dst []T, o, h, w, wp int) {
	for i := 0; i < h; i++ {
		for j := w; j < wp; j++ {
			clear(dst[(i*wp+j)*o : (i*wp+j+1)*o])
		}
	}
	if s32, ok := any(src).([]float32); ok && haveEW && o%8 == 0 && w%8 == 0 && h > 0 && w > 0 {
		// 8×8 blocks through the AVX2 transpose: each block reads eight
		// channels' rows and writes eight positions' channel runs
		// (BenchmarkOperandCopies/widenRowsT)
		d32 := any(dst).([]float32)
		_, _ = s32[o*h*w-1], d32[(h-1)*wp*o+w*o-1] // the farthest read and write
		for i := 0; i < h; i++ {
			for c0 := 0; c0 < o; c0 += 8 {
				transpose8Strip(&s32[(c0*h+i)*w], h*w, &d32[i*wp*o+c0], o, w/8)
			}
		}
		return
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

// implicitSample computes out [co, OH, OW] = Σ_k taps_k · Xq shifted by
// off_k (+ bias[o] per output channel when bias is non-nil) from the phase
// planes xp [ci·Pl] + padSlack of g (ci planes: g's input, or at stride 1
// the output gradient's), through yp [co, L]. taps holds the K² [co, ci]
// tap matrices, tap k at k·co·ci.
func implicitSample[T Float](gb *sgemmBufs, g *convGeom, p *tapPlan, ci, co int, taps, xp, yp, out, bias []T) {
	wp, l := p.wq, p.l
	h, w := g.oh, g.ow
	if compactOK[T](co, h, w) {
		implicitGemmCompact(ci, co, h, w, wp, p.pl, &p.offs, p.nt, p.far, taps, xp, out)
		if bias != nil {
			for o := 0; o < co; o++ {
				d := out[o*h*w : (o+1)*h*w]
				vecAddScalar(d, d, bias[o])
			}
		}
		return
	}
	implicitGemm(gb, ci, co, l, p.pl, &p.offs, p.nt, p.far, taps, xp, yp)
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

// implicitGemm computes yp [co, l] = Σ_{k<nt} taps_k · xp[:, off_k :
// off_k+l] (rows pl apart; far the largest offset). With the native
// kernels, each 4×NR tile of yp takes its taps in turn, the micro-kernel accumulating into the tile
// while it is in L1 (instead of nine sweeps over yp): B is read in place,
// A in place with the float32 AVX-512 kernel or else the row block's
// taps packed once. The ragged right panel and bottom row block go
// through a tile buffer: their panel reads run up to NR−1 elements past
// column l of the last channel, which padSlack covers, and those columns
// are dropped. Builds without the native kernels take a gemm call per tap.
func implicitGemm[T Float](gb *sgemmBufs, ci, co, l, pl int, offs *[9]int, nt, far int, taps, xp, yp []T) {
	if !haveSgemmKernel {
		for k, off := range offs[:nt] {
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
	abuf, _, tile := bufsFor[T](gb)
	ap := growT(abuf, nt*ci*sgemmMR)
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
				_ = xp[far+j0+(ci-1)*pl+nr0-1] // the farthest read (see below)
				kernelT9x8(ci, &taps[i0*ci], ci, co*ci, &xp[j0], pl, offs, 16, c, ldc, nt)
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
			for k := 0; k < nt; k++ {
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
				// the taps accumulated in registers, one store; reads
				// stay within xp as the per-tap calls' did (the farthest
				// at far + j0 + (ci−1)·pl + 31)
				_ = xp[far+j0+(ci-1)*pl+nr0-1]
				kernelT9(ci, &taps[i0*ci], ci, co*ci, &xp[j0], pl, offs, 16, c, ldc, nt)
			} else {
				for k, off := range offs[:nt] {
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
// of four, and either rows a multiple of 16 wide (each 16-column half of a
// 32-column tile then lies within one row) and a whole number of tiles, or
// rows 8 wide in blocks of four (a tile four rows: the quarter-row
// kernels, the eight-row one with AVX-512VL).
func compactOK[T Float](co, h, w int) bool {
	if nrOf[T]() != 32 || co%sgemmMR != 0 {
		return false
	}
	return w%16 == 0 && (h*w)%32 == 0 || w == 8 && h%4 == 0 && haveAVX512VL
}

// implicitGemmCompact is implicitGemm writing out [co, h·w] directly, with
// no widened grid: the 32 outputs p … p+31 of a tile are two runs of 16
// within rows, read from the phase planes at their widened positions
// (i·Wq + j for output p = i·w + j; the second run seg = 16, or 16 + Wq − w
// where it starts the next row, after the first), or for w = 8 four rows
// of eight, Wq apart (the quarter-row kernels). At w = 8 this does 64
// outputs' work for 64 (the widened grid's tiles: 96 for 64, 1.5×).
func implicitGemmCompact[T Float](ci, co, h, w, wq, pl int, offs *[9]int, nt, far int, taps, xp, out []T) {
	lc := h * w
	quarter := w == 8
	for p := 0; p < lc; p += 32 {
		i, j := p/w, p%w
		bw, seg := i*wq+j, 16
		switch {
		case quarter:
			seg = wq
			_ = xp[far+bw+3*wq+7+(ci-1)*pl] // the farthest read
		case j+16 == w:
			seg = 16 + wq - w
			fallthrough
		default:
			_ = xp[far+bw+seg+15+(ci-1)*pl] // the farthest read
		}
		i0 := 0
		for ; i0+2*sgemmMR <= co; i0 += 2 * sgemmMR {
			if quarter {
				kernelT9Qx8(ci, &taps[i0*ci], ci, co*ci, &xp[bw], pl, offs, seg, &out[i0*lc+p], lc, nt)
				continue
			}
			kernelT9x8(ci, &taps[i0*ci], ci, co*ci, &xp[bw], pl, offs, seg, &out[i0*lc+p], lc, nt)
		}
		for ; i0 < co; i0 += sgemmMR {
			if quarter {
				kernelT9Q(ci, &taps[i0*ci], ci, co*ci, &xp[bw], pl, offs, seg, &out[i0*lc+p], lc, nt)
				continue
			}
			kernelT9(ci, &taps[i0*ci], ci, co*ci, &xp[bw], pl, offs, seg, &out[i0*lc+p], lc, nt)
		}
	}
}

// implicitConv runs implicitSample over the batch in parallel, with the
// taps already repacked in sc.taps: the forward (fwd: in = x [N, C, H, W]
// through its phase planes → out [N, O, OH, OW]) or, at stride 1, the
// input gradient (in = G [N, O, H, W] zero-padded → out [N, C, H, W]).
func implicitConv[T Float](g *convGeom, sc *convScratch[T], fwd bool, in, bias, out []T) {
	_, pl, l := g.padDims()
	ci, co, il, ol := g.c, g.o, g.c*g.plen, g.o*g.pix
	if !fwd {
		ci, co, il, ol = g.o, g.c, g.o*g.pix, g.c*g.plen
	}
	taps := sc.taps[:g.k*g.k*co*ci]
	parallelFor(g.n, len(sc.gb), 2, func(w, lo, hi int) {
		p := g.tapPlan()
		xp := grow(&sc.xp[w], ci*pl+padSlack)
		yp := grow(&sc.yp[w], co*l)
		for n := lo; n < hi; n++ {
			if fwd {
				phasePlanes(g, in[n*il:(n+1)*il], xp)
			} else {
				padPlanes(in[n*il:(n+1)*il], xp, ci, g.h, g.w)
			}
			implicitSample(&sc.gb[w], g, &p, ci, co, taps, xp, yp, out[n*ol:(n+1)*ol], bias)
		}
	})
}

// convFwdImplicit is convFwd for implicit geometries: y = conv(x, W) + bias
// with taps_k[o, c] = W[o, c, k], k < K².
func convFwdImplicit[T Float](g *convGeom, s *any, x, wt, bias, y []T) {
	sc := getScratch[T](s)
	kk := g.k * g.k
	taps := grow(&sc.taps, kk*g.o*g.c)
	for o := 0; o < g.o; o++ {
		for c := 0; c < g.c; c++ {
			wr := wt[(o*g.c+c)*kk : (o*g.c+c+1)*kk]
			for k, v := range wr {
				taps[(k*g.o+o)*g.c+c] = v
			}
		}
	}
	implicitConv(g, sc, true, x, bias, y)
}

// convBwdXImplicit is convBwdX for implicit stride-1 geometries
// (implicitBwdX): dx = conv(gy, W') with W'[c, o, kh, kw] = W[o, c, 2−kh,
// 2−kw], i.e. taps_k[c, o] = W[o, c, 8−k].
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
	implicitConv(g, sc, false, gy, nil, dx)
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
	plan := g.tapPlan()
	wq, pl, l, nt := plan.wq, plan.pl, plan.l, plan.nt
	// cs planes of x (in the dot form c and whatever the buffer holds after them)
	cs := g.c
	if form == bwdWDot {
		cs = dotChannels(g.c)
	}
	xl, yl, oc := g.c*g.plen, g.o*g.pix, g.o*cs
	trans := form == bwdWTrans
	var used [64]bool
	workers := min(len(sc.acc), len(used))
	parallelFor(g.n, workers, 2, func(w, lo, hi int) {
		used[w] = true
		offs := plan.offs // a copy to slice: the captured plan stays off the heap
		acc := grow(&sc.acc[w], nt*oc)
		// planes c … cs−1 are read as they are: only the dropped rows
		// c ≥ C of the dot products see them
		xp := grow(&sc.xp[w], cs*pl+padSlack)
		gp := grow(&sc.yp[w], g.o*l)
		for n := lo; n < hi; n++ {
			phasePlanes(g, x[n*xl:(n+1)*xl], xp)
			gyn := gy[n*yl : (n+1)*yl]
			if trans {
				widenRowsT(gyn, gp, g.o, g.oh, g.ow, wq)
			} else {
				widenRows(gyn, gp, g.o*g.oh, g.ow, wq)
			}
			var beta T
			if n > lo {
				beta = 1
			}
			for k, off := range offs[:nt] {
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
		a := sc.acc[w][:nt*oc]
		for k := 0; k < nt; k++ {
			ak := a[k*oc : (k+1)*oc]
			for o := 0; o < g.o; o++ {
				for c := 0; c < g.c; c++ {
					v := ak[o*cs+c]
					if trans {
						v = ak[c*g.o+o]
					}
					dw[(o*g.c+c)*nt+k] += v
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
// implicit GEMM where implicitBwdX, else im2col's (which keeps no cache).
func implicitBwdXOrCols[T Float](g *convGeom, s *any, gy, wt, dx []T) {
	switch {
	case g.implicitBwdX() && g.s == 1:
		convBwdXImplicit(g, s, gy, wt, dx)
		return
	case g.implicitBwdX():
		convBwdXStrided(g, s, gy, wt, dx)
		return
	}
	convBwdX(g, s, gy, wt, dx)
}
