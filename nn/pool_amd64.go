//go:build !openblas && !purego

package nn

// pool22Row32 is one output row of the 2×2 stride-2 max pool with AVX-512
// (n a positive multiple of 8); see pool_amd64.s.
//
//go:noescape
func pool22Row32(r0, r1, y *float32, idx *int32, n int, start, w, lim, clamp int32)

// scatter22Row32 is one output row of the 2×2 stride-2 pool's scatter with
// AVX-512 (n a positive multiple of 8); see pool_amd64.s.
//
//go:noescape
func scatter22Row32(gp *float32, idx *int32, d0, d1 *float32, n int, start, w int32)
