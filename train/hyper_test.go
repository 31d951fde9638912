package train

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/curvopt/curvopt/optim"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every knob of every optimizer: the name its Config's Validate reports is
// its tag's (the flag's and config.json's), the same name has the same type
// in every optimizer, and ResolveHyper records it. -1 is invalid for every
// numeric knob of the suite (each has a lower bound of 0 or more); a knob
// for which it is valid would fail here and need its own bad value.
func TestKnobsAgree(t *testing.T) {
	kinds := map[string]optim.KnobKind{}
	for _, name := range Optimizers() {
		knobs := defaultKnobs(name)
		require.NotEmpty(t, knobs, name)
		e, _ := registry(name)
		cfgKnobs, err := optim.Knobs(e.config(16, 1))
		require.NoError(t, err, "%s: every tagged field is a float64, int or bool", name)
		require.Len(t, cfgKnobs, len(knobs))
		resolved, err := ResolveHyper(name, nil, 16, 1)
		require.NoError(t, err)
		assert.Len(t, resolved, len(knobs), "%s: the record holds every knob", name)
		for _, k := range knobs {
			if was, ok := kinds[k.Name]; ok {
				assert.Equal(t, was, k.Kind, "%s: %s has one type in every optimizer", name, k.Name)
			}
			kinds[k.Name] = k.Kind
			assert.NotEmpty(t, k.Doc, "%s: %s has a doc tag", name, k.Name)
			assert.Contains(t, resolved, k.Name, name)
			if k.Kind == optim.KnobBool {
				continue
			}
			err := ValidateHyper(name, Hyper{k.Name: -1}, 16)
			var he *optim.HyperError
			require.True(t, errors.As(err, &he), "%s: %s = -1 must be refused with a HyperError, got %v", name, k.Name, err)
			assert.Equal(t, k.Name, he.Field, "%s: Validate names the knob by its tag", name)
			assert.Equal(t, name, he.Optimizer)
			_, err = NewOptimizer(name, Hyper{k.Name: -1}, 16, 1)
			assert.ErrorAs(t, err, &he, "%s: New refuses %s = -1 too", name, k.Name)
		}
	}
}

// The old names (flags of earlier versions) are refused naming the new
// one; decoding an old record converts them.
func TestRenamedHyper(t *testing.T) {
	for old, now := range map[string]string{"wd": "weight_decay", "k": "hessian_interval", "power": "hessian_power", "m": "ngrads"} {
		n, ok := RenamedHyper(old)
		assert.True(t, ok)
		assert.Equal(t, now, n)
		assert.NotNil(t, knobKind(now), "%s is a knob", now)
		assert.Nil(t, knobKind(old), "%s is no knob", old)
	}
	_, err := NewOptimizer("adahessian", Hyper{"power": 0.5}, 16, 1)
	assert.EqualError(t, err, `optimizer adahessian has no hyperparameter "power" (renamed hessian_power) (it takes lr, beta1, beta2, eps, weight_decay, hessian_power, hessian_interval, gnb, bs)`)
	_, err = NewOptimizer("sgd", Hyper{"weight-decay": 0.5}, 16, 1)
	assert.ErrorContains(t, err, `no hyperparameter "weight-decay" (the name is weight_decay)`)

	var h Hyper
	require.NoError(t, json.Unmarshal([]byte(`{"lr":0.1,"wd":0.01,"k":3,"power":0.5,"m":8,"nesterov":1}`), &h))
	assert.Equal(t, Hyper{"lr": 0.1, "weight_decay": 0.01, "hessian_interval": 3.0, "hessian_power": 0.5, "ngrads": 8.0, "nesterov": true}, h)
	require.NoError(t, json.Unmarshal([]byte(`{"nesterov":0}`), &h))
	assert.Equal(t, Hyper{"nesterov": false}, h)
	assert.ErrorContains(t, json.Unmarshal([]byte(`{"wd":0.1,"weight_decay":0.2}`), &h), `both "wd" and "weight_decay"`)
	// A decoded record builds: whole float64s set int knobs.
	_, err = NewOptimizer("mfac", Hyper{"ngrads": 8.0}, 16, 1)
	assert.NoError(t, err)
	_, err = NewOptimizer("sgd", Hyper{"nesterov": 1.0}, 16, 1)
	assert.ErrorContains(t, err, "hyperparameter nesterov = 1: a float64, want true or false")
}

// config.json and the checkpoint record every value the run used, under
// the knobs' names; SophiaG's bs is the batch's predictions.
func TestRunRecordsResolvedHyper(t *testing.T) {
	cfg := tinyConfig(t, "sophiag", Hyper{"lr": 1e-3, "hessian_interval": 2})
	cfg.OutDir, cfg.Steps = t.TempDir(), 1
	_, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(cfg.OutDir, "config.json"))
	require.NoError(t, err)
	var rec struct {
		Hyper map[string]any `json:"hyper"`
	}
	require.NoError(t, json.Unmarshal(b, &rec))
	assert.Equal(t, map[string]any{"lr": 1e-3, "beta1": 0.965, "beta2": 0.99, "rho": 0.04, "weight_decay": 0.1,
		"bs": 16.0, "hessian_interval": 2.0, "eps": 1e-15}, rec.Hyper)
	got, err := ReadRunConfig(cfg.OutDir)
	require.NoError(t, err)
	assert.Equal(t, Hyper{"lr": 1e-3, "beta1": 0.965, "beta2": 0.99, "rho": 0.04, "weight_decay": 0.1,
		"bs": 16.0, "hessian_interval": 2.0, "eps": 1e-15}, got.Hyper)
}

// A checkpoint written before the renaming recorded only the
// hyperparameters given, under the old names: it resumes, from its record
// or from the same settings under the new names, and a different value is
// still refused.
func TestResumeOldHyperNames(t *testing.T) {
	cfg := tinyConfig(t, "adahessian", Hyper{"lr": 0.05, "hessian_interval": 2, "weight_decay": 0.01})
	cfg.OutDir, cfg.Steps = t.TempDir(), 2
	_, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	path := filepath.Join(cfg.OutDir, checkpointFile)
	rewrite := func(hyper string) {
		ck, err := LoadCheckpoint(path)
		require.NoError(t, err)
		var rc map[string]any
		require.NoError(t, json.Unmarshal(ck.Config, &rc))
		rc["hyper"] = json.RawMessage(hyper)
		b, err := json.Marshal(rc)
		require.NoError(t, err)
		ck.Config = b
		require.NoError(t, SaveCheckpoint(path, ck))
	}
	rewrite(`{"lr":0.05,"k":2,"wd":0.01}`)

	rec, err := ReadRunConfig(cfg.OutDir)
	require.NoError(t, err)
	assert.Equal(t, Hyper{"lr": 0.05, "hessian_interval": 2.0, "weight_decay": 0.01}, rec.Hyper)
	rec.Train, rec.Test, rec.Steps = cfg.Train, cfg.Test, 3
	_, err = Run(context.Background(), rec)
	require.NoError(t, err)

	rewrite(`{"lr":0.05,"k":2,"wd":0.01}`) // the checkpoint at step 3, recorded the old way
	again := cfg
	again.Resume, again.Steps = true, 4
	_, err = Run(context.Background(), again)
	require.NoError(t, err, "the same settings under the new names")

	rewrite(`{"lr":0.05,"k":3,"wd":0.01}`)
	again.Steps = 5
	_, err = Run(context.Background(), again)
	require.Error(t, err)
	assert.ErrorContains(t, err, "the hyperparameters differ")
	assert.ErrorContains(t, err, `"hessian_interval":3`)
}
