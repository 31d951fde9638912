package optim_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/curvopt/curvopt/internal/golden"
	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/optim/adam"
	"github.com/curvopt/curvopt/optim/optimtest"
	"github.com/curvopt/curvopt/optim/sgd"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

// groupsReference is testdata/param_groups_torch.json, written by
// testdata/param_groups_torch.py from torch.optim.
type groupsReference struct {
	A      [][]float64 `json:"A"`
	B      []float64   `json:"b"`
	Theta0 []float64   `json:"theta0"`
	Shapes [][]int     `json:"shapes"`
	Names  []string    `json:"names"`
	Steps  int         `json:"steps"`
	Halve  int         `json:"halve_lr_before_step"`
	Cases  []struct {
		Optimizer   string        `json:"optimizer"`
		LR          float64       `json:"lr"`
		WeightDecay float64       `json:"weight_decay"`
		Groups      []optim.Group `json:"groups"`
		ParamsAfter [][]float64   `json:"params_after"`
	} `json:"cases"`
}

// TestParamGroupsAgainstTorch replays torch.optim's SGD (momentum 0.9),
// Adam (coupled L2) and AdamW with two parameter groups (learning-rate
// scales 1 and 0.5, weight decays 0.1 and 0) and a learning rate halved
// before step 4, on a float64 quadratic, and requires the parameters after
// every step to match torch's to 1e-12 (norm-wise relative).
func TestParamGroupsAgainstTorch(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "param_groups_torch.json"))
	require.NoError(t, err)
	var ref groupsReference
	require.NoError(t, json.Unmarshal(b, &ref))
	require.Len(t, ref.Cases, 3)
	for _, c := range ref.Cases {
		t.Run(c.Optimizer, func(t *testing.T) {
			var opt optim.Optimizer
			switch c.Optimizer {
			case "sgd":
				opt, err = sgd.New(sgd.Config{LR: c.LR, Momentum: 0.9, WeightDecay: c.WeightDecay})
			case "adam", "adamw":
				cfg := adam.Default()
				if c.Optimizer == "adamw" {
					cfg = adam.DefaultW()
				}
				cfg.LR, cfg.WeightDecay = c.LR, c.WeightDecay
				opt, err = adam.New(cfg)
			}
			require.NoError(t, err)
			require.NoError(t, opt.SetGroups(c.Groups))
			ps := make([]optim.Param, len(ref.Shapes))
			for i, s := range ref.Shapes {
				ps[i] = optim.Param{Name: ref.Names[i],
					Value: tensor.New(tensor.Of(tensor.Float64), tensor.WithShape(s...)),
					Grad:  tensor.New(tensor.Of(tensor.Float64), tensor.WithShape(s...))}
			}
			optimtest.Unflatten(values(ps), ref.Theta0)
			for step := 1; step <= ref.Steps; step++ {
				if step == ref.Halve {
					require.NoError(t, opt.SetLR(c.LR/2))
				}
				theta := optimtest.Flatten(ps)
				g := golden.MatVec(ref.A, theta)
				for i := range g {
					g[i] += ref.B[i]
				}
				optimtest.Unflatten(grads(ps), g)
				require.NoError(t, opt.Step(ps, nil))
				e := golden.RelErr(optimtest.Flatten(ps), c.ParamsAfter[step-1])
				require.LessOrEqual(t, e, 1e-12, "step %d: parameters differ from torch.optim's", step)
			}
			st, err := opt.State()
			require.NoError(t, err)
			require.Equal(t, c.Groups, st.Groups, "the state records the groups")
		})
	}
}

func values(ps []optim.Param) []*tensor.Dense {
	out := make([]*tensor.Dense, len(ps))
	for i, p := range ps {
		out[i] = p.Value
	}
	return out
}

func grads(ps []optim.Param) []*tensor.Dense {
	out := make([]*tensor.Dense, len(ps))
	for i, p := range ps {
		out[i] = p.Grad
	}
	return out
}
