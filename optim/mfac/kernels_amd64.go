//go:build !noasm

package mfac

// useAsm selects the AVX2/FMA float32 kernels (kernels_amd64.s).
var useAsm = hasAVX2FMA()

func hasAVX2FMA() bool {
	_, _, c1, _ := cpuid(1, 0)
	if c1&(1<<12) == 0 || c1&(1<<27) == 0 { // FMA, OSXSAVE
		return false
	}
	if xgetbv0()&6 != 6 { // the OS saves XMM and YMM state
		return false
	}
	_, b7, _, _ := cpuid(7, 0)
	return b7&(1<<5) != 0 // AVX2
}

func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)

func xgetbv0() (eax uint32)

//go:noescape
func dot4F32(r0, r1, r2, r3, x *float32, n int, out *[4]float64)

//go:noescape
func axpy4F32(acc *float64, r0, r1, r2, r3 *float32, y *float64, n int)
