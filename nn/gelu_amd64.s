//go:build !openblas && !purego

#include "textflag.h"

// func geluTanhAVX512(x, y *float32, n, j int) (outside int)
// y = f⁽ʲ⁾(x) of GELU-tanh (j = 0, 1, 2) for n elements (a positive
// multiple of 8), eight float64 lanes at a time: the formulas of
// geluTanhF32 (gelu32.go) with x clamped to [−20, 20] (the caller redoes
// the elements outside, and NaNs), e^(2u) as 2^k·e^r (k = round(2u·log₂e),
// r = 2u − k·ln 2 in two parts, e^r by its degree-11 Taylor polynomial,
// 2^k by VSCALEFPD), fused multiply-adds throughout. outside is non-zero
// when some x was clamped (outside [−20, 20], or NaN).
TEXT ·geluTanhAVX512(SB), NOSPLIT, $0-40
	MOVQ x+0(FP), SI
	MOVQ y+8(FP), DI
	MOVQ n+16(FP), CX
	MOVQ j+24(FP), DX
	MOVQ $0x3ff0000000000000, AX // 1
	VPBROADCASTQ AX, Z31
	MOVQ $0x4338000000000000, AX // 1.5·2⁵² (round to integer)
	VPBROADCASTQ AX, Z30
	MOVQ $0x3ff71547652b82fe, AX // log₂e
	VPBROADCASTQ AX, Z29
	MOVQ $0x3fe62e42fee00000, AX // ln 2, high part
	VPBROADCASTQ AX, Z28
	MOVQ $0x3dea39ef35793c76, AX // ln 2, low part
	VPBROADCASTQ AX, Z27
	MOVQ $0x3ff9884533d43651, AX // 2c
	VPBROADCASTQ AX, Z26
	MOVQ $0x3fa6e4e26d4801f7, AX // a
	VPBROADCASTQ AX, Z25
	MOVQ $0xc034000000000000, AX // −20
	VPBROADCASTQ AX, Z24
	MOVQ $0x4034000000000000, AX // 20
	VPBROADCASTQ AX, Z23
	MOVQ $0x3fe9884533d43651, AX // c
	VPBROADCASTQ AX, Z22
	MOVQ $0x3fbb6676bf7450f0, AX // 3ac
	VPBROADCASTQ AX, Z21
	MOVQ $0x4000000000000000, AX // 2
	VPBROADCASTQ AX, Z20
	MOVQ $0x3e5ae64567f544e4, AX // 1/11!
	VPBROADCASTQ AX, Z8
	MOVQ $0x3e927e4fb7789f5c, AX // 1/10!
	VPBROADCASTQ AX, Z9
	MOVQ $0x3ec71de3a556c734, AX // 1/9!
	VPBROADCASTQ AX, Z10
	MOVQ $0x3efa01a01a01a01a, AX // 1/8!
	VPBROADCASTQ AX, Z11
	MOVQ $0x3f2a01a01a01a01a, AX // 1/7!
	VPBROADCASTQ AX, Z12
	MOVQ $0x3f56c16c16c16c17, AX // 1/6!
	VPBROADCASTQ AX, Z13
	MOVQ $0x3f81111111111111, AX // 1/5!
	VPBROADCASTQ AX, Z14
	MOVQ $0x3fa5555555555555, AX // 1/4!
	VPBROADCASTQ AX, Z15
	MOVQ $0x3fc5555555555555, AX // 1/3!
	VPBROADCASTQ AX, Z16
	MOVQ $0x3fe0000000000000, AX // 1/2!
	VPBROADCASTQ AX, Z17

	KXORW K2, K2, K2
gloop:
	VCVTPS2PD (SI), Z19
	VMAXPD Z24, Z19, Z0
	VMINPD Z23, Z0, Z0
	VCMPPD $4, Z0, Z19, K1    // x ≠ clamped x (or NaN)
	KORW K1, K2, K2
	VMULPD Z0, Z0, Z1         // x²
	VMULPD Z25, Z1, Z2        // a·x²
	VFMADD213PD Z0, Z0, Z2    // x + a·x³
	VMULPD Z26, Z2, Z2        // 2u
	VMOVAPD Z2, Z3
	VFMADD213PD Z30, Z29, Z3  // 2u·log₂e + shift
	VSUBPD Z30, Z3, Z3        // k
	VMOVAPD Z2, Z4
	VFNMADD231PD Z28, Z3, Z4  // r = 2u − k·ln2hi
	VFNMADD231PD Z27, Z3, Z4  //     − k·ln2lo
	VMOVAPD Z8, Z5
	VFMADD213PD Z9, Z4, Z5
	VFMADD213PD Z10, Z4, Z5
	VFMADD213PD Z11, Z4, Z5
	VFMADD213PD Z12, Z4, Z5
	VFMADD213PD Z13, Z4, Z5
	VFMADD213PD Z14, Z4, Z5
	VFMADD213PD Z15, Z4, Z5
	VFMADD213PD Z16, Z4, Z5
	VFMADD213PD Z17, Z4, Z5
	VFMADD213PD Z31, Z4, Z5
	VFMADD213PD Z31, Z4, Z5   // e^r
	VSCALEFPD Z3, Z5, Z5      // e = e^r·2^k
	VADDPD Z31, Z5, Z6
	VDIVPD Z6, Z31, Z6        // p = 1/(e + 1)
	CMPQ DX, $1
	JEQ  gj1
	JGT  gj2
	VMULPD Z6, Z5, Z7         // f = x·(e·p)
	VMULPD Z7, Z0, Z7
	JMP  gstore
gj1:
	VMOVAPD Z1, Z7
	VFMADD213PD Z22, Z21, Z7  // u′ = c + 3ac·x²
	VMULPD Z0, Z7, Z7
	VMULPD Z6, Z7, Z7         // x·u′·p
	VFMADD213PD Z31, Z20, Z7  // 1 + 2x·u′·p
	VMULPD Z6, Z5, Z2
	VMULPD Z2, Z7, Z7         // f′ = e·p·(1 + 2x·u′·p)
	JMP  gstore
gj2:
	VMOVAPD Z1, Z7
	VFMADD213PD Z22, Z21, Z7  // u′
	VMOVAPD Z6, Z2
	VFNMADD213PD Z31, Z20, Z2 // t = 1 − 2p
	VMULPD Z6, Z5, Z3
	VMULPD Z6, Z3, Z3
	VMULPD Z20, Z3, Z3
	VMULPD Z20, Z3, Z3        // s = 1 − t² = 4e·p²
	VMULPD Z21, Z1, Z4        // ½x·u″ = 3ac·x²
	VADDPD Z7, Z4, Z4         // u′ + ½x·u″
	VMULPD Z7, Z7, Z5
	VMULPD Z2, Z5, Z5         // t·u′²
	VFNMADD231PD Z5, Z0, Z4   // − x·t·u′²
	VMULPD Z4, Z3, Z7         // f″ = s·(…)
gstore:
	VCVTPD2PS Z7, Y7
	VMOVUPS Y7, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JNZ  gloop
	KMOVW K2, AX
	MOVQ AX, outside+32(FP)
	VZEROUPPER
	RET
