//go:build !openblas && !purego

package nn

//go:noescape
func sgemmKernel4x16(k int, a, b, c *float32)

//go:noescape
func sgemmKernel4x16C(k int, a, b, c *float32, ldc int, acc bool)

func cpuHasAVXFMA() bool

// haveSgemmKernel reports whether the AVX/FMA float32 kernel can run here.
var haveSgemmKernel = cpuHasAVXFMA()
