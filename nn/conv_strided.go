package nn

// Stride-2 convolutions on the implicit-GEMM kernels (conv_implicit.go):
// the input's phase planes for the forward and the weight gradient, and
// the input gradient computed phase by phase.

// phasePlanes writes x [C, H, W] as g's phase planes into xp [C·Pl] +
// padSlack: for a, b < F, plane (a, b) of a channel holds Xq_ab[u, v] =
// xpad[S·u + a, S·v + b] (u < Hq, v < Wq, xpad x with a zero border of P),
// so that tap (kh, kw) finds output (i, j)'s input at [i + kh/S, j + kw/S]
// of phase (kh mod S, kw mod S). For kernel 3, stride 1, padding 1 it is
// padPlanes. It writes every element of xp, so the buffer needs no
// clearing.
func phasePlanes[T Float](g *convGeom, x, xp []T) {
	if g.s == 1 && g.k == 3 && g.p == 1 {
		padPlanes(x, xp, g.c, g.h, g.w)
		return
	}
	if x32, ok := any(x).([]float32); ok && haveEW && g.s == 2 && g.k == 3 && g.p == 1 && g.w%16 == 0 {
		phasePlanes2(g, x32, any(xp).([]float32))
		return
	}
	wq, pl, _ := g.padDims()
	f := min(g.s, g.k)
	hq := pl / (f * f * wq)
	for c := 0; c < g.c; c++ {
		xs := x[c*g.plen : (c+1)*g.plen]
		for a := 0; a < f; a++ {
			for b := 0; b < f; b++ {
				d := xp[c*pl+(a*f+b)*hq*wq:][:hq*wq]
				for u := 0; u < hq; u++ {
					row := d[u*wq : (u+1)*wq]
					iy := g.s*u + a - g.p
					if iy < 0 || iy >= g.h {
						clear(row)
						continue
					}
					src := xs[iy*g.w : (iy+1)*g.w]
					for v := range row {
						var val T
						if ix := g.s*v + b - g.p; ix >= 0 && ix < g.w {
							val = src[ix]
						}
						row[v] = val
					}
				}
			}
		}
	}
	clear(xp[g.c*pl : g.c*pl+padSlack])
}

// phasePlanes2 is phasePlanes for kernel 3, stride 2, padding 1 on float32
// rows a multiple of 16 wide: each input row iy, split by deinterleave32
// into its even columns (phase b = 1, from v = 0) and odd ones (phase b =
// 0, from v = 1), is row (iy + 1)/2 of the row phase a = (iy + 1) mod 2;
// the column each phase row has past them, and phase a's rows that no
// input row reaches (u = 0 of a = 0, the last of a = 1 for even H), are
// zero.
func phasePlanes2(g *convGeom, x, xp []float32) {
	wq, pl, _ := g.padDims()
	plane := pl / 4
	hq := plane / wq
	for c := 0; c < g.c; c++ {
		xs := x[c*g.plen : (c+1)*g.plen]
		for a := 0; a < 2; a++ {
			r0 := xp[c*pl+(2*a)*plane:][:plane]   // phase (a, 0)
			r1 := xp[c*pl+(2*a+1)*plane:][:plane] // phase (a, 1)
			for u := 0; u < hq; u++ {
				b0, b1 := r0[u*wq:(u+1)*wq], r1[u*wq:(u+1)*wq]
				iy := 2*u + a - 1
				if iy < 0 || iy >= g.h {
					clear(b0)
					clear(b1)
					continue
				}
				_, _ = b0[g.w/2], b1[g.w/2-1] // the kernel's last writes (wq = W/2 + 1)
				deinterleave32(&xs[iy*g.w], &b1[0], &b0[1], g.w)
				b0[0], b1[wq-1] = 0, 0
			}
		}
	}
	clear(xp[g.c*pl : g.c*pl+padSlack])
}

