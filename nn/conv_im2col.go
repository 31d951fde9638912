package nn

// im2col and its adjoint col2im: the column matrix of a convolution's
// patches, for the geometries the implicit kernels (conv_implicit.go) do
// not take and for narrow planes.

// im2col writes the patches of one sample x [C, H, W] into col [C·K·K, OH·OW]:
// col[(c·K+p)·K+q][i·OW+j] = xpad[c][i·S+p][j·S+q].
func im2col[T Float](g *convGeom, x, col []T) {
	if g.s == 1 && g.oh == g.h && g.ow == g.w {
		im2colSame(g, x, col)
		return
	}
	im2colGeneral(g, x, col)
}

// im2colGeneral is im2col for any stride and padding.
func im2colGeneral[T Float](g *convGeom, x, col []T) {
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
	if g.s == 1 && g.oh == g.h && g.ow == g.w {
		col2imSame(g, col, x)
		return
	}
	col2imGeneral(g, col, x)
}

// col2imGeneral is col2im for any stride and padding.
func col2imGeneral[T Float](g *convGeom, col, x []T) {
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

// im2colSame is im2col for stride 1 with "same" padding (output size equal to
// input size, 2P = K−1). Each patch row (c, p, q) is the plane x[c] shifted
// by (p−P, q−P): the rows inside the plane are one contiguous copy, after
// which the |q−P| columns that wrapped around a row edge are zeroed.
func im2colSame[T Float](g *convGeom, x, col []T) {
	w, h, plen := g.w, g.h, g.plen
	for c := 0; c < g.c; c++ {
		xc := x[c*plen : (c+1)*plen]
		for p := 0; p < g.k; p++ {
			dp := p - g.p
			i0, i1 := max(0, -dp), min(h, h-dp)
			for q := 0; q < g.k; q++ {
				dq := q - g.p
				row := col[((c*g.k+p)*g.k+q)*plen:][:plen]
				if i0 >= i1 {
					clear(row)
					continue
				}
				clear(row[:i0*w])
				clear(row[i1*w:])
				// row[i·W + j] = xc[(i+dp)·W + j + dq] for i in [i0, i1).
				d0, d1 := i0*w, i1*w
				s0 := (i0+dp)*w + dq
				if s0 < 0 { // only edge cells (zeroed below) fall before the plane
					d0 -= s0
					s0 = 0
				}
				if e := s0 + (d1 - d0); e > plen {
					d1 -= e - plen
				}
				copy(row[d0:d1], xc[s0:s0+(d1-d0)])
				// The wrapped cells, |dq| per row, zeroed by index (a range
				// loop over each row's slice compiles to one memclr call
				// per row, several times slower for 1–2 cells).
				switch {
				case dq > 0:
					for i := i0; i < i1; i++ {
						for j := i*w + w - dq; j < i*w+w; j++ {
							row[j] = 0
						}
					}
				case dq < 0:
					for i := i0; i < i1; i++ {
						for j := i * w; j < i*w-dq; j++ {
							row[j] = 0
						}
					}
				}
			}
		}
	}
}

// col2imSame is col2im for stride 1 with "same" padding: each patch row
// adds as one contiguous run, the plane shifted by (dp, dq), after the
// |dq| cells per row that would wrap around a row edge are zeroed in col
// (so col2imSame overwrites those cells of col, which col2im ignores).
func col2imSame[T Float](g *convGeom, col, x []T) {
	w, h, plen := g.w, g.h, g.plen
	for c := 0; c < g.c; c++ {
		xc := x[c*plen : (c+1)*plen]
		for p := 0; p < g.k; p++ {
			dp := p - g.p
			i0, i1 := max(0, -dp), min(h, h-dp)
			if i0 >= i1 {
				continue
			}
			for q := 0; q < g.k; q++ {
				dq := q - g.p
				row := col[((c*g.k+p)*g.k+q)*plen:][:plen]
				if dq == 0 {
					addTo(xc[(i0+dp)*w:(i1+dp)*w], row[i0*w:i1*w])
					continue
				}
				// Cells j with j+dq outside [0, W) add nothing: zeroed, they
				// let the rows run together as one add (x + 0 = x).
				if dq > 0 {
					for i := i0; i < i1; i++ {
						for j := i*w + w - dq; j < i*w+w; j++ {
							row[j] = 0
						}
					}
				} else {
					for i := i0; i < i1; i++ {
						for j := i * w; j < i*w-dq; j++ {
							row[j] = 0
						}
					}
				}
				// row[f] adds to xc[f + dp·W + dq] for f in [i0·W, i1·W),
				// trimmed to the plane (only zeroed cells fall outside).
				f0, f1 := i0*w, i1*w
				sh := dp*w + dq
				f0 = max(f0, -sh)
				f1 = min(f1, plen-sh)
				addTo(xc[f0+sh:f1+sh], row[f0:f1])
			}
		}
	}
}
