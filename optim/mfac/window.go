package mfac

import (
	"fmt"
	"github.com/curvopt/curvopt/internal/num"
	"math"
	"runtime"
	"unsafe"

	"github.com/curvopt/curvopt/optim"
)

// chunk is the column block of the d-side passes: 8192 columns keep the
// shared vector segment (and the float64 accumulator) in L1/L2 while each
// window row is read as a 32 KiB (float32) contiguous run.
const chunk = 8192

// parallelMin is the window size (rows·columns) below which the d-side
// passes run on one goroutine: a goroutine hand-off costs a few µs.
const parallelMin = 1 << 15

// Window is the dynamic sliding-window inverse-Hessian-vector product of
// M-FAC: it holds the last m gradients g₁…g_m (of dimension d) in one
// contiguous m×d ring buffer G and applies
//
//	F⁻¹,  F = damp·I + (1/m)·Σᵢ gᵢ·gᵢᵀ = damp·I + (1/m)·GᵀG,
//
// where rows not yet filled are zero but still count in the 1/m. It keeps
// the Gram matrix K = G·Gᵀ and a Cholesky factor of m·damp·I + K, updated in
// O(m²) per new gradient (see the package documentation).
//
// A Window is not safe for concurrent use. It may run one helper goroutine
// for the d-side passes; Close stops it (it also stops once the Window is
// garbage collected). Results do not depend on whether the helper runs.
type Window[T optim.Float] struct {
	*core[T]
	team *team[T]
}

// core is everything but the helper goroutine, which holds only a core so
// that the Window can be collected.
type core[T optim.Float] struct {
	d, m   int
	damp   float64
	mdamp  float64
	g      []T       // m×d window, row-major; row i is slot i
	g32    []float32 // g, when T is float32 and the AVX2 kernels run
	k      []float64 // m×m Gram matrix G·Gᵀ (row-major, symmetric)
	l      []float64 // m×m Cholesky factor, by slot (see chol.go)
	s      int       // next slot to overwrite (the oldest row)
	filled int       // rows 0..filled-1 have been written
	count  int64     // number of gradients added
	broken error     // set when a failed update left the factor unusable
	red    Reducer   // sums the inner products over the processes (nil: one)

	// scratch, allocated once
	x, a, c, y, z []float64 // m each
	part          [2][]float64
	acc           [2][]float64
	old           []T       // backup of the overwritten row
	work          []float64 // m×m: the entries of the factor the last update replaced (undo, restoreReplaced), and refactor's workspace
	rotated       []bool    // m: the columns the last factorReplace rotated (saved whole in work)

	// undo record of the last update (see undo): the Gram row it replaced
	// (undoK), the slot, fill and count before it, whether work still holds
	// the factor before it (undoL), and whether there is an update to undo.
	undoK      []float64
	undoS      int
	undoFilled int
	undoCount  int64
	undoL      bool
	undoable   bool

	// arguments of the current d-side pass
	op      int
	in, out []T
	rows    int
	slot    int
}

const (
	opDot     = iota // part[h] = G[:, half h]·in[half h]
	opCopyDot        // copy in into row slot, then opDot
	opApply          // out = (in − Gᵀ·y)/damp on half h
)

