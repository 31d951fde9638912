package mfac

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack/lapack64"
)

// The m×m side: a Cholesky factor L·Lᵀ = M = m·damp·I + G·Gᵀ kept in "age
// order", oldest window row first. The window slot written next (s) is
// always the oldest row, so one Update removes the first row and column of M
// and appends the new one as the last:
//
//   - removing the first row/column of a Cholesky factor leaves
//     L₂₂·L₂₂ᵀ + l₂₁·l₂₁ᵀ, a positive rank-one update of L₂₂ (stable, no
//     downdate), O(m²);
//   - appending a row is one forward substitution L₂₂·r = a plus the diagonal
//     √(m·damp + ‖g‖² − ‖r‖²), O(m²).
//
// No entry is ever moved: the factor is stored by slot, l[j*m+i] holding the
// entry in the row of slot i and the column of slot j (valid where slot i is
// younger than slot j), so advancing s re-labels the age order for free. The
// columns are contiguous; the rows younger than slot j are at most two
// contiguous runs of a column (below), and the two O(m²) loops above run
// fused, column by column.

// ErrIllConditioned is returned (wrapped) when damp is so small relative to
// the gradients that m·damp·I + G·Gᵀ is not numerically positive definite
// in float64.
var ErrIllConditioned = errors.New("m·damp·I + G·Gᵀ is not numerically positive definite (damp too small for the gradient scale)")

// below returns the slot ranges [a0,a1) and [b0,b1) younger than slot j when
// slot s is the oldest.
func below(j, s, m int) (a0, a1, b0, b1 int) {
	if j < s {
		return j + 1, s, 0, 0
	}
	return j + 1, m, 0, s
}

// factorReplace updates the factor for slot s (the oldest) being replaced by
// a row whose Gram entries with every slot are c (c[s] = its squared norm).
// It saves every entry it writes into work first (restoreReplaced puts
// them back), also when it fails.
func (w *core[T]) factorReplace(s int, c []float64) error {
	m, l, x, a := w.m, w.l, w.x, w.a
	copy(x, l[s*m:s*m+m])
	copy(a, c)
	rr := 0.0
	// Every entry is saved into work before it is written, for
	// restoreReplaced: row s of every column, and the whole run of a
	// column that is rotated (only those change beyond row s).
	work, rotated := w.work, w.rotated
	work[s*m+s] = l[s*m+s]
	for k := 1; k < m; k++ {
		j := s + k
		if j >= m {
			j -= m
		}
		col := l[j*m : j*m+m]
		a0, a1, b0, b1 := below(j, s, m)
		xj := x[j]
		rotated[j] = xj != 0
		if xj != 0 {
			saveColumn(work, l, j, s, m)
		} else {
			work[j*m+s] = col[s]
		}
		if xj != 0 {
			ljj := col[j]
			r := math.Hypot(ljj, xj)
			cs, sn := r/ljj, xj/ljj
			inv := ljj / r
			col[j] = r
			rot(col[a0:a1], x[a0:a1], cs, sn, inv)
			rot(col[b0:b1], x[b0:b1], cs, sn, inv)
		}
		rj := a[j] / col[j]
		col[s] = rj
		if rj != 0 {
			rr += rj * rj
			axpyNeg(rj, col[a0:a1], a[a0:a1])
			axpyNeg(rj, col[b0:b1], a[b0:b1])
		}
	}
	dss := w.mdamp + c[s] - rr
	if !(dss > 0) || math.IsInf(dss, 0) {
		return fmt.Errorf("new diagonal %g: %w", dss, ErrIllConditioned)
	}
	l[s*m+s] = math.Sqrt(dss)
	return nil
}

// saveColumn copies column j's entries from j down to s in slot order (the
// diagonal, the run below it and row s: all that factorReplace(s, ·) may
// write in it) from src to dst (m×m factors).
func saveColumn(dst, src []float64, j, s, m int) {
	o := j * m
	if j < s {
		copy(dst[o+j:o+s+1], src[o+j:o+s+1])
		return
	}
	copy(dst[o+j:o+m], src[o+j:o+m])
	copy(dst[o:o+s+1], src[o:o+s+1])
}

