package train

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/curvopt/curvopt/data"
	"github.com/curvopt/curvopt/hessian/spectrum"
	"github.com/curvopt/curvopt/nn"
	"github.com/curvopt/curvopt/optim"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

// tinyData is a small synthetic dataset shared by the tests.
func tinyData(t *testing.T) (*data.Dataset, *data.Dataset) {
	t.Helper()
	tr, te, err := data.Synthetic(data.SyntheticConfig{Train: 96, Test: 40, Seed: 3})
	require.NoError(t, err)
	return tr, te
}

func tinyConfig(t *testing.T, optName string, h Hyper) Config {
	tr, te := tinyData(t)
	return Config{
		Model:     nn.MLP(3*32*32, []int{12}, 10),
		Train:     tr,
		Test:      te,
		Optimizer: optName,
		Hyper:     h,
		BatchSize: 16,
		EvalBatch: 20,
		Seed:      5,
		Dtype:     tensor.Float64,
		Normalize: true,
	}
}

// testHypers gives every optimizer settings that exercise its curvature
// queries within a few steps.
var testHypers = map[string]Hyper{
	"sgd":        {"lr": 0.05},
	"adam":       {},
	"adamw":      {},
	"sophiag":    {"lr": 1e-3, "hessian_interval": 2},
	"sophiah":    {"lr": 1e-3, "hessian_interval": 2},
	"adahessian": {"lr": 0.05},
	"mfac":       {"ngrads": 4},
}

// TestResumeBitIdentical trains N steps in one go and k steps, stop, resume
// to N, for every optimizer, and requires bit-identical parameters.
func TestResumeBitIdentical(t *testing.T) {
	const n, k = 8, 3 // 6 batches per epoch: the resume crosses an epoch
	for _, name := range Optimizers() {
		t.Run(name, func(t *testing.T) {
			_, err := NewOptimizer(name, testHypers[name], 16, 1)
			require.NoError(t, err, "every optimizer Optimizers() lists must build")
			straight := tinyConfig(t, name, testHypers[name])
			straight.Steps = n
			straight.OutDir = t.TempDir()
			a, err := Run(context.Background(), straight)
			require.NoError(t, err)

			split := tinyConfig(t, name, testHypers[name])
			split.OutDir = t.TempDir()
			split.Steps = k
			_, err = Run(context.Background(), split)
			require.NoError(t, err)
			split.Steps = n
			split.Resume = true
			b, err := Run(context.Background(), split)
			require.NoError(t, err)

			pa := checkpointParams(t, straight.OutDir)
			pb := checkpointParams(t, split.OutDir)
			require.Equal(t, len(pa), len(pb))
			for i := range pa {
				require.Equal(t, math.Float64bits(pa[i]), math.Float64bits(pb[i]), "parameter entry %d", i)
			}
			assert.Equal(t, a.FinalTestAcc, b.FinalTestAcc)
			assert.Equal(t, n, b.Steps)

			// The resumed run's step log continues the first one's: steps 1..n.
			lines := readLines(t, filepath.Join(split.OutDir, "steps.jsonl"))
			require.Len(t, lines, n)
			assert.Contains(t, lines[n-1], `"step":8`)
		})
	}
}

func checkpointParams(t *testing.T, dir string) []float64 {
	c, err := LoadCheckpoint(filepath.Join(dir, checkpointFile))
	require.NoError(t, err)
	var out []float64
	for _, p := range c.Params {
		if p.Slot == "value" {
			out = append(out, p.Float64s()...)
		}
	}
	require.NotEmpty(t, out)
	return out
}

