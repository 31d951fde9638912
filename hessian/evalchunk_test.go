package hessian

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/curvopt/curvopt/optim"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

// TestEvalChunked checks that a batch larger than evalChunk, evaluated in
// chunks through one graph (the last chunk padded), gives the logits that
// each of its rows gets in a small unchunked batch, on a model with batch
// norm (evaluation mode: running statistics, rows independent).
func TestEvalChunked(t *testing.T) {
	e, _, _ := newEngine(t, fdModels[3].spec, tensor.Float64, 5, 4, optim.Needs{})
	_, err := e.LossGrad() // moves the running statistics away from their start
	require.NoError(t, err)
	n := 2*evalChunk + 5
	x, _ := randomBatch(t, e.Model(), n, rand.New(rand.NewPCG(2, 3)))
	got, err := e.EvalLogits(x)
	require.NoError(t, err)
	require.Equal(t, []int{n, 3}, []int(got.Shape()))
	per := x.Shape().TotalSize() / n
	xs := x.Data().([]float64)
	for lo := 0; lo < n; lo += 7 {
		r := min(7, n-lo)
		sub := tensor.New(tensor.WithShape(append([]int{r}, e.Model().InputShape()...)...),
			tensor.WithBacking(append([]float64(nil), xs[lo*per:(lo+r)*per]...)))
		want, err := e.EvalLogits(sub)
		require.NoError(t, err)
		for i, w := range want.Data().([]float64) {
			g := got.Data().([]float64)[lo*3+i]
			if math.Abs(g-w) > 1e-12*math.Max(1, math.Abs(w)) {
				t.Fatalf("row %d logit %d: chunked %v, unchunked %v", lo+i/3, i%3, g, w)
			}
		}
	}
}
