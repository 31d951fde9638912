//go:build !openblas && !purego

#include "textflag.h"

// Float64 reductions of float32 data with AVX-512 (n a positive multiple of
// 16): each float32 widened exactly, two accumulators of eight float64
// lanes, added up at the end in a fixed order.

// HSUM2PD adds the float64 accumulators ZA and ZB lane by lane, then the
// eight lanes in a fixed order (halves, quarters, the last pair), leaving
// the sum in the low lane of XA (YA, YB, XB: the same registers' lower
// parts, clobbered).
#define HSUM2PD(ZA, ZB, YA, YB, XA, XB) \
	VADDPD ZB, ZA, ZA; \
	VEXTRACTF64X4 $1, ZA, YB; \
	VADDPD YB, YA, YA; \
	VEXTRACTF128 $1, YA, XB; \
	VADDPD XB, XA, XA; \
	VHADDPD XA, XA, XA

// SUMDOT16 is one step of sumDotF32F64: the sixteen w' widened in Z2, Z3
// added into Z0, Z1 and, times the sixteen x at DI widened, into Z10, Z11;
// SI and DI advance.
#define SUMDOT16 \
	VADDPD Z2, Z0, Z0; \
	VADDPD Z3, Z1, Z1; \
	VCVTPS2PD (DI), Z4; \
	VCVTPS2PD 32(DI), Z5; \
	VFMADD231PD Z4, Z2, Z10; \
	VFMADD231PD Z5, Z3, Z11; \
	ADDQ $64, SI; \
	ADDQ $64, DI

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
	HSUM2PD(Z0, Z1, Y0, Y1, X0, X1)
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
	HSUM2PD(Z0, Z1, Y0, Y1, X0, X1)
	VMOVSD X0, ret+24(FP)
	VZEROUPPER
	RET

// func shiftedMomentsF32F64(x *float32, n int, s float32) (sum, sq float64)
// d = x + s rounded to float32 (vecAddScalar's sum), then Σd and Σd² in
// float64 with sumF32F64's and dotF32F64's lanes and final order, so each is
// bitwise what those kernels return for the stored d: one pass instead of
// three (write d, sum it, dot it with itself).
TEXT ·shiftedMomentsF32F64(SB), NOSPLIT, $0-40
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VBROADCASTSS s+16(FP), Z6
	VPXORQ Z0, Z0, Z0
	VPXORQ Z1, Z1, Z1
	VPXORQ Z8, Z8, Z8
	VPXORQ Z9, Z9, Z9
mloop:
	VADDPS (SI), Z6, Z4
	VCVTPS2PD Y4, Z2
	VEXTRACTF64X4 $1, Z4, Y5
	VCVTPS2PD Y5, Z3
	VADDPD Z2, Z0, Z0
	VADDPD Z3, Z1, Z1
	VFMADD231PD Z2, Z2, Z8
	VFMADD231PD Z3, Z3, Z9
	ADDQ $64, SI
	SUBQ $16, CX
	JNZ  mloop
	HSUM2PD(Z0, Z1, Y0, Y1, X0, X1)
	VMOVSD X0, sum+24(FP)
	HSUM2PD(Z8, Z9, Y8, Y9, X8, X9)
	VMOVSD X8, sq+32(FP)
	VZEROUPPER
	RET

// func sumDotF32F64(w, x, a *float32, n int) (sw, swx float64)
// Σw' and Σw'·x in float64, w' = w where a > +0 by its bits (maskMul32's
// test) and 0 elsewhere, or w' = w when a is nil: bitwise sumF32F64(w') and
// dotF32F64(w', x) (same lanes, same final order), in one pass and without
// storing w'.
TEXT ·sumDotF32F64(SB), NOSPLIT, $0-48
	MOVQ w+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ a+16(FP), R8
	MOVQ n+24(FP), CX
	VPXORQ Z0, Z0, Z0
	VPXORQ Z1, Z1, Z1
	VPXORQ Z10, Z10, Z10
	VPXORQ Z11, Z11, Z11
	VPXORQ Z7, Z7, Z7
	TESTQ R8, R8
	JZ    sdplain
sdmask:
	VMOVDQU32 (R8), Z5
	VPCMPGTD Z7, Z5, K1
	KSHIFTRW $8, K1, K2
	VCVTPS2PD.Z (SI), K1, Z2
	VCVTPS2PD.Z 32(SI), K2, Z3
	SUMDOT16
	ADDQ $64, R8
	SUBQ $16, CX
	JNZ  sdmask
	JMP  sddone
sdplain:
	VCVTPS2PD (SI), Z2
	VCVTPS2PD 32(SI), Z3
	SUMDOT16
	SUBQ $16, CX
	JNZ  sdplain
sddone:
	HSUM2PD(Z0, Z1, Y0, Y1, X0, X1)
	VMOVSD X0, sw+32(FP)
	HSUM2PD(Z10, Z11, Y10, Y11, X10, X11)
	VMOVSD X10, swx+40(FP)
	VZEROUPPER
	RET
