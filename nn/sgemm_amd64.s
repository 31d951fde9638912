//go:build !openblas && !purego

#include "textflag.h"

// The float32 kernels run with MXCSR's DAZ (denormals are zero, bit 6) and
// FTZ (flush to zero, bit 15) set, and restore the caller's MXCSR before
// returning. A subnormal float32 (below 2^-126 ≈ 1.2e-38) enters an FMA
// through a microcode assist of a hundred cycles or more: a model whose
// softmax or GELU produces them (gpt-tiny at a too-high SophiaG rate) ran
// its GEMMs five to ten times slower (83% of the step in this kernel).
// Treating them as zero changes a product by less than 2^-126 absolutely.
// Assembly functions are not preempted asynchronously, so the changed
// MXCSR never leaks to another goroutine on this thread.
#define FTZ_ENTER \
	STMXCSR mxcsr-8(SP); \
	MOVL mxcsr-8(SP), AX; \
	ORL $0x8040, AX; \
	MOVL AX, ftz-4(SP); \
	LDMXCSR ftz-4(SP)

#define FTZ_LEAVE LDMXCSR mxcsr-8(SP)

// FMA4ROWS adds to the eight accumulators C0…C7 (rows r = 0…3, two
// 16-column halves each) the four A values at A, A+R14, A+2·R14, A+BX (rows
// sr apart, broadcast through T0…T3) times the two B registers B0, B1.
#define FMA4ROWS(A, B0, B1, T0, T1, T2, T3, C0, C1, C2, C3, C4, C5, C6, C7) \
	VBROADCASTSS (A), T0; \
	VBROADCASTSS (A)(R14*1), T1; \
	VFMADD231PS B0, T0, C0; \
	VFMADD231PS B1, T0, C1; \
	VFMADD231PS B0, T1, C2; \
	VFMADD231PS B1, T1, C3; \
	VBROADCASTSS (A)(R14*2), T2; \
	VBROADCASTSS (A)(BX*1), T3; \
	VFMADD231PS B0, T2, C4; \
	VFMADD231PS B1, T2, C5; \
	VFMADD231PS B0, T3, C6; \
	VFMADD231PS B1, T3, C7

// STEP4x32S is one step l of a strided 4×32 tile: Z0…Z7 += the four
// A values at SI, SI+R14, SI+2·R14, SI+BX (rows sr apart) times the 32 B
// values at DI (columns 16…31 at DI+B2, 64 bytes for a contiguous row).
#define STEP4x32S(B2) \
	VMOVUPS (DI), Z8; \
	VMOVUPS B2, Z9; \
	FMA4ROWS(SI, Z8, Z9, Z10, Z11, Z12, Z13, Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7)

// ZERO8 clears eight registers.
#define ZERO8(R0, R1, R2, R3, R4, R5, R6, R7) \
	VPXORD R0, R0, R0; \
	VPXORD R1, R1, R1; \
	VPXORD R2, R2, R2; \
	VPXORD R3, R3, R3; \
	VPXORD R4, R4, R4; \
	VPXORD R5, R5, R5; \
	VPXORD R6, R6, R6; \
	VPXORD R7, R7, R7

// STORE4x32 stores Z0…Z7 into the rows of C at R8, R9, R10, R11.
#define STORE4x32 \
	VMOVUPS Z0, (R8); \
	VMOVUPS Z1, 64(R8); \
	VMOVUPS Z2, (R9); \
	VMOVUPS Z3, 64(R9); \
	VMOVUPS Z4, (R10); \
	VMOVUPS Z5, 64(R10); \
	VMOVUPS Z6, (R11); \
	VMOVUPS Z7, 64(R11)

