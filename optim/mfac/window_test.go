package mfac

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// denseIHVP solves F·u = x with F = damp·I + (1/m)·Σ rows rowᵀ densely.
func denseIHVP(t *testing.T, rows [][]float64, m int, damp float64, x []float64) []float64 {
	t.Helper()
	d := len(x)
	f := mat.NewSymDense(d, nil)
	for i := 0; i < d; i++ {
		f.SetSym(i, i, damp)
	}
	for _, r := range rows {
		f.SymRankOne(f, 1/float64(m), mat.NewVecDense(d, r))
	}
	var ch mat.Cholesky
	if !ch.Factorize(f) {
		t.Fatal("dense F not SPD")
	}
	var u mat.VecDense
	if err := ch.SolveVecTo(&u, mat.NewVecDense(d, x)); err != nil {
		t.Fatal(err)
	}
	return u.RawVector().Data
}

// relErr is the norm-wise relative error max|a−r|/max|r|; +Inf when a
// holds a NaN or ±Inf or the lengths differ (so that "e > tol" catches it).
func relErr[T float32 | float64](a []T, r []float64) float64 {
	if len(a) != len(r) {
		return math.Inf(1)
	}
	var diff, scale float64
	for i := range r {
		if x := float64(a[i]); math.IsNaN(x) || math.IsInf(x, 0) {
			return math.Inf(1)
		}
		diff = math.Max(diff, math.Abs(float64(a[i])-r[i]))
		scale = math.Max(scale, math.Abs(r[i]))
	}
	return diff / scale
}

func randVec(rng *rand.Rand, d int, scale float64) []float64 {
	v := make([]float64, d)
	for i := range v {
		v[i] = scale * rng.NormFloat64()
	}
	return v
}

// TestWindowExact compares the IHVP with a dense solve of F⁻¹x before the
// window is full, when it is full and after it has wrapped several times,
// for the fused UpdateIHVP and for IHVP of an unrelated vector.
func TestWindowExact(t *testing.T) {
	for _, tc := range []struct {
		d, m int
		damp float64
	}{
		{37, 1, 1e-2}, {37, 5, 1e-3}, {64, 8, 1e-4}, {200, 33, 1e-3}, {20, 30, 1e-2}, // m > d too
		{300, 120, 1e-3}, // large enough for the helper goroutine
	} {
		if testing.Short() && tc.d*tc.m > 10000 {
			continue // the dense reference solves dominate: seconds
		}
		rng := rand.New(rand.NewPCG(uint64(tc.d), uint64(tc.m)))
		w, err := NewWindow[float64](tc.d, tc.m, tc.damp)
		if err != nil {
			t.Fatal(err)
		}
		var rows [][]float64
		out := make([]float64, tc.d)
		worst := 0.0
		steps := 4*tc.m + 3
		if tc.m > 50 {
			steps = 2*tc.m + 3
		}
		for step := 0; step < steps; step++ {
			g := randVec(rng, tc.d, math.Pow(10, rng.Float64()-0.5)/math.Sqrt(float64(tc.d)))
			if got := w.Slot(); got != step%tc.m {
				t.Fatalf("d=%d m=%d step %d: slot %d, want %d", tc.d, tc.m, step, got, step%tc.m)
			}
			if err := w.UpdateIHVP(g, out); err != nil {
				t.Fatal(err)
			}
			rows = append(rows, g)
			if len(rows) > tc.m {
				rows = rows[1:]
			}
			want := denseIHVP(t, rows, tc.m, tc.damp, g)
			e := relErr(out, want)
			x := randVec(rng, tc.d, 1)
			if err := w.IHVP(x, out); err != nil {
				t.Fatal(err)
			}
			e2 := relErr(out, denseIHVP(t, rows, tc.m, tc.damp, x))
			worst = math.Max(worst, math.Max(e, e2))
			if e > 1e-9 || e2 > 1e-9 {
				t.Fatalf("d=%d m=%d damp=%g step %d: rel err %.3g (g), %.3g (x)", tc.d, tc.m, tc.damp, step+1, e, e2)
			}
		}
		t.Logf("d=%d m=%d damp=%g: %d steps, worst rel err %.2g", tc.d, tc.m, tc.damp, steps, worst)
	}
}

// TestWindowFirstStep checks the closed form u = m·g/(m·damp + ‖g‖²).
func TestWindowFirstStep(t *testing.T) {
	g := []float64{1, -2, 0.5, 3}
	w, _ := NewWindow[float64](4, 16, 1e-3)
	out := make([]float64, 4)
	if err := w.UpdateIHVP(g, out); err != nil {
		t.Fatal(err)
	}
	n2 := 1 + 4 + 0.25 + 9.0
	for i := range g {
		want := 16 * g[i] / (16*1e-3 + n2)
		if math.Abs(out[i]-want) > 1e-12*math.Abs(want) { // cond(F) ≈ 900
			t.Fatalf("entry %d: %v, want %v", i, out[i], want)
		}
	}
}

