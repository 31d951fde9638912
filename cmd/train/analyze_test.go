package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/curvopt/curvopt/train"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// trainRun trains a small run into a fresh directory and returns it.
func trainRun(t *testing.T, args ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "run")
	var out, errb bytes.Buffer
	base := []string{"-steps", "6", "-batch", "16", "-synthetic-train", "64", "-synthetic-test", "32", "-quiet", "-out", dir}
	require.Equal(t, 0, run(append(base, args...), &out, &errb), errb.String())
	return dir
}

// analyzeRun runs "-analyze -out dir" plus args and returns the analysis
// and the progress output.
func analyzeRun(t *testing.T, dir string, args ...string) (*train.Analysis, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(append([]string{"-analyze", "-out", dir, "-analyze-batches", "2", "-analyze-slq-steps", "10"}, args...), &out, &errb)
	require.Equal(t, 0, code, errb.String())
	b, err := os.ReadFile(filepath.Join(dir, "spectrum.json"))
	require.NoError(t, err)
	var a train.Analysis
	require.NoError(t, json.Unmarshal(b, &a))
	for _, f := range []string{"density.png", "density.svg"} {
		_, err := os.Stat(filepath.Join(dir, f))
		require.NoError(t, err)
	}
	return &a, out.String()
}

// checkBlocks checks what must hold between the Hessian H and its diagonal
// blocks H_bb whatever the model: tr H = Σ_b tr H_bb (within the
// Hutchinson estimates' standard errors), and by Cauchy interlacing
// λmax(H) ≥ λmax(H_bb) and λmin(H) ≤ λmin(H_bb).
func checkBlocks(t *testing.T, a *train.Analysis, names ...string) {
	t.Helper()
	require.Len(t, a.Blocks, 1+len(names))
	m := a.Blocks[0]
	require.Equal(t, "model", m.Name)
	var sum, se2 float64
	se2 = m.TraceStdErr * m.TraceStdErr
	size := 0
	for i, b := range a.Blocks[1:] {
		assert.Equal(t, names[i], b.Name)
		size += b.Size
		sum += b.Trace
		se2 += b.TraceStdErr * b.TraceStdErr
		tol := 1e-4 * math.Abs(m.TopEigenvalues[0])
		assert.GreaterOrEqual(t, m.TopEigenvalues[0], b.TopEigenvalues[0]-tol, b.Name)
		assert.LessOrEqual(t, m.MinEigenvalue, b.MinEigenvalue+tol, b.Name)
		if b.Size <= 32 {
			assert.Equal(t, "dense", b.Method, b.Name)
			assert.Equal(t, b.Size, b.Products, "a dense block costs one product per column")
		}
	}
	assert.Equal(t, m.Size, size)
	assert.InDelta(t, m.Trace, sum, 4*math.Sqrt(se2)+1e-6*math.Abs(m.Trace), "trace of H against the sum of its blocks'")
}

func TestAnalyzeMLPRunFromItsDirectory(t *testing.T) {
	dir := trainRun(t, "-model", "mlp", "-hidden", "8", "-optimizer", "adam")
	a, out := analyzeRun(t, dir, "-analyze-per-layer")
	assert.Equal(t, 16, a.BatchSize, "the batch size comes from the run's config.json")
	assert.Equal(t, 6, a.Step)
	checkBlocks(t, a, "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias")
	// The last bias's block is the mean of diag(p) − ppᵀ over the samples:
	// positive semi-definite, with the all-ones vector in its null space.
	last := a.Blocks[4]
	assert.InDelta(t, 0, last.MinEigenvalue, 1e-5*last.TopEigenvalues[0])
	assert.Greater(t, last.Trace, 0.0)
	for _, want := range []string{"analysing " + filepath.Join(dir, "checkpoint.gob") + " (step 6, 24674 parameters) on 2 batches of 16 of synthetic/train",
		"model: top eigenvalues", "fc2.bias: dense block", "wrote spectrum.json"} {
		assert.Contains(t, out, want)
	}
	assert.NotContains(t, out, "\r", "plain lines when not on a terminal")

	// Flags given on the command line override the run's configuration.
	a, _ = analyzeRun(t, dir, "-batch", "8")
	assert.Equal(t, 8, a.BatchSize)

	// Without config.json the flags give the data; the model is still the
	// checkpoint's, not merged into the default CNN's.
	require.NoError(t, os.Remove(filepath.Join(dir, "config.json")))
	a, _ = analyzeRun(t, dir, "-batch", "16", "-synthetic-train", "64", "-synthetic-test", "32")
	assert.Equal(t, 24674, a.Blocks[0].Size)
}

func TestAnalyzeCNNRunFromItsDirectory(t *testing.T) {
	dir := trainRun(t, "-model", "cnn", "-optimizer", "sgd", "-batch", "8")
	a, _ := analyzeRun(t, dir, "-analyze-batches", "1", "-analyze-top", "1")
	require.Len(t, a.Blocks, 1)
	assert.Equal(t, 8, a.BatchSize)
	assert.Equal(t, 60362, a.Blocks[0].Size)
	assert.Greater(t, a.Blocks[0].TopEigenvalues[0], 0.0)
}

func TestAnalyzeBatchNormSpecRunFromItsDirectory(t *testing.T) {
	spec := `{"input_shape":[3,32,32],"layers":[
		{"type":"conv2d","name":"conv","in":3,"out":4,"kernel":3,"stride":2,"pad":1},
		{"type":"batchnorm2d","name":"bn","channels":4},
		{"type":"relu"},
		{"type":"maxpool2d","kernel":2,"stride":2},
		{"type":"flatten"},
		{"type":"linear","name":"fc","in":256,"out":10}],"loss":"cross_entropy"}`
	path := filepath.Join(t.TempDir(), "bn.json")
	require.NoError(t, os.WriteFile(path, []byte(spec), 0o644))
	dir := trainRun(t, "-model", path, "-optimizer", "sgd", "-dtype", "float64")
	a, out := analyzeRun(t, dir, "-analyze-per-layer")
	checkBlocks(t, a, "conv.weight", "conv.bias", "bn.weight", "bn.bias", "fc.weight", "fc.bias")
	assert.False(t, strings.Contains(out, "another model"), out)
}

func TestAnalyzeWithoutARun(t *testing.T) {
	var out, errb bytes.Buffer
	dir := t.TempDir()
	code := run([]string{"-analyze", "-out", dir}, &out, &errb)
	assert.Equal(t, 1, code)
	assert.Contains(t, errb.String(), filepath.Join(dir, "checkpoint.gob"))
	assert.NotContains(t, errb.String(), "train: train:")
}

// The dataset comes from the run's config.json too: an MLP for 28×28
// images cannot be analysed on the default synthetic 32×32 data.
func TestAnalyzeMNISTRunFromItsDirectory(t *testing.T) {
	data := mnistDir(t, t.TempDir(), "mnist", nil, nil, nil, nil)
	dir := filepath.Join(t.TempDir(), "run")
	var out, errb bytes.Buffer
	require.Equal(t, 0, run([]string{"-data", "mnist", "-data-dir", data, "-model", "mlp", "-hidden", "4", "-optimizer", "adam",
		"-steps", "3", "-batch", "16", "-quiet", "-out", dir}, &out, &errb), errb.String())
	a, progress := analyzeRun(t, dir)
	assert.Equal(t, 784*4+4+4*10+10, a.Blocks[0].Size)
	assert.Contains(t, progress, "on 2 batches of 16 of mnist/train")
}
