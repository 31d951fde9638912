//go:build !purego

#include "textflag.h"

// AVX2 elementwise float32 kernels (see ew_amd64.go). n is a positive
// multiple of 8; 32 elements a step, then 8. Each lane does the one IEEE
// operation the scalar loops do, so results are bitwise equal to them (a NaN
// result may carry the other input NaN's payload).

// LINARGS loads ewLin32's and ewLinMask32's arguments: x in SI, t in DX,
// o in DI, n in CX, and mu, k1, k2, b broadcast into Y11, Y15, Y14, Y13.
#define LINARGS \
	MOVQ x+0(FP), SI; \
	MOVQ t+8(FP), DX; \
	MOVQ o+24(FP), DI; \
	MOVQ n+32(FP), CX; \
	VBROADCASTSS mu+40(FP), Y11; \
	VBROADCASTSS k1+44(FP), Y15; \
	VBROADCASTSS k2+48(FP), Y14; \
	VBROADCASTSS b+52(FP), Y13

// AFF8 sets Y0 = b + k1·(x − mu) for the eight x at SI (mu, k1, b in Y11,
// Y15, Y13), each operation rounded as the scalar loop does.
#define AFF8 \
	VMOVUPS (SI), Y0; \
	VSUBPS Y11, Y0, Y0; \
	VMULPS Y0, Y15, Y0; \
	VADDPS Y0, Y13, Y0

// LIN8 stores (b + k1·(x − mu)) + k2·T for the eight x at SI into DI, each
// operation rounded as the scalar loop does.
#define LIN8(T) \
	AFF8; \
	VMULPS T, Y14, Y1; \
	VADDPS Y1, Y0, Y0; \
	VMOVUPS Y0, (DI)

// func ewScale32(x, y *float32, n int, s float32)
// y = x·s
TEXT ·ewScale32(SB), NOSPLIT, $0-28
	MOVQ x+0(FP), SI
	MOVQ y+8(FP), DI
	MOVQ n+16(FP), CX
	VBROADCASTSS s+24(FP), Y15
	CMPQ CX, $32
	JLT  scale8
scale32:
	VMULPS (SI), Y15, Y0
	VMULPS 32(SI), Y15, Y1
	VMULPS 64(SI), Y15, Y2
	VMULPS 96(SI), Y15, Y3
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $32, CX
	CMPQ CX, $32
	JGE  scale32
scale8:
	CMPQ CX, $8
	JLT  scaledone
	VMULPS (SI), Y15, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  scale8
scaledone:
	VZEROUPPER
	RET

// func ewAddScalar32(x, y *float32, n int, s float32)
// y = x + s
TEXT ·ewAddScalar32(SB), NOSPLIT, $0-28
	MOVQ x+0(FP), SI
	MOVQ y+8(FP), DI
	MOVQ n+16(FP), CX
	VBROADCASTSS s+24(FP), Y15
	CMPQ CX, $32
	JLT  adds8
adds32:
	VADDPS (SI), Y15, Y0
	VADDPS 32(SI), Y15, Y1
	VADDPS 64(SI), Y15, Y2
	VADDPS 96(SI), Y15, Y3
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $32, CX
	CMPQ CX, $32
	JGE  adds32
adds8:
	CMPQ CX, $8
	JLT  addsdone
	VADDPS (SI), Y15, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  adds8
addsdone:
	VZEROUPPER
	RET

// func ewAdd32(a, b, o *float32, n int)
// o = a + b
TEXT ·ewAdd32(SB), NOSPLIT, $0-32
	MOVQ a+0(FP), SI
	MOVQ b+8(FP), DX
	MOVQ o+16(FP), DI
	MOVQ n+24(FP), CX
	CMPQ CX, $32
	JLT  add8
add32:
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VMOVUPS 64(SI), Y2
	VMOVUPS 96(SI), Y3
	VADDPS (DX), Y0, Y0
	VADDPS 32(DX), Y1, Y1
	VADDPS 64(DX), Y2, Y2
	VADDPS 96(DX), Y3, Y3
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	ADDQ $128, SI
	ADDQ $128, DX
	ADDQ $128, DI
	SUBQ $32, CX
	CMPQ CX, $32
	JGE  add32