func readLines(t *testing.T, path string) []string {
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func TestLossFalls(t *testing.T) {
	cfg := tinyConfig(t, "adam", Hyper{"lr": 3e-3})
	cfg.Epochs = 4
	res, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	require.Len(t, res.EpochLog, 4)
	first, last := res.EpochLog[0], res.EpochLog[3]
	assert.Less(t, last.TrainLoss, first.TrainLoss)
	assert.Greater(t, res.MeanStepMS, 0.0)
	assert.Greater(t, res.StateBytes, int64(0))
}

func TestNaNStopsWithStepAndKeepsCheckpoint(t *testing.T) {
	// Without a checkpoint yet, the error does not claim one is kept.
	cfg := tinyConfig(t, "sgd", Hyper{"lr": 1e30, "momentum": 0})
	cfg.OutDir = t.TempDir()
	cfg.Steps = 20
	cfg.CheckpointEvery = -1
	_, err := Run(context.Background(), cfg)
	require.ErrorIs(t, err, ErrDiverged)
	assert.Contains(t, err.Error(), "no checkpoint was written yet")
	_, statErr := os.Stat(filepath.Join(cfg.OutDir, checkpointFile))
	assert.True(t, os.IsNotExist(statErr))

	// With a checkpoint every step, the last good one (before the
	// non-finite step) stays and loads.
	cfg.OutDir = t.TempDir()
	cfg.CheckpointEvery = 1
	_, err = Run(context.Background(), cfg)
	require.ErrorIs(t, err, ErrDiverged)
	assert.Regexp(t, `step \d+`, err.Error())
	assert.Regexp(t, `NaN|Inf|not finite`, err.Error())
	assert.Contains(t, err.Error(), "the last checkpoint, "+filepath.Join(cfg.OutDir, "checkpoint.gob")+", is kept")
	c, err := LoadCheckpoint(filepath.Join(cfg.OutDir, checkpointFile))
	require.NoError(t, err)
	for _, p := range c.Params {
		require.Equal(t, -1, p.NonFinite(), "the kept checkpoint holds finite parameters")
	}
}

func TestResumeRefusesOtherModelOrOptimizer(t *testing.T) {
	cfg := tinyConfig(t, "adam", nil)
	cfg.OutDir = t.TempDir()
	cfg.Steps = 2
	_, err := Run(context.Background(), cfg)
	require.NoError(t, err)

	other := cfg
	other.Resume, other.Steps = true, 4
	other.Optimizer = "sgd"
	_, err = Run(context.Background(), other)
	require.ErrorContains(t, err, "optimizer adam")

	other = cfg
	other.Resume, other.Steps = true, 4
	other.Model = nn.MLP(3*32*32, []int{7}, 10)
	_, err = Run(context.Background(), other)
	require.ErrorContains(t, err, "another model")

	other = cfg
	other.Resume, other.Steps = true, 4
	other.Dtype = tensor.Float32
	_, err = Run(context.Background(), other)
	require.ErrorContains(t, err, "float64")

	missing := cfg
	missing.Resume = true
	missing.OutDir = t.TempDir()
	_, err = Run(context.Background(), missing)
	require.ErrorContains(t, err, "checkpoint")
}

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.Optimizer = "lbfgs" }, `unknown optimizer "lbfgs"`},
		{func(c *Config) { c.Hyper = Hyper{"rho": 1} }, `no hyperparameter "rho"`},
		{func(c *Config) { c.Hyper = Hyper{"lr": -1} }, "lr"},
		{func(c *Config) { c.BatchSize = -3 }, "batch_size -3"},
		{func(c *Config) { c.Model = nn.MLP(784, []int{8}, 10) }, "784"},
		{func(c *Config) { c.Schedule = Schedule{Kind: "step", Gamma: 2} }, "gamma"},
	}
	for _, tc := range cases {
		cfg := tinyConfig(t, "adam", nil)
		tc.mod(&cfg)
		_, err := Run(context.Background(), cfg)
		require.Error(t, err, tc.want)
		assert.Contains(t, err.Error(), tc.want)
	}
}

func TestScheduleFactors(t *testing.T) {
	s := Schedule{Kind: "step", Milestones: []int{2, 4}, Gamma: 0.5, Warmup: 2}
	require.NoError(t, s.Validate())
	assert.Equal(t, []float64{0.5, 1, 0.5, 0.5, 0.25}, []float64{s.Factor(0), s.Factor(1), s.Factor(2), s.Factor(3), s.Factor(4)})
	c := Schedule{Kind: "cosine", Total: 10, MinFactor: 0.1}
	assert.InDelta(t, 1, c.Factor(0), 1e-15)
	assert.InDelta(t, 0.55, c.Factor(5), 1e-15)
	assert.InDelta(t, 0.1, c.Factor(10), 1e-15)
	_, err := ParseSchedule("step:10,5")
	require.ErrorContains(t, err, "increasing")
	p, err := ParseSchedule("step:10,20:0.2")
	require.NoError(t, err)
	assert.Equal(t, Schedule{Kind: "step", Milestones: []int{10, 20}, Gamma: 0.2}, p)
}

