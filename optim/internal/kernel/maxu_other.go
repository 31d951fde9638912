//go:build !amd64 || noasm

package kernel

const useAVX2 = false

func maxU32AVX2(p *uint32, n int, mask uint32) uint32 { panic("unreachable") }