// TAPARGS loads the arguments of the tap kernels (sgemmKernel4x32T9 and
// the others of its signature): A in R9 (rows sr·4 bytes apart in R14,
// 3·sr in BX, taps ta·4 apart in R13), B in R10 (steps ldb·4 apart in R12),
// the offsets in R11, the column layout (seg, or q for the quarter-row
// kernels, ·4) in DX and the number of taps in AX.
#define TAPARGS \
	MOVQ a+8(FP), R9; \
	MOVQ sr+16(FP), R14; \
	SHLQ $2, R14; \
	LEAQ (R14)(R14*2), BX; \
	MOVQ ta+24(FP), R13; \
	SHLQ $2, R13; \
	MOVQ b+32(FP), R10; \
	MOVQ ldb+40(FP), R12; \
	SHLQ $2, R12; \
	MOVQ offs+48(FP), R11; \
	MOVQ seg+56(FP), DX; \
	SHLQ $2, DX; \
	MOVQ nt+80(FP), AX

// TAPSTORE4 stores Z0…Z7 into rows 0–3 of the tap kernels' C (c, ldc),
// leaving row 3's address in R11 and ldc·4 in DX.
#define TAPSTORE4 \
	MOVQ c+64(FP), R8; \
	MOVQ ldc+72(FP), DX; \
	SHLQ $2, DX; \
	LEAQ (R8)(DX*1), R9; \
	LEAQ (R9)(DX*1), R10; \
	LEAQ (R10)(DX*1), R11; \
	STORE4x32

// TAPSTORE8 is TAPSTORE4, then Z8…Z15 into rows 4–7.
#define TAPSTORE8 \
	TAPSTORE4; \
	LEAQ (R11)(DX*1), R8; \
	LEAQ (R8)(DX*1), R9; \
	LEAQ (R9)(DX*1), R10; \
	LEAQ (R10)(DX*1), R11; \
	VMOVUPS Z8, (R8); \
	VMOVUPS Z9, 64(R8); \
	VMOVUPS Z10, (R9); \
	VMOVUPS Z11, 64(R9); \
	VMOVUPS Z12, (R10); \
	VMOVUPS Z13, 64(R10); \
	VMOVUPS Z14, (R11); \
	VMOVUPS Z15, 64(R11)

// QLOAD loads the 32 B values of a block of four 8-wide output rows, rows
// at DI, DI+DX, R15 and R15+DX (R15 = DI + 2·DX), into B0 (rows 0 and 1)
// and B1 (rows 2 and 3) through their lower halves L0, L1: eight values
// each, the second row of a pair inserted into the upper half.
#define QLOAD(L0, B0, L1, B1) \
	VMOVUPS (DI), L0; \
	VINSERTF64X4 $1, (DI)(DX*1), B0, B0; \
	VMOVUPS (R15), L1; \
	VINSERTF64X4 $1, (R15)(DX*1), B1, B1

// func sgemmKernel4x16(k int, a *float32, b *float32, ldb int, c *float32)
// c[r*16+j] = Σ_l a[l*4+r]·b[l*16+j] for r < 4, j < 16, with a the packed
// [k][4] row block and b the packed [k][16] column panel.
TEXT ·sgemmKernel4x16(SB), NOSPLIT, $8-40
	FTZ_ENTER
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DI
	MOVQ ldb+24(FP), R12
	SHLQ $2, R12
	MOVQ c+32(FP), R8
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	TESTQ CX, CX
	JEQ done

loop:
	VMOVUPS (DI), Y8
	VMOVUPS 32(DI), Y9
	VBROADCASTSS (SI), Y10
	VBROADCASTSS 4(SI), Y11
	VFMADD231PS Y8, Y10, Y0
	VFMADD231PS Y9, Y10, Y1
	VFMADD231PS Y8, Y11, Y2
	VFMADD231PS Y9, Y11, Y3
	VBROADCASTSS 8(SI), Y12
	VBROADCASTSS 12(SI), Y13
	VFMADD231PS Y8, Y12, Y4
	VFMADD231PS Y9, Y12, Y5
	VFMADD231PS Y8, Y13, Y6
	VFMADD231PS Y9, Y13, Y7
	ADDQ R12, DI
	ADDQ $16, SI
	DECQ CX
	JNZ loop

