package nn

// gemmABtDot computes C = A·Bᵀ (beta 0) or C += A·Bᵀ (acc) for row-major
// A [m, k] and B [n, k], both read in place, as dot products along k with
// the AVX-512 kernel sdotKernel4x4: no operand is packed or transposed,
// which pays where k is long and m, n small (the conv weight gradient
// gy[n]·colsᵀ with OH·OW = k). The kernel's 16 lane sums of each product
// are added in a fixed tree. It takes what canDot accepts only.
func gemmABtDot(m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, acc bool, buf *[16]float32) {
	// Columns of C outer, so the four rows of B stay in cache across A's
	// row blocks.
	for j0 := 0; j0 < n; j0 += 4 {
		for i0 := 0; i0 < m; i0 += 4 {
			sdotKernel4x4(k, &a[i0*lda], lda, &b[j0*ldb], ldb, &buf[0])
			for i := 0; i < 4; i++ {
				row := c[(i0+i)*ldc+j0 : (i0+i)*ldc+j0+4]
				for j := range row {
					s := buf[i*4+j]
					if acc {
						row[j] += s
					} else {
						row[j] = s
					}
				}
			}
		}
	}
}

// canDot reports whether gemmABtDot takes these sizes on this CPU.
func canDot(m, n, k int) bool {
	return haveAVX512 && m%4 == 0 && n%4 == 0 && k >= dotMinK && k%16 == 0
}

// dotMinK is the shortest k gemmABtDot takes: below it the kernel's fixed
// cost per 4×4 block (16 horizontal sums) outweighs the packing it saves
// (BenchmarkConvBwdW, CPU time: at k = 1024 (ResNet-20's first stage)
// 21 ms against 29 for the best gemm form; at k = 256 32 against 16).
const dotMinK = 512
