//go:build unix

package main

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/curvopt/curvopt/internal/proctest"
	"github.com/curvopt/curvopt/train"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// without returns args without the flag f.
func without(args []string, f string) []string {
	var out []string
	for _, a := range args {
		if a != f {
			out = append(out, a)
		}
	}
	return out
}

// snapshot returns every file of dir by name with its content.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	m := map[string]string{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		m[e.Name()] = string(b)
	}
	return m
}

// TestSIGTERMAtEveryStage stops the same run with SIGTERM at every stage:
// during start-up (before the first step: exit status 143, a message, and
// nothing written), mid-run once it has a checkpoint (143, a message naming
// the step and how to resume), and during the start-up of its resume (143,
// and every file of the run left as it was). Resuming it then finishes the
// same run as an uninterrupted one: nothing was lost.
func TestSIGTERMAtEveryStage(t *testing.T) {
	bin := buildTrain(t)
	args := func(out string) []string {
		return append(killRunArgs(out, "adam"), "-epochs", "20")
	}
	ref := filepath.Join(t.TempDir(), "ref")
	runOK(t, bin, args(ref)...)

	// Start-up: the first output line comes before anything is written.
	dir := filepath.Join(t.TempDir(), "term")
	status, stderr := proctest.StopAtFirstLine(t, syscall.SIGTERM, bin, without(args(dir), "-quiet")...)
	assert.Equal(t, 143, status, stderr)
	assert.Contains(t, stderr, "train: stopped by SIGTERM before the first step; nothing was written")
	assert.NoDirExists(t, dir, "nothing written")

	// Mid-run.
	status, stderr = proctest.StopWhen(t, syscall.SIGTERM, func() bool {
		_, err := os.Stat(filepath.Join(dir, "checkpoint.gob"))
		return err == nil
	}, bin, args(dir)...)
	assert.Equal(t, 143, status, stderr)
	assert.Contains(t, stderr, "stopped by SIGTERM after step")
	assert.Contains(t, stderr, "-resume -out "+dir)
	c, err := train.ReadCheckpointInfo(filepath.Join(dir, "checkpoint.gob"))
	require.NoError(t, err)
	assert.Less(t, c.Step, 160, "stopped before the end")

	// The resume's start-up: the run is left exactly as it was.
	before := snapshot(t, dir)
	status, stderr = proctest.StopAtFirstLine(t, syscall.SIGTERM, bin, "-resume", "-out", dir)
	assert.Equal(t, 143, status, stderr)
	assert.Contains(t, stderr, "train: stopped by SIGTERM before the first step; nothing was written")
	assert.Equal(t, before, snapshot(t, dir), "the interrupted run's files")

	runOK(t, bin, "-resume", "-out", dir, "-quiet")
	sameRun(t, ref, dir)
}

// TestSIGTERMStopsAnalysis stops a long -analyze with SIGTERM: it exits
// with status 143 and a message instead of dying by the signal, writes no
// spectrum, and leaves the run it analyses as it was.
func TestSIGTERMStopsAnalysis(t *testing.T) {
	bin := buildTrain(t)
	dir := trainRun(t, "-model", "mlp", "-hidden", "8", "-optimizer", "adam")
	before := snapshot(t, dir)
	// About 2,000 products (seconds): far longer than the signal takes to
	// arrive.
	cmd := exec.Command(bin, "-analyze", "-out", dir, "-analyze-probes", "20", "-analyze-slq-steps", "100")
	stdout, w, err := os.Pipe()
	require.NoError(t, err)
	defer stdout.Close()
	cmd.Stdout = w
	var errb bytes.Buffer
	cmd.Stderr = &errb
	require.NoError(t, cmd.Start())
	w.Close()
	sc := bufio.NewScanner(stdout)
	started := false
	for !started && sc.Scan() {
		started = strings.HasPrefix(sc.Text(), "analysing ")
	}
	require.True(t, started, "no \"analysing\" line: %s", errb.String())
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	go io.Copy(io.Discard, stdout) //nolint:errcheck // drained so that the process is never blocked
	assert.Equal(t, 143, proctest.ExitStatus(t, cmd.Wait(), errb.String()))
	assert.Contains(t, errb.String(), "train: analysis stopped by SIGTERM; nothing was written")
	assert.Equal(t, before, snapshot(t, dir), "the analysed run's files, and no spectrum")
}