done:
	VMOVUPS Y0, (R8)
	VMOVUPS Y1, 32(R8)
	VMOVUPS Y2, 64(R8)
	VMOVUPS Y3, 96(R8)
	VMOVUPS Y4, 128(R8)
	VMOVUPS Y5, 160(R8)
	VMOVUPS Y6, 192(R8)
	VMOVUPS Y7, 224(R8)
	VZEROUPPER
	FTZ_LEAVE
	RET

// func sgemmKernel4x16C(k int, a *float32, b *float32, ldb int, c *float32, ldc int, acc bool)
// The 4×16 tile product written straight into C (row stride ldc elements):
// C = tile, or C += tile when acc is set.
TEXT ·sgemmKernel4x16C(SB), NOSPLIT, $8-49
	FTZ_ENTER
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DI
	MOVQ ldb+24(FP), R12
	SHLQ $2, R12
	MOVQ c+32(FP), R8
	MOVQ ldc+40(FP), DX
	SHLQ $2, DX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	TESTQ CX, CX
	JEQ store

loopc:
	VMOVUPS (DI), Y8
	VMOVUPS 32(DI), Y9
	VBROADCASTSS (SI), Y10
	VBROADCASTSS 4(SI), Y11
	VFMADD231PS Y8, Y10, Y0
	VFMADD231PS Y9, Y10, Y1
	VFMADD231PS Y8, Y11, Y2
	VFMADD231PS Y9, Y11, Y3
	VBROADCASTSS 8(SI), Y12
	VBROADCASTSS 12(SI), Y13
	VFMADD231PS Y8, Y12, Y4
	VFMADD231PS Y9, Y12, Y5
	VFMADD231PS Y8, Y13, Y6
	VFMADD231PS Y9, Y13, Y7
	ADDQ R12, DI
	ADDQ $16, SI
	DECQ CX
	JNZ loopc

store:
	LEAQ (R8)(DX*1), R9
	LEAQ (R9)(DX*1), R10
	LEAQ (R10)(DX*1), R11
	MOVBLZX acc+48(FP), AX
	TESTL AX, AX
	JEQ put
	VADDPS (R8), Y0, Y0
	VADDPS 32(R8), Y1, Y1
	VADDPS (R9), Y2, Y2
	VADDPS 32(R9), Y3, Y3
	VADDPS (R10), Y4, Y4
	VADDPS 32(R10), Y5, Y5
	VADDPS (R11), Y6, Y6
	VADDPS 32(R11), Y7, Y7

put:
	VMOVUPS Y0, (R8)
	VMOVUPS Y1, 32(R8)
	VMOVUPS Y2, (R9)
	VMOVUPS Y3, 32(R9)
	VMOVUPS Y4, (R10)
	VMOVUPS Y5, 32(R10)
	VMOVUPS Y6, (R11)
	VMOVUPS Y7, 32(R11)
	VZEROUPPER
	FTZ_LEAVE
	RET

// func dgemmKernel4x8(k int, a *float64, b *float64, ldb int, c *float64)
// c[r*8+j] = Σ_l a[l*4+r]·b[l*8+j] for r < 4, j < 8 (packed [k][4], [k][8]).
TEXT ·dgemmKernel4x8(SB), NOSPLIT, $0-40
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DI
	MOVQ ldb+24(FP), R12
	SHLQ $3, R12
	MOVQ c+32(FP), R8
	VXORPD Y0, Y0, Y0
	VXORPD Y1, Y1, Y1
	VXORPD Y2, Y2, Y2
	VXORPD Y3, Y3, Y3
	VXORPD Y4, Y4, Y4
	VXORPD Y5, Y5, Y5
	VXORPD Y6, Y6, Y6
	VXORPD Y7, Y7, Y7
	TESTQ CX, CX
	JEQ ddone

