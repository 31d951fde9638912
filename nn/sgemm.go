package nn

import (
	"sync"
	"unsafe"
)

// A GEMM for the pure-Go build on CPUs with AVX and FMA: op(A) and op(B)
// are packed into 4-row blocks ([k][4]) and NR-column panels ([k][NR]) per
// slice of kc along k, and an assembly micro-kernel (sgemm_amd64.s: 4×16
// for float32, 4×32 on CPUs with AVX-512, 4×8 for float64) accumulates each
// 4×NR tile in registers and
// stores full tiles straight into C. Transposed operands cost nothing extra
// (the packing reads them in place). gonum's pure-Go GEMM runs at ~10
// GFLOP/s on the conv shapes; this runs several times faster. Elsewhere (or
// with the purego tag) gonum is used.

const (
	sgemmMR = 4
	sgemmKC = 256
)

// nrOf is the micro-kernel's tile width for element type T: 64 bytes (one
// AVX2 kernel row of two 32-byte registers), or 32 float32s (two 64-byte
// registers) with the AVX-512 kernel.
func nrOf[T Float]() int {
	var z T
	if unsafe.Sizeof(z) == 4 && haveAVX512 {
		return 32
	}
	return 64 / int(unsafe.Sizeof(z))
}

// sgemmBufs are the packing buffers of one GEMM call (one per concurrent
// caller), for either element type.
type sgemmBufs struct {
	a32, b32 []float32
	a64, b64 []float64
	tile     [2 * sgemmMR * 128]byte // one 8×NR tile (implicitGemm's eight-row kernel), or 4×NR
}

func bufsFor[T Float](bf *sgemmBufs) (a, b *[]T, tile []T) {
	var z T
	switch any(z).(type) {
	case float32:
		a, b = any(&bf.a32).(*[]T), any(&bf.b32).(*[]T)
	default:
		a, b = any(&bf.a64).(*[]T), any(&bf.b64).(*[]T)
	}
	tile = unsafe.Slice((*T)(unsafe.Pointer(&bf.tile[0])), len(bf.tile)/int(unsafe.Sizeof(z)))
	return a, b, tile
}

// sgemmFree is a free list of packing buffers for callers that do not own
// any. Unlike a sync.Pool it is not emptied by the garbage collector, so
// steady state allocates nothing.
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

func growT[T Float](b *[]T, n int) []T {
	if cap(*b) < n {
		*b = make([]T, n)
	}
	return (*b)[:n]
}

// kernel runs the 4×NR micro-kernel on the packed block a and the panel b
// (rows ldb elements apart) into tile (c nil) or straight into C with row
// stride ldc (C = tile, or C += tile when acc).
func kernel[T Float](k int, a []T, b *T, ldb int, c *T, ldc int, acc bool, tile []T) {
	switch a := any(a).(type) {
	case []float32:
		b := (*float32)(unsafe.Pointer(b))
		if haveAVX512 {
			if c == nil {
				sgemmKernel4x32(k, &a[0], b, ldb, &any(tile).([]float32)[0])
				return
			}
			sgemmKernel4x32C(k, &a[0], b, ldb, (*float32)(unsafe.Pointer(c)), ldc, acc)
			return
		}
		if c == nil {
			sgemmKernel4x16(k, &a[0], b, ldb, &any(tile).([]float32)[0])
			return
		}
		sgemmKernel4x16C(k, &a[0], b, ldb, (*float32)(unsafe.Pointer(c)), ldc, acc)
	case []float64:
		b := (*float64)(unsafe.Pointer(b))
		if c == nil {
			dgemmKernel4x8(k, &a[0], b, ldb, &any(tile).([]float64)[0])
			return
		}
		dgemmKernel4x8C(k, &a[0], b, ldb, (*float64)(unsafe.Pointer(c)), ldc, acc)
	}
}

// kernelS runs the float32 AVX-512 kernel with A read in place (row r,
// step l at a + l·sa + r·sr) into C with row stride ldc (C = tile, or
// C += tile when acc). Only called when nrOf[T]() == 32.
func kernelS[T Float](k int, a *T, sa, sr int, b *T, ldb int, c *T, ldc int, acc bool) {
	sgemmKernel4x32S(k, (*float32)(unsafe.Pointer(a)), sa, sr, (*float32)(unsafe.Pointer(b)), ldb, (*float32)(unsafe.Pointer(c)), ldc, acc)
}

