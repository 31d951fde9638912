package hessian

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRandSamplerDistribution draws many labels from fixed, distinct
// probability rows (at a fixed seed) and requires every class frequency to
// be within 5 binomial standard deviations of its probability: inverse-CDF
// sampling against the cumulative sum. Comparing the uniform draw with the
// probabilities themselves, or an off-by-one class, moves some frequency by
// tens of standard deviations.
func TestRandSamplerDistribution(t *testing.T) {
	rows := [][]float64{
		{0.1, 0.2, 0.3, 0.4},
		{0.7, 0.05, 0.05, 0.2},
		{0.25, 0.25, 0.25, 0.25},
		{0, 0, 1, 0},
	}
	const classes, reps = 4, 40000
	var probs []float64
	for _, r := range rows {
		probs = append(probs, r...)
	}
	s := RandSampler{R: rand.New(rand.NewPCG(11, 12))}
	labels := make([]int, len(rows))
	counts := make([][classes]int, len(rows))
	for i := 0; i < reps; i++ {
		require.NoError(t, s.Sample(probs, classes, labels))
		for r, l := range labels {
			require.True(t, l >= 0 && l < classes, "label %d out of range", l)
			counts[r][l]++
		}
	}
	worst := 0.0
	for r, p := range rows {
		for j, pj := range p {
			f := float64(counts[r][j]) / reps
			if pj == 0 || pj == 1 {
				assert.Equal(t, pj, f, "row %d class %d: probability %v is exact", r, j, pj)
				continue
			}
			sd := math.Sqrt(pj * (1 - pj) / reps)
			z := math.Abs(f-pj) / sd
			worst = math.Max(worst, z)
			assert.LessOrEqual(t, z, 5.0, "row %d class %d: frequency %.4f, probability %.4f (%.1f sd)", r, j, f, pj, z)
		}
	}
	t.Logf("worst deviation %.2f standard deviations over %d draws per row", worst, reps)

	require.Error(t, RandSampler{}.Sample(probs, classes, labels))
}
