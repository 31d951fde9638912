package train

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The analysis reports each quantity as it finishes: plain lines, or on a
// terminal lines that first clear the running count; and a rerun gives the
// same numbers.
func TestAnalyzeProgress(t *testing.T) {
	cfg := tinyConfig(t, "mfac", Hyper{"m": 4})
	cfg.OutDir = t.TempDir()
	cfg.Steps = 3
	_, err := Run(context.Background(), cfg)
	require.NoError(t, err)

	ac := AnalyzeConfig{Batches: 1, Top: 1, SLQSteps: 5, Probes: 1, PerLayer: true}
	var plain, term bytes.Buffer
	a, err := Analyze(cfg, ac, &plain)
	require.NoError(t, err)
	cfg.Terminal = true
	b, err := Analyze(cfg, ac, &term)
	require.NoError(t, err)
	assert.Equal(t, a.Blocks[0].TopEigenvalues, b.Blocks[0].TopEigenvalues)
	assert.Equal(t, a.Blocks[1].Trace, b.Blocks[1].Trace)

	for _, want := range []string{"model: top eigenvalues", "model: smallest eigenvalue", "model: trace", "model: density (SLQ)",
		"fc1.weight: top eigenvalues", "fc1.bias: dense block", "fc2.bias: dense block"} {
		assert.Contains(t, plain.String(), want)
		assert.Contains(t, term.String(), "\r\033[K  "+want)
	}
	assert.Contains(t, plain.String(), "wrote spectrum.json")
	assert.NotContains(t, plain.String(), "\r")
	assert.Equal(t, "dense", a.Blocks[2].Method)   // fc1.bias, 12 values
	assert.Equal(t, "lanczos", a.Blocks[3].Method) // fc2.weight, 120 values
	assert.Equal(t, a.Blocks[2].Size, a.Blocks[2].Products)
}
