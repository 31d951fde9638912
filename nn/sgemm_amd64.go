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

//go:noescape
func sgemmKernel4x32(k int, a, b *float32, ldb int, c *float32)

//go:noescape
func sgemmKernel4x32C(k int, a, b *float32, ldb int, c *float32, ldc int, acc bool)

//go:noescape
func sgemmKernel4x32S(k int, a *float32, sa, sr int, b *float32, ldb int, c *float32, ldc int, acc bool)

func cpuHasAVXFMA() bool

func cpuHasAVX512() bool

// haveSgemmKernel reports whether the AVX/FMA kernels (float32 and
// float64) can run here.
var haveSgemmKernel = cpuHasAVXFMA()

// haveAVX512 reports whether the float32 AVX-512 kernel (4×32) can run
// here; it then replaces the AVX2 4×16 one.
var haveAVX512 = haveSgemmKernel && cpuHasAVX512()
