package train

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/curvopt/curvopt/internal/meminfo"
	"github.com/curvopt/curvopt/optim/mfac"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Issue 21: the checkpoint of an M-FAC run that wrote k < m window rows
// holds k·d window values (its state and its file size say so), the
// reader makes room for the whole window without reading more, and a run
// resumed from it, or from the same checkpoint holding all m rows as
// written before, equals an uninterrupted one bit for bit.
func TestMFACCheckpointHoldsRowsWritten(t *testing.T) {
	const m, k, n = 16, 3, 20 // the resumed run wraps the window
	h := Hyper{"ngrads": m, "lr": 0.03}
	split := tinyConfig(t, "mfac", h)
	split.OutDir, split.Steps = t.TempDir(), k
	_, err := Run(context.Background(), split)
	require.NoError(t, err)

	path := filepath.Join(split.OutDir, checkpointFile)
	c, err := LoadCheckpoint(path)
	require.NoError(t, err)
	d := 0
	for _, p := range c.Params {
		if p.Slot == "value" {
			d += p.Len()
		}
	}
	win := c.Opt.Find("", "window")
	require.NotNil(t, win)
	assert.Equal(t, []int{k, d}, win.Shape, "the window's rows written, not all m")
	assert.Equal(t, k*d, win.Len())
	// The file: the k rows, everything else (parameters, Gram matrix and
	// factor, checksums) and metadata that is far smaller than a row.
	var other int64
	for _, t := range c.tensors() {
		if t != win {
			other += int64(t.Len())*8 + 4
		}
	}
	fi, err := os.Stat(path)
	require.NoError(t, err)
	meta := fi.Size() - int64(k*d)*8 - 4 - other
	assert.True(t, meta > 0 && meta < 64<<10, "file of %d bytes: %d·%d float64 window values, %d bytes of other tensors, leaving %d bytes of metadata", fi.Size(), k, d, other, meta)

	// The reader makes room for m rows for TakeState, reading k.
	o, err := mfac.New(mfac.Config{LR: 0.03, NGrads: m, Damp: 1e-5})
	require.NoError(t, err)
	c2, err := readCheckpoint(path, true, meminfo.Source(func() (int64, error) { return int64(k*d)*8 + other + 1<<20, nil }), o.Reserve)
	require.NoError(t, err, "the memory check counts the k rows read, not the m reserved")
	w2 := c2.Opt.Find("", "window")
	assert.Equal(t, k*d, len(w2.F64))
	assert.Equal(t, m*d, cap(w2.F64))

	// The same checkpoint as written before issue 21: all m rows, the
	// unwritten ones zero.
	old := filepath.Join(t.TempDir(), "old")
	require.NoError(t, os.CopyFS(old, os.DirFS(split.OutDir)))
	oc, err := LoadCheckpoint(filepath.Join(old, checkpointFile))
	require.NoError(t, err)
	ow := oc.Opt.Find("", "window")
	ow.F64, ow.Shape = append(ow.F64, make([]float64, (m-k)*d)...), []int{m, d}
	require.NoError(t, SaveCheckpoint(filepath.Join(old, checkpointFile), oc))
	ofi, err := os.Stat(filepath.Join(old, checkpointFile))
	require.NoError(t, err)
	require.Equal(t, fi.Size()+int64((m-k)*d)*8, ofi.Size(), "the old-style checkpoint holds all m rows")

	straight := tinyConfig(t, "mfac", h)
	straight.OutDir, straight.Steps = t.TempDir(), n
	_, err = Run(context.Background(), straight)
	require.NoError(t, err)
	pa := checkpointParams(t, straight.OutDir)
	for _, dir := range []string{split.OutDir, old} {
		split.OutDir, split.Steps, split.Resume = dir, n, true
		_, err = Run(context.Background(), split)
		require.NoError(t, err, dir)
		pb := checkpointParams(t, dir)
		require.Equal(t, len(pa), len(pb))
		for i := range pa {
			require.Equal(t, math.Float64bits(pa[i]), math.Float64bits(pb[i]), "%s: parameter entry %d", dir, i)
		}
	}
}