// NewWindow returns an empty window (all rows zero) for gradients of
// dimension d, with capacity m and damping damp. It allocates m·d elements
// of T plus three m×m float64 matrices (the Gram matrix, its factor, and a
// copy of the factor that lets a refused step be undone exactly). There is
// no upper limit on m.
func NewWindow[T optim.Float](d, m int, damp float64) (*Window[T], error) {
	switch {
	case d < 1:
		return nil, fmt.Errorf("mfac: invalid dimension d = %d: must be >= 1", d)
	case m < 1:
		return nil, fmt.Errorf("mfac: invalid ngrads m = %d: must be >= 1", m)
	case !(damp > 0) || math.IsInf(damp, 0):
		return nil, fmt.Errorf("mfac: invalid damp = %v: must be finite and > 0", damp)
	}
	if uint64(d)*uint64(m) > math.MaxInt/8 {
		return nil, fmt.Errorf("mfac: window %d×%d is too large", m, d)
	}
	c := &core[T]{d: d, m: m, damp: damp, mdamp: float64(m) * damp}
	c.g = make([]T, m*d)
	if g32, ok := any(c.g).([]float32); ok && useAsm {
		c.g32 = g32
	}
	c.k = make([]float64, m*m)
	c.l = make([]float64, m*m)
	for _, p := range []*[]float64{&c.x, &c.a, &c.c, &c.y, &c.z, &c.part[0], &c.part[1]} {
		*p = make([]float64, m)
	}
	n := min(chunk, d)
	c.acc[0], c.acc[1] = make([]float64, n), make([]float64, n)
	c.old = make([]T, d)
	c.work = make([]float64, m*m)
	c.rotated = make([]bool, m)
	c.undoK = make([]float64, m)
	c.initFactor()
	w := &Window[T]{core: c}
	if runtime.GOMAXPROCS(0) > 1 && d >= 64 {
		w.team = newTeam(c)
		runtime.AddCleanup(w, func(t *team[T]) { t.stop() }, w.team)
	}
	return w, nil
}

func (c *core[T]) initFactor() {
	clear(c.l)
	sq := math.Sqrt(c.mdamp)
	for i := 0; i < c.m; i++ {
		c.l[i*c.m+i] = sq
	}
}

// Dim returns d, the gradient dimension.
func (w *Window[T]) Dim() int { return w.d }

// Cap returns m, the window capacity.
func (w *Window[T]) Cap() int { return w.m }

// Damp returns the damping.
func (w *Window[T]) Damp() float64 { return w.damp }

// Slot returns the row the next Update overwrites (0, 1, …, m−1, 0, …).
func (w *Window[T]) Slot() int { return w.s }

// Count returns the number of gradients added since creation or Reset.
func (w *Window[T]) Count() int64 { return w.count }

// Reset empties the window (all rows zero, slot 0).
func (w *Window[T]) Reset() {
	clear(w.g)
	clear(w.k)
	w.initFactor()
	w.s, w.filled, w.count, w.broken, w.undoable = 0, 0, 0, nil, false
}

// Close stops the helper goroutine. The Window stays usable (single-threaded).
func (w *Window[T]) Close() {
	if w.team != nil {
		w.team.stop()
		w.team = nil
	}
}

func (w *Window[T]) check(what string, v []T, name string) error {
	if w.broken != nil {
		return fmt.Errorf("mfac: %s: window unusable after an earlier failure (Reset it): %w", what, w.broken)
	}
	if len(v) != w.d {
		return fmt.Errorf("mfac: %s: %s has length %d, want d = %d", what, name, len(v), w.d)
	}
	return nil
}

// Update adds g as the newest row, replacing the oldest (row Slot()). Cost:
// one pass over the window (G·g gives the new Gram row) plus O(m²). A
// non-finite entry of g, or a gradient so large that its inner products
// with the window rows overflow float64, is an error wrapping
// optim.ErrNonFinite and leaves the window unchanged.
func (w *Window[T]) Update(g []T) error {
	if err := w.check("update", g, "gradient"); err != nil {
		return err
	}
	bad := nonFiniteGrad(g)
	if bad != nil && w.red == nil {
		return bad
	}
	if err := w.update(g); err != nil {
		if bad != nil {
			return bad
		}
		return err
	}
	if bad != nil { // not reached: the non-finite row makes its own inner product non-finite
		w.undo()
		return bad
	}
	return nil
}

