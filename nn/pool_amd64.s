//go:build !openblas && !purego

#include "textflag.h"

// Lane permutations: the even and the odd elements of 16 floats in lanes
// 0..7, and 2j for j = 0..7 (lanes 8..15 are not used).
DATA poolEven<>+0(SB)/4, $0
DATA poolEven<>+4(SB)/4, $2
DATA poolEven<>+8(SB)/4, $4
DATA poolEven<>+12(SB)/4, $6
DATA poolEven<>+16(SB)/4, $8
DATA poolEven<>+20(SB)/4, $10
DATA poolEven<>+24(SB)/4, $12
DATA poolEven<>+28(SB)/4, $14
DATA poolEven<>+32(SB)/4, $0
DATA poolEven<>+36(SB)/4, $0
DATA poolEven<>+40(SB)/4, $0
DATA poolEven<>+44(SB)/4, $0
DATA poolEven<>+48(SB)/4, $0
DATA poolEven<>+52(SB)/4, $0
DATA poolEven<>+56(SB)/4, $0
DATA poolEven<>+60(SB)/4, $0
GLOBL poolEven<>(SB), RODATA|NOPTR, $64

DATA poolOdd<>+0(SB)/4, $1
DATA poolOdd<>+4(SB)/4, $3
DATA poolOdd<>+8(SB)/4, $5
DATA poolOdd<>+12(SB)/4, $7
DATA poolOdd<>+16(SB)/4, $9
DATA poolOdd<>+20(SB)/4, $11
DATA poolOdd<>+24(SB)/4, $13
DATA poolOdd<>+28(SB)/4, $15
DATA poolOdd<>+32(SB)/4, $1
DATA poolOdd<>+36(SB)/4, $1
DATA poolOdd<>+40(SB)/4, $1
DATA poolOdd<>+44(SB)/4, $1
DATA poolOdd<>+48(SB)/4, $1
DATA poolOdd<>+52(SB)/4, $1
DATA poolOdd<>+56(SB)/4, $1
DATA poolOdd<>+60(SB)/4, $1
GLOBL poolOdd<>(SB), RODATA|NOPTR, $64

// func pool22Row32(r0, r1, y *float32, idx *int32, n int, start, w, lim, clamp int32)
// One output row of the 2×2, stride-2 max pool (AVX-512, 8 outputs a step;
// n a positive multiple of 8), the same branch-free computation as
// pool22Planes32's loop: keys k = b ^ ((b >> 31) & 0x7fffffff) of the bits
// b, the largest key, its first position (r0[2j], r0[2j+1], r1[2j],
// r1[2j+1]) as start + 2j + {0, 1, w, w+1}, −1 where the key is < lim, and
// the value of max(key, clamp).
TEXT ·pool22Row32(SB), NOSPLIT, $0-56
	MOVQ r0+0(FP), SI
	MOVQ r1+8(FP), DI
	MOVQ y+16(FP), R8
	MOVQ idx+24(FP), R9
	MOVQ n+32(FP), CX
	MOVL start+40(FP), AX
	VPBROADCASTD AX, Z20
	MOVL w+44(FP), AX
	VPBROADCASTD AX, Z21
	MOVL lim+48(FP), AX
	VPBROADCASTD AX, Z22
	MOVL clamp+52(FP), AX
	VPBROADCASTD AX, Z23
	VMOVDQU32 poolEven<>(SB), Z24
	VMOVDQU32 poolOdd<>(SB), Z25
	// Z20 = start + 2j: poolEven holds 2j in lanes 0..7.
	VPADDD Z24, Z20, Z20
	MOVL $0x7fffffff, AX
	VPBROADCASTD AX, Z27
	MOVL $1, AX
	VPBROADCASTD AX, Z28
	VPADDD Z28, Z21, Z29
	MOVL $16, AX
	VPBROADCASTD AX, Z30
	VPTERNLOGD $0xff, Z31, Z31, Z31
	VPXORD Z9, Z9, Z9
	MOVL $0xff, AX
	KMOVW AX, K7

