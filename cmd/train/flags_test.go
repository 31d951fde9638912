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
		// Settings are checked once, by train.Config.ValidateSettings,
		// and reported under their flags.
		{[]string{"-steps", "-1"}, "train: -steps -1: must be >= 0"},
		{[]string{"-gnb-batch", "999"}, "train: -gnb-batch 999: must be in [0, the batch size 64]"},
		{[]string{"-eval-every", "-2"}, "train: -eval-every -2: must be >= 0"},
		{[]string{"-hessian-every", "-1"}, "train: -hessian-every -1: must be >= 0"},
		{[]string{"-eval-batch", "-1"}, "train: -eval-batch -1: must be >= 1 (0: the default)"},
		{[]string{"-batch", "0"}, "train: -batch 0: must be >= 1"},
		{[]string{"-lr", "Inf"}, "train: -lr +Inf: must be finite and > 0 (sophiah)"},
		{[]string{"-lr", "NaN"}, "train: -lr NaN: must be finite and > 0 (sophiah)"},
		{[]string{"-lr", "x"}, `invalid value "x" for flag -lr: not a number: "x"`},
		{[]string{"-hessian_interval", "0"}, "train: -hessian_interval 0: must be an integer >= 1 (sophiah)"},
		{[]string{"-optimizer", "adahessian", "-hessian_interval", "0"}, "train: -hessian_interval 0: must be an integer >= 1 (adahessian)"},
		{[]string{"-optimizer", "mfac", "-ngrads", "0"}, "train: -ngrads 0: must be an integer >= 1 (mfac)"},
		{[]string{"-optimizer", "sgd", "-nesterov", "-momentum", "0"}, "train: -momentum 0: must be > 0 with Nesterov momentum (sgd)"},
		{[]string{"-optimizer", "sgd", "-nesterov=maybe"}, `invalid boolean value "maybe" for -nesterov: not true or false: "maybe"`},
		{[]string{"-optimizer", "adam", "-rho", "1"}, `train: optimizer adam has no hyperparameter "rho" (it takes lr, beta1, beta2, eps, weight_decay)`},
		// Renamed and misspelt flags say the name to use.
		{[]string{"-wd", "0.1"}, "flag provided but not defined: -wd (-wd was renamed -weight_decay)"},
		{[]string{"-k", "0"}, "flag provided but not defined: -k (-k was renamed -hessian_interval)"},
		{[]string{"-power", "1"}, "flag provided but not defined: -power (-power was renamed -hessian_power)"},
		{[]string{"-m", "3"}, "flag provided but not defined: -m (-m was renamed -ngrads)"},
		{[]string{"--weight-decay=0.1"}, "flag provided but not defined: -weight-decay (the hyperparameter flags use the optimizers' names: -weight_decay)"},
		{[]string{"-schedule", "cosine:abc"}, `train: -schedule: schedule "cosine:abc": the horizon "abc" is not a positive integer`},
		{[]string{"-optimizer", "mfac", "-ngrads", "2.5"}, `invalid value "2.5" for flag -ngrads: not an integer: "2.5"`},
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
	for _, args := range [][]string{{"-schedule", "cosine", "-warmup", "1"}, {"-optimizer", "sophiag", "-gnb-batch", "8"}, {"-optimizer", "mfac", "-ngrads", "3"},
		{"-optimizer", "sgd", "-nesterov", "-dampening", "0"}, {"-optimizer", "adahessian", "-hessian_interval", "2", "-hessian_power", "0.5"}} {
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