func TestSharpnessAndAnalysis(t *testing.T) {
	cfg := tinyConfig(t, "sgd", Hyper{"lr": 0.05})
	cfg.OutDir = t.TempDir()
	cfg.Steps = 4
	cfg.HessianEvery = 2
	res, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	require.NotNil(t, res.StepLog[1].HessTop)
	assert.Nil(t, res.StepLog[0].HessTop)
	assert.Greater(t, *res.StepLog[1].HessTop, 0.0)

	_, err = Analyze(context.Background(), cfg, AnalyzeConfig{TraceMethod: "hutch+"}, nil)
	require.ErrorContains(t, err, `trace method "hutch+"`)
	a, err := Analyze(context.Background(), cfg, AnalyzeConfig{Batches: 2, Top: 2, SLQSteps: 10, Probes: 1, PerLayer: true, TraceMethod: spectrum.MethodHutchPP}, nil)
	require.NoError(t, err)
	require.Len(t, a.Blocks, 5) // model + 4 parameters
	assert.GreaterOrEqual(t, a.Blocks[0].TopEigenvalues[0], a.Blocks[0].TopEigenvalues[1])
	assert.NotEmpty(t, a.Density.X)
	for _, f := range []string{"spectrum.json"} {
		st, err := os.Stat(filepath.Join(cfg.OutDir, f))
		require.NoError(t, err, f)
		assert.Greater(t, st.Size(), int64(100), f)
	}
}

// TestSharpnessQuick checks the cheap tracking mode against the thorough one
// on the same run (the measurement does not change the trajectory): the same
// top eigenvalue to the quick mode's tolerance, and no trace. Progress is
// printed in both modes (quick mode's records carry no trace to print).
func TestSharpnessQuick(t *testing.T) {
	run := func(quick bool) ([]StepRecord, string) {
		cfg := tinyConfig(t, "sgd", Hyper{"lr": 0.05})
		cfg.Steps, cfg.HessianEvery, cfg.HessianQuick = 4, 2, quick
		var out strings.Builder
		cfg.Progress, cfg.LogEvery = &out, 100
		res, err := Run(context.Background(), cfg)
		require.NoError(t, err)
		return res.StepLog, out.String()
	}
	full, fullOut := run(false)
	quick, quickOut := run(true)
	for _, i := range []int{1, 3} {
		require.NotNil(t, full[i].HessTrace)
		require.NotNil(t, quick[i].HessTop)
		assert.Nil(t, quick[i].HessTrace, "quick mode measures no trace")
		assert.Equal(t, full[i].Loss, quick[i].Loss, "the measurement must not change the run")
		require.True(t, *full[i].HessConverged && *quick[i].HessConverged, "step %d: both estimates converged", i+1)
		// Both are Ritz values of the same symmetric H, so at most its top
		// eigenvalue, which the thorough mode has to ~1e-6 relative; the
		// quick one stops when it changes by at most 1e-3 relative.
		tf, tq := *full[i].HessTop, *quick[i].HessTop
		t.Logf("step %d: λmax %.9g (thorough), %.9g (quick), relative difference %.2g", i+1, tf, tq, (tf-tq)/tf)
		assert.LessOrEqual(t, tq, tf*(1+1e-6), "step %d: a Ritz value above the top eigenvalue", i+1)
		assert.InEpsilon(t, tf, tq, 1e-3, "step %d", i+1)
	}
	assert.Nil(t, quick[0].HessTop)
	for _, step := range []string{"step 2/4", "step 4/4"} {
		assert.Regexp(t, step+` .* λmax [0-9.e+-]+ tr [0-9.e+-]+±`, fullOut)
		assert.Regexp(t, step+` .* λmax [0-9.e+-]+\n`, quickOut)
	}
	assert.NotContains(t, quickOut, " tr ", "no trace is printed in quick mode")
}

// TestProgressQuickSharpness prints a quick-mode sharpness record (no trace)
// on a terminal and in plain lines.
func TestProgressQuickSharpness(t *testing.T) {
	top, conv := 12.5, false
	rec := StepRecord{Step: 3, Epoch: 1, Loss: 1, LR: 0.1, HessTop: &top, HessConverged: &conv}
	for _, terminal := range []bool{false, true} {
		var out strings.Builder
		newProgress(&out, terminal, 10, 5, 1, time.Now).step(rec)
		assert.Contains(t, out.String(), " λmax 12.5 (not converged)", "terminal %v", terminal)
		assert.NotContains(t, out.String(), " tr ", "terminal %v", terminal)
	}
}

