//go:build !openblas && !purego

package nn

//go:noescape
func sgemmKernel4x16(k int, a, b *float32, ldb int, c *float32)

//go:noescape
func sgemmKernel4x16C(k int, a, b *float32, ldb int, c *float32, ldc int, acc bool)

//go:noescape
func dgemmKernel4x8(k int, a, b *float64, ldb int, c *float64)

//go:noescape
func dgemmKernel4x8C(k int, a, b *float64, ldb int, c *float64, ldc int, acc bool)

func cpuHasAVXFMA() bool

// haveSgemmKernel reports whether the AVX/FMA kernels (float32 and
// float64) can run here.
var haveSgemmKernel = cpuHasAVXFMA()
