package mfac

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/curvopt/curvopt/optim"
)

// TestStepMatchesDenseReference runs M-FAC with momentum and weight decay
// (the golden trajectory has neither) through several window wraps and
// compares every iterate with a dense float64 reference written from the
// update rule: g' = g + wd·θ; u = F⁻¹·g' with F = damp·I + (1/m)·Σ gᵢ'gᵢ'ᵀ;
// v ← μ·v + (1−μ)·u; θ ← θ − lr·v.
func TestStepMatchesDenseReference(t *testing.T) {
	c := Config{LR: 0.05, Momentum: 0.8, WeightDecay: 0.3, NGrads: 4, Damp: 1e-2}
	rng := rand.New(rand.NewPCG(21, 22))
	ps := makeParams[float64](rng)
	theta := snapshot[float64](ps)
	d := len(theta)
	o, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	v := make([]float64, d)
	var rows [][]float64
	grng := rand.New(rand.NewPCG(23, 24))
	for step := 1; step <= 11; step++ {
		quadGrad[float64](ps, grng)
		var g []float64
		for _, p := range ps {
			g = append(g, p.Grad.Data().([]float64)...)
		}
		if err := o.Step(ps, nil); err != nil {
			t.Fatal(err)
		}
		gu := make([]float64, d)
		for j := range g {
			gu[j] = g[j] + c.WeightDecay*theta[j]
		}
		rows = append(rows, gu)
		if len(rows) > c.NGrads {
			rows = rows[1:]
		}
		u := denseIHVP(t, rows, c.NGrads, c.Damp, gu)
		if e := relErr(o.LastIHVP(nil), u); e > 1e-10 {
			t.Fatalf("step %d: ihvp rel err %.3g", step, e)
		}
		for j := range theta {
			v[j] = c.Momentum*v[j] + (1-c.Momentum)*u[j]
			theta[j] -= c.LR * v[j]
		}
		if e := relErr(snapshot[float64](ps), theta); e > 1e-10 {
			t.Fatalf("step %d: θ rel err %.3g against the dense reference", step, e)
		}
	}
	st, err := o.State()
	if err != nil {
		t.Fatal(err)
	}
	var got []float64
	for _, p := range ps {
		got = append(got, st.Find(p.Name, slotV).Float64s()...)
	}
	if e := relErr(got, v); e > 1e-10 {
		t.Fatalf("exported v: rel err %.3g", e)
	}
}

// TestWindowRefactorFallback forces the fallback of Update: the O(m²) factor
// update fails (here: a corrupted factor, as rounding would leave it), so the
// factor is rebuilt from the Gram matrix with the next oldest slot first.
// IHVPs then, and after further updates through the O(m²) path, must match a
// dense solve. A second case corrupts the Gram matrix too, so that the
// rebuild fails: Update must return ErrIllConditioned, restore the window
// row, and mark the window unusable until Reset.
func TestWindowRefactorFallback(t *testing.T) {
	const d, m, damp = 30, 5, 1e-2
	rng := rand.New(rand.NewPCG(31, 32))
	w, err := NewWindow[float64](d, m, damp)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var rows [][]float64
	out := make([]float64, d)
	push := func(g []float64) {
		rows = append(rows, g)
		if len(rows) > m {
			rows = rows[1:]
		}
	}
	for i := 0; i < 7; i++ { // full and wrapped
		g := randVec(rng, d, 1)
		if err := w.UpdateIHVP(g, out); err != nil {
			t.Fatal(err)
		}
		push(g)
	}
	for round := 0; round < m+1; round++ {
		// Corrupt the diagonal of every slot but the oldest: the O(m²)
		// update divides by it and fails.
		s := w.Slot()
		for j := 0; j < m; j++ {
			if j != s {
				w.l[j*m+j] = 0
			}
		}
		g := randVec(rng, d, 1)
		if err := w.UpdateIHVP(g, out); err != nil {
			t.Fatalf("round %d: fallback refactor failed: %v", round, err)
		}
		push(g)
		if e := relErr(out, denseIHVP(t, rows, m, damp, g)); e > 1e-9 {
			t.Fatalf("round %d (slot %d): IHVP after the fallback: rel err %.3g", round, s, e)
		}
		for k := 0; k < 3; k++ { // the O(m²) path continues from the rebuilt factor
			g := randVec(rng, d, 1)
			if err := w.UpdateIHVP(g, out); err != nil {
				t.Fatal(err)
			}
			push(g)
			if e := relErr(out, denseIHVP(t, rows, m, damp, g)); e > 1e-9 {
				t.Fatalf("round %d, update %d after the fallback: rel err %.3g", round, k+1, e)
			}
		}
	}

	// Both the update and the rebuild fail.
	s := w.Slot()
	row := append([]float64(nil), w.g[s*d:(s+1)*d]...)
	for j := 0; j < m; j++ {
		if j != s {
			w.l[j*m+j] = 0
			w.k[j*m+j] = -1e6
		}
	}
	count := w.Count()
	err = w.Update(randVec(rng, d, 1))
	if !errors.Is(err, ErrIllConditioned) {
		t.Fatalf("corrupted Gram matrix: %v, want ErrIllConditioned", err)
	}
	if w.Slot() != s || w.Count() != count {
		t.Errorf("slot %d count %d after a failed update, want %d %d", w.Slot(), w.Count(), s, count)
	}
	for j, v := range w.g[s*d : (s+1)*d] {
		if v != row[j] {
			t.Fatalf("window row %d entry %d changed by a failed update", s, j)
		}
	}
	if err := w.IHVP(randVec(rng, d, 1), out); err == nil {
		t.Error("IHVP on a window whose factor could not be rebuilt: no error")
	}
	w.Reset()
	g := randVec(rng, d, 1)
	if err := w.UpdateIHVP(g, out); err != nil {
		t.Fatal(err)
	}
	if e := relErr(out, denseIHVP(t, [][]float64{g}, m, damp, g)); e > 1e-9 {
		t.Fatalf("after Reset: rel err %.3g", e)
	}
	for _, v := range out {
		if math.IsNaN(v) {
			t.Fatal("NaN")
		}
	}
}

var _ optim.Optimizer = (*MFAC)(nil)

// TestFreshOptimizer: before the first step there is no slot and no IHVP,
// Close is safe (and ends the optimizer), and loading the empty state of a
// fresh optimizer resets a used one.
func TestFreshOptimizer(t *testing.T) {
	unused, err := New(Config{LR: 0.1, NGrads: 3, Damp: 1e-2})
	if err != nil {
		t.Fatal(err)
	}
	if err := unused.Close(); err != nil {
		t.Fatal(err)
	}
	o, err := New(Config{LR: 0.1, NGrads: 3, Damp: 1e-2})
	if err != nil {
		t.Fatal(err)
	}
	if o.LastSlot() != -1 || len(o.LastIHVP(nil)) != 0 {
		t.Fatalf("fresh optimizer: slot %d, ihvp %v", o.LastSlot(), o.LastIHVP(nil))
	}
	empty, err := o.State()
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(41, 42))
	ps := makeParams[float64](rng)
	quadGrad[float64](ps, rng)
	if err := o.Step(ps, nil); err != nil {
		t.Fatal(err)
	}
	if o.LastSlot() != 0 {
		t.Fatalf("slot %d after one step", o.LastSlot())
	}
	if err := o.LoadState(ps, empty); err != nil {
		t.Fatal(err)
	}
	if o.LastSlot() != -1 {
		t.Fatalf("slot %d after loading a fresh state", o.LastSlot())
	}
	o.Close()
}
