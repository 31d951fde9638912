package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/train"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// For every optimizer and every knob of its Config: the flag is the knob's
// name, -h lists the Config's default under that name, an invalid value is
// reported naming the flag as typed, and config.json records the value
// under the same name (every knob, given or not).
func TestKnobFlagsAgree(t *testing.T) {
	var out, errb bytes.Buffer
	require.Equal(t, 0, run([]string{"-h"}, &out, &errb))
	help := errb.String()
	_, defaults, ok := strings.Cut(help, "Optimizer defaults")
	require.True(t, ok, "-h lists the optimizers' defaults")
	kinds := map[string]optim.KnobKind{}
	for _, k := range train.HyperKnobs() {
		kinds[k.Name] = k.Kind
	}
	tiny := []string{"-steps", "1", "-batch", "8", "-model", "mlp", "-hidden", "2", "-synthetic-train", "16", "-synthetic-test", "8", "-quiet"}
	for _, name := range train.Optimizers() {
		t.Run(name, func(t *testing.T) {
			def, err := train.ResolveHyper(name, nil, 8, 1)
			require.NoError(t, err)
			m := regexp.MustCompile(`\n  ` + name + ` +(.*)\n`).FindStringSubmatch(defaults)
			require.NotNil(t, m, "-h has a line of %s's defaults", name)
			listed := map[string]string{}
			for _, kv := range strings.Split(m[1], ", ") {
				k, v, _ := strings.Cut(kv, " ")
				listed[k] = v
			}
			args := append([]string{"-optimizer", name, "-out", t.TempDir()}, tiny...)
			given := map[string]float64{}
			for k, v := range def {
				assert.Regexp(t, "\n  -"+k+"[ \n]", help, "-%s is a flag", k)
				want := fmt.Sprint(v)
				if (name == "sophiag" || name == "adahessian") && k == "bs" {
					want = "= the batch's predictions"
				}
				assert.Equal(t, want, listed[k], "-h lists %s's default %s", name, k)
				if kinds[k] == optim.KnobBool {
					continue
				}
				var out, errb bytes.Buffer
				bad := append([]string{"-optimizer", name, "-" + k, "-1", "-out", t.TempDir()}, tiny...)
				assert.Equal(t, 2, run(bad, &out, &errb), "-%s -1", k)
				assert.Contains(t, errb.String(), "train: -"+k+" -1: must be ", "the error names -%s", k)
				// A valid value other than the default, to find in config.json.
				x := 0.25
				switch n := v.(type) {
				case int:
					x = float64(n + 1)
					if n > 2 {
						x = float64(n / 2)
					}
				case float64:
					if n > 0 {
						x = n / 2
					}
				}
				given[k] = x
				args = append(args, "-"+k, fmt.Sprint(x))
			}
			assert.Len(t, listed, len(def), "-h lists exactly %s's knobs", name)
			recorded := runRecords(t, args)
			assert.Len(t, recorded, len(def), "config.json records every knob of %s", name)
			for k := range def {
				require.Contains(t, recorded, k)
				if x, ok := given[k]; ok {
					assert.Equal(t, x, recorded[k], "config.json records -%s as given", k)
				} else {
					assert.Equal(t, def[k], recorded[k], "config.json records %s's default", k)
				}
			}
		})
	}
	// The switch, given alone, is recorded as a bool.
	recorded := runRecords(t, append([]string{"-optimizer", "sgd", "-nesterov", "-out", t.TempDir()}, tiny...))
	assert.Equal(t, true, recorded["nesterov"])
}

// runRecords runs the command with args and returns the hyperparameters
// its config.json records.
func runRecords(t *testing.T, args []string) map[string]any {
	t.Helper()
	var out, errb bytes.Buffer
	require.Equal(t, 0, run(args, &out, &errb), "%v: %s", args, errb.String())
	i := 0
	for j, a := range args {
		if a == "-out" {
			i = j + 1
		}
	}
	b, err := os.ReadFile(filepath.Join(args[i], "config.json"))
	require.NoError(t, err)
	var rec struct {
		Hyper map[string]any `json:"hyper"`
	}
	require.NoError(t, json.Unmarshal(b, &rec))
	return rec.Hyper
}

// A run whose checkpoint and config.json were written under the old names
// (only the hyperparameters given: -wd, -k) resumes with -resume alone, and
// its new config.json records every value under the new names.
func TestResumeOldNamedRun(t *testing.T) {
	dir := t.TempDir()
	args := []string{"-optimizer", "sophiah", "-weight_decay", "0.05", "-hessian_interval", "2", "-steps", "2", "-batch", "8",
		"-model", "mlp", "-hidden", "2", "-synthetic-train", "16", "-synthetic-test", "8", "-quiet", "-out", dir}
	var out, errb bytes.Buffer
	require.Equal(t, 0, run(args, &out, &errb), errb.String())
	path := filepath.Join(dir, "checkpoint.gob")
	ck, err := train.LoadCheckpoint(path)
	require.NoError(t, err)
	var rc map[string]any
	require.NoError(t, json.Unmarshal(ck.Config, &rc))
	rc["hyper"] = json.RawMessage(`{"wd":0.05,"k":2}`)
	ck.Config, err = json.Marshal(rc)
	require.NoError(t, err)
	require.NoError(t, train.SaveCheckpoint(path, ck))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), ck.Config, 0o644))

	errb.Reset()
	require.Equal(t, 0, run([]string{"-resume", "-out", dir, "-steps", "3", "-quiet"}, &out, &errb), errb.String())
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	require.NoError(t, err)
	var rec struct {
		Hyper map[string]any `json:"hyper"`
	}
	require.NoError(t, json.Unmarshal(b, &rec))
	assert.Equal(t, 0.05, rec.Hyper["weight_decay"])
	assert.Equal(t, 2.0, rec.Hyper["hessian_interval"])
	assert.Equal(t, 0.001, rec.Hyper["lr"], "the default, recorded")
	assert.NotContains(t, rec.Hyper, "wd")

	// A changed value is still refused, under its name.
	errb.Reset()
	assert.Equal(t, 1, run([]string{"-resume", "-out", dir, "-steps", "4", "-hessian_interval", "3", "-quiet"}, &out, &errb))
	assert.Contains(t, errb.String(), "the hyperparameters differ")
	assert.Contains(t, errb.String(), `"hessian_interval":3`)
}
