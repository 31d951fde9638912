package nn

import "sync"

// A float32 GEMM for the pure-Go build on CPUs with AVX and FMA: op(A) and
// op(B) are packed into 4-row blocks ([k][4]) and 16-column panels
// ([k][16]) per slice of kc along k, and a 4×16 assembly micro-kernel
// (sgemm_amd64.s) accumulates each tile in registers. Transposed operands
// cost nothing extra (the packing reads them in place). gonum's pure-Go
// Sgemm runs at ~10 GFLOP/s on the conv shapes; this runs several times
// faster. Elsewhere (or with the purego tag) gonum is used.

const (
	sgemmMR = 4
	sgemmNR = 16
	sgemmKC = 256
)

type sgemmBufs struct {
	a, b []float32
	tile [sgemmMR * sgemmNR]float32
}

// sgemmFree is a free list of packing buffers (one per concurrent call).
// Unlike a sync.Pool it is not emptied by the garbage collector, so steady
// state allocates nothing.
var sgemmFree struct {
	sync.Mutex
	list []*sgemmBufs
}

func getSgemmBufs() *sgemmBufs {
	sgemmFree.Lock()
	defer sgemmFree.Unlock()
	if n := len(sgemmFree.list); n > 0 {
		b := sgemmFree.list[n-1]
		sgemmFree.list = sgemmFree.list[:n-1]
		return b
	}
	return new(sgemmBufs)
}

func putSgemmBufs(b *sgemmBufs) {
	sgemmFree.Lock()
	sgemmFree.list = append(sgemmFree.list, b)
	sgemmFree.Unlock()
}

func growF32(b *[]float32, n int) []float32 {
	if cap(*b) < n {
		*b = make([]float32, n)
	}
	return (*b)[:n]
}

// sgemmNative computes C = alpha·op(A)·op(B) + beta·C (row-major, op(A)
// m×k, op(B) k×n). With beta = 0, C is not read.
func sgemmNative(bufs *sgemmBufs, tA, tB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if k == 0 || alpha == 0 {
		for i := 0; i < m; i++ {
			row := c[i*ldc : i*ldc+n]
			if beta == 0 {
				clear(row)
				continue
			}
			for j := range row {
				row[j] *= beta
			}
		}
		return
	}
	np := (n + sgemmNR - 1) / sgemmNR
	for k0 := 0; k0 < k; k0 += sgemmKC {
		kb := min(sgemmKC, k-k0)
		bp := growF32(&bufs.b, np*kb*sgemmNR)
		packB32(tB, b, ldb, k0, kb, n, bp)
		ap := growF32(&bufs.a, kb*sgemmMR)
		first := k0 == 0
		for i0 := 0; i0 < m; i0 += sgemmMR {
			mr := min(sgemmMR, m-i0)
			packA32(tA, a, lda, i0, mr, k0, kb, ap)
			for jp := 0; jp < np; jp++ {
				j0 := jp * sgemmNR
				nr := min(sgemmNR, n-j0)
				if mr == sgemmMR && nr == sgemmNR && alpha == 1 && (!first || beta == 0 || beta == 1) {
					// Full tile, unit alpha: straight into C.
					sgemmKernel4x16C(kb, &ap[0], &bp[jp*kb*sgemmNR], &c[i0*ldc+j0], ldc, !first || beta == 1)
					continue
				}
				sgemmKernel4x16(kb, &ap[0], &bp[jp*kb*sgemmNR], &bufs.tile[0])
				for r := 0; r < mr; r++ {
					crow := c[(i0+r)*ldc+j0 : (i0+r)*ldc+j0+nr]
					t := bufs.tile[r*sgemmNR : r*sgemmNR+nr]
					switch {
					case !first:
						for j, v := range t {
							crow[j] += alpha * v
						}
					case beta == 0:
						for j, v := range t {
							crow[j] = alpha * v
						}
					default:
						for j, v := range t {
							crow[j] = beta*crow[j] + alpha*v
						}
					}
				}
			}
		}
	}
}

// packB32 writes rows [k0, k0+kb) of op(B) (k×n) as 16-column panels
// [kb][16], zero-padded past column n.
func packB32(tB bool, b []float32, ldb, k0, kb, n int, bp []float32) {
	np := (n + sgemmNR - 1) / sgemmNR
	for jp := 0; jp < np; jp++ {
		j0 := jp * sgemmNR
		nr := min(sgemmNR, n-j0)
		dst := bp[jp*kb*sgemmNR : (jp+1)*kb*sgemmNR]
		if !tB {
			if nr == sgemmNR {
				for l := 0; l < kb; l++ {
					o := (k0+l)*ldb + j0
					*(*[sgemmNR]float32)(dst[l*sgemmNR:]) = *(*[sgemmNR]float32)(b[o : o+sgemmNR])
				}
				continue
			}
			for l := 0; l < kb; l++ {
				row := dst[l*sgemmNR : (l+1)*sgemmNR]
				copy(row, b[(k0+l)*ldb+j0:(k0+l)*ldb+j0+nr])
				clear(row[nr:])
			}
			continue
		}
		if nr < sgemmNR {
			clear(dst)
		}
		for j := 0; j < nr; j++ {
			src := b[(j0+j)*ldb+k0 : (j0+j)*ldb+k0+kb]
			for l, v := range src {
				dst[l*sgemmNR+j] = v
			}
		}
	}
}

// packA32 writes rows [i0, i0+mr) and columns [k0, k0+kb) of op(A) as a
// [kb][4] block, zero-padded past row mr.
func packA32(tA bool, a []float32, lda, i0, mr, k0, kb int, ap []float32) {
	if mr < sgemmMR {
		clear(ap)
	}
	if !tA {
		for r := 0; r < mr; r++ {
			src := a[(i0+r)*lda+k0 : (i0+r)*lda+k0+kb]
			for l, v := range src {
				ap[l*sgemmMR+r] = v
			}
		}
		return
	}
	for l := 0; l < kb; l++ {
		copy(ap[l*sgemmMR:l*sgemmMR+mr], a[(k0+l)*lda+i0:(k0+l)*lda+i0+mr])
	}
}
