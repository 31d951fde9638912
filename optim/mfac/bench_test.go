package mfac

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// benchDims are the window shapes timed by BenchmarkWindow and BenchmarkFloor.
var benchDims = []struct{ d, m int }{
	{100000, 32}, {100000, 256}, {100000, 1024},
	{270000, 32}, {270000, 256}, {270000, 1024},
}

// BenchmarkWindow times one UpdateIHVP (add a gradient to the full window
// and return its IHVP), float32, the operation the reference's update_mul
// performs. Run with
//
//	go test ./optim/mfac -run '^$' -bench Window -benchmem -benchtime 20x
//
// The window is filled directly (benchFill) and shared by the calibration
// run and the timed run of each sub-benchmark, so that setup costs O(m·d +
// m³) once instead of m UpdateIHVP calls (O(m²·d)) per run; what is timed is
// unchanged: UpdateIHVP on a full, wrapping window with a dense Gram matrix.
func BenchmarkWindow(b *testing.B) {
	for _, s := range benchDims {
		var bw *benchWin
		b.Run(fmt.Sprintf("d=%d/m=%d", s.d, s.m), func(b *testing.B) {
			if bw == nil {
				bw = newBenchWin(b, s.d, s.m)
			}
			bw.run(b)
		})
		bw.close()
	}
}

// benchWin is a full window and the gradients fed to it.
type benchWin struct {
	w   *Window[float32]
	gs  [][]float32
	out []float32
}

func newBenchWin(b *testing.B, d, m int) *benchWin {
	b.Helper()
	w, err := NewWindow[float32](d, m, 1e-5)
	if err != nil {
		b.Fatal(err)
	}
	gs := benchGrads(d, m)
	if err := benchFill(w, gs); err != nil {
		w.Close()
		b.Fatal(err)
	}
	return &benchWin{w: w, gs: gs, out: make([]float32, d)}
}

func (bw *benchWin) close() {
	if bw != nil {
		bw.w.Close()
	}
}

func (bw *benchWin) run(b *testing.B) {
	d, m := bw.w.d, bw.w.m
	b.SetBytes(int64(2 * m * d * 4)) // two passes over the window
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := bw.w.UpdateIHVP(bw.gs[i%len(bw.gs)], bw.out); err != nil {
			b.Fatal(err)
		}
	}
}

// benchGrads returns a few distinct gradients (recycled, so that generating
// them costs nothing), entries N(0, 1e-4).
func benchGrads(d, m int) [][]float32 {
	rng := rand.New(rand.NewPCG(1, uint64(m)))
	gs := make([][]float32, 4)
	for k := range gs {
		gs[k] = make([]float32, d)
		for i := range gs[k] {
			gs[k][i] = float32(rng.NormFloat64()) * 1e-2
		}
	}
	return gs
}

// benchFill fills every row of an empty window as m UpdateIHVP calls would
// leave it (slot 0 next, slot 0 the oldest), without their O(m²·d) cost:
// row i is gs[i%4] with entry p(i) raised by 1e-3 (distinct rows), so that
// its Gram matrix follows from the 4×4 Gram matrix of gs in O(1) per entry
// when d ≥ m; the factor is then computed once by refactor (O(m³/3)).
// TestBenchFill checks the result against the same rows added by Update.
func benchFill(w *Window[float32], gs [][]float32) error {
	d, m := w.d, w.m
	nb := len(gs)
	pos := func(i int) int { return (i * 7919) % d } // distinct for i < m when d ≥ m, d not a multiple of 7919
	for i := 0; i < m; i++ {
		row := w.g[i*d : (i+1)*d]
		copy(row, gs[i%nb])
		row[pos(i)] += 1e-3
	}
	structured := d >= m && d%7919 != 0
	if structured {
		base := make([]float64, nb*nb)
		for a := range gs {
			for c := range gs {
				s := 0.0
				for j, v := range gs[a] {
					s += float64(v) * float64(gs[c][j])
				}
				base[a*nb+c] = s
			}
		}
		for i := 0; i < m; i++ {
			ri, pi, ui := w.g[i*d:(i+1)*d], pos(i), gs[i%nb]
			for j := i; j < m; j++ {
				rj, pj, uj := w.g[j*d:(j+1)*d], pos(j), gs[j%nb]
				// ⟨ri, rj⟩ = ⟨ui, uj⟩ with the entries at pi and pj corrected.
				k := base[(i%nb)*nb+j%nb]
				if pi == pj {
					k += float64(ri[pi])*float64(rj[pi]) - float64(ui[pi])*float64(uj[pi])
				} else {
					k += (float64(ri[pi]) - float64(ui[pi])) * float64(uj[pi])
					k += (float64(rj[pj]) - float64(uj[pj])) * float64(ui[pj])
				}
				w.k[i*m+j], w.k[j*m+i] = k, k
			}
		}
	} else {
		for i := 0; i < m; i++ {
			for j := i; j < m; j++ {
				s := 0.0
				for c, v := range w.g[i*d : (i+1)*d] {
					s += float64(v) * float64(w.g[j*d+c])
				}
				w.k[i*m+j], w.k[j*m+i] = s, s
			}
		}
	}
	w.s, w.filled, w.count = 0, m, int64(m)
	return w.refactor(0)
}

