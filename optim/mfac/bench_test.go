package mfac

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkWindow times one UpdateIHVP (add a gradient to the full window
// and return its IHVP), float32, the operation the reference's update_mul
// performs. Run with
//
//	go test ./optim/mfac -run '^$' -bench Window -benchmem -benchtime 20x
func BenchmarkWindow(b *testing.B) {
	for _, d := range []int{100000, 270000} {
		for _, m := range []int{32, 256, 1024} {
			b.Run(fmt.Sprintf("d=%d/m=%d", d, m), func(b *testing.B) {
				benchWindow(b, d, m)
			})
		}
	}
}

func benchWindow(b *testing.B, d, m int) {
	w, err := NewWindow[float32](d, m, 1e-5)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	rng := rand.New(rand.NewPCG(1, uint64(m)))
	// A few distinct gradients, recycled, so that generating them costs nothing.
	gs := make([][]float32, 4)
	for k := range gs {
		gs[k] = make([]float32, d)
		for i := range gs[k] {
			gs[k][i] = float32(rng.NormFloat64()) * 1e-2
		}
	}
	out := make([]float32, d)
	// Fill the window: steady state (every row live, wrapping).
	for i := 0; i < m; i++ {
		g := gs[i%4]
		g[i%d] += 1e-3 // keep rows distinct
		if err := w.UpdateIHVP(g, out); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(2 * m * d * 4)) // two passes over the window
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := w.UpdateIHVP(gs[i%4], out); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFloor is the memory-bandwidth floor measured side by side: ONE
// pass over the same m×d float32 window (m dot products with a vector, two
// goroutines, the same kernel). UpdateIHVP needs two such passes, so compare
// BenchmarkWindow with twice this.
func BenchmarkFloor(b *testing.B) {
	for _, d := range []int{100000, 270000} {
		for _, m := range []int{32, 256, 1024} {
			b.Run(fmt.Sprintf("d=%d/m=%d", d, m), func(b *testing.B) {
				w, err := NewWindow[float32](d, m, 1e-5)
				if err != nil {
					b.Fatal(err)
				}
				defer w.Close()
				for i := range w.g {
					w.g[i] = 1e-3
				}
				x := make([]float32, d)
				w.filled = m
				b.SetBytes(int64(m * d * 4))
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					w.pass(opDot, x, nil, m, 0)
				}
			})
		}
	}
}

// BenchmarkFactor times the O(m²) side alone: UpdateIHVP with d = 8, where
// the passes over the window cost nothing.
func BenchmarkFactor(b *testing.B) {
	for _, m := range []int{32, 256, 1024} {
		b.Run(fmt.Sprintf("m=%d", m), func(b *testing.B) {
			benchWindow(b, 8, m)
		})
	}
}
