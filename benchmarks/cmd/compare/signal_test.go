//go:build unix

package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/curvopt/curvopt/benchmarks/compare"
	"github.com/curvopt/curvopt/internal/proctest"
	"github.com/curvopt/curvopt/train"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSIGTERMStopsAndResumes stops the comparison with SIGTERM during its
// start-up (exit status 143, a message, nothing written) and in the middle
// of a run once it has a checkpoint (143, the run's checkpoint saved); the
// same command then finishes it, and every stored run equals that of an
// uninterrupted comparison: every step once, with the same losses, and the
// same evaluations. Nothing is lost, and no work folder is left.
func TestSIGTERMStopsAndResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("trains models")
	}
	bin := proctest.Build(t, "compare")
	args := func(dir string) []string {
		return []string{"-optimizers", "adam", "-data", "synthetic train=200 test=40", "-hidden", "4", "-steps", "300",
			"-batch", "20", "-seeds", "2", "-eval-every", "50", "-checkpoint-every", "10",
			"-out", filepath.Join(dir, "out"), "-work", filepath.Join(dir, "work")}
	}
	ref := t.TempDir()
	out, err := exec.Command(bin, args(ref)...).CombinedOutput()
	require.NoError(t, err, "%s", out)

	// Start-up: the first output line comes before anything is written.
	dir := t.TempDir()
	status, stderr := proctest.StopAtFirstLine(t, syscall.SIGTERM, bin, args(dir)...)
	assert.Equal(t, 143, status, stderr)
	assert.Contains(t, stderr, "compare: stopped by SIGTERM; rerun the same command to continue")
	assert.NoDirExists(t, filepath.Join(dir, "out"))
	assert.NoDirExists(t, filepath.Join(dir, "work"))

	// Mid-run, once the first run has a checkpoint.
	var cks []string
	status, stderr = proctest.StopWhen(t, syscall.SIGTERM, func() bool {
		cks, _ = filepath.Glob(filepath.Join(dir, "work", compare.PhaseFinal, "*", "checkpoint.gob"))
		return len(cks) > 0
	}, bin, args(dir)...)
	assert.Equal(t, 143, status, stderr)
	assert.Contains(t, stderr, "compare: stopped by SIGTERM; rerun the same command to continue")
	c, err := train.ReadCheckpointInfo(cks[0])
	require.NoError(t, err, "the interrupted run's checkpoint")
	assert.Greater(t, c.Step, 0)
	assert.Less(t, c.Step, 300, "stopped mid-run")

	out, err = exec.Command(bin, args(dir)...).CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, seed := range []string{"1", "2"} {
		name := filepath.Join("out", "runs", compare.PhaseFinal, "adam-lr0.001-seed"+seed+".json")
		a, b := readResult(t, filepath.Join(ref, name)), readResult(t, filepath.Join(dir, name))
		require.Len(t, b.StepLog, 300, name)
		for i := range b.StepLog {
			require.Equal(t, i+1, b.StepLog[i].Step, "%s: every step once, in order", name)
			require.Equal(t, a.StepLog[i].Loss, b.StepLog[i].Loss, "%s: step %d", name, i+1)
		}
		require.Len(t, b.Evals, len(a.Evals), name)
		for i := range b.Evals {
			a.Evals[i].WallS, b.Evals[i].WallS = 0, 0
		}
		assert.Equal(t, a.Evals, b.Evals, name)
	}
	left, err := os.ReadDir(filepath.Join(dir, "work", compare.PhaseFinal))
	require.NoError(t, err)
	assert.Empty(t, left, "finished runs' work folders are removed")
}

func readResult(t *testing.T, path string) *compare.RunResult {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var r compare.RunResult
	require.NoError(t, json.Unmarshal(b, &r), path)
	return &r
}
