package train

import (
	"context"
	"testing"

	"github.com/curvopt/curvopt/data"
	"github.com/curvopt/curvopt/nn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

// e2eHypers are learning rates that suit these small runs; the rest are the
// optimizers' documented defaults. Sophia's rho is raised so that a fair
// share of coordinates is unclipped (its authors' advice: tune rho for a win
// rate of 0.1-0.5) with bs = the batch size.
var e2eHypers = map[string]Hyper{
	"sgd":        {"lr": 0.01},
	"adam":       {"lr": 1e-3},
	"adamw":      {"lr": 1e-3},
	"sophiag":    {"lr": 3e-4, "hessian_interval": 5},
	"sophiah":    {"lr": 3e-4, "hessian_interval": 5},
	"adahessian": {"lr": 0.05},
	"mfac":       {"lr": 0.03, "ngrads": 16},
}

// TestEndToEndLossFalls trains the MLP and the small CNN with every
// optimizer through the curvature engine on synthetic CIFAR-style data and
// requires the training loss to fall.
func TestEndToEndLossFalls(t *testing.T) {
	tr, te, err := data.Synthetic(data.SyntheticConfig{Train: 640, Test: 100, Seed: 11})
	require.NoError(t, err)
	models := []struct {
		name  string
		spec  nn.DAG
		steps int
		batch int
	}{
		{"mlp", nn.MLP(3*32*32, []int{64}, 10), 200, 32},
		{"cnn", nn.CNN(3, 32, 10), 150, 16},
	}
	for _, m := range models {
		for _, name := range Optimizers() {
			t.Run(m.name+"/"+name, func(t *testing.T) {
				_, err := NewOptimizer(name, nil, m.batch, 1)
				require.NoError(t, err, "every optimizer Optimizers() lists must build")
				cfg := Config{Model: m.spec, Train: tr, Test: te, Optimizer: name, Hyper: e2eHypers[name],
					Steps: m.steps, BatchSize: m.batch, EvalBatch: 100, Seed: 2, Dtype: tensor.Float32, Normalize: true}
				res, err := Run(context.Background(), cfg)
				require.NoError(t, err)
				require.Len(t, res.StepLog, m.steps)
				w := m.steps / 5
				first, last := meanLoss(res.StepLog[:w]), meanLoss(res.StepLog[m.steps-w:])
				t.Logf("%s %s: loss %.3f -> %.3f, test acc %.3f", m.name, name, first, last, res.FinalTestAcc)
				assert.Less(t, last, first-0.1, "the training loss must fall clearly")
			})
		}
	}
}

func meanLoss(rs []StepRecord) float64 {
	s := 0.0
	for _, r := range rs {
		s += r.Loss
	}
	return s / float64(len(rs))
}
