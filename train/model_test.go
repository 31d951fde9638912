package train

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/curvopt/curvopt/nn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// legacyRunConfig returns rc as JSON in the layout before issue 20, with
// model recorded under key: "model" (a layer list) or "dag" (a DAG, with
// the empty layer list the old code wrote under "model").
func legacyRunConfig(t testing.TB, rc RunConfig, key string, model any) []byte {
	t.Helper()
	b, err := json.Marshal(rc)
	require.NoError(t, err)
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(b, &m))
	mb, err := json.Marshal(model)
	require.NoError(t, err)
	m["model"] = json.RawMessage(`{"input_shape":null,"layers":null}`)
	m[key] = mb
	out, err := json.Marshal(m)
	require.NoError(t, err)
	return out
}

// toLegacy rewrites dir's checkpoint in the layout before issue 20: the
// model keyed by spec's JSON and recorded under key ("model" for a layer
// list, "dag" for a DAG), as that code wrote it.
func toLegacy(t *testing.T, dir string, key string, model any) {
	t.Helper()
	path := filepath.Join(dir, checkpointFile)
	ck, err := LoadCheckpoint(path)
	require.NoError(t, err)
	var rc RunConfig
	require.NoError(t, json.Unmarshal(ck.Config, &rc))
	mb, err := json.Marshal(model)
	require.NoError(t, err)
	ck.Model, ck.Config = string(mb), legacyRunConfig(t, rc, key, model)
	require.NoError(t, SaveCheckpoint(path, ck))
}

// TestLegacyCheckpointResumes: a checkpoint of a layer-list model written
// in the layout before issue 20 (the model keyed and recorded as its layer
// list) reads back as the model's DAG, resumes, and ends where an
// uninterrupted run ends; one of a DAG model (recorded under "dag") reads
// back as its DAG; a recorded model that is neither format's is refused,
// naming it.
func TestLegacyCheckpointResumes(t *testing.T) {
	spec := nn.MLPSpec(3*32*32, []int{12}, 10)
	whole := tinyConfig(t, "sophiah", testHypers["sophiah"])
	whole.Steps, whole.OutDir = 4, t.TempDir()
	want, err := Run(context.Background(), whole)
	require.NoError(t, err)

	part := tinyConfig(t, "sophiah", testHypers["sophiah"])
	part.Steps, part.OutDir = 2, t.TempDir()
	_, err = Run(context.Background(), part)
	require.NoError(t, err)
	toLegacy(t, part.OutDir, "model", spec)
	rec, err := ReadRunConfig(part.OutDir)
	require.NoError(t, err)
	assert.Equal(t, whole.Model, rec.Model, "the layer list reads back as its DAG")
	rec.Steps, rec.Train, rec.Test = 4, part.Train, part.Test
	got, err := Run(context.Background(), rec)
	require.NoError(t, err)
	assert.Equal(t, 4, got.Steps)
	assert.Equal(t, want.FinalTestLoss, got.FinalTestLoss, "the resumed run ends where the uninterrupted one does")
	assert.Equal(t, want.FinalTestAcc, got.FinalTestAcc)

	// A DAG model, recorded under "dag" with an empty list under "model".
	d, err := nn.ResNet(8, 3, 32, 10)
	require.NoError(t, err)
	dir := t.TempDir()
	_, err = Run(context.Background(), Config{Model: d, Train: part.Train, Test: part.Test, Optimizer: "sgd",
		Steps: 1, BatchSize: 8, EvalBatch: 8, Seed: 1, OutDir: dir})
	require.NoError(t, err)
	toLegacy(t, dir, "dag", d)
	rec, err = ReadRunConfig(dir)
	require.NoError(t, err)
	assert.Equal(t, d, rec.Model)

	// A recorded model of neither format, in the checkpoint's key and in
	// its configuration.
	bad := nn.Spec{InputShape: []int{4}, Layers: []nn.LayerSpec{{Type: "softmax"}}}
	toLegacy(t, part.OutDir, "model", spec)
	rec, err = ReadRunConfig(part.OutDir)
	require.NoError(t, err)
	rec.Steps, rec.Train, rec.Test = 5, part.Train, part.Test
	ck, err := LoadCheckpoint(filepath.Join(part.OutDir, checkpointFile))
	require.NoError(t, err)
	ck.Model = `{"input_shape":[4],"layers":[{"type":"softmax"}]}`
	require.NoError(t, SaveCheckpoint(filepath.Join(part.OutDir, checkpointFile), ck))
	_, err = Run(context.Background(), rec)
	assert.ErrorContains(t, err, `the checkpoint's model: nn: spec: layer 0 (softmax ""): unknown layer type`)
	toLegacy(t, part.OutDir, "model", bad)
	_, err = ReadRunConfig(part.OutDir)
	assert.ErrorContains(t, err, `the model recorded under "model": nn: spec: layer 0 (softmax ""): unknown layer type`)
}

// TestNoModel: a configuration without a model is refused, saying how to
// give one.
func TestNoModel(t *testing.T) {
	cfg := tinyConfig(t, "sgd", nil)
	cfg.Model = nn.DAG{}
	_, err := Run(context.Background(), cfg)
	assert.EqualError(t, err, "train: no model: set Config.Model (nn.MLP, nn.CNN, nn.ResNet, nn.GPT, or nn.ParseModel for a file)")
}

// TestStoredConfigJSON: the repository's stored default run's config.json,
// written before issue 20 with the layer list under "model", reads as the
// default CNN's DAG.
func TestStoredConfigJSON(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "results", "default-run", "config.json"))
	require.NoError(t, err)
	var rc RunConfig
	require.NoError(t, json.Unmarshal(b, &rc))
	assert.Equal(t, nn.CNN(3, 32, 10), rc.Model)
	assert.Equal(t, 64, rc.BatchSize, "the other fields are read as before")
}