add8:
	CMPQ CX, $8
	JLT  adddone
	VMOVUPS (SI), Y0
	VADDPS (DX), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DX
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  add8
adddone:
	VZEROUPPER
	RET

// func ewMul32(a, b, o *float32, n int)
// o = a·b
TEXT ·ewMul32(SB), NOSPLIT, $0-32
	MOVQ a+0(FP), SI
	MOVQ b+8(FP), DX
	MOVQ o+16(FP), DI
	MOVQ n+24(FP), CX
	CMPQ CX, $32
	JLT  mul8
mul32:
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VMOVUPS 64(SI), Y2
	VMOVUPS 96(SI), Y3
	VMULPS (DX), Y0, Y0
	VMULPS 32(DX), Y1, Y1
	VMULPS 64(DX), Y2, Y2
	VMULPS 96(DX), Y3, Y3
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	ADDQ $128, SI
	ADDQ $128, DX
	ADDQ $128, DI
	SUBQ $32, CX
	CMPQ CX, $32
	JGE  mul32
mul8:
	CMPQ CX, $8
	JLT  muldone
	VMOVUPS (SI), Y0
	VMULPS (DX), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DX
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  mul8
muldone:
	VZEROUPPER
	RET

// func ewMaskMul32(x, gv, o *float32, n int)
// o = gv where int32(bits(x)) > 0 (x > +0 or a positive NaN), else +0: the
// sign-bit mask of maskMul32 as one signed compare.
TEXT ·ewMaskMul32(SB), NOSPLIT, $0-32
	MOVQ x+0(FP), SI
	MOVQ gv+8(FP), DX
	MOVQ o+16(FP), DI
	MOVQ n+24(FP), CX
	VPXOR Y15, Y15, Y15
	CMPQ CX, $32
	JLT  mask8
mask32:
	VMOVDQU (SI), Y0
	VMOVDQU 32(SI), Y1
	VMOVDQU 64(SI), Y2
	VMOVDQU 96(SI), Y3
	VPCMPGTD Y15, Y0, Y0
	VPCMPGTD Y15, Y1, Y1
	VPCMPGTD Y15, Y2, Y2
	VPCMPGTD Y15, Y3, Y3
	VPAND (DX), Y0, Y0
	VPAND 32(DX), Y1, Y1
	VPAND 64(DX), Y2, Y2
	VPAND 96(DX), Y3, Y3
	VMOVDQU Y0, (DI)
	VMOVDQU Y1, 32(DI)
	VMOVDQU Y2, 64(DI)
	VMOVDQU Y3, 96(DI)
	ADDQ $128, SI
	ADDQ $128, DX
	ADDQ $128, DI
	SUBQ $32, CX
	CMPQ CX, $32
	JGE  mask32
mask8:
	CMPQ CX, $8
	JLT  maskdone
	VMOVDQU (SI), Y0
	VPCMPGTD Y15, Y0, Y0
	VPAND (DX), Y0, Y0
	VMOVDQU Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DX
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  mask8
maskdone:
	VZEROUPPER
	RET

// func ewScaleAdd32(x, y *float32, n int, s, b float32)
// y = x·s + b, the product rounded before the sum (no fused multiply-add).
TEXT ·ewScaleAdd32(SB), NOSPLIT, $0-32
	MOVQ x+0(FP), SI
	MOVQ y+8(FP), DI
	MOVQ n+16(FP), CX
	VBROADCASTSS s+24(FP), Y15
	VBROADCASTSS b+28(FP), Y14
	CMPQ CX, $32
	JLT  sa8
sa32:
	VMULPS (SI), Y15, Y0
	VMULPS 32(SI), Y15, Y1
	VMULPS 64(SI), Y15, Y2
	VMULPS 96(SI), Y15, Y3
	VADDPS Y14, Y0, Y0
	VADDPS Y14, Y1, Y1
	VADDPS Y14, Y2, Y2
	VADDPS Y14, Y3, Y3
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $32, CX
	CMPQ CX, $32
	JGE  sa32
