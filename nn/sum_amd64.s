//go:build !openblas && !purego

#include "textflag.h"

// Float64 reductions of float32 data with AVX-512 (n a positive multiple of
// 16): each float32 widened exactly, two accumulators of eight float64
// lanes, added up at the end in a fixed order.

// func sumF32F64(x *float32, n int) float64
TEXT ·sumF32F64(SB), NOSPLIT, $0-24
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VPXORQ Z0, Z0, Z0
	VPXORQ Z1, Z1, Z1
sloop:
	VCVTPS2PD (SI), Z2
	VCVTPS2PD 32(SI), Z3
	VADDPD Z2, Z0, Z0
	VADDPD Z3, Z1, Z1
	ADDQ $64, SI
	SUBQ $16, CX
	JNZ  sloop
	VADDPD Z1, Z0, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPD Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPD X1, X0, X0
	VHADDPD X0, X0, X0
	VMOVSD X0, ret+16(FP)
	VZEROUPPER
	RET

// func dotF32F64(a, b *float32, n int) float64
// The products of widened float32s are exact in float64, so each fused
// multiply-add rounds only the sum, as the scalar loop's add does.
TEXT ·dotF32F64(SB), NOSPLIT, $0-32
	MOVQ a+0(FP), SI
	MOVQ b+8(FP), DI
	MOVQ n+16(FP), CX
	VPXORQ Z0, Z0, Z0
	VPXORQ Z1, Z1, Z1
dloop:
	VCVTPS2PD (SI), Z2
	VCVTPS2PD (DI), Z3
	VFMADD231PD Z3, Z2, Z0
	VCVTPS2PD 32(SI), Z4
	VCVTPS2PD 32(DI), Z5
	VFMADD231PD Z5, Z4, Z1
	ADDQ $64, SI
	ADDQ $64, DI
	SUBQ $16, CX
	JNZ  dloop
	VADDPD Z1, Z0, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPD Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPD X1, X0, X0
	VHADDPD X0, X0, X0
	VMOVSD X0, ret+24(FP)
	VZEROUPPER
	RET
