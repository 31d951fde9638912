package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseLRs(t *testing.T) {
	m, err := parseLRs("sgd=0.1, adam=3e-3")
	require.NoError(t, err)
	assert.Equal(t, map[string]float64{"sgd": 0.1, "adam": 3e-3}, m)
	m, err = parseLRs("")
	require.NoError(t, err)
	assert.Empty(t, m)
	for _, bad := range []string{"sgd", "sgd=x", "sgd=-1", "sgd=0"} {
		_, err := parseLRs(bad)
		assert.Error(t, err, bad)
	}
}

func TestParseFlags(t *testing.T) {
	var stderr bytes.Buffer
	o, err := parse([]string{"-out", "results/x/"}, &stderr)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join("results", "tmp", "work", "x"), o.work)
	assert.Equal(t, 3, o.seeds)
	for _, bad := range [][]string{{"-seeds", "0"}, {"-target", "2"}, {"-steps", "-1"}, {"extra"}} {
		_, err := parse(bad, &stderr)
		assert.Error(t, err, strings.Join(bad, " "))
	}
}

func TestRunErrors(t *testing.T) {
	var out, errw bytes.Buffer
	for _, args := range [][]string{
		{"-optimizers", "nope"},
		{"-lrs", "sgd=0.1", "-optimizers", "adam"},
		{"-dtype", "float16"},
		{"-model", "rnn", "-data", "synthetic train=20 test=10"},
	} {
		err := run(context.Background(), args, &out, &errw)
		assert.Error(t, err, strings.Join(args, " "))
	}
}

// TestRunSmoke runs the whole command on a tiny synthetic set: a sweep and
// the comparison, then a rerun that trains nothing.
func TestRunSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("trains models")
	}
	dir := t.TempDir()
	args := []string{"-optimizers", "sgd,adam", "-data", "synthetic train=120 test=40", "-hidden", "4", "-steps", "4",
		"-batch", "20", "-seeds", "2", "-sweep", "-sweep-factors", "0.1,1", "-eval-every", "2",
		"-out", filepath.Join(dir, "out"), "-work", filepath.Join(dir, "work"), "-lrs", "sgd=0.05"}
	var out, errw bytes.Buffer
	require.NoError(t, run(context.Background(), args, &out, &errw), errw.String())
	assert.Contains(t, out.String(), "2 runs: 0 stored, 2 to train") // sweep: adam × 2 factors
	assert.Contains(t, out.String(), "4 runs: 0 stored, 4 to train") // comparison
	md, err := os.ReadFile(filepath.Join(dir, "out", "results.md"))
	require.NoError(t, err)
	assert.Contains(t, string(md), "sgd 0.05 (-lrs)")
	assert.Contains(t, string(md), "(sweep)")
	assert.Contains(t, string(md), "## Learning-rate sweep")
	for _, f := range []string{"summary.csv", "curves.csv", "acc_vs_steps.png", "loss_vs_wall.svg"} {
		assert.FileExists(t, filepath.Join(dir, "out", f))
	}
	out.Reset()
	require.NoError(t, run(context.Background(), args, &out, &errw))
	assert.Contains(t, out.String(), "4 runs: 4 stored, 0 to train")
}
