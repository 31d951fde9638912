package train

import (
	"context"
	"encoding/json"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/curvopt/curvopt/data"
	"github.com/curvopt/curvopt/internal/meminfo"
	"github.com/curvopt/curvopt/nn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// reshaped returns a copy of d whose images have the same number of values
// in another shape.
func reshaped(d *data.Dataset, c, h, w int) *data.Dataset {
	e := *d
	e.C, e.H, e.W = c, h, w
	return &e
}

func TestInputsCheckedBeforeTraining(t *testing.T) {
	run := func(cfg Config) error {
		cfg.Steps = 1
		_, err := Run(context.Background(), cfg)
		return err
	}
	cnn := func() Config {
		cfg := tinyConfig(t, "adam", nil)
		cfg.Model = nn.CNN(3, 32, 10)
		return cfg
	}

	cfg := cnn()
	cfg.Train = reshaped(cfg.Train, 3, 16, 64) // as many values, another shape
	cfg.Test = reshaped(cfg.Test, 3, 16, 64)
	assert.ErrorContains(t, run(cfg), "the model takes inputs of shape [3 32 32] (3072 values) but synthetic/train has 3x16x64 images")

	cfg = cnn()
	cfg.Test = reshaped(cfg.Test, 3, 64, 16)
	assert.ErrorContains(t, run(cfg), `train: data: the test split "synthetic/test" has 3x64x16 images but the training split "synthetic/train" has 3x32x32`)

	cfg = cnn()
	cfg.Test = &data.Dataset{Name: "synthetic/test", Classes: 10, C: 3, H: 32, W: 32, Pixels: []uint8{}, Labels: []int{}}
	assert.ErrorContains(t, run(cfg), `train: data: dataset "synthetic/test" is empty`)

	cfg = tinyConfig(t, "adam", nil)
	cfg.BatchSize = 1_000_000_000
	assert.EqualError(t, run(cfg), "train: batch size 1000000000 exceeds the 96 images of synthetic/train: at most 96 (-batch)")

	cfg = tinyConfig(t, "adam", nil)
	cfg.GNBBatch = 8
	assert.EqualError(t, run(cfg), "train: GNB batch 8: optimizer adam does not use the GNB (sampled-label) estimate; only sophiag does")

	cfg = tinyConfig(t, "mfac", Hyper{"ngrads": 2000})
	cfg.Memory = func() (int64, error) { return 100e6, nil }
	err := run(cfg)
	var me *meminfo.Error
	require.ErrorAs(t, err, &me)
	// d = 3072·12 + 12 + 12·10 + 10 = 37006; float64 window 2000·d·8 plus
	// three 2000² float64 matrices; the checkpoint's float64 copies.
	assert.EqualError(t, err, "train: M-FAC's window of m = 2000 gradients of d = 37006 parameters (float64: 688.1 MB, and 64.0 MB more for a checkpoint) needs 752.1 MB but 100.0 MB is available (MemAvailable): lower the window size (-ngrads)")
	cfg.MemoryLimit = 100e6
	cfg.Memory = func() (int64, error) { return 2e9, nil }
	assert.ErrorContains(t, run(cfg), "needs 752.1 MB but 100.0 MB is available (-memory-limit): lower the window size (-ngrads)",
		"a memory limit bounds the window even where the machine has room")
	cfg.MemoryLimit = 0
	require.NoError(t, run(cfg), "the same window fits in 2 GB")
}

func TestModelSizeCheckedBeforeAllocating(t *testing.T) {
	cfg := tinyConfig(t, "adam", nil)
	cfg.Model = nn.MLP(3072, []int{100_000_000}, 10)
	cfg.Memory = func() (int64, error) { return 8e9, nil }
	_, err := Run(context.Background(), cfg)
	assert.EqualError(t, err, "train: a model of 308300000010 parameters (float64, 5 copies: values, gradient, curvature buffer, optimizer moments) needs 12332.0 GB but 8.0 GB is available (MemAvailable): use a smaller model (-hidden, -model)")
	cfg.Model = nn.MLP(3072, []int{1000}, 10)
	cfg.MemoryLimit = 10e6
	_, err = Run(context.Background(), cfg)
	assert.ErrorContains(t, err, "more than the memory limit (-memory-limit), 10.0 MB", "a memory limit bounds the parameters and graphs")
}

func TestNewOptimizerRefusesFractionsAndInfinities(t *testing.T) {
	_, err := NewOptimizer("mfac", Hyper{"ngrads": 2.5}, 16, 1)
	assert.EqualError(t, err, "optimizer mfac: hyperparameter ngrads = 2.5: must be a whole number of at most 2147483647 in magnitude")
	_, err = NewOptimizer("sophiah", Hyper{"hessian_interval": 1e12}, 16, 1)
	assert.ErrorContains(t, err, "hyperparameter hessian_interval = 1e+12: must be a whole number")
	_, err = NewOptimizer("adam", Hyper{"lr": posInf()}, 16, 1)
	assert.EqualError(t, err, "adam: invalid lr = +Inf: must be finite and > 0")
	_, err = NewOptimizer("mfac", Hyper{"ngrads": 3}, 16, 1)
	assert.NoError(t, err)
}

func TestDivergedSaysWhichCheckpoint(t *testing.T) {
	cfg := tinyConfig(t, "sgd", Hyper{"lr": 1e30, "momentum": 0})
	cfg.Steps = 10
	_, err := Run(context.Background(), cfg)
	require.ErrorIs(t, err, ErrDiverged)
	assert.True(t, strings.HasSuffix(err.Error(), "; no checkpoint: no output directory"), err.Error())

	cfg.OutDir = t.TempDir()
	_, err = Run(context.Background(), cfg)
	require.ErrorIs(t, err, ErrDiverged)
	assert.True(t, strings.HasSuffix(err.Error(), "; no checkpoint was written yet"), err.Error())

	// A checkpoint after every step: the one before the failing step is kept.
	cfg.CheckpointEvery, cfg.OutDir = 1, t.TempDir()
	_, err = Run(context.Background(), cfg)
	require.ErrorIs(t, err, ErrDiverged)
	assert.Contains(t, err.Error(), "; the last checkpoint, "+filepath.Join(cfg.OutDir, "checkpoint.gob")+", is kept")
}

func TestConfigRefusesInfiniteClip(t *testing.T) {
	cfg := tinyConfig(t, "adam", nil)
	cfg.ClipNorm = posInf()
	assert.EqualError(t, cfg.Validate(), "train: clip_norm +Inf: must be a finite number >= 0 (0 turns clipping off)")
}

func posInf() float64 { return math.Inf(1) }

// TestSettingErrorsNameTheSetting: every invalid setting is a
// *SettingError naming it by its record's key, which commands map to their
// flags.
func TestSettingErrorsNameTheSetting(t *testing.T) {
	for setting, mod := range map[string]func(*Config){
		"batch_size":    func(c *Config) { c.BatchSize = -1 },
		"eval_batch":    func(c *Config) { c.EvalBatch = -1 },
		"eval_every":    func(c *Config) { c.EvalEvery = -1 },
		"steps":         func(c *Config) { c.Steps = -1 },
		"epochs":        func(c *Config) { c.Epochs = -1 },
		"clip_norm":     func(c *Config) { c.ClipNorm = math.NaN() },
		"gnb_batch":     func(c *Config) { c.GNBBatch = c.BatchSize + 1 },
		"hessian_every": func(c *Config) { c.HessianEvery = -1 },
		"memory_limit":  func(c *Config) { c.MemoryLimit = -1 },
	} {
		cfg := tinyConfig(t, "adam", nil)
		mod(&cfg)
		var se *SettingError
		require.ErrorAs(t, cfg.Validate(), &se, setting)
		assert.Equal(t, setting, se.Setting)
		if setting == "memory_limit" {
			continue // not part of the record: a limit of this machine
		}
		rc, err := json.Marshal(tinyConfig(t, "adam", nil).record())
		require.NoError(t, err)
		assert.Contains(t, string(rc), `"`+setting+`":`, "%s is the record's key", setting)
	}
}