dloop:
	VMOVUPD (DI), Y8
	VMOVUPD 32(DI), Y9
	VBROADCASTSD (SI), Y10
	VBROADCASTSD 8(SI), Y11
	VFMADD231PD Y8, Y10, Y0
	VFMADD231PD Y9, Y10, Y1
	VFMADD231PD Y8, Y11, Y2
	VFMADD231PD Y9, Y11, Y3
	VBROADCASTSD 16(SI), Y12
	VBROADCASTSD 24(SI), Y13
	VFMADD231PD Y8, Y12, Y4
	VFMADD231PD Y9, Y12, Y5
	VFMADD231PD Y8, Y13, Y6
	VFMADD231PD Y9, Y13, Y7
	ADDQ R12, DI
	ADDQ $32, SI
	DECQ CX
	JNZ dloop

ddone:
	VMOVUPD Y0, (R8)
	VMOVUPD Y1, 32(R8)
	VMOVUPD Y2, 64(R8)
	VMOVUPD Y3, 96(R8)
	VMOVUPD Y4, 128(R8)
	VMOVUPD Y5, 160(R8)
	VMOVUPD Y6, 192(R8)
	VMOVUPD Y7, 224(R8)
	VZEROUPPER
	RET

// func dgemmKernel4x8C(k int, a *float64, b *float64, ldb int, c *float64, ldc int, acc bool)
TEXT ·dgemmKernel4x8C(SB), NOSPLIT, $0-49
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DI
	MOVQ ldb+24(FP), R12
	SHLQ $3, R12
	MOVQ c+32(FP), R8
	MOVQ ldc+40(FP), DX
	SHLQ $3, DX
	VXORPD Y0, Y0, Y0
	VXORPD Y1, Y1, Y1
	VXORPD Y2, Y2, Y2
	VXORPD Y3, Y3, Y3
	VXORPD Y4, Y4, Y4
	VXORPD Y5, Y5, Y5
	VXORPD Y6, Y6, Y6
	VXORPD Y7, Y7, Y7
	TESTQ CX, CX
	JEQ dstore

dloopc:
	VMOVUPD (DI), Y8
	VMOVUPD 32(DI), Y9
	VBROADCASTSD (SI), Y10
	VBROADCASTSD 8(SI), Y11
	VFMADD231PD Y8, Y10, Y0
	VFMADD231PD Y9, Y10, Y1
	VFMADD231PD Y8, Y11, Y2
	VFMADD231PD Y9, Y11, Y3
	VBROADCASTSD 16(SI), Y12
	VBROADCASTSD 24(SI), Y13
	VFMADD231PD Y8, Y12, Y4
	VFMADD231PD Y9, Y12, Y5
	VFMADD231PD Y8, Y13, Y6
	VFMADD231PD Y9, Y13, Y7
	ADDQ R12, DI
	ADDQ $32, SI
	DECQ CX
	JNZ dloopc

dstore:
	LEAQ (R8)(DX*1), R9
	LEAQ (R9)(DX*1), R10
	LEAQ (R10)(DX*1), R11
	MOVBLZX acc+48(FP), AX
	TESTL AX, AX
	JEQ dput
	VADDPD (R8), Y0, Y0
	VADDPD 32(R8), Y1, Y1
	VADDPD (R9), Y2, Y2
	VADDPD 32(R9), Y3, Y3
	VADDPD (R10), Y4, Y4
	VADDPD 32(R10), Y5, Y5
	VADDPD (R11), Y6, Y6
	VADDPD 32(R11), Y7, Y7

dput:
	VMOVUPD Y0, (R8)
	VMOVUPD Y1, 32(R8)
	VMOVUPD Y2, (R9)
	VMOVUPD Y3, 32(R9)
	VMOVUPD Y4, (R10)
	VMOVUPD Y5, 32(R10)
	VMOVUPD Y6, (R11)
	VMOVUPD Y7, 32(R11)
	VZEROUPPER
	RET

