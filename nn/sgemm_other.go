//go:build !amd64 || openblas || purego

package nn

const haveSgemmKernel = false

// haveAVX512 is a variable only so that tests can switch kernels where the
// kernels exist; here it stays false.
var haveAVX512 = false

// haveAVX512VL is false without the native kernels.
var haveAVX512VL = false

func sgemmKernel4x32(k int, a, b *float32, ldb int, c *float32) { panic("nn: no sgemm kernel") }

func sgemmKernel4x32S(k int, a *float32, sa, sr int, b *float32, ldb int, c *float32, ldc int, acc bool) {
	panic("nn: no sgemm kernel")
}

func sgemmKernel4x32C(k int, a, b *float32, ldb int, c *float32, ldc int, acc bool) {
	panic("nn: no sgemm kernel")
}

func sgemmKernel4x16(k int, a, b *float32, ldb int, c *float32) { panic("nn: no sgemm kernel") }

func sgemmKernel4x16C(k int, a, b *float32, ldb int, c *float32, ldc int, acc bool) {
	panic("nn: no sgemm kernel")
}

func dgemmKernel4x8(k int, a, b *float64, ldb int, c *float64) { panic("nn: no dgemm kernel") }

func dgemmKernel4x8C(k int, a, b *float64, ldb int, c *float64, ldc int, acc bool) {
	panic("nn: no dgemm kernel")
}

func sdotKernel4x4(k int, a *float32, lda int, b *float32, ldb int, out *float32) {
	panic("nn: no sdot kernel")
}

func sumF32F64(x *float32, n int) float64 { panic("nn: no reduction kernel") }

func dotF32F64(a, b *float32, n int) float64 { panic("nn: no reduction kernel") }

func shiftedMomentsF32F64(x *float32, n int, s float32) (sum, sq float64) {
	panic("nn: no reduction kernel")
}

func sumDotF32F64(w, x, a *float32, n int) (sw, swx float64) { panic("nn: no reduction kernel") }

func geluTanhAVX512(x, y *float32, n, j int) (outside int) {
	panic("nn: no GELU kernel")
}

func sgemmKernel4x32T9(k int, a *float32, sr, ta int, b *float32, ldb int, offs *[9]int, seg int, c *float32, ldc int, nt int) {
	panic("nn: no sgemm kernel")
}

func sgemmKernel8x32T9(k int, a *float32, sr, ta int, b *float32, ldb int, offs *[9]int, seg int, c *float32, ldc int, nt int) {
	panic("nn: no sgemm kernel")
}

func sgemmKernel4x32T9Q(k int, a *float32, sr, ta int, b *float32, ldb int, offs *[9]int, q int, c *float32, ldc int, nt int) {
	panic("nn: no sgemm kernel")
}

func sgemmKernel8x32T9Q(k int, a *float32, sr, ta int, b *float32, ldb int, offs *[9]int, q int, c *float32, ldc int, nt int) {
	panic("nn: no sgemm kernel")
}