sa8:
	CMPQ CX, $8
	JLT  sadone
	VMULPS (SI), Y15, Y0
	VADDPS Y14, Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  sa8
sadone:
	VZEROUPPER
	RET

// func ewLin32(x, t, a, o *float32, n int, mu, k1, k2, b float32)
// o = (b + k1·(x − mu)) + k2·t
TEXT ·ewLin32(SB), NOSPLIT, $0-56
	LINARGS
lin8:
	CMPQ CX, $8
	JLT  lindone
	LIN8((DX))
	ADDQ $32, SI
	ADDQ $32, DX
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  lin8
lindone:
	VZEROUPPER
	RET

// func ewLinMask32(x, t, a, o *float32, n int, mu, k1, k2, b float32)
// o = (b + k1·(x − mu)) + k2·(t where a > 0, else 0)  (a > +0 by its bits,
// as ewMaskMul32)
TEXT ·ewLinMask32(SB), NOSPLIT, $0-56
	LINARGS
	MOVQ a+16(FP), R8
	VPXOR Y12, Y12, Y12
lm8:
	CMPQ CX, $8
	JLT  lmdone
	VMOVDQU (R8), Y2
	VPCMPGTD Y12, Y2, Y2
	VPAND (DX), Y2, Y2
	LIN8(Y2)
	ADDQ $32, SI
	ADDQ $32, DX
	ADDQ $32, R8
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  lm8
lmdone:
	VZEROUPPER
	RET

// func ewAffine32(x, o *float32, n int, mu, k, b float32, relu bool)
// o = b + k·(x − mu) (AFF8), then with relu o = o where o > +0 by its bits
// and 0 elsewhere (ewMaskMul32's test): batch norm's apply and its ReLU in
// one pass.
TEXT ·ewAffine32(SB), NOSPLIT, $0-37
	MOVQ x+0(FP), SI
	MOVQ o+8(FP), DI
	MOVQ n+16(FP), CX
	VBROADCASTSS mu+24(FP), Y11
	VBROADCASTSS k+28(FP), Y15
	VBROADCASTSS b+32(FP), Y13
	VPXOR Y12, Y12, Y12
	CMPB relu+36(FP), $0
	JNE  affr8
aff8:
	CMPQ CX, $8
	JLT  affdone
	AFF8
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  aff8
affr8:
	CMPQ CX, $8
	JLT  affdone
	AFF8
	VPCMPGTD Y12, Y0, Y2
	VPAND Y0, Y2, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  affr8
affdone:
	VZEROUPPER
	RET

// func transpose8Strip(src *float32, ss int, dst *float32, ds int, nb int)
// Transposes nb 8×8 blocks of float32 side by side: source rows r < 8 at
// src + r·ss, block b's columns 8b…8b+7; destination row 8b + j at dst +
// (8b + j)·ds holds column 8b + j of the eight source rows (ss, ds in
// elements). Unpack, shuffle and 128-bit permute, as for any 8×8 AVX
// transpose.
TEXT ·transpose8Strip(SB), NOSPLIT, $0-40
	MOVQ src+0(FP), SI
	MOVQ ss+8(FP), AX
	SHLQ $2, AX
	MOVQ dst+16(FP), DI
	MOVQ ds+24(FP), DX
	SHLQ $2, DX
	MOVQ nb+32(FP), CX
	LEAQ (AX)(AX*2), R8 // 3·ss
	LEAQ (DX)(DX*2), R9 // 3·ds
	TESTQ CX, CX
	JEQ  trdone