// TestWindowDrift runs many wraps of the O(m²) factor update and checks
// that it stays as accurate as a factor built from scratch over the last m
// gradients (no drift), and within 1e-9 of a dense solve where cond(F) allows.
func TestWindowDrift(t *testing.T) {
	for _, damp := range []float64{1e-3, 1e-5} {
		const d, m = 60, 12
		rng := rand.New(rand.NewPCG(7, 8))
		w, _ := NewWindow[float64](d, m, damp)
		var rows [][]float64
		out, fresh := make([]float64, d), make([]float64, d)
		for step := 0; step < 6000; step++ {
			g := randVec(rng, d, math.Pow(10, 2*rng.Float64()-1))
			if err := w.UpdateIHVP(g, out); err != nil {
				t.Fatal(err)
			}
			rows = append(rows, g)
			if len(rows) > m {
				rows = rows[1:]
			}
			if step%1000 != 999 {
				continue
			}
			f, _ := NewWindow[float64](d, m, damp)
			for _, r := range rows {
				if err := f.UpdateIHVP(r, fresh); err != nil {
					t.Fatal(err)
				}
			}
			dense := denseIHVP(t, rows, m, damp, g)
			eu, ef := relErr(out, dense), relErr(fresh, dense)
			t.Logf("damp %g step %d: updated %.2g, fresh %.2g (vs dense)", damp, step+1, eu, ef)
			if eu > 10*ef+1e-12 {
				t.Errorf("damp %g step %d: updated factor err %.3g vs fresh %.3g: drift", damp, step+1, eu, ef)
			}
			if damp >= 1e-3 && eu > 1e-9 {
				t.Errorf("damp %g step %d: rel err %.3g", damp, step+1, eu)
			}
		}
	}
}

// TestWindowFloat32 checks the float32 window against the float64 dense
// solve at float32 accuracy.
func TestWindowFloat32(t *testing.T) {
	const d, m, damp = 300, 10, 1e-2
	rng := rand.New(rand.NewPCG(1, 2))
	w, _ := NewWindow[float32](d, m, damp)
	var rows [][]float64
	g32 := make([]float32, d)
	out := make([]float32, d)
	for step := 0; step < 3*m; step++ {
		g := randVec(rng, d, 0.1)
		for i := range g {
			g32[i] = float32(g[i])
			g[i] = float64(g32[i])
		}
		if err := w.UpdateIHVP(g32, out); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, g)
		if len(rows) > m {
			rows = rows[1:]
		}
		if e := relErr(out, denseIHVP(t, rows, m, damp, g)); e > 1e-5 {
			t.Fatalf("step %d: rel err %.3g", step+1, e)
		}
	}
}

func TestWindowErrors(t *testing.T) {
	for _, tc := range []struct {
		d, m int
		damp float64
	}{{0, 4, 1}, {4, 0, 1}, {4, -1, 1}, {4, 4, 0}, {4, 4, -1}, {4, 4, math.NaN()}, {4, 4, math.Inf(1)}} {
		if _, err := NewWindow[float32](tc.d, tc.m, tc.damp); err == nil {
			t.Errorf("NewWindow(%d, %d, %v): no error", tc.d, tc.m, tc.damp)
		}
	}
	w, _ := NewWindow[float64](3, 2, 1e-3)
	out := make([]float64, 3)
	if err := w.UpdateIHVP([]float64{1, 2}, out); err == nil {
		t.Error("length mismatch accepted")
	}
	if err := w.Update([]float64{1, math.NaN(), 2}); err == nil || w.Count() != 0 || w.Slot() != 0 {
		t.Errorf("NaN accepted or window changed: %v", err)
	}
	// A damping far below the rounding of the gradient scale fails cleanly.
	w2, _ := NewWindow[float64](2, 2, 1e-300)
	_ = w2.Update([]float64{1e10, 1e10})
	err := w2.Update([]float64{1e10, 1e10 * (1 + 1e-16)})
	if err != nil && !errors.Is(err, ErrIllConditioned) {
		t.Errorf("ill-conditioned update: %v", err)
	}
}

func TestWindowAllocs(t *testing.T) {
	const d, m = 70000, 8
	w, _ := NewWindow[float32](d, m, 1e-3)
	defer w.Close()
	rng := rand.New(rand.NewPCG(3, 4))
	g := make([]float32, d)
	for i := range g {
		g[i] = float32(rng.NormFloat64())
	}
	out := make([]float32, d)
	for i := 0; i < m+1; i++ {
		_ = w.UpdateIHVP(g, out)
	}
	if n := testing.AllocsPerRun(10, func() { _ = w.UpdateIHVP(g, out) }); n != 0 {
		t.Errorf("%v allocs per UpdateIHVP", n)
	}
}

// TestWindowUndoExact checks that undo restores the window bit for bit
// (rows, Gram matrix, factor, counters) after an update at every slot of a
// full, wrapped window: the factor's entries that factorReplace writes are
// saved by factorReplace and restored by restoreReplaced, not the whole
// factor.
func TestWindowUndoExact(t *testing.T) {
	const d, m = 7, 5
	rng := rand.New(rand.NewPCG(5, 6))
	w, err := NewWindow[float64](d, m, 1e-2)
	if err != nil {
		t.Fatal(err)
	}
	grad := func() []float64 {
		g := make([]float64, d)
		for i := range g {
			g[i] = rng.NormFloat64()
		}
		return g
	}
	for step := 0; step < 3*m; step++ {
		l, k, g := slices.Clone(w.l), slices.Clone(w.k), slices.Clone(w.g)
		s, filled, count := w.s, w.filled, w.count
		if err := w.Update(grad()); err != nil {
			t.Fatal(err)
		}
		w.undo()
		for i := range l {
			if math.Float64bits(l[i]) != math.Float64bits(w.l[i]) {
				t.Fatalf("step %d (slot %d): factor entry %d is %v after undo, was %v", step, s, i, w.l[i], l[i])
			}
		}
		if !slices.Equal(k, w.k) || !slices.Equal(g, w.g) || s != w.s || filled != w.filled || count != w.count {
			t.Fatalf("step %d (slot %d): window not restored", step, s)
		}
		if err := w.Update(grad()); err != nil {
			t.Fatal(err)
		}
	}
}
