package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/curvopt/curvopt/data"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStoredRunsFingerprintModel: the model part of the comparison's
// fingerprint is what the study's stored runs recorded (results/*/runs), so
// those runs are still reused: the layer list for mlp (as before issue 20
// made the DAG the one model description), the DAG for resnet8 and
// gpt-tiny.
func TestStoredRunsFingerprintModel(t *testing.T) {
	for _, c := range []struct {
		dir, model string
		ds         *data.Dataset
		text       bool
	}{
		{"fashion-mnist", "mlp", &data.Dataset{C: 1, H: 28, W: 28, Classes: 10}, false},
		{"study-image", "resnet8", &data.Dataset{C: 3, H: 32, W: 32, Classes: 10}, false},
		{"study-lm", "gpt-tiny", &data.Dataset{C: 1, H: 1, W: 65, Classes: 107}, true},
	} {
		runs, err := filepath.Glob(filepath.Join("..", "..", "..", "results", c.dir, "runs", "final", "*.json"))
		require.NoError(t, err)
		require.NotEmpty(t, runs, c.dir)
		b, err := os.ReadFile(runs[0])
		require.NoError(t, err)
		var run struct{ Fingerprint string }
		require.NoError(t, json.Unmarshal(b, &run))
		var fp struct{ Model any }
		require.NoError(t, json.Unmarshal([]byte(run.Fingerprint), &fp))

		_, model, err := buildModel(c.model, "128", c.ds, c.text)
		require.NoError(t, err, c.dir)
		mb, err := json.Marshal(model)
		require.NoError(t, err)
		var got any
		require.NoError(t, json.Unmarshal(mb, &got))
		assert.Equal(t, fp.Model, got, c.dir)
	}
}