// restoreReplaced undoes the last factorReplace(s, ·) exactly: it copies
// back from work what factorReplace saved there before writing (row s of
// every column, the columns it rotated, the diagonal entry of column s).
func (w *core[T]) restoreReplaced(s int) {
	m, l, p := w.m, w.l, w.work
	for j := 0; j < m; j++ {
		if j != s && w.rotated[j] {
			saveColumn(l, p, j, s, m)
		} else {
			l[j*m+s] = p[j*m+s]
		}
	}
}

// rot applies one step of the rank-one Cholesky update to a column run.
func rot(col, x []float64, cs, sn, inv float64) {
	x = x[:len(col)]
	for i, li := range col {
		li = (li + sn*x[i]) * inv
		col[i] = li
		x[i] = cs*x[i] - sn*li
	}
}

// axpyNeg sets y −= alpha·x.
func axpyNeg(alpha float64, x, y []float64) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] -= alpha * v
	}
}

// dotRun returns Σ x[i]·y[i].
func dotRun(x, y []float64) float64 {
	y = y[:len(x)]
	s := 0.0
	for i, v := range x {
		s += v * y[i]
	}
	return s
}

// solve sets y = M⁻¹·b (slot-indexed) with the factor, s being the oldest
// slot. z is scratch; b is not modified.
func (w *core[T]) solve(s int, b, y, z []float64) {
	m, l := w.m, w.l
	copy(z, b)
	for k := 0; k < m; k++ {
		j := s + k
		if j >= m {
			j -= m
		}
		col := l[j*m : j*m+m]
		zj := z[j] / col[j]
		z[j] = zj
		if zj != 0 {
			a0, a1, b0, b1 := below(j, s, m)
			axpyNeg(zj, col[a0:a1], z[a0:a1])
			axpyNeg(zj, col[b0:b1], z[b0:b1])
		}
	}
	for k := m - 1; k >= 0; k-- {
		j := s + k
		if j >= m {
			j -= m
		}
		col := l[j*m : j*m+m]
		a0, a1, b0, b1 := below(j, s, m)
		v := z[j] - dotRun(col[a0:a1], y[a0:a1]) - dotRun(col[b0:b1], y[b0:b1])
		y[j] = v / col[j]
	}
}

// refactor recomputes the factor from the Gram matrix by a blocked Cholesky
// (LAPACK dpotrf, O(m³/3)), with s the oldest slot. On error l is
// unchanged.
func (w *core[T]) refactor(s int) error {
	if err := w.factorWork(s); err != nil {
		return err
	}
	m, p := w.m, w.work
	// U (upper, M = UᵀU) is Lᵀ: L(r,q) = U(q,r) for r ≥ q.
	for q := 0; q < m; q++ {
		jq := (s + q) % m
		for r := q; r < m; r++ {
			w.l[jq*m+(s+r)%m] = p[q*m+r]
		}
	}
	return nil
}

// factorWork factors m·damp·I + K, s being the oldest slot, into work (the
// upper factor in age order), leaving l alone.
func (w *core[T]) factorWork(s int) error {
	m := w.m
	if w.work == nil {
		w.work = make([]float64, m*m)
	}
	p := w.work
	// Row-major M in age order: position q holds slot (s+q) mod m.
	for q := 0; q < m; q++ {
		i := (s + q) % m
		for r := q; r < m; r++ {
			j := (s + r) % m
			v := w.k[i*m+j]
			if q == r {
				v += w.mdamp
			}
			p[q*m+r] = v
		}
	}
	a := blas64.Symmetric{N: m, Stride: m, Data: p, Uplo: blas.Upper}
	if _, ok := lapack64.Potrf(a); !ok {
		return fmt.Errorf("refactor: %w", ErrIllConditioned)
	}
	return nil
}