// kernelT9 runs the float32 AVX-512 tap kernel (sgemmKernel4x32T9): C =
// Σ over the taps t < nt (at most nine) of A_t·B_t, A_t's row r, step l at
// a + t·ta + r·sr + l, B_t's step l at b + offs[t] + l·ldb, its columns
// 16…31 seg elements after its columns 0…15 (16: contiguous). Only called
// when nrOf[T]() == 32.
func kernelT9[T Float](k int, a *T, sr, ta int, b *T, ldb int, offs *[9]int, seg int, c *T, ldc int, nt int) {
	sgemmKernel4x32T9(k, (*float32)(unsafe.Pointer(a)), sr, ta, (*float32)(unsafe.Pointer(b)), ldb, offs, seg, (*float32)(unsafe.Pointer(c)), ldc, nt)
}

// kernelT9x8 is kernelT9 for eight rows of A (sgemmKernel8x32T9).
func kernelT9x8[T Float](k int, a *T, sr, ta int, b *T, ldb int, offs *[9]int, seg int, c *T, ldc int, nt int) {
	sgemmKernel8x32T9(k, (*float32)(unsafe.Pointer(a)), sr, ta, (*float32)(unsafe.Pointer(b)), ldb, offs, seg, (*float32)(unsafe.Pointer(c)), ldc, nt)
}

// kernelT9Q is kernelT9 for 8-wide planes (sgemmKernel4x32T9Q): the tile's
// 32 columns are four rows of eight, B's at offsets 0, q, 2q and 3q.
func kernelT9Q[T Float](k int, a *T, sr, ta int, b *T, ldb int, offs *[9]int, q int, c *T, ldc int, nt int) {
	sgemmKernel4x32T9Q(k, (*float32)(unsafe.Pointer(a)), sr, ta, (*float32)(unsafe.Pointer(b)), ldb, offs, q, (*float32)(unsafe.Pointer(c)), ldc, nt)
}

// kernelT9Qx8 is kernelT9Q for eight rows of A (sgemmKernel8x32T9Q; needs
// haveAVX512VL).
func kernelT9Qx8[T Float](k int, a *T, sr, ta int, b *T, ldb int, offs *[9]int, q int, c *T, ldc int, nt int) {
	sgemmKernel8x32T9Q(k, (*float32)(unsafe.Pointer(a)), sr, ta, (*float32)(unsafe.Pointer(b)), ldb, offs, q, (*float32)(unsafe.Pointer(c)), ldc, nt)
}

