package train

import (
	"context"
	"github.com/curvopt/curvopt/internal/num"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/curvopt/curvopt/data"
	"github.com/curvopt/curvopt/nn"
	"github.com/curvopt/curvopt/optim"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

// dagConfig is a config for a DAG model: a small GPT on a text file
// (context 8) or resnet8 on the tiny synthetic images.
func dagConfig(t *testing.T, model, optName string) Config {
	t.Helper()
	var cfg Config
	switch model {
	case "gpt":
		path := filepath.Join(t.TempDir(), "corpus.txt")
		text := strings.Repeat("the quick brown fox jumps over the lazy dog. ", 40)
		require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
		tr, te, err := data.LoadSpec(data.Spec{Kind: data.KindText, File: path, Context: 8})
		require.NoError(t, err)
		d, err := nn.GPT(nn.GPTConfig{Vocab: tr.Classes, Context: 8, Layers: 1, Heads: 2, Width: 16, Dropout: 0.1})
		require.NoError(t, err)
		cfg = Config{Model: d, Train: tr, Test: te}
	default:
		tr, te := tinyData(t)
		d, err := nn.ResNet(8, 3, 32, 10)
		require.NoError(t, err)
		cfg = Config{Model: d, Train: tr, Test: te, Normalize: true}
	}
	cfg.Optimizer, cfg.Hyper = optName, testHypers[optName]
	cfg.BatchSize, cfg.EvalBatch, cfg.Seed, cfg.Dtype = 8, 16, 5, tensor.Float64
	return cfg
}

// TestRunDAGModelsResume trains the small GPT (with dropout, whose masks
// continue across the resume) on text and resnet8 on images with a
// second-order optimizer, stopping and resuming: the parameters (and
// batch-norm running statistics) end bit-identical to an uninterrupted run,
// and the text run reports a finite validation loss.
func TestRunDAGModelsResume(t *testing.T) {
	for _, c := range []struct{ model, opt string }{{"gpt", "sophiag"}, {"resnet", "adahessian"}} {
		t.Run(c.model, func(t *testing.T) {
			const n, k = 4, 2
			straight := dagConfig(t, c.model, c.opt)
			straight.Steps, straight.OutDir = n, t.TempDir()
			a, err := Run(context.Background(), straight)
			require.NoError(t, err)
			split := dagConfig(t, c.model, c.opt)
			split.Steps, split.OutDir = k, t.TempDir()
			_, err = Run(context.Background(), split)
			require.NoError(t, err)
			split.Steps, split.Resume = n, true
			b, err := Run(context.Background(), split)
			require.NoError(t, err)
			ca, err := LoadCheckpoint(filepath.Join(straight.OutDir, checkpointFile))
			require.NoError(t, err)
			cb, err := LoadCheckpoint(filepath.Join(split.OutDir, checkpointFile))
			require.NoError(t, err)
			require.Equal(t, len(ca.Params), len(cb.Params))
			for i := range ca.Params {
				pa, pb := ca.Params[i], cb.Params[i]
				require.Positive(t, pa.Len())
				assert.Equal(t, pa.F64, pb.F64, "%s %s", pa.Slot, pa.Param)
				assert.Equal(t, pa.F32, pb.F32, "%s %s", pa.Slot, pa.Param)
			}
			assert.Equal(t, a.FinalTestLoss, b.FinalTestLoss)
			assert.False(t, math.IsNaN(a.FinalTestLoss) || math.IsInf(a.FinalTestLoss, 0))
			if c.model == "resnet" {
				bn := 0
				for _, p := range ca.Params {
					if p.Slot == "running_mean" {
						bn++
					}
				}
				assert.Equal(t, 9, bn, "resnet8's batch-norm layers are checkpointed")
			}
		})
	}
}

// TestRunTextChecks checks that a token model refuses image data and
// augmentation.
func TestRunTextChecks(t *testing.T) {
	cfg := dagConfig(t, "gpt", "adam")
	cfg.Train, cfg.Test = tinyData(t)
	cfg.Steps = 1
	_, err := Run(context.Background(), cfg)
	assert.ErrorContains(t, err, "not a text dataset")
	cfg = dagConfig(t, "gpt", "adam")
	cfg.Augment = data.Augment{Flip: true}
	cfg.Steps = 1
	_, err = Run(context.Background(), cfg)
	assert.ErrorContains(t, err, "augmentation")
}

// TestDAGRunRecordedResumedAnalyzed runs the small GPT on a text file and
// resnet8 on synthetic images from their data specs, then works from the
// run directory alone as cmd/train does: the recorded configuration
// (ReadRunConfig) holds the DAG and the text file and resumes the run; the
// analysis takes the DAG model from the checkpoint (GPT: a whole analysis;
// resnet8, whose analysis takes minutes: its weights with all nine
// batch-norm layers' statistics, which a per-layer import refused).
func TestDAGRunRecordedResumedAnalyzed(t *testing.T) {
	for _, model := range []string{"gpt", "resnet"} {
		t.Run(model, func(t *testing.T) {
			cfg := dagConfig(t, model, "sophiag")
			if model == "gpt" {
				path := filepath.Join(t.TempDir(), "corpus.txt")
				require.NoError(t, os.WriteFile(path, []byte(strings.Repeat("the quick brown fox jumps over the lazy dog. ", 40)), 0o644))
				cfg.Data = data.Spec{Kind: data.KindText, File: path, Context: 8}
			} else {
				cfg.Data = data.Spec{Kind: data.KindSynthetic, Synthetic: data.SyntheticConfig{Train: 96, Test: 40, Seed: 3}}
			}
			cfg.Train, cfg.Test = nil, nil
			cfg.Steps, cfg.OutDir = 2, t.TempDir()
			_, err := Run(context.Background(), cfg)
			require.NoError(t, err)

			rec, err := ReadRunConfig(cfg.OutDir)
			require.NoError(t, err)
			assert.Equal(t, cfg.Model, rec.Model)
			assert.Equal(t, cfg.Data.File, rec.Data.File)
			rec.Steps = 3
			res, err := Run(context.Background(), rec)
			require.NoError(t, err)
			assert.Equal(t, 3, res.Steps)

			rec.Model = nn.DAG{} // the analysis takes the model from the checkpoint
			ck, err := LoadCheckpoint(filepath.Join(cfg.OutDir, checkpointFile))
			require.NoError(t, err)
			require.NoError(t, checkpointModel(&rec, ck.Model, "ck"))
			assert.Equal(t, cfg.Model, rec.Model)
			if model == "resnet" {
				rec.Seed, rec.Optimizer, rec.Hyper, rec.Resume = 99, "sgd", nil, false
				r, err := setup(rec, false)
				require.NoError(t, err)
				defer r.close()
				require.NoError(t, loadWeights(r, ck, "ck"))
				st := optim.State{Tensors: ck.Params}
				names := r.model.BatchNormNames()
				require.Len(t, names, 9)
				for _, name := range names {
					mean, vari, err := r.model.RunningStats(name)
					require.NoError(t, err)
					assert.Equal(t, st.Find(name, "running_mean").Float64s(), num.ToFloat64(mean), name)
					assert.Equal(t, st.Find(name, "running_var").Float64s(), num.ToFloat64(vari), name)
				}
				return
			}
			a, err := Analyze(context.Background(), rec, AnalyzeConfig{Batches: 1, Top: 1, SLQSteps: 2, Probes: 1}, nil)
			require.NoError(t, err)
			n := 0
			for _, s := range ck.Params {
				if s.Slot == "value" {
					n += s.Len()
				}
			}
			assert.Equal(t, n, a.Blocks[0].Size)
			assert.Len(t, a.Blocks[0].TopEigenvalues, 1)
		})
	}
}
