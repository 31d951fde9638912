//go:build !noasm

#include "textflag.h"

// func maxU32AVX2(p *uint32, n int, mask uint32) uint32
// Returns the largest p[j] & mask over j < n; n is a multiple of 32.
TEXT ·maxU32AVX2(SB), NOSPLIT, $0-28
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	MOVL mask+16(FP), AX
	MOVQ AX, X0
	VPBROADCASTD X0, Y0
	VPXOR Y1, Y1, Y1
	VPXOR Y2, Y2, Y2
	VPXOR Y3, Y3, Y3
	VPXOR Y4, Y4, Y4
	SHLQ $2, CX
	ADDQ SI, CX
	CMPQ SI, CX
	JAE maxdone

maxloop:
	VPAND (SI), Y0, Y5
	VPAND 32(SI), Y0, Y6
	VPAND 64(SI), Y0, Y7
	VPAND 96(SI), Y0, Y8
	VPMAXUD Y5, Y1, Y1
	VPMAXUD Y6, Y2, Y2
	VPMAXUD Y7, Y3, Y3
	VPMAXUD Y8, Y4, Y4
	ADDQ $128, SI
	CMPQ SI, CX
	JB maxloop

maxdone:
	VPMAXUD Y2, Y1, Y1
	VPMAXUD Y4, Y3, Y3
	VPMAXUD Y3, Y1, Y1
	VEXTRACTI128 $1, Y1, X2
	VPMAXUD X2, X1, X1
	VPSHUFD $0x4e, X1, X2
	VPMAXUD X2, X1, X1
	VPSHUFD $0xb1, X1, X2
	VPMAXUD X2, X1, X1
	MOVQ X1, AX
	VZEROUPPER
	MOVL AX, ret+24(FP)
	RET