ploop:
	VMOVDQU32 (SI), Z0
	VMOVDQU32 (DI), Z1
	VPERMD Z0, Z24, Z2
	VPERMD Z0, Z25, Z3
	VPERMD Z1, Z24, Z4
	VPERMD Z1, Z25, Z5
	VPSRAD $31, Z2, Z6
	VPANDD Z27, Z6, Z6
	VPXORD Z6, Z2, Z2
	VPSRAD $31, Z3, Z6
	VPANDD Z27, Z6, Z6
	VPXORD Z6, Z3, Z3
	VPSRAD $31, Z4, Z6
	VPANDD Z27, Z6, Z6
	VPXORD Z6, Z4, Z4
	VPSRAD $31, Z5, Z6
	VPANDD Z27, Z6, Z6
	VPXORD Z6, Z5, Z5
	VPMAXSD Z3, Z2, Z6
	VPMAXSD Z5, Z4, Z7
	VPMAXSD Z7, Z6, Z6
	VMOVDQA32 Z29, Z8
	VPCMPEQD Z4, Z6, K1
	VMOVDQA32 Z21, K1, Z8
	VPCMPEQD Z3, Z6, K1
	VMOVDQA32 Z28, K1, Z8
	VPCMPEQD Z2, Z6, K1
	VMOVDQA32 Z9, K1, Z8
	VPADDD Z20, Z8, Z8
	VPCMPGTD Z6, Z22, K1
	VMOVDQA32 Z31, K1, Z8
	VPMAXSD Z23, Z6, Z6
	VPSRAD $31, Z6, Z7
	VPANDD Z27, Z7, Z7
	VPXORD Z7, Z6, Z6
	VMOVDQU32 Z8, K7, (R9)
	VMOVDQU32 Z6, K7, (R8)
	ADDQ $64, SI
	ADDQ $64, DI
	ADDQ $32, R8
	ADDQ $32, R9
	VPADDD Z30, Z20, Z20
	SUBQ $8, CX
	JNZ ploop
	VZEROUPPER
	RET

// Interleaving of lanes 0..7 of two vectors: a0 b0 a1 b1 … a7 b7.
DATA poolZip<>+0(SB)/4, $0
DATA poolZip<>+4(SB)/4, $16
DATA poolZip<>+8(SB)/4, $1
DATA poolZip<>+12(SB)/4, $17
DATA poolZip<>+16(SB)/4, $2
DATA poolZip<>+20(SB)/4, $18
DATA poolZip<>+24(SB)/4, $3
DATA poolZip<>+28(SB)/4, $19
DATA poolZip<>+32(SB)/4, $4
DATA poolZip<>+36(SB)/4, $20
DATA poolZip<>+40(SB)/4, $5
DATA poolZip<>+44(SB)/4, $21
DATA poolZip<>+48(SB)/4, $6
DATA poolZip<>+52(SB)/4, $22
DATA poolZip<>+56(SB)/4, $7
DATA poolZip<>+60(SB)/4, $23
GLOBL poolZip<>(SB), RODATA|NOPTR, $64

// func scatter22Row32(gp *float32, idx *int32, d0, d1 *float32, n int, start, w int32)
// One output row of the 2×2, stride-2 pool's scatter (AVX-512, 8 outputs a
// step; n a positive multiple of 8): the window of output j (d0[2j],
// d0[2j+1], d1[2j], d1[2j+1], at start + 2j + {0, 1, w, w+1}) gets g[j] at
// the position idx[j] and 0 elsewhere (everywhere when idx[j] is −1).
TEXT ·scatter22Row32(SB), NOSPLIT, $0-48
	MOVQ gp+0(FP), SI
	MOVQ idx+8(FP), DI
	MOVQ d0+16(FP), R8
	MOVQ d1+24(FP), R9
	MOVQ n+32(FP), CX
	MOVL start+40(FP), AX
	VPBROADCASTD AX, Z20
	MOVL w+44(FP), AX
	VPBROADCASTD AX, Z21
	VMOVDQU32 poolEven<>(SB), Z24
	VMOVDQU32 poolZip<>(SB), Z25
	VPADDD Z24, Z20, Z20
	MOVL $1, AX
	VPBROADCASTD AX, Z28
	MOVL $16, AX
	VPBROADCASTD AX, Z30
	MOVL $0xff, AX
	KMOVW AX, K7

qloop:
	VMOVDQU32.Z (SI), K7, Z0
	VMOVDQU32.Z (DI), K7, Z1
	VPADDD Z28, Z20, Z2
	VPADDD Z21, Z20, Z3
	VPADDD Z28, Z3, Z4
	VPCMPEQD Z20, Z1, K1
	VPCMPEQD Z2, Z1, K2
	VPCMPEQD Z3, Z1, K3
	VPCMPEQD Z4, Z1, K4
	VMOVDQA32.Z Z0, K1, Z5
	VMOVDQA32.Z Z0, K2, Z6
	VMOVDQA32.Z Z0, K3, Z7
	VMOVDQA32.Z Z0, K4, Z8
	VPERMT2D Z6, Z25, Z5
	VPERMT2D Z8, Z25, Z7
	VMOVDQU32 Z5, (R8)
	VMOVDQU32 Z7, (R9)
	ADDQ $32, SI
	ADDQ $32, DI
	ADDQ $64, R8
	ADDQ $64, R9
	VPADDD Z30, Z20, Z20
	SUBQ $8, CX
	JNZ qloop
	VZEROUPPER
	RET