// TestPredictionsPerBatch pins Sophia's bs: rows for an image model, rows ×
// context for a token model (every position is a prediction), GNB rows when
// the estimate uses a sub-batch.
func TestPredictionsPerBatch(t *testing.T) {
	img := Config{BatchSize: 64}
	assert.Equal(t, 64, predictionsPerBatch(img, false))
	img.GNBBatch = 16
	assert.Equal(t, 16, predictionsPerBatch(img, false))
	gpt, err := nn.GPT(nn.GPTConfig{Vocab: 10, Context: 32, Layers: 1, Heads: 1, Width: 8})
	require.NoError(t, err)
	txt := Config{BatchSize: 8, Model: gpt}
	assert.Equal(t, 8*32, predictionsPerBatch(txt, true))
	txt.GNBBatch = 2
	assert.Equal(t, 2*32, predictionsPerBatch(txt, true))
}

func TestGradientClipping(t *testing.T) {
	cfg := tinyConfig(t, "sgd", Hyper{"lr": 0.05})
	cfg.Steps = 3
	cfg.ClipNorm = 1e-3
	res, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	for _, s := range res.StepLog {
		assert.Greater(t, s.GradNorm, 1e-3, "the recorded norm is the norm before clipping")
	}

	// The loop applies the clip: one plain SGD step (no momentum, no
	// decay) from the same start on the same batch with two clip norms c₁,
	// c₂ below ‖g‖ gives θ₁(c₁) − θ₁(c₂) = −lr·(c₁ − c₂)·g/(‖g‖ + 1e-6),
	// whose norm is lr·|c₁ − c₂|·‖g‖/(‖g‖ + 1e-6).
	const lr = 0.05
	step := func(clip float64) ([]float64, float64) {
		c := tinyConfig(t, "sgd", Hyper{"lr": lr, "momentum": 0, "weight_decay": 0})
		c.Steps = 1
		c.ClipNorm = clip
		c.OutDir = t.TempDir()
		res, err := Run(context.Background(), c)
		require.NoError(t, err)
		ck, err := LoadCheckpoint(filepath.Join(c.OutDir, "checkpoint.gob"))
		require.NoError(t, err)
		var theta []float64
		for _, p := range ck.Params {
			if p.Slot == "value" {
				theta = append(theta, p.Float64s()...)
			}
		}
		return theta, res.StepLog[0].GradNorm
	}
	a, n := step(1e-3)
	b, n2 := step(2e-3)
	require.Equal(t, n, n2)
	require.Greater(t, n, 2e-3)
	var diff float64
	for i := range a {
		diff += (a[i] - b[i]) * (a[i] - b[i])
	}
	assert.InDelta(t, lr*1e-3*n/(n+1e-6), math.Sqrt(diff), 1e-12, "‖θ₁(c₁) − θ₁(c₂)‖")
}

func TestGNBBatch(t *testing.T) {
	cfg := tinyConfig(t, "sophiag", Hyper{"lr": 1e-3, "hessian_interval": 2})
	cfg.Steps = 4
	cfg.GNBBatch = 8
	res, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	assert.Len(t, res.StepLog, 4)

	cfg.GNBBatch = 17
	_, err = Run(context.Background(), cfg)
	require.ErrorContains(t, err, "gnb_batch 17: must be in [0, the batch size 16]")
}

func TestEvalEveryAndDivergedSentinel(t *testing.T) {
	cfg := tinyConfig(t, "adam", nil)
	cfg.Steps = 9 // 6 steps an epoch
	cfg.EvalEvery = 4
	res, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	var steps []int
	for _, e := range res.EpochLog {
		steps = append(steps, e.Step)
	}
	assert.Equal(t, []int{4, 6, 8, 9}, steps)

	cfg = tinyConfig(t, "sgd", Hyper{"lr": 1e30, "momentum": 0})
	cfg.Steps = 10
	_, err = Run(context.Background(), cfg)
	require.ErrorIs(t, err, ErrDiverged)
	require.ErrorIs(t, err, optim.ErrNonFinite)
}
