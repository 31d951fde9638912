package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/curvopt/curvopt/train"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDAGModelsCLI runs gpt-tiny on a text file and resnet8 on synthetic
// images for a step or two, resumes the text run, and checks the reported
// validation metrics (perplexity and bits per character for text).
func TestDAGModelsCLI(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "corpus.txt")
	require.NoError(t, os.WriteFile(path, []byte(strings.Repeat("to be or not to be, that is the question. ", 80)), 0o644))
	out := filepath.Join(dir, "gpt")
	var so, se bytes.Buffer
	args := []string{"-model", "gpt-tiny", "-data", "text", "-data-file", path, "-optimizer", "sophiag", "-steps", "1",
		"-batch", "4", "-eval-batch", "16", "-out", out}
	require.Equal(t, 0, run(args, &so, &se), se.String())
	assert.Contains(t, so.String(), "perplexity")
	assert.Contains(t, so.String(), "bits/char")
	so.Reset()
	require.Equal(t, 0, run(append(args[:len(args)-4:len(args)-4], "-steps", "2", "-batch", "4", "-eval-batch", "16", "-out", out, "-resume"), &so, &se), se.String())
	assert.Contains(t, so.String(), "step 2/2")

	so.Reset()
	code := run([]string{"-model", "resnet8", "-optimizer", "adahessian", "-steps", "1", "-batch", "4", "-synthetic-train", "8",
		"-synthetic-test", "4", "-out", filepath.Join(dir, "resnet")}, &so, &se)
	require.Equal(t, 0, code, se.String())
	assert.Contains(t, so.String(), "validation: loss")
}

// TestDAGModelsEveryOptimizer runs one step of gpt-tiny on text and of
// resnet8 on images with every optimizer.
func TestDAGModelsEveryOptimizer(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "corpus.txt")
	require.NoError(t, os.WriteFile(path, []byte(strings.Repeat("all that glitters is not gold. ", 60)), 0o644))
	for _, opt := range train.Optimizers() {
		for _, args := range [][]string{
			{"-model", "gpt-tiny", "-data", "text", "-data-file", path, "-batch", "2", "-eval-batch", "8"},
			{"-model", "resnet8", "-batch", "2", "-synthetic-train", "4", "-synthetic-test", "2"},
		} {
			var so, se bytes.Buffer
			args = append(args, "-optimizer", opt, "-steps", "1", "-quiet", "-out", filepath.Join(dir, opt+args[1]))
			if opt == "mfac" {
				// M-FAC allocates its whole m×d window up front: at the
				// default m = 1024 on gpt-tiny (d ≈ 0.8M) 3.3 GB, resident
				// whenever the Go heap hands it recycled pages (the test
				// binary peaked at 0.6 to 3.7 GB). One step writes one row,
				// so a small window runs the same step.
				args = append(args, "-ngrads", "4")
			}
			assert.Equal(t, 0, run(args, &so, &se), "%v: %s", args, se.String())
		}
	}
}

func TestDAGModelFlagErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-model", "gpt-tiny"}, "-data text"},
		{[]string{"-model", "cnn", "-data", "text"}, "needs -model gpt-tiny"},
		{[]string{"-model", "resnet9"}, "6n+2"},
		{[]string{"-model", "resnetx"}, "resnetN"},
		{[]string{"-data-file", "x.txt"}, "-data-file is for -data text"},
		{[]string{"-model", "gpt-tiny", "-data", "text", "-data-file", "/nonexistent/x.txt"}, "x.txt"},
	} {
		var so, se bytes.Buffer
		assert.Equal(t, 2, run(c.args, &so, &se), "%v", c.args)
		assert.Contains(t, se.String(), c.want, "%v", c.args)
	}
}