// func sgemmKernel4x32(k int, a *float32, b *float32, ldb int, c *float32)
// The AVX-512 kernel: c[r*32+j] = Σ_l a[l*4+r]·b[l*ldb+j] for r < 4,
// j < 32 (a packed [k][4], b a [k][32] panel with rows ldb elements apart).
// Eight 16-wide accumulators, two panel loads and four broadcasts per l.
TEXT ·sgemmKernel4x32(SB), NOSPLIT, $8-40
	FTZ_ENTER
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DI
	MOVQ ldb+24(FP), R12
	SHLQ $2, R12
	MOVQ c+32(FP), R8
	ZERO8(Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7)
	TESTQ CX, CX
	JEQ zdone

zloop:
	VMOVUPS (DI), Z8
	VMOVUPS 64(DI), Z9
	VBROADCASTSS (SI), Z10
	VBROADCASTSS 4(SI), Z11
	VFMADD231PS Z8, Z10, Z0
	VFMADD231PS Z9, Z10, Z1
	VFMADD231PS Z8, Z11, Z2
	VFMADD231PS Z9, Z11, Z3
	VBROADCASTSS 8(SI), Z12
	VBROADCASTSS 12(SI), Z13
	VFMADD231PS Z8, Z12, Z4
	VFMADD231PS Z9, Z12, Z5
	VFMADD231PS Z8, Z13, Z6
	VFMADD231PS Z9, Z13, Z7
	ADDQ R12, DI
	ADDQ $16, SI
	DECQ CX
	JNZ zloop

zdone:
	VMOVUPS Z0, (R8)
	VMOVUPS Z1, 64(R8)
	VMOVUPS Z2, 128(R8)
	VMOVUPS Z3, 192(R8)
	VMOVUPS Z4, 256(R8)
	VMOVUPS Z5, 320(R8)
	VMOVUPS Z6, 384(R8)
	VMOVUPS Z7, 448(R8)
	VZEROUPPER
	FTZ_LEAVE
	RET

// func sgemmKernel4x32C(k int, a *float32, b *float32, ldb int, c *float32, ldc int, acc bool)
// The 4×32 AVX-512 tile product written straight into C (row stride ldc
// elements): C = tile, or C += tile when acc is set.
TEXT ·sgemmKernel4x32C(SB), NOSPLIT, $8-49
	FTZ_ENTER
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DI
	MOVQ ldb+24(FP), R12
	SHLQ $2, R12
	MOVQ c+32(FP), R8
	MOVQ ldc+40(FP), DX
	SHLQ $2, DX
	ZERO8(Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7)
	TESTQ CX, CX
	JEQ zstore

zloopc:
	VMOVUPS (DI), Z8
	VMOVUPS 64(DI), Z9
	VBROADCASTSS (SI), Z10
	VBROADCASTSS 4(SI), Z11
	VFMADD231PS Z8, Z10, Z0
	VFMADD231PS Z9, Z10, Z1
	VFMADD231PS Z8, Z11, Z2
	VFMADD231PS Z9, Z11, Z3
	VBROADCASTSS 8(SI), Z12
	VBROADCASTSS 12(SI), Z13
	VFMADD231PS Z8, Z12, Z4
	VFMADD231PS Z9, Z12, Z5
	VFMADD231PS Z8, Z13, Z6
	VFMADD231PS Z9, Z13, Z7
	ADDQ R12, DI
	ADDQ $16, SI
	DECQ CX
	JNZ zloopc

zstore:
	LEAQ (R8)(DX*1), R9
	LEAQ (R9)(DX*1), R10
	LEAQ (R10)(DX*1), R11
	MOVBLZX acc+48(FP), AX
	TESTL AX, AX
	JEQ zput
	VADDPS (R8), Z0, Z0
	VADDPS 64(R8), Z1, Z1
	VADDPS (R9), Z2, Z2
	VADDPS 64(R9), Z3, Z3
	VADDPS (R10), Z4, Z4
	VADDPS 64(R10), Z5, Z5
	VADDPS (R11), Z6, Z6
	VADDPS 64(R11), Z7, Z7

zput:
	STORE4x32
	VZEROUPPER
	FTZ_LEAVE
	RET

