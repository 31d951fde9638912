package nn

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestPool22AVX512MatchesScalar checks the AVX-512 row kernels of the 2×2
// stride-2 max pool and of its scatter against the scalar loops, bit for
// bit (values, indices, scattered gradients), with and without the fused ReLU, on planes whose windows hold
// ties, signed zeros, negatives and infinities, for widths with and without
// a scalar tail.
func TestPool22AVX512MatchesScalar(t *testing.T) {
	if !haveAVX512 {
		t.Skip("no AVX-512 here: pool22Planes32 runs the scalar loop only")
	}
	rng := rand.New(rand.NewPCG(3, 5))
	special := []float32{0, float32(math.Copysign(0, -1)), 1, -1, 2, float32(math.Inf(1)), float32(math.Inf(-1))}
	for _, hw := range [][2]int{{32, 32}, {16, 16}, {6, 20}, {4, 34}} {
		for _, relu := range []bool{false, true} {
			h, w := hw[0], hw[1]
			st := &poolState{n: 2, c: 3, h: h, w: w, k: 2, s: 2, oh: h / 2, ow: w / 2, relu: relu}
			planes := st.n * st.c
			x := make([]float32, planes*h*w)
			for i := range x {
				if rng.IntN(3) == 0 {
					x[i] = special[rng.IntN(len(special))]
				} else {
					x[i] = float32(rng.NormFloat64())
				}
			}
			run := func(avx bool) ([]float32, []int32) {
				haveAVX512 = avx
				defer func() { haveAVX512 = true }()
				st.idx = make([]int32, planes*st.oh*st.ow)
				y := make([]float32, planes*st.oh*st.ow)
				pool22Planes32(st, x, y, 0, planes)
				return y, st.idx
			}
			ys, is := run(false)
			ya, ia := run(true)
			if !slices.Equal(is, ia) {
				t.Fatalf("%dx%d relu %v: indices differ:\nscalar %v\navx512 %v", h, w, relu, is, ia)
			}
			for i := range ys {
				if math.Float32bits(ys[i]) != math.Float32bits(ya[i]) {
					t.Fatalf("%dx%d relu %v: output %d: scalar %v, avx512 %v", h, w, relu, i, ys[i], ya[i])
				}
			}
			// The scatter (pool backward) of a random g through these indices.
			g := make([]float32, len(ys))
			for i := range g {
				g[i] = float32(rng.NormFloat64())
			}
			scatter := func(avx bool) []float32 {
				haveAVX512 = avx
				defer func() { haveAVX512 = true }()
				d := make([]float32, len(x))
				for i := range d {
					d[i] = 7 // cells outside every window keep it
				}
				olen := st.oh * st.ow
				for p := 0; p < planes; p++ {
					scatter22(st, g[p*olen:(p+1)*olen], is[p*olen:(p+1)*olen], d[p*h*w:(p+1)*h*w])
				}
				return d
			}
			ds, da := scatter(false), scatter(true)
			for i := range ds {
				if math.Float32bits(ds[i]) != math.Float32bits(da[i]) {
					t.Fatalf("%dx%d relu %v: scatter at %d: scalar %v, avx512 %v", h, w, relu, i, ds[i], da[i])
				}
			}
		}
	}
}
