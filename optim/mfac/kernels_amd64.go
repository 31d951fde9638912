//go:build !noasm

package mfac

import "golang.org/x/sys/cpu"

// useAsm selects the AVX2/FMA float32 kernels (kernels_amd64.s) when the
// CPU has both and the OS saves the YMM registers (x/sys/cpu checks that
// too).
var useAsm = cpu.X86.HasAVX2 && cpu.X86.HasFMA

//go:noescape
func dot4F32(r0, r1, r2, r3, x *float32, n int, out *[4]float64)

//go:noescape
func axpy4F32(acc *float64, r0, r1, r2, r3 *float32, y *float64, n int)
