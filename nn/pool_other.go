//go:build !amd64 || openblas || purego

package nn

func pool22Row32(r0, r1, y *float32, idx *int32, n int, start, w, lim, clamp int32) {
	panic("nn: no AVX-512 pool kernel")
}

func scatter22Row32(gp *float32, idx *int32, d0, d1 *float32, n int, start, w int32) {
	panic("nn: no AVX-512 pool kernel")
}
