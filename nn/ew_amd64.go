//go:build !purego

package nn

import "golang.org/x/sys/cpu"

// haveEW reports whether the AVX2 elementwise kernels of ew_amd64.s can run
// here (cpu.X86.HasAVX2 includes the OS saving the YMM registers).
var haveEW = cpu.X86.HasAVX2

//go:noescape
func ewScale32(x, y *float32, n int, s float32)

//go:noescape
func ewAddScalar32(x, y *float32, n int, s float32)

//go:noescape
func ewAdd32(a, b, o *float32, n int)

//go:noescape
func ewMul32(a, b, o *float32, n int)

//go:noescape
func ewMaskMul32(x, gv, o *float32, n int)

//go:noescape
func ewScaleAdd32(x, y *float32, n int, s, b float32)

//go:noescape
func ewLin32(x, t, a, o *float32, n int, mu, k1, k2, b float32)

//go:noescape
func ewLinMask32(x, t, a, o *float32, n int, mu, k1, k2, b float32)

//go:noescape
func ewAffine32(x, o *float32, n int, mu, k, b float32, relu bool)

//go:noescape
func transpose8Strip(src *float32, ss int, dst *float32, ds int, nb int)

//go:noescape
func padRows32(src, dst *float32, h, w, wp int)

//go:noescape
func deinterleave32(src, even, odd *float32, n int)