func (w *Window[T]) update(g []T) error {
	s, m := w.s, w.m
	copy(w.old, w.g[s*w.d:(s+1)*w.d])
	rows := max(w.filled, s+1)
	w.pass(opCopyDot, g, nil, rows, s)
	c := w.c
	for i := 0; i < rows; i++ {
		c[i] = w.part[0][i] + w.part[1][i]
	}
	clear(c[rows:])
	if err := w.reduce(c[:rows]); err != nil {
		copy(w.g[s*w.d:(s+1)*w.d], w.old)
		return fmt.Errorf("mfac: update: %w", err)
	}
	if i := num.NonFinite(c[:rows]); i >= 0 {
		copy(w.g[s*w.d:(s+1)*w.d], w.old)
		if w.red != nil {
			return fmt.Errorf("mfac: update: the gradient's inner product with window row %d, summed over the processes, is %v (a gradient entry is not finite, or the gradient is too large for float64; window unchanged): %w", i, c[i], optim.ErrNonFinite)
		}
		return fmt.Errorf("mfac: update: the gradient's inner product with window row %d is %v (the gradient is too large for float64; window unchanged): %w", i, c[i], optim.ErrNonFinite)
	}
	w.undoable = false
	oldK := w.undoK // row s of K, to undo
	copy(oldK, w.k[s*m:s*m+m])
	w.undoL = true // factorReplace saves what it writes
	for i := 0; i < m; i++ {
		w.k[s*m+i] = c[i]
		w.k[i*m+s] = c[i]
	}
	if err := w.factorReplace(s, c); err != nil {
		// Rounding in the O(m²) update; try the full factorisation. It
		// uses work as its workspace, so the factor before this update goes
		// back into l first (and an undo of this update will refactor).
		w.restoreReplaced(s)
		w.undoL = false
		if err2 := w.refactor((s + 1) % m); err2 != nil {
			// Undo: restore the row and the Gram matrix; l, untouched by
			// the failed refactor, is their factor. Check that they still
			// factor (a Gram matrix corrupted in memory would not).
			copy(w.g[s*w.d:(s+1)*w.d], w.old)
			for i := 0; i < m; i++ {
				w.k[s*m+i] = oldK[i]
				w.k[i*m+s] = oldK[i]
			}
			if err3 := w.factorWork(s); err3 != nil {
				w.broken = err3
			}
			return fmt.Errorf("mfac: update: %w", err)
		}
	}
	w.undoS, w.undoFilled, w.undoCount = s, w.filled, w.count
	w.filled = rows
	w.s = (s + 1) % m
	w.count++
	w.undoable = true
	return nil
}

// undo reverts the last successful update: the window row, the Gram matrix,
// the slot, fill and count exactly, and the factor exactly from its copy
// (or, after an update that needed a full refactorisation, recomputed from
// the restored Gram matrix). It does nothing when there is no update to
// undo (none since creation, Reset or a load, or one already undone).
func (w *Window[T]) undo() {
	if !w.undoable {
		return
	}
	w.undoable = false
	s, m := w.undoS, w.m
	copy(w.g[s*w.d:(s+1)*w.d], w.old)
	for i := 0; i < m; i++ {
		w.k[s*m+i] = w.undoK[i]
		w.k[i*m+s] = w.undoK[i]
	}
	w.s, w.filled, w.count = s, w.undoFilled, w.undoCount
	if w.undoL {
		w.restoreReplaced(s)
	} else if err := w.refactor(s); err != nil {
		w.broken = err
	}
}

// IHVP sets out = F⁻¹·x. Cost: two passes over the window plus O(m²). out
// must not alias x.
func (w *Window[T]) IHVP(x, out []T) error {
	if err := w.check("ihvp", x, "x"); err != nil {
		return err
	}
	if err := w.check("ihvp", out, "out"); err != nil {
		return err
	}
	rows := w.filled
	w.pass(opDot, x, nil, rows, 0)
	for i := 0; i < rows; i++ {
		w.c[i] = w.part[0][i] + w.part[1][i]
	}
	clear(w.c[rows:])
	if err := w.reduce(w.c[:rows]); err != nil {
		return fmt.Errorf("mfac: ihvp: %w", err)
	}
	w.finish(x, out)
	return nil
}

// UpdateIHVP is Update(g) followed by IHVP(g, out), fused: the new Gram row
// G·g is also G·x, so the whole step makes two passes over the window (one
// reading G·g while writing g into its row, one forming Gᵀ·y). On error the
// window is unchanged; out is unchanged too, except after a non-finite
// result (an error wrapping optim.ErrNonFinite: damp too small for the
// gradient's scale), which out then holds.
func (w *Window[T]) UpdateIHVP(g, out []T) error {
	if err := w.updateIHVP(g, out); err != nil {
		return err
	}
	if j := num.NonFinite(out); j >= 0 {
		w.undo()
		return fmt.Errorf("mfac: update: F⁻¹·g entry %d is %v (damp %v too small for the gradient's scale; window unchanged): %w", j, out[j], w.damp, optim.ErrNonFinite)
	}
	return nil
}

