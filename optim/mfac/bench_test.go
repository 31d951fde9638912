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

// BenchmarkFactor times the O(m²) side alone (factor row replacement and one
// solve), float64, at the sizes of BenchmarkWindow.
func BenchmarkFactor(b *testing.B) {
	for _, m := range []int{32, 256, 1024} {
		b.Run(fmt.Sprintf("m=%d", m), func(b *testing.B) {
			w, _ := NewWindow[float32](1, m, 1e-5)
			rng := rand.New(rand.NewPCG(2, 3))
			c := make([]float64, m)
			for i := range c {
				c[i] = rng.NormFloat64()
			}
			c[0] = float64(m) * 10 // keep it SPD: diagonally dominant
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				s := i % m
				c[s], c[0] = c[0], c[s]
				if err := w.factorReplace(s, c); err != nil {
					b.Fatal(err)
				}
				w.solve((s+1)%m, c, w.y, w.z)
				c[s], c[0] = c[0], c[s]
			}
		})
	}
}
