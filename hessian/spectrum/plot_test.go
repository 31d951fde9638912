package spectrum

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriteDensityPlot(t *testing.T) {
	op := known(t, testSpectrum()[:40], 3)
	res, err := SLQ(op, SLQConfig{Probes: 3, Steps: 20}, seeded(3))
	require.NoError(t, err)
	den, err := res.Density(DensityConfig{Points: 2000, SigmaSquared: 1e-3, Pad: 0.5})
	require.NoError(t, err)
	bo, err := NewBlockOperator(op, Block{Name: "first", Offset: 0, Size: 20})
	require.NoError(t, err)
	bres, err := SLQ(bo, SLQConfig{Probes: 3, Steps: 20}, seeded(3))
	require.NoError(t, err)
	bden, err := bres.Density(DensityConfig{Points: 2000, SigmaSquared: 1e-3, Pad: 0.5})
	require.NoError(t, err)

	dir := t.TempDir()
	for _, tc := range []struct {
		name  string
		magic []byte
		logY  bool
	}{
		{"density.png", []byte("\x89PNG"), true},
		{"density.svg", []byte("<?xml"), false},
	} {
		path := filepath.Join(dir, tc.name)
		err := WriteDensityPlot(path, PlotOptions{Title: "Hessian spectrum", LogY: tc.logY},
			Curve{Label: "model", Density: den}, Curve{Label: "first", Density: bden})
		require.NoError(t, err)
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		assert.True(t, bytes.HasPrefix(b, tc.magic), "%s starts with %q", tc.name, b[:min(8, len(b))])
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 2, "no temporary files left behind")

	require.ErrorIs(t, WriteDensityPlot(filepath.Join(dir, "x.bmp"), PlotOptions{}, Curve{Density: den}), ErrInvalid)
	require.ErrorIs(t, WriteDensityPlot(filepath.Join(dir, "x.png"), PlotOptions{}), ErrInvalid)
	require.ErrorIs(t, WriteDensityPlot(filepath.Join(dir, "x.png"), PlotOptions{}, Curve{}), ErrInvalid)
	require.Error(t, WriteDensityPlot(filepath.Join(dir, "missing", "x.png"), PlotOptions{}, Curve{Density: den}))
	_, err = os.Stat(filepath.Join(dir, "x.png"))
	assert.True(t, os.IsNotExist(err))
}