// convBwdXStrided is the input gradient of the stride-2 implicit
// geometries (convGeom.implicit), phase by phase. Every tap (kh, kw) of
// the forward adds W[o, c, kh, kw]·G[o, i, j] to xpad[2i + kh, 2j + kw],
// which lies in phase (a, b) = (kh mod 2, kw mod 2) of xpad at (u, v) =
// (i + kh/2, j + kw/2). So phase (a, b) of dxpad is
//
//	dXq_ab[c, u, v] = Σ_{taps (kh, kw) of phase (a, b)} Σ_o W[o, c, kh, kw] · G[o, u − kh/2, v − kw/2]
//
// a stride-1 correlation of G, zero-padded by E = (K−1)/2 on each side,
// with that phase's taps (4, 2, 2 and 1 of a 3×3 kernel; the one of a 1×1
// kernel), tap (kh, kw) reading the padded G at offset (E − kh/2)·Wg + (E −
// kw/2) (row stride Wg = OW + 2E) on the grid u < OH + E, v < Wg (the
// last 2E columns junk). Each phase is one implicitGemm per sample into a
// widened grid, scattered into dx at (2u + a − P, 2v + b − P); positions
// of phases no tap reaches (a 1×1 kernel's odd rows and columns) are zero.
// The products are 9·(OH+1)·(OW+2) per channel pair against im2col's
// 9·OH·OW (1.2× at 16×16), without the columns or col2im's nine-way sums.
func convBwdXStrided[T Float](g *convGeom, s *any, gy, wt, dx []T) {
	sc := getScratch[T](s)
	kk := g.k * g.k
	e := (g.k - 1) / g.s
	f := min(g.s, g.k)
	wg, hg := g.ow+2*e, g.oh+2*e // the padded G plane
	pg := hg * wg
	hq := g.oh + e
	l := hq * wg
	// taps in phase order: phase ph's taps at [start[ph], start[ph+1]),
	// tap t's matrix [C, O] at t·C·O
	taps := grow(&sc.taps, kk*g.o*g.c)
	var start [5]int
	var offs [9]int
	var far [4]int
	t := 0
	for ph := 0; ph < f*f; ph++ {
		start[ph] = t
		a, b := ph/f, ph%f
		for kh := a; kh < g.k; kh += 2 {
			for kw := b; kw < g.k; kw += 2 {
				offs[t] = (e-kh/2)*wg + (e - kw/2)
				far[ph] = max(far[ph], offs[t])
				for o := 0; o < g.o; o++ {
					for c := 0; c < g.c; c++ {
						taps[(t*g.c+c)*g.o+o] = wt[(o*g.c+c)*kk+kh*g.k+kw]
					}
				}
				t++
			}
		}
	}
	start[f*f] = t
	xl, yl := g.c*g.plen, g.o*g.pix
	parallelFor(g.n, len(sc.gb), 2, func(w, lo, hi int) {
		offs := offs // a copy to slice: the captured array stays off the heap
		gp := grow(&sc.xp[w], g.o*pg+padSlack)
		yp := grow(&sc.yp[w], g.c*l)
		for n := lo; n < hi; n++ {
			gn := gy[n*yl : (n+1)*yl]
			if e > 0 {
				padPlanes(gn, gp, g.o, g.oh, g.ow)
			} else {
				copy(gp, gn)
				clear(gp[g.o*pg : g.o*pg+padSlack])
			}
			d := dx[n*xl : (n+1)*xl]
			if f < g.s {
				clear(d) // phases no tap reaches
			}
			for ph := 0; ph < f*f; ph++ {
				t0, nt := start[ph], start[ph+1]-start[ph]
				var po [9]int // the phase's offsets
				copy(po[:], offs[t0:t0+nt])
				implicitGemm(&sc.gb[w], g.o, g.c, l, pg, &po, nt, far[ph], taps[t0*g.c*g.o:], gp, yp)
				scatterPhase(g, ph/f, ph%f, hq, wg, yp, d)
			}
		}
	})
}

// scatterPhase writes phase (a, b) of dxpad, yp [C, hq·wg] (its columns
// v < wg, junk past the phase's own), into dx [C, H, W] at (2u + a − P, 2v
// + b − P) for the positions inside dx.
func scatterPhase[T Float](g *convGeom, a, b, hq, wg int, yp, dx []T) {
	l := hq * wg
	v0 := (g.p - b + 1) / 2 // first v with 2v + b − P ≥ 0
	for c := 0; c < g.c; c++ {
		src := yp[c*l : (c+1)*l]
		dst := dx[c*g.plen : (c+1)*g.plen]
		for u := 0; u < hq; u++ {
			iy := 2*u + a - g.p
			if iy < 0 || iy >= g.h {
				continue
			}
			row := src[u*wg : (u+1)*wg]
			out := dst[iy*g.w : (iy+1)*g.w]
			for v := v0; v < wg; v++ {
				ix := 2*v + b - g.p
				if ix >= g.w {
					break
				}
				out[ix] = row[v]
			}
		}
	}
}
