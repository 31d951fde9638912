package spectrum

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAnalyze(t *testing.T) {
	op := known(t, testSpectrum()[:30], 21)
	full, err := BuildDense(op, 1e-12)
	require.NoError(t, err)
	blocks := []Block{{Name: "w", Offset: 0, Size: 27}, {Name: "b", Offset: 27, Size: 3}}
	top := DefaultLanczosConfig(3, LargestAlgebraic)
	bottom := DefaultLanczosConfig(1, SmallestAlgebraic)
	tr := TraceConfig{MinSamples: 5, MaxSamples: 5000, Tol: 0.05}
	slq := SLQConfig{Probes: 2, Steps: 10}
	reps, err := Analyze(op, blocks, AnalysisConfig{Top: &top, Bottom: &bottom, Trace: &tr, Density: &slq}, seeded(5))
	if err != nil {
		require.ErrorIs(t, err, ErrNotConverged) // only the trace may run out
	}
	require.Len(t, reps, 3)
	assert.Equal(t, []string{"model", "w", "b"}, []string{reps[0].Name, reps[1].Name, reps[2].Name})
	for i, r := range reps {
		h := full
		if i > 0 {
			h, err = full.Block(blocks[i-1])
			require.NoError(t, err)
		}
		e, err := h.Eigen()
		require.NoError(t, err)
		k := min(3, h.N)
		assert.InDeltaSlice(t, e.Top(k), r.Top.Values(), 1e-10, r.Name)
		assert.InDelta(t, e.Min(), r.Bottom.Values()[0], 1e-10, r.Name)
		assert.LessOrEqual(t, math.Abs(r.Trace.Mean-h.Trace()), 3*r.Trace.StdErr+1e-12, r.Name)
		assert.Len(t, r.Density.Nodes, 2)
	}
	_, err = Analyze(op, blocks, AnalysisConfig{}, seeded(1))
	require.ErrorIs(t, err, ErrInvalid)
	_, err = Analyze(op, []Block{{Name: "x", Offset: 29, Size: 2}}, AnalysisConfig{Trace: &tr}, seeded(1))
	require.ErrorIs(t, err, ErrInvalid)

	// Non-convergence is collected, not fatal.
	tiny := DefaultLanczosConfig(2, LargestAlgebraic)
	tiny.MaxIter = 3
	reps, err = Analyze(op, blocks, AnalysisConfig{Top: &tiny}, seeded(1))
	require.ErrorIs(t, err, ErrNotConverged)
	require.Len(t, reps, 3)
	assert.False(t, reps[0].Top.Converged)
	assert.True(t, reps[2].Top.Converged) // 3 steps span the 3-dim block
}