// func sgemmKernel4x32S(k int, a *float32, sa, sr int, b *float32, ldb int, c *float32, ldc int, acc bool)
// The AVX-512 4×32 kernel reading A in place: the entry of row r and step l
// is at a + l·sa + r·sr (strides in elements), so that an untransposed
// (sa = 1, sr = lda) or transposed (sa = lda, sr = 1) operand needs no
// packing. The tile goes into C (row stride ldc): C = tile, or C += tile.
TEXT ·sgemmKernel4x32S(SB), NOSPLIT, $8-65
	FTZ_ENTER
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ sa+16(FP), R13
	SHLQ $2, R13
	MOVQ sr+24(FP), R14
	SHLQ $2, R14
	LEAQ (R14)(R14*2), BX
	MOVQ b+32(FP), DI
	MOVQ ldb+40(FP), R12
	SHLQ $2, R12
	MOVQ c+48(FP), R8
	MOVQ ldc+56(FP), DX
	SHLQ $2, DX
	ZERO8(Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7)
	TESTQ CX, CX
	JEQ sstore

sloop:
	STEP4x32S(64(DI))
	ADDQ R12, DI
	ADDQ R13, SI
	DECQ CX
	JNZ sloop

sstore:
	LEAQ (R8)(DX*1), R9
	LEAQ (R9)(DX*1), R10
	LEAQ (R10)(DX*1), R11
	MOVBLZX acc+64(FP), AX
	TESTL AX, AX
	JEQ sput
	VADDPS (R8), Z0, Z0
	VADDPS 64(R8), Z1, Z1
	VADDPS (R9), Z2, Z2
	VADDPS 64(R9), Z3, Z3
	VADDPS (R10), Z4, Z4
	VADDPS 64(R10), Z5, Z5
	VADDPS (R11), Z6, Z6
	VADDPS 64(R11), Z7, Z7

sput:
	STORE4x32
	VZEROUPPER
	FTZ_LEAVE
	RET

// func sgemmKernel4x32T9(k int, a *float32, sr, ta int, b *float32, ldb int, offs *[9]int, seg int, c *float32, ldc int, nt int)
// The taps of a convolution (up to nine: a 3×3 kernel's) in one call
// (implicitGemm): c[r][j] =
// Σ_{t<nt} Σ_l a[t·ta + r·sr + l]·b[offs[t] + l·ldb + j′] for r < 4, j < 32,
// j′ = j for j < 16 and seg + j − 16 after (seg = 16: 32 contiguous columns),
// accumulated in registers over the taps and stored once (sgemmKernel4x32S
// nine times would load and store the tile nine times).
TEXT ·sgemmKernel4x32T9(SB), NOSPLIT, $8-88
	FTZ_ENTER
	TAPARGS
	ZERO8(Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7)

t9tap:
	MOVQ (R11), DI
	SHLQ $2, DI
	ADDQ R10, DI
	MOVQ R9, SI
	MOVQ k+0(FP), CX
	TESTQ CX, CX
	JEQ t9next

t9loop:
	STEP4x32S((DI)(DX*1))
	ADDQ R12, DI
	ADDQ $4, SI
	DECQ CX
	JNZ t9loop

t9next:
	ADDQ R13, R9
	ADDQ $8, R11
	DECQ AX
	JNZ t9tap

	TAPSTORE4
	VZEROUPPER
	FTZ_LEAVE
	RET

// func sgemmKernel8x32T9(k int, a *float32, sr, ta int, b *float32, ldb int, offs *[9]int, seg int, c *float32, ldc int, nt int)
// sgemmKernel4x32T9 for eight rows of A (r < 8): sixteen accumulators, so
// each B step's two registers feed sixteen FMAs instead of eight (half the
// B traffic per product).
TEXT ·sgemmKernel8x32T9(SB), NOSPLIT, $8-88
	FTZ_ENTER
	TAPARGS
	ZERO8(Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7)
	ZERO8(Z8, Z9, Z10, Z11, Z12, Z13, Z14, Z15)

e9tap:
	MOVQ (R11), DI
	SHLQ $2, DI
	ADDQ R10, DI
	MOVQ R9, SI
	LEAQ (R9)(R14*4), R8
	MOVQ k+0(FP), CX
	TESTQ CX, CX
	JEQ e9next

