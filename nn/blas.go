package nn

import "gonum.org/v1/gonum/blas"

// gemmer is the part of a BLAS implementation the kernels use. The pure-Go
// gonum implementation is the default; building with the openblas tag
// substitutes OpenBLAS through gonum's netlib bindings.
type gemmer interface {
	Sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)
	Dgemm(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int)
}

// gemm computes C = alpha·op(A)·op(B) + beta·C for row-major A, B, C with
// op(A) of shape m×k and op(B) of shape k×n.
func gemm[T Float](tA, tB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	gemmBuf(nil, tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// gemmBuf is gemm with the native kernel's packing buffers supplied by the
// caller (an op's own, per worker, so that their sizes settle after the
// first run); nil takes them from a shared free list.
func gemmBuf[T Float](buf *sgemmBufs, tA, tB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	ta, tb := blas.NoTrans, blas.NoTrans
	if tA {
		ta = blas.Trans
	}
	if tB {
		tb = blas.Trans
	}
	impl := blasImpl()
	switch a := any(a).(type) {
	case []float64:
		if haveSgemmKernel {
			if buf == nil {
				buf = getSgemmBufs()
				defer putSgemmBufs(buf)
			}
			gemmNative(buf, tA, tB, m, n, k, float64(alpha), a, lda, any(b).([]float64), ldb, float64(beta), any(c).([]float64), ldc)
			return
		}
		impl.Dgemm(ta, tb, m, n, k, float64(alpha), a, lda, any(b).([]float64), ldb, float64(beta), any(c).([]float64), ldc)
	case []float32:
		if haveSgemmKernel {
			if buf == nil {
				buf = getSgemmBufs()
				defer putSgemmBufs(buf)
			}
			gemmNative(buf, tA, tB, m, n, k, float32(alpha), a, lda, any(b).([]float32), ldb, float32(beta), any(c).([]float32), ldc)
			return
		}
		impl.Sgemm(ta, tb, m, n, k, float32(alpha), a, lda, any(b).([]float32), ldb, float32(beta), any(c).([]float32), ldc)
	}
}

// transposeCheap reports whether gemm takes transposed operands of element
// type T at full speed (OpenBLAS, or the native kernels). Pure-Go
// gonum computes A·Bᵀ with slow dot products, so callers transpose first.
func transposeCheap[T Float]() bool {
	if BLASBackend != "gonum" {
		return true
	}
	return haveSgemmKernel
}
