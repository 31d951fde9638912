//go:build !noasm

package kernel

import "golang.org/x/sys/cpu"

// useAVX2 selects the AVX2 loop of MaxAbs and MaxNonNeg on float32
// (maxu_amd64.s) when the CPU has AVX2 and the OS saves the YMM registers.
var useAVX2 = cpu.X86.HasAVX2

//go:noescape
func maxU32AVX2(p *uint32, n int, mask uint32) uint32