// gemmNative computes C = alpha·op(A)·op(B) + beta·C (row-major, op(A)
// m×k, op(B) k×n). With beta = 0, C is not read.
func gemmNative[T Float](bufs *sgemmBufs, tA, tB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
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
	nr0 := nrOf[T]()
	abuf, bbuf, tile := bufsFor[T](bufs)
	inPlaceA := nr0 == 32 // the float32 AVX-512 kernel
	np := (n + nr0 - 1) / nr0
	for k0 := 0; k0 < k; k0 += sgemmKC {
		kb := min(sgemmKC, k-k0)
		bp := growT(bbuf, np*kb*nr0)
		if tB {
			packB(tB, b, ldb, k0, kb, n, nr0, bp)
		} else if n%nr0 != 0 {
			// Untransposed B is read in place (rows ldb apart) except for
			// a ragged last panel, packed with zero padding.
			packB(false, b[(np-1)*nr0:], ldb, k0, kb, n-(np-1)*nr0, nr0, bp[(np-1)*kb*nr0:])
		}
		ap := growT(abuf, kb*sgemmMR)
		first := k0 == 0
		for i0 := 0; i0 < m; i0 += sgemmMR {
			mr := min(sgemmMR, m-i0)
			// A full row block is read in place where the kernel can
			// (AVX-512: row r, step l at a + l·sa + r·sr); others are packed.
			var ain *T
			var sa, sr int
			if inPlaceA && mr == sgemmMR {
				if tA {
					ain, sa, sr = &a[k0*lda+i0], lda, 1
				} else {
					ain, sa, sr = &a[i0*lda+k0], 1, lda
				}
			} else {
				packA(tA, a, lda, i0, mr, k0, kb, ap)
			}
			for jp := 0; jp < np; jp++ {
				j0 := jp * nr0
				nr := min(nr0, n-j0)
				panel, pld := &bp[jp*kb*nr0], nr0
				if !tB && nr == nr0 {
					panel, pld = &b[k0*ldb+j0], ldb
				}
				if mr == sgemmMR && nr == nr0 && alpha == 1 && (!first || beta == 0 || beta == 1) {
					// Full tile, unit alpha: straight into C.
					if ain != nil {
						kernelS(kb, ain, sa, sr, panel, pld, &c[i0*ldc+j0], ldc, !first || beta == 1)
						continue
					}
					kernel(kb, ap, panel, pld, &c[i0*ldc+j0], ldc, !first || beta == 1, nil)
					continue
				}
				if ain != nil {
					kernelS(kb, ain, sa, sr, panel, pld, &tile[0], nr0, false)
				} else {
					kernel(kb, ap, panel, pld, nil, 0, false, tile)
				}
				for r := 0; r < mr; r++ {
					crow := c[(i0+r)*ldc+j0 : (i0+r)*ldc+j0+nr]
					t := tile[r*nr0 : r*nr0+nr]
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

// packB writes rows [k0, k0+kb) of op(B) (k×n) as nr0-column panels
// [kb][nr0], zero-padded past column n.
func packB[T Float](tB bool, b []T, ldb, k0, kb, n, nr0 int, bp []T) {
	np := (n + nr0 - 1) / nr0
	for jp := 0; jp < np; jp++ {
		j0 := jp * nr0
		nr := min(nr0, n-j0)
		dst := bp[jp*kb*nr0 : (jp+1)*kb*nr0]
		if !tB {
			if nr == nr0 {
				// Whole rows of a panel: copied as arrays (no per-element loop).
				switch bb := any(b).(type) {
				case []float32:
					d := any(dst).([]float32)
					if nr0 == 32 {
						for l := 0; l < kb; l++ {
							o := (k0+l)*ldb + j0
							*(*[32]float32)(d[l*32:]) = *(*[32]float32)(bb[o : o+32])
						}
						break
					}
					for l := 0; l < kb; l++ {
						o := (k0+l)*ldb + j0
						*(*[16]float32)(d[l*16:]) = *(*[16]float32)(bb[o : o+16])
					}
				case []float64:
					d := any(dst).([]float64)
					for l := 0; l < kb; l++ {
						o := (k0+l)*ldb + j0
						*(*[8]float64)(d[l*8:]) = *(*[8]float64)(bb[o : o+8])
					}
				}
				continue
			}
			for l := 0; l < kb; l++ {
				row := dst[l*nr0 : (l+1)*nr0]
				copy(row, b[(k0+l)*ldb+j0:(k0+l)*ldb+j0+nr])
				clear(row[nr:])
			}
			continue
		}
		if nr < nr0 {
			clear(dst)
		}
		j := 0
		for ; j+8 <= nr; j += 8 {
			// Eight source rows at a time: eight sequential reads, one
			// 8-element (32-byte) write per l.
			o := (j0+j)*ldb + k0
			s0, s1 := b[o:o+kb], b[o+ldb:o+ldb+kb]
			s2, s3 := b[o+2*ldb:o+2*ldb+kb], b[o+3*ldb:o+3*ldb+kb]
			s4, s5 := b[o+4*ldb:o+4*ldb+kb], b[o+5*ldb:o+5*ldb+kb]
			s6, s7 := b[o+6*ldb:o+6*ldb+kb], b[o+7*ldb:o+7*ldb+kb]
			for l := range s0 {
				d := dst[l*nr0+j : l*nr0+j+8 : l*nr0+j+8]
				d[0], d[1], d[2], d[3] = s0[l], s1[l], s2[l], s3[l]
				d[4], d[5], d[6], d[7] = s4[l], s5[l], s6[l], s7[l]
			}
		}
		for ; j+4 <= nr; j += 4 {
			// Four source rows at a time: four sequential reads, one
			// 4-element write per l.
			o := (j0+j)*ldb + k0
			s0, s1 := b[o:o+kb], b[o+ldb:o+ldb+kb]
			s2, s3 := b[o+2*ldb:o+2*ldb+kb], b[o+3*ldb:o+3*ldb+kb]
			for l := range s0 {
				d := dst[l*nr0+j : l*nr0+j+4 : l*nr0+j+4]
				d[0], d[1], d[2], d[3] = s0[l], s1[l], s2[l], s3[l]
			}
		}
		for ; j < nr; j++ {
			src := b[(j0+j)*ldb+k0 : (j0+j)*ldb+k0+kb]
			for l, v := range src {
				dst[l*nr0+j] = v
			}
		}
	}
}

// packA writes rows [i0, i0+mr) and columns [k0, k0+kb) of op(A) as a
// [kb][4] block, zero-padded past row mr.
func packA[T Float](tA bool, a []T, lda, i0, mr, k0, kb int, ap []T) {
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
