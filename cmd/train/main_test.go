package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHelpDocumentsEveryFlag(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"-h"}, &out, &errb)
	assert.Equal(t, 0, code)
	help := errb.String()
	for _, f := range []string{"-optimizer", "-lr", "-momentum", "-nesterov", "-rho", "-bs", "-hessian_interval", "-hessian_power", "-ngrads", "-damp",
		"-weight_decay", "-beta1", "-beta2", "-eps", "-dampening",
		"-model", "-data", "-data-dir", "-epochs", "-steps", "-batch", "-seed", "-schedule", "-warmup", "-dtype", "-out",
		"-resume", "-hessian-every", "-analyze", "-clip", "-augment", "-decay-all"} {
		assert.Regexp(t, "\n  "+f+"[ \n]", help, "usage lacks %s", f)
	}
	for _, o := range []string{"sgd", "adamw", "sophiag", "sophiah", "adahessian", "mfac"} {
		assert.Contains(t, help, "  "+o+" ", "usage lacks %s's defaults", o)
	}
}

// TestBadFlagsExit2: a bad flag or argument is a usage error (status 2)
// reported in one line, followed by how to get help.
func TestBadFlagsExit2(t *testing.T) {
	cases := [][]string{
		{"-nosuchflag"},
		{"-lr", "abc"},
		{"-lr", "-1"},
		{"-optimizer", "lbfgs"},
		{"-dtype", "float16"},
		{"-data", "imagenet"},
		{"-data", "cifar10"},
		{"-model", "rnn"},
		{"-optimizer", "adam", "-rho", "0.1"},
		{"-schedule", "exp"},
		{"-batch", "0"},
		{"extra-arg"},
	}
	for _, args := range cases {
		var out, errb bytes.Buffer
		code := run(args, &out, &errb)
		assert.Equal(t, 2, code, "args %v", args)
		// One line naming what is wrong, then how to get help: not the
		// usage, which would bury it.
		lines := strings.Split(strings.TrimSuffix(errb.String(), "\n"), "\n")
		if assert.Len(t, lines, 2, "args %v: %s", args, errb.String()) {
			assert.True(t, strings.HasPrefix(lines[0], "train: "), "args %v: %s", args, lines[0])
			assert.Equal(t, "run 'train -h' for the flags", lines[1], "args %v", args)
		}
		assert.Empty(t, out.String(), "args %v", args)
	}
}

// TestSpecFileModel: -model FILE takes a layer list or a DAG (issue 20: a
// DAG file failed with json: unknown field "nodes"); the two files of the
// same network train to the same numbers; a bad file is a usage error.
func TestSpecFileModel(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"spec": `{"input_shape":[3,32,32],"layers":[{"type":"flatten"},{"type":"linear","name":"fc","in":3072,"out":10}],"loss":"cross_entropy"}`,
		"dag": `{"input_shape":[3,32,32],"nodes":[{"name":"flat","op":"flatten","inputs":["input"]},
			{"name":"fc","op":"linear","inputs":["flat"],"out":10}],"output":"fc"}`,
	}
	steps := map[string]string{}
	for name, model := range files {
		path := filepath.Join(dir, name+".json")
		require.NoError(t, os.WriteFile(path, []byte(model), 0o644))
		var out, errb bytes.Buffer
		code := run([]string{"-model", path, "-optimizer", "adam", "-steps", "3", "-batch", "16", "-synthetic-train", "64",
			"-synthetic-test", "32", "-out", filepath.Join(dir, name)}, &out, &errb)
		require.Equal(t, 0, code, errb.String())
		assert.Contains(t, out.String(), "test accuracy")
		for _, f := range []string{"steps.csv", "steps.jsonl", "epochs.csv", "epochs.jsonl", "config.json", "checkpoint.gob"} {
			_, err := os.Stat(filepath.Join(dir, name, f))
			assert.NoError(t, err, f)
		}
		b, err := os.ReadFile(filepath.Join(dir, name, "epochs.jsonl"))
		require.NoError(t, err)
		steps[name] = regexp.MustCompile(`,"wall_s":[^}]*`).ReplaceAllString(string(b), "") // wall time differs
	}
	assert.Equal(t, steps["spec"], steps["dag"], "one network, one result")
	var out, errb bytes.Buffer

	bad := filepath.Join(dir, "bad.json")
	require.NoError(t, os.WriteFile(bad, []byte(`{"input_shape":[3,32,32],"layers":[{"type":"lstm"}]}`), 0o644))
	errb.Reset()
	code := run([]string{"-model", bad}, &out, &errb)
	assert.Equal(t, 2, code)
	assert.True(t, strings.Contains(errb.String(), "lstm"), errb.String())
}

// TestFirstLines (issue 21): before anything is loaded or compiled the
// command says what it trains and what it builds, then how long the first
// step (compiling the graphs) took, then the steps; -quiet prints nothing.
func TestFirstLines(t *testing.T) {
	args := []string{"-model", "mlp", "-hidden", "4", "-steps", "2", "-batch", "16", "-synthetic-train", "32", "-synthetic-test", "16"}
	var out, errb bytes.Buffer
	require.Equal(t, 0, run(append(args, "-out", t.TempDir()), &out, &errb), errb.String())
	lines := strings.Split(out.String(), "\n")
	require.Greater(t, len(lines), 3, out.String())
	assert.True(t, strings.HasPrefix(lines[0], "training mlp on synthetic with sophiah (float32), batch 16, output in "), lines[0])
	assert.Equal(t, "building: a model of 12342 parameters (float32), optimizer sophiah, data synthetic, batch 16; loading the data, then compiling the graphs", lines[1])
	assert.True(t, strings.HasPrefix(lines[2], "first step, compiling the graphs of batch 16: "), lines[2])
	assert.True(t, strings.HasPrefix(lines[3], "step "), lines[3])

	out.Reset()
	require.Equal(t, 0, run(append(args, "-quiet", "-out", t.TempDir()), &out, &errb), errb.String())
	assert.Empty(t, out.String(), "-quiet")
}
