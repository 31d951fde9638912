package plot

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/curvopt/curvopt/hessian/spectrum"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriteDensityPlot(t *testing.T) {
	// Two Gaussian bumps on a grid, as an SLQ density looks.
	den, bden := bumps(-1, 2), bumps(0.5, 4)
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

	require.ErrorIs(t, WriteDensityPlot(filepath.Join(dir, "x.bmp"), PlotOptions{}, Curve{Density: den}), spectrum.ErrInvalid)
	require.ErrorIs(t, WriteDensityPlot(filepath.Join(dir, "x.png"), PlotOptions{}), spectrum.ErrInvalid)
	require.ErrorIs(t, WriteDensityPlot(filepath.Join(dir, "x.png"), PlotOptions{}, Curve{}), spectrum.ErrInvalid)
	require.Error(t, WriteDensityPlot(filepath.Join(dir, "missing", "x.png"), PlotOptions{}, Curve{Density: den}))
	_, err = os.Stat(filepath.Join(dir, "x.png"))
	assert.True(t, os.IsNotExist(err))
}

func bumps(a, b float64) *spectrum.Density {
	d := &spectrum.Density{Variance: 0.01}
	for i := 0; i < 400; i++ {
		x := -3 + 8*float64(i)/399
		d.X = append(d.X, x)
		d.Y = append(d.Y, math.Exp(-(x-a)*(x-a)/0.02)+0.5*math.Exp(-(x-b)*(x-b)/0.02))
	}
	return d
}
