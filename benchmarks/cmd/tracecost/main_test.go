package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/curvopt/curvopt/internal/golden"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRunGoldenModels measures every curvature golden file, however many
// there are (the README invites adding some with GOLDEN_DIR): the golden
// directory's files and one more, a copy under another name, each give a
// row named after its file with its model's number of parameters, and
// nothing else does.
func TestRunGoldenModels(t *testing.T) {
	files, err := golden.Files(golden.KindCurvature)
	require.NoError(t, err)
	dir := t.TempDir()
	for _, f := range append(files, files[0]) {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		name := filepath.Base(f)
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			name = "curv_extra_copy.json"
		}
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), b, 0o644))
	}
	t.Setenv("GOLDEN_DIR", dir)
	all, err := golden.FilesIn(dir, golden.KindCurvature)
	require.NoError(t, err)
	require.Len(t, all, len(files)+1)

	var out bytes.Buffer
	require.NoError(t, run([]string{"-reps", "1", "-pilot", "4", "-k", "3,5", "-target", "0.1"}, &out))
	s := out.String()
	for _, f := range all {
		c, err := golden.LoadCurvature(f)
		require.NoError(t, err)
		d := 0
		for _, p := range c.Params {
			d += len(p.Data)
		}
		assert.Contains(t, s, fmt.Sprintf("| %s | %d |", strings.TrimSuffix(filepath.Base(f), ".json"), d))
	}
	assert.Contains(t, s, "Hutch++ k=5")
	assert.Equal(t, 2+len(all), strings.Count(s, "\n|"), "header, separator and a row per file")

	for _, bad := range [][]string{{"-k", "0"}, {"-reps", "0"}, {"-target", "-1"}, {"-run", t.TempDir()}} {
		require.Error(t, run(bad, &out), "%v", bad)
	}
}