// BenchmarkFloor is the memory-bandwidth floor measured side by side: ONE
// pass over the same m×d float32 window (m dot products with a vector, two
// goroutines, the same kernel). UpdateIHVP needs two such passes, so compare
// BenchmarkWindow with twice this.
func BenchmarkFloor(b *testing.B) {
	for _, s := range benchDims {
		var w *Window[float32]
		b.Run(fmt.Sprintf("d=%d/m=%d", s.d, s.m), func(b *testing.B) {
			if w == nil {
				var err error
				if w, err = NewWindow[float32](s.d, s.m, 1e-5); err != nil {
					b.Fatal(err)
				}
				for i := range w.g {
					w.g[i] = 1e-3
				}
				w.filled = s.m
			}
			x := make([]float32, s.d)
			b.SetBytes(int64(s.m * s.d * 4))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				w.pass(opDot, x, nil, s.m, 0)
			}
		})
		if w != nil {
			w.Close()
		}
	}
}

// BenchmarkFactor times the O(m²) side alone: UpdateIHVP with d = 8, where
// the passes over the window cost nothing.
func BenchmarkFactor(b *testing.B) {
	for _, m := range []int{32, 256, 1024} {
		var bw *benchWin
		b.Run(fmt.Sprintf("m=%d", m), func(b *testing.B) {
			if bw == nil {
				bw = newBenchWin(b, 8, m)
			}
			bw.run(b)
		})
		bw.close()
	}
}

// TestBenchFill checks the benchmarks' direct fill: the Gram matrix, the
// factor's solve and the next UpdateIHVP agree with the same rows added one
// by one with Update, on the structured path (d ≥ m) and the direct one.
func TestBenchFill(t *testing.T) {
	for _, s := range []struct{ d, m int }{{300, 40}, {8, 20}} {
		fast, err := NewWindow[float32](s.d, s.m, 1e-5)
		if err != nil {
			t.Fatal(err)
		}
		slow, err := NewWindow[float32](s.d, s.m, 1e-5)
		if err != nil {
			t.Fatal(err)
		}
		gs := benchGrads(s.d, s.m)
		if err := benchFill(fast, gs); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < s.m; i++ {
			if err := slow.Update(fast.g[i*s.d : (i+1)*s.d]); err != nil {
				t.Fatal(err)
			}
		}
		if fast.s != slow.s || fast.filled != slow.filled || fast.count != slow.count {
			t.Fatalf("d=%d m=%d: slot/filled/count %d/%d/%d, want %d/%d/%d", s.d, s.m,
				fast.s, fast.filled, fast.count, slow.s, slow.filled, slow.count)
		}
		for i, want := range slow.k {
			if got := fast.k[i]; got-want > 1e-9*max(1, want) || want-got > 1e-9*max(1, want) {
				t.Fatalf("d=%d m=%d: gram[%d] = %g, want %g", s.d, s.m, i, got, want)
			}
		}
		a, b := make([]float32, s.d), make([]float32, s.d)
		for k := 0; k < 3; k++ {
			if err := fast.UpdateIHVP(gs[k], a); err != nil {
				t.Fatal(err)
			}
			if err := slow.UpdateIHVP(gs[k], b); err != nil {
				t.Fatal(err)
			}
			ref := make([]float64, s.d)
			for i, v := range b {
				ref[i] = float64(v)
			}
			if e := relErr(a, ref); e > 1e-5 {
				t.Fatalf("d=%d m=%d step %d: IHVP differs from the one-by-one fill by %g", s.d, s.m, k, e)
			}
		}
		fast.Close()
		slow.Close()
	}
}
