package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Each bad value is a usage error (status 2) that names the flag and the
// value, printed once with the command's prefix.
func TestBadValuesNameTheFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-clip", "Inf"}, "train: -clip +Inf: must be a finite number >= 0 (0 turns clipping off)"},
		{[]string{"-clip", "NaN"}, "train: -clip NaN: must be a finite number >= 0 (0 turns clipping off)"},
		{[]string{"-lr", "Inf"}, `invalid value "Inf" for flag -lr: not a finite number: "Inf"`},
		{[]string{"-schedule", "cosine:abc"}, `train: -schedule: schedule "cosine:abc": the horizon "abc" is not a positive integer`},
		{[]string{"-optimizer", "mfac", "-m", "2.5"}, "train: optimizer mfac: hyperparameter m = 2.5: must be a whole number"},
		{[]string{"-optimizer", "adam", "-gnb-batch", "16"}, "train: -gnb-batch 16: optimizer adam does not use the GNB estimate (only sophiag does)"},
		{[]string{"-gnb-batch", "16"}, "train: -gnb-batch 16: optimizer sophiah does not use the GNB estimate (only sophiag does)"},
	} {
		var out, errb bytes.Buffer
		// A small run into a temporary directory, should a value be accepted.
		safe := []string{"-steps", "1", "-model", "mlp", "-hidden", "2", "-synthetic-train", "16", "-synthetic-test", "8", "-quiet", "-out", t.TempDir()}
		code := run(append(safe, tc.args...), &out, &errb)
		assert.Equal(t, 2, code, "%v", tc.args)
		assert.Contains(t, errb.String(), tc.want+"\n", "%v", tc.args)
		assert.NotContains(t, errb.String(), "train: train:", "%v", tc.args)
	}
	// Accepted where they apply.
	for _, args := range [][]string{{"-schedule", "cosine", "-warmup", "1"}, {"-optimizer", "sophiag", "-gnb-batch", "8"}, {"-optimizer", "mfac", "-m", "3"}} {
		var out, errb bytes.Buffer
		dir := t.TempDir()
		code := run(append(args, "-steps", "2", "-batch", "16", "-synthetic-train", "32", "-synthetic-test", "16", "-model", "mlp", "-hidden", "4", "-quiet", "-out", dir), &out, &errb)
		assert.Equal(t, 0, code, "%v: %s", args, errb.String())
	}
	var out, errb bytes.Buffer
	code := run([]string{"-optimizer", "sophiag", "-gnb-batch", "8", "-steps", "1", "-batch", "16", "-synthetic-train", "40", "-synthetic-test", "16",
		"-model", "mlp", "-hidden", "4", "-out", t.TempDir()}, &out, &errb)
	require.Equal(t, 0, code, errb.String())
	assert.Contains(t, out.String(), "GNB estimate on the first 8 rows of each batch; an epoch's incomplete last batch is dropped (-drop-last)\n")
}

// A fresh run does not silently replace another run's checkpoint.
func TestFreshRunKeepsAnEarlierCheckpoint(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	args := []string{"-steps", "2", "-batch", "16", "-synthetic-train", "32", "-synthetic-test", "16", "-model", "mlp", "-hidden", "4", "-optimizer", "adam", "-quiet", "-out", dir}
	var out, errb bytes.Buffer
	require.Equal(t, 0, run(args, &out, &errb), errb.String())
	ck := filepath.Join(dir, "checkpoint.gob")
	before, err := os.ReadFile(ck)
	require.NoError(t, err)

	errb.Reset()
	assert.Equal(t, 1, run(append(args, "-seed", "2"), &out, &errb))
	assert.Contains(t, errb.String(), dir)
	assert.Contains(t, errb.String(), "-resume")
	assert.Contains(t, errb.String(), "-overwrite")
	assert.NotContains(t, errb.String(), "train: train:")
	after, err := os.ReadFile(ck)
	require.NoError(t, err)
	assert.Equal(t, before, after)

	errb.Reset()
	assert.Equal(t, 0, run(append(args, "-seed", "2", "-overwrite"), &out, &errb), errb.String())
	after, err = os.ReadFile(ck)
	require.NoError(t, err)
	assert.NotEqual(t, before, after)
}