e9loop:
	VMOVUPS (DI), Z16
	VMOVUPS (DI)(DX*1), Z17
	FMA4ROWS(SI, Z16, Z17, Z18, Z19, Z20, Z21, Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7)
	FMA4ROWS(R8, Z16, Z17, Z22, Z23, Z24, Z25, Z8, Z9, Z10, Z11, Z12, Z13, Z14, Z15)
	ADDQ R12, DI
	ADDQ $4, SI
	ADDQ $4, R8
	DECQ CX
	JNZ e9loop

e9next:
	ADDQ R13, R9
	ADDQ $8, R11
	DECQ AX
	JNZ e9tap

	TAPSTORE8
	VZEROUPPER
	FTZ_LEAVE
	RET

// func sgemmKernel4x32T9Q(k int, a *float32, sr, ta int, b *float32, ldb int, offs *[9]int, q int, c *float32, ldc int, nt int)
// sgemmKernel4x32T9 for planes eight wide: the 32 columns of the tile are
// four rows of eight, B's at b + offs[t] + l·ldb + {0, q, 2q, 3q} (q the
// phase planes' row stride), so that an 8-wide output is computed without
// the widened grid's junk columns and ragged panels (implicitGemmCompact).
TEXT ·sgemmKernel4x32T9Q(SB), NOSPLIT, $8-88
	FTZ_ENTER
	TAPARGS
	ZERO8(Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7)

q4tap:
	MOVQ (R11), DI
	SHLQ $2, DI
	ADDQ R10, DI
	LEAQ (DI)(DX*2), R15
	MOVQ R9, SI
	MOVQ k+0(FP), CX
	TESTQ CX, CX
	JEQ q4next

q4loop:
	QLOAD(Y8, Z8, Y9, Z9)
	FMA4ROWS(SI, Z8, Z9, Z10, Z11, Z12, Z13, Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7)
	ADDQ R12, DI
	ADDQ R12, R15
	ADDQ $4, SI
	DECQ CX
	JNZ q4loop

q4next:
	ADDQ R13, R9
	ADDQ $8, R11
	DECQ AX
	JNZ q4tap

	TAPSTORE4
	VZEROUPPER
	FTZ_LEAVE
	RET

// func sgemmKernel8x32T9Q(k int, a *float32, sr, ta int, b *float32, ldb int, offs *[9]int, q int, c *float32, ldc int, nt int)
// sgemmKernel4x32T9Q for eight rows of A, as sgemmKernel8x32T9 (its B
// registers' lower halves Y16, Y17 need AVX-512VL).
TEXT ·sgemmKernel8x32T9Q(SB), NOSPLIT, $8-88
	FTZ_ENTER
	TAPARGS
	ZERO8(Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7)
	ZERO8(Z8, Z9, Z10, Z11, Z12, Z13, Z14, Z15)

q8tap:
	MOVQ (R11), DI
	SHLQ $2, DI
	ADDQ R10, DI
	LEAQ (DI)(DX*2), R15
	MOVQ R9, SI
	LEAQ (R9)(R14*4), R8
	MOVQ k+0(FP), CX
	TESTQ CX, CX
	JEQ q8next

q8loop:
	QLOAD(Y16, Z16, Y17, Z17)
	FMA4ROWS(SI, Z16, Z17, Z18, Z19, Z20, Z21, Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7)
	FMA4ROWS(R8, Z16, Z17, Z22, Z23, Z24, Z25, Z8, Z9, Z10, Z11, Z12, Z13, Z14, Z15)
	ADDQ R12, DI
	ADDQ R12, R15
	ADDQ $4, SI
	ADDQ $4, R8
	DECQ CX
	JNZ q8loop

q8next:
	ADDQ R13, R9
	ADDQ $8, R11
	DECQ AX
	JNZ q8tap

	TAPSTORE8
	VZEROUPPER
	FTZ_LEAVE
	RET
