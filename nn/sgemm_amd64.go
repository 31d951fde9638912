//go:build !openblas && !purego

package nn

import "golang.org/x/sys/cpu"

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

// haveSgemmKernel reports whether the AVX/FMA kernels (float32 and
// float64) can run here: the CPU has AVX and FMA and the OS saves the YMM
// registers (cpu.X86.HasAVX includes OSXSAVE and XCR0's XMM and YMM bits).
var haveSgemmKernel = cpu.X86.HasAVX && cpu.X86.HasFMA

// haveAVX512 reports whether the float32 AVX-512 kernels (4×32, and the
// pooling kernels of pool_amd64.s) can run here: AVX-512 Foundation with the
// OS saving the opmask and ZMM state besides XMM and YMM (all part of
// cpu.X86.HasAVX512F). The 4×32 kernel then replaces the AVX2 4×16 one.
var haveAVX512 = haveSgemmKernel && cpu.X86.HasAVX512F

// haveAVX512VL reports whether the AVX-512 kernels may also use the upper
// sixteen registers' 256-bit halves (the eight-row quarter-row kernel).
var haveAVX512VL = haveAVX512 && cpu.X86.HasAVX512VL

//go:noescape
func sdotKernel4x4(k int, a *float32, lda int, b *float32, ldb int, out *float32)

//go:noescape
func sumF32F64(x *float32, n int) float64

//go:noescape
func dotF32F64(a, b *float32, n int) float64

//go:noescape
func shiftedMomentsF32F64(x *float32, n int, s float32) (sum, sq float64)

//go:noescape
func sumDotF32F64(w, x, a *float32, n int) (sw, swx float64)

//go:noescape
func geluTanhAVX512(x, y *float32, n, j int) (outside int)

//go:noescape
func sgemmKernel4x32T9(k int, a *float32, sr, ta int, b *float32, ldb int, offs *[9]int, seg int, c *float32, ldc int, nt int)

//go:noescape
func sgemmKernel4x32T9Q(k int, a *float32, sr, ta int, b *float32, ldb int, offs *[9]int, q int, c *float32, ldc int, nt int)

//go:noescape
func sgemmKernel8x32T9Q(k int, a *float32, sr, ta int, b *float32, ldb int, offs *[9]int, q int, c *float32, ldc int, nt int)

//go:noescape
func sgemmKernel8x32T9(k int, a *float32, sr, ta int, b *float32, ldb int, offs *[9]int, seg int, c *float32, ldc int, nt int)