trblock:
	MOVQ SI, R10
	VMOVUPS (R10), Y0
	VMOVUPS (R10)(AX*1), Y1
	VMOVUPS (R10)(AX*2), Y2
	VMOVUPS (R10)(R8*1), Y3
	LEAQ (R10)(AX*4), R10
	VMOVUPS (R10), Y4
	VMOVUPS (R10)(AX*1), Y5
	VMOVUPS (R10)(AX*2), Y6
	VMOVUPS (R10)(R8*1), Y7
	VUNPCKLPS Y1, Y0, Y8
	VUNPCKHPS Y1, Y0, Y9
	VUNPCKLPS Y3, Y2, Y10
	VUNPCKHPS Y3, Y2, Y11
	VUNPCKLPS Y5, Y4, Y12
	VUNPCKHPS Y5, Y4, Y13
	VUNPCKLPS Y7, Y6, Y14
	VUNPCKHPS Y7, Y6, Y15
	VSHUFPS $0x44, Y10, Y8, Y0
	VSHUFPS $0xEE, Y10, Y8, Y1
	VSHUFPS $0x44, Y11, Y9, Y2
	VSHUFPS $0xEE, Y11, Y9, Y3
	VSHUFPS $0x44, Y14, Y12, Y4
	VSHUFPS $0xEE, Y14, Y12, Y5
	VSHUFPS $0x44, Y15, Y13, Y6
	VSHUFPS $0xEE, Y15, Y13, Y7
	VPERM2F128 $0x20, Y4, Y0, Y8
	VPERM2F128 $0x20, Y5, Y1, Y9
	VPERM2F128 $0x20, Y6, Y2, Y10
	VPERM2F128 $0x20, Y7, Y3, Y11
	VPERM2F128 $0x31, Y4, Y0, Y12
	VPERM2F128 $0x31, Y5, Y1, Y13
	VPERM2F128 $0x31, Y6, Y2, Y14
	VPERM2F128 $0x31, Y7, Y3, Y15
	MOVQ DI, R11
	VMOVUPS Y8, (R11)
	VMOVUPS Y9, (R11)(DX*1)
	VMOVUPS Y10, (R11)(DX*2)
	VMOVUPS Y11, (R11)(R9*1)
	LEAQ (R11)(DX*4), R11
	VMOVUPS Y12, (R11)
	VMOVUPS Y13, (R11)(DX*1)
	VMOVUPS Y14, (R11)(DX*2)
	VMOVUPS Y15, (R11)(R9*1)
	ADDQ $32, SI
	LEAQ (R11)(DX*4), DI
	DECQ CX
	JNZ  trblock
trdone:
	VZEROUPPER
	RET

// func padRows32(src, dst *float32, h, w, wp int)
// Copies the h rows of w float32s at src (w a positive multiple of 8) to
// dst + i·wp and zeroes the two elements after each copied row: the
// interior rows of padPlanes' zero-bordered plane (dst its row 1, column
// 1), or widenRows' rows (wp = w + 2).
TEXT ·padRows32(SB), NOSPLIT, $0-40
	MOVQ src+0(FP), SI
	MOVQ dst+8(FP), DI
	MOVQ h+16(FP), R8
	MOVQ w+24(FP), R9
	MOVQ wp+32(FP), R10
	SHLQ $2, R10
prow:
	TESTQ R8, R8
	JEQ  pdone
	MOVQ R9, CX
	MOVQ DI, R11
pcol:
	VMOVUPS (SI), Y0
	VMOVUPS Y0, (R11)
	ADDQ $32, SI
	ADDQ $32, R11
	SUBQ $8, CX
	JNZ  pcol
	MOVQ $0, (R11)
	ADDQ R10, DI
	DECQ R8
	JMP  prow
pdone:
	VZEROUPPER
	RET

// func deinterleave32(src, even, odd *float32, n int)
// even[i] = src[2i], odd[i] = src[2i+1] for i < n/2 (n a positive multiple
// of 16): a stride-2 convolution's phase planes, one source row into its
// two column phases.
TEXT ·deinterleave32(SB), NOSPLIT, $0-32
	MOVQ src+0(FP), SI
	MOVQ even+8(FP), DI
	MOVQ odd+16(FP), DX
	MOVQ n+24(FP), CX
dil:
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VSHUFPS $0x88, Y1, Y0, Y2
	VSHUFPS $0xDD, Y1, Y0, Y3
	VPERMPD $0xD8, Y2, Y2
	VPERMPD $0xD8, Y3, Y3
	VMOVUPS Y2, (DI)
	VMOVUPS Y3, (DX)
	ADDQ $64, SI
	ADDQ $32, DI
	ADDQ $32, DX
	SUBQ $16, CX
	JNZ  dil
	VZEROUPPER
	RET
