//go:build !openblas && !purego

package nn

//go:noescape
func sgemmKernel4x16(k int, a, b, c *float32)

func cpuHasAVXFMA() bool

// haveSgemmKernel reports whether the AVX/FMA float32 kernel can run here.
var haveSgemmKernel = cpuHasAVXFMA()
