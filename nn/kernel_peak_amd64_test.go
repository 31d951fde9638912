//go:build !openblas && !purego

package nn

import "testing"

// BenchmarkSgemmKernelL1 runs the strided 4×32 AVX-512 kernel on operands
// that stay in L1 (k = 256: A 4 KiB, B 32 KiB) and reports its GFLOP/s on
// one core: the ceiling the convolutions' products are measured against.
//
//	go test ./nn -run '^$' -bench SgemmKernelL1 -cpu 1
func BenchmarkSgemmKernelL1(b *testing.B) {
	if !haveAVX512 {
		b.Skip("no AVX-512 kernels on this CPU")
	}
	const k = 256
	a, bm, c := make([]float32, 4*k), make([]float32, 32*k), make([]float32, 4*32)
	for i := range a {
		a[i] = 1e-3
	}
	for i := range bm {
		bm[i] = 1e-3
	}
	const calls = 1000
	for b.Loop() {
		for range calls {
			sgemmKernel4x32S(k, &a[0], 1, k, &bm[0], 32, &c[0], 32, false)
		}
	}
	flops := float64(b.N) * calls * k * 4 * 32 * 2
	b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}