// updateIHVP is UpdateIHVP without the check of out, leaving the update
// undoable (undo) until the next one.
func (w *Window[T]) updateIHVP(g, out []T) error {
	if err := w.check("update", g, "gradient"); err != nil {
		return err
	}
	if err := w.check("update", out, "out"); err != nil {
		return err
	}
	bad := nonFiniteGrad(g)
	if bad != nil && w.red == nil {
		return bad
	}
	if err := w.update(g); err != nil {
		if bad != nil {
			return bad
		}
		return err
	}
	if bad != nil { // not reached: the non-finite row makes its own inner product non-finite
		w.undo()
		return bad
	}
	w.finish(g, out)
	return nil
}

// finish sets out = (x − Gᵀ·M⁻¹·c)/damp with c = G·x in w.c.
func (w *Window[T]) finish(x, out []T) {
	w.solve(w.s, w.c, w.y, w.z)
	w.pass(opApply, x, out, w.filled, 0)
}

// pass runs one d-side pass, split into two fixed column halves (the split,
// and so every rounding, is the same whether or not the helper runs).
func (w *Window[T]) pass(op int, in, out []T, rows, slot int) {
	c := w.core
	c.op, c.in, c.out, c.rows, c.slot = op, in, out, rows, slot
	if w.team != nil && rows*c.d >= parallelMin {
		w.team.jobs <- struct{}{}
		c.half(0)
		<-w.team.done
	} else {
		c.half(0)
		c.half(1)
	}
	c.in, c.out = nil, nil
}

// bounds returns the columns of half h.
func (c *core[T]) bounds(h int) (lo, hi int) {
	mid := (c.d / 2) &^ 15
	if h == 0 {
		return 0, mid
	}
	return mid, c.d
}

func (c *core[T]) half(h int) {
	lo, hi := c.bounds(h)
	d := c.d
	switch c.op {
	case opCopyDot:
		copy(c.g[c.slot*d+lo:c.slot*d+hi], c.in[lo:hi])
		fallthrough
	case opDot:
		p := c.part[h][:c.rows]
		clear(p)
		for c0 := lo; c0 < hi; c0 += chunk {
			c1 := min(c0+chunk, hi)
			if c.g32 != nil {
				dotRowsF32(c.g32, d, c.rows, c0, asF32(c.in[c0:c1]), p)
			} else {
				dotRows(c.g, d, c.rows, c0, c.in[c0:c1], p)
			}
		}
	case opApply:
		inv := c.damp
		for c0 := lo; c0 < hi; c0 += chunk {
			c1 := min(c0+chunk, hi)
			acc := c.acc[h][:c1-c0]
			if c.g32 != nil {
				axpyRowsF32(c.g32, d, c.rows, c0, c.y, acc)
			} else {
				axpyRows(c.g, d, c.rows, c0, c.y, acc)
			}
			x, out := c.in[c0:c1], c.out[c0:c1]
			for j, v := range acc {
				out[j] = T((float64(x[j]) - v) / inv)
			}
		}
	}
}

// asF32 reinterprets x as []float32; only called when T is float32.
func asF32[T optim.Float](x []T) []float32 {
	return unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(x))), len(x))
}

// team is the helper goroutine: it runs half 1 of each pass.
type team[T optim.Float] struct {
	jobs chan struct{}
	done chan struct{}
}

func newTeam[T optim.Float](c *core[T]) *team[T] {
	t := &team[T]{jobs: make(chan struct{}), done: make(chan struct{})}
	go func(jobs, done chan struct{}) {
		for range jobs {
			c.half(1)
			done <- struct{}{}
		}
	}(t.jobs, t.done)
	return t
}

func (t *team[T]) stop() {
	defer func() { _ = recover() }() // already stopped
	close(t.jobs)
}
