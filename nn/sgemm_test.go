package nn

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// TestGemm32MatchesReference checks the float32 GEMM the kernels use
// (native kernel where available) against gonum in float64, for all
// transpose combinations, ragged sizes, strides and beta.
func TestGemm32MatchesReference(t *testing.T) { testGemmMatchesReference[float32](t, 1e-4) }

// TestGemm32AVX2MatchesReference runs the float32 check on the AVX2 4×16
// kernel also where the AVX-512 4×32 one would be used.
func TestGemm32AVX2MatchesReference(t *testing.T) {
	if !haveAVX512 {
		t.Skip("no AVX-512 here: TestGemm32MatchesReference already uses the AVX2 kernel")
	}
	haveAVX512 = false
	defer func() { haveAVX512 = true }()
	testGemmMatchesReference[float32](t, 1e-4)
}

// TestGemm64MatchesReference is the float64 version.
func TestGemm64MatchesReference(t *testing.T) { testGemmMatchesReference[float64](t, 1e-12) }

func testGemmMatchesReference[T Float](t *testing.T, tol float64) {
	rng := rand.New(rand.NewPCG(7, 8))
	sizes := [][3]int{{8, 32, 600}, {1, 1, 1}, {3, 5, 7}, {4, 16, 1}, {5, 17, 300}, {32, 27, 1024}, {64, 288, 256}, {17, 33, 513}, {128, 10, 784}}
	for _, sz := range sizes {
		m, n, k := sz[0], sz[1], sz[2]
		for _, tA := range []bool{false, true} {
			for _, tB := range []bool{false, true} {
				for _, ab := range [][2]T{{1.5, 0}, {1.5, 1}, {1.5, 0.5}, {1, 0}, {1, 1}, {1, 0.5}} {
					alpha, beta := ab[0], ab[1]
					ra, ca := m, k
					if tA {
						ra, ca = k, m
					}
					rb, cb := k, n
					if tB {
						rb, cb = n, k
					}
					lda, ldb, ldc := ca+2, cb+1, n+3
					a, b, c := make([]T, ra*lda), make([]T, rb*ldb), make([]T, m*ldc)
					for _, s := range [][]T{a, b, c} {
						for i := range s {
							s[i] = T(rng.NormFloat64())
						}
					}
					if beta == 0 {
						for i := range c {
							c[i] = T(math.NaN()) // must not be read
						}
					}
					a64, b64, c64 := f64(a), f64(b), f64(c)
					if beta == 0 {
						clear(c64)
					}
					ta, tb := blas.NoTrans, blas.NoTrans
					if tA {
						ta = blas.Trans
					}
					if tB {
						tb = blas.Trans
					}
					gonum.Implementation{}.Dgemm(ta, tb, m, n, k, float64(alpha), a64, lda, b64, ldb, float64(beta), c64, ldc)
					gemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
					for i := 0; i < m; i++ {
						for j := 0; j < n; j++ {
							want, got := c64[i*ldc+j], float64(c[i*ldc+j])
							require.InDelta(t, want, got, tol*math.Sqrt(float64(k))*(1+math.Abs(want)), "m%d n%d k%d tA %v tB %v alpha %v beta %v at %d,%d", m, n, k, tA, tB, alpha, beta, i, j)
						}
						for j := n; j < ldc && beta != 0; j++ {
							require.Equal(t, T(c64[i*ldc+j]), c[i*ldc+j], "padding written")
						}
					}
				}
			}
		}
	}
}

func f64[T Float](s []T) []float64 {
	out := make([]float64, len(s))
	for i, v := range s {
		out[i] = float64(v)
	}
	return out
}
