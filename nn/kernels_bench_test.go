package nn

import "testing"

// BenchmarkPoolFwd times the 2×2/2 max-pool kernel on the CNN's first pool
// input (64×32×32×32 float32), against a copy of the same data for scale.
func BenchmarkPoolFwd(b *testing.B) {
	st := &poolState{n: 64, c: 32, h: 32, w: 32, k: 2, s: 2, oh: 16, ow: 16}
	st.idx = make([]int32, 64*32*16*16)
	x := make([]float32, 64*32*32*32)
	for i := range x {
		x[i] = float32((i*7919)%1000) - 500
	}
	y := make([]float32, len(st.idx))
	b.SetBytes(int64(4 * len(x)))
	for i := 0; i < b.N; i++ {
		poolFwd(st, x, y)
	}
}

func BenchmarkMaskMul(b *testing.B) {
	x := make([]float32, 64*32*32*32)
	for i := range x {
		x[i] = float32((i*7919)%1000) - 500
	}
	o := make([]float32, len(x))
	b.SetBytes(int64(4 * len(x)))
	for i := 0; i < b.N; i++ {
		maskMul([][]float32{x, x}, o)
	}
}

func BenchmarkCopy(b *testing.B) {
	x := make([]float32, 64*32*32*32)
	o := make([]float32, len(x))
	b.SetBytes(int64(4 * len(x)))
	for i := 0; i < b.N; i++ {
		copy(o, x)
	}
}
