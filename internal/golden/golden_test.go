package golden

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDirIsInRepository requires the default golden directory to be the
// module's testdata/golden, wherever the test runs from, and GOLDEN_DIR to
// replace it.
func TestDirIsInRepository(t *testing.T) {
	t.Setenv("GOLDEN_DIR", "")
	dir, err := Dir()
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(dir, "..", "..", "go.mod"))
	require.NoError(t, err, "%s is not <module root>/testdata/golden", dir)
	assert.Equal(t, filepath.Join("testdata", "golden"), filepath.Join(filepath.Base(filepath.Dir(dir)), filepath.Base(dir)))
	for _, kind := range []string{KindTrajectory, KindCurvature} {
		files, err := FilesIn(dir, kind)
		require.NoError(t, err)
		assert.NotEmpty(t, files)
	}
	t.Setenv("GOLDEN_DIR", "/elsewhere")
	dir, err = Dir()
	require.NoError(t, err)
	assert.Equal(t, "/elsewhere", dir)
	_, err = Files(KindCurvature)
	require.ErrorContains(t, err, "/elsewhere")
}

// TestEveryFileLoads requires every file of the golden directory to load
// strictly under its kind.
func TestEveryFileLoads(t *testing.T) {
	for _, kind := range []string{KindTrajectory, KindCurvature} {
		files, err := Files(kind)
		require.NoError(t, err)
		for _, f := range files {
			if kind == KindTrajectory {
				_, err = LoadTrajectory(f)
			} else {
				_, err = LoadCurvature(f)
			}
			assert.NoError(t, err, f)
		}
	}
}

// TestDoctoredCurvatureFails requires doctored copies of a curvature file to
// be refused with the file and the field named.
func TestDoctoredCurvatureFails(t *testing.T) {
	dir, err := Dir()
	require.NoError(t, err)
	src := filepath.Join(dir, "curv_cnn.json")
	b, err := os.ReadFile(src)
	require.NoError(t, err)
	cases := []struct {
		name  string
		edit  func(map[string]any)
		field string
	}{
		{"unknown field", func(m map[string]any) { m["hessian_trace"] = 1.0 }, `unknown field "hessian_trace"`},
		{"unknown layer field", func(m map[string]any) {
			m["model"].(map[string]any)["layers"].([]any)[0].(map[string]any)["dilation"] = 2
		}, `unknown field "dilation"`},
		{"missing field", func(m map[string]any) { delete(m, "trace") }, "trace: missing"},
		{"short hv", func(m map[string]any) {
			e := m["hv"].([]any)[1].(map[string]any)
			e["data"] = e["data"].([]any)[1:]
		}, "hv: entry 1"},
		{"labels", func(m map[string]any) { m["sampled_labels"] = m["sampled_labels"].([]any)[1:] }, "sampled_labels: 3 labels for a batch of 4"},
		{"dtype", func(m map[string]any) { m["dtype"] = "float32" }, "dtype"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var m map[string]any
			require.NoError(t, json.Unmarshal(b, &m))
			c.edit(m)
			out, err := json.Marshal(m)
			require.NoError(t, err)
			path := filepath.Join(t.TempDir(), "doctored.json")
			require.NoError(t, os.WriteFile(path, out, 0o644))
			_, err = LoadCurvature(path)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "doctored.json")
			assert.Contains(t, err.Error(), c.field)
			t.Log(err)
		})
	}
}
