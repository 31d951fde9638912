//go:build !openblas && !purego

package nn

import (
	"math"
	"runtime"
	"testing"
)

// TestSgemmKernelsFlushSubnormals checks that every float32 GEMM kernel
// treats a subnormal input as zero (MXCSR's DAZ, set for the kernel's
// duration: subnormals enter FMAs through slow microcode assists) and
// gives the caller's MXCSR back: a subnormal product in Go code after the
// call is still subnormal, not flushed.
func TestSgemmKernelsFlushSubnormals(t *testing.T) {
	if !haveSgemmKernel {
		t.Skip("no AVX/FMA kernels on this CPU")
	}
	runtime.LockOSThread() // the MXCSR checked afterwards is this thread's
	defer runtime.UnlockOSThread()
	sub := math.Float32frombits(0x0000_8000) // 2^-133·… a subnormal float32
	const big = float32(1e10)
	kernels := map[string]func(a, b, c []float32, nr int){
		"4x16": func(a, b, c []float32, nr int) { sgemmKernel4x16(1, &a[0], &b[0], nr, &c[0]) },
		"4x16C": func(a, b, c []float32, nr int) {
			sgemmKernel4x16C(1, &a[0], &b[0], nr, &c[0], nr, false)
		},
	}
	if haveAVX512 {
		kernels["4x32"] = func(a, b, c []float32, nr int) { sgemmKernel4x32(1, &a[0], &b[0], nr, &c[0]) }
		kernels["4x32C"] = func(a, b, c []float32, nr int) {
			sgemmKernel4x32C(1, &a[0], &b[0], nr, &c[0], nr, false)
		}
		kernels["4x32S"] = func(a, b, c []float32, nr int) {
			sgemmKernel4x32S(1, &a[0], 1, 1, &b[0], nr, &c[0], nr, false)
		}
	}
	for name, run := range kernels {
		nr := 16
		if name[2] == '3' {
			nr = 32
		}
		a := []float32{sub, 1, 2, 3}
		b := make([]float32, nr)
		for j := range b {
			b[j] = big
		}
		c := make([]float32, 4*nr)
		run(a, b, c, nr)
		for j := 0; j < nr; j++ {
			if c[j] != 0 {
				t.Fatalf("kernel %s: subnormal·%g = %g, want 0 (DAZ)", name, big, c[j])
			}
			for r := 1; r < 4; r++ {
				if want := float32(r) * big; c[r*nr+j] != want {
					t.Fatalf("kernel %s: c[%d,%d] = %g, want %g", name, r, j, c[r*nr+j], want)
				}
			}
		}
		// A product the compiler cannot fold: 1e-20·len(name)/len(name)
		// squared, about 1e-40, is subnormal unless FTZ is still on.
		x := float32(len(name)) * 1e-20 / float32(len(name))
		if y := x * x; math.Float32bits(y) == 0 {
			t.Fatalf("kernel %s left FTZ on: (1e-20)² = 0 after the call, want a subnormal", name)
		}
	}
}

// TestNineTapKernelsFlushSubnormals is TestSgemmKernelsFlushSubnormals for
// the implicit convolution's tap kernels (4 and 8 rows, both column layouts
// of the 16-wide kernels and the quarter-row kernels' rows of eight): tap
// 0 multiplies row r's a = r (row 0 subnormal) by B = 10¹⁰, the other taps
// read zeros, and MXCSR is restored afterwards.
func TestNineTapKernelsFlushSubnormals(t *testing.T) {
	if !haveAVX512 {
		t.Skip("no AVX-512 kernels on this CPU")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	sub := math.Float32frombits(0x0000_8000)
	const big = float32(1e10)
	for _, rows := range []int{4, 8} {
		// seg: the 16-wide kernels' second half; q: the quarter rows' stride
		for _, lay := range []struct{ seg, q int }{{16, 0}, {18, 0}, {0, 10}} {
			if lay.q > 0 && rows == 8 && !haveAVX512VL {
				continue
			}
			a := []float32{sub, 1, 2, 3, 4, 5, 6, 7}
			b := make([]float32, 96) // the tile's 32 columns; zeros from 48
			for j := 0; j < 16; j++ {
				if lay.q > 0 {
					b[(j/8)*lay.q+j%8], b[(2+j/8)*lay.q+j%8] = big, big
					continue
				}
				b[j], b[lay.seg+j] = big, big
			}
			offs := [9]int{0, 48, 48, 48, 48, 48, 48, 48, 48}
			c := make([]float32, rows*32)
			switch {
			case lay.q > 0 && rows == 4:
				sgemmKernel4x32T9Q(1, &a[0], 1, 0, &b[0], 0, &offs, lay.q, &c[0], 32, 9)
			case lay.q > 0:
				sgemmKernel8x32T9Q(1, &a[0], 1, 0, &b[0], 0, &offs, lay.q, &c[0], 32, 9)
			case rows == 4:
				sgemmKernel4x32T9(1, &a[0], 1, 0, &b[0], 0, &offs, lay.seg, &c[0], 32, 9)
			default:
				sgemmKernel8x32T9(1, &a[0], 1, 0, &b[0], 0, &offs, lay.seg, &c[0], 32, 9)
			}
			for r := 0; r < rows; r++ {
				for j := 0; j < 32; j++ {
					if want := float32(r) * big; c[r*32+j] != want {
						t.Fatalf("%d-row kernel, layout %+v: c[%d,%d] = %g, want %g (row 0: subnormal·%g flushed)", rows, lay, r, j, c[r*32+j], want, big)
					}
				}
			}
			x := float32(rows+lay.seg+lay.q) * 1e-20 / float32(rows+lay.seg+lay.q)
			if y := x * x; math.Float32bits(y) == 0 {
				t.Fatalf("%d-row kernel, layout %+v, left FTZ on", rows, lay)
			}
		}
	}
}
