package mfac

import "github.com/curvopt/curvopt/optim"

// The d-side kernels. Both stream rows of the window four at a time, so that
// the shared vector (x in dotRows, the float64 accumulator in axpyRows) is
// loaded once per four rows, and accumulate in float64 whatever the window's
// element type: the IHVP ends with x − Gᵀy, which cancels heavily when damp
// is small, and float64 accumulation keeps that cancellation from eating the
// float32 digits.

// dotRows adds Σ_j G[i][lo+j]·x[j] to p[i] for rows i < rows, over the
// columns [lo, lo+len(x)) of the row-major window g with row length d.
func dotRows[T optim.Float](g []T, d, rows, lo int, x []T, p []float64) {
	n := len(x)
	i := 0
	for ; i+4 <= rows; i += 4 {
		r0 := g[i*d+lo : i*d+lo+n]
		r1 := g[(i+1)*d+lo : (i+1)*d+lo+n]
		r2 := g[(i+2)*d+lo : (i+2)*d+lo+n]
		r3 := g[(i+3)*d+lo : (i+3)*d+lo+n]
		var a0, a1, a2, a3, b0, b1, b2, b3 float64
		j := 0
		for ; j+2 <= n; j += 2 {
			x0, x1 := float64(x[j]), float64(x[j+1])
			a0 += float64(r0[j]) * x0
			a1 += float64(r1[j]) * x0
			a2 += float64(r2[j]) * x0
			a3 += float64(r3[j]) * x0
			b0 += float64(r0[j+1]) * x1
			b1 += float64(r1[j+1]) * x1
			b2 += float64(r2[j+1]) * x1
			b3 += float64(r3[j+1]) * x1
		}
		for ; j < n; j++ {
			x0 := float64(x[j])
			a0 += float64(r0[j]) * x0
			a1 += float64(r1[j]) * x0
			a2 += float64(r2[j]) * x0
			a3 += float64(r3[j]) * x0
		}
		p[i] += a0 + b0
		p[i+1] += a1 + b1
		p[i+2] += a2 + b2
		p[i+3] += a3 + b3
	}
	for ; i < rows; i++ {
		r := g[i*d+lo : i*d+lo+n]
		var a, b float64
		j := 0
		for ; j+2 <= n; j += 2 {
			a += float64(r[j]) * float64(x[j])
			b += float64(r[j+1]) * float64(x[j+1])
		}
		for ; j < n; j++ {
			a += float64(r[j]) * float64(x[j])
		}
		p[i] += a + b
	}
}

// axpyRows sets acc[j] = Σ_i y[i]·G[i][lo+j] over rows i < rows, for
// j < len(acc).
func axpyRows[T optim.Float](g []T, d, rows, lo int, y []float64, acc []float64) {
	n := len(acc)
	for j := range acc {
		acc[j] = 0
	}
	i := 0
	for ; i+4 <= rows; i += 4 {
		r0 := g[i*d+lo : i*d+lo+n]
		r1 := g[(i+1)*d+lo : (i+1)*d+lo+n]
		r2 := g[(i+2)*d+lo : (i+2)*d+lo+n]
		r3 := g[(i+3)*d+lo : (i+3)*d+lo+n]
		y0, y1, y2, y3 := y[i], y[i+1], y[i+2], y[i+3]
		for j := range acc {
			acc[j] += y0*float64(r0[j]) + y1*float64(r1[j]) + y2*float64(r2[j]) + y3*float64(r3[j])
		}
	}
	for ; i < rows; i++ {
		r := g[i*d+lo : i*d+lo+n]
		yi := y[i]
		for j := range acc {
			acc[j] += yi * float64(r[j])
		}
	}
}

// dotRowsF32 is dotRows for a float32 window with the AVX2 kernel.
func dotRowsF32(g []float32, d, rows, lo int, x []float32, p []float64) {
	n := len(x)
	n8 := n &^ 7
	var s [4]float64
	i := 0
	for ; i+4 <= rows; i += 4 {
		r0 := g[i*d+lo : i*d+lo+n]
		r1 := g[(i+1)*d+lo : (i+1)*d+lo+n]
		r2 := g[(i+2)*d+lo : (i+2)*d+lo+n]
		r3 := g[(i+3)*d+lo : (i+3)*d+lo+n]
		if n8 > 0 {
			dot4F32(&r0[0], &r1[0], &r2[0], &r3[0], &x[0], n8, &s)
		} else {
			s = [4]float64{}
		}
		for j := n8; j < n; j++ {
			xj := float64(x[j])
			s[0] += float64(r0[j]) * xj
			s[1] += float64(r1[j]) * xj
			s[2] += float64(r2[j]) * xj
			s[3] += float64(r3[j]) * xj
		}
		p[i] += s[0]
		p[i+1] += s[1]
		p[i+2] += s[2]
		p[i+3] += s[3]
	}
	if i < rows {
		dotRows(g[i*d:], d, rows-i, lo, x, p[i:])
	}
}

// axpyRowsF32 is axpyRows for a float32 window with the AVX2 kernel.
func axpyRowsF32(g []float32, d, rows, lo int, y []float64, acc []float64) {
	n := len(acc)
	n8 := n &^ 7
	clear(acc)
	i := 0
	for ; i+4 <= rows; i += 4 {
		r0 := g[i*d+lo : i*d+lo+n]
		r1 := g[(i+1)*d+lo : (i+1)*d+lo+n]
		r2 := g[(i+2)*d+lo : (i+2)*d+lo+n]
		r3 := g[(i+3)*d+lo : (i+3)*d+lo+n]
		if n8 > 0 {
			axpy4F32(&acc[0], &r0[0], &r1[0], &r2[0], &r3[0], &y[i], n8)
		}
		y0, y1, y2, y3 := y[i], y[i+1], y[i+2], y[i+3]
		for j := n8; j < n; j++ {
			acc[j] += y0*float64(r0[j]) + y1*float64(r1[j]) + y2*float64(r2[j]) + y3*float64(r3[j])
		}
	}
	for ; i < rows; i++ {
		r := g[i*d+lo : i*d+lo+n]
		yi := y[i]
		for j := range acc {
			acc[j] += yi * float64(r[j])
		}
	}
}
