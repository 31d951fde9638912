package train

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/curvopt/curvopt/data"
	"github.com/curvopt/curvopt/nn"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

// TestDataParallelResumeAcrossRanks: a run checkpointed at step 5 by N
// ranks and resumed to step 10 by M ranks, or by one process, is the
// uninterrupted single-process run, every optimizer: in float64 to
// dist64Tol (the checkpoint holds nothing that depends on the number of
// ranks: the parameters and optimizer state are the same on every rank,
// the data order and the sampled-label generator are the global batch's),
// and in float32 within the tolerances of TestDataParallelEqualsOneProcess.
func TestDataParallelResumeAcrossRanks(t *testing.T) {
	tr, te, err := data.Synthetic(data.SyntheticConfig{Train: 250, Test: 40, Seed: 5})
	require.NoError(t, err)
	for _, name := range Optimizers() {
		for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
			t.Run(name+"/"+dt.String(), func(t *testing.T) {
				base := Config{Model: nn.MLP(3*32*32, []int{16}, 10), Train: tr, Test: te, Optimizer: name,
					Hyper: distHypers[name], Steps: 10, BatchSize: 32, Seed: 3, Normalize: true, Dtype: dt}
				want := runDist(t, base, 1)
				lossTol, paramTol := dist64Tol, dist64Tol
				if dt == tensor.Float32 {
					one64 := base
					one64.Dtype = tensor.Float64
					ownLoss, ownParam := want.diff(t, runDist(t, one64, 1))
					lossTol, paramTol = max(distLossTol, 2*ownLoss), max(distParamTol, 2*ownParam)
				}
				for _, nm := range [][2]int{{2, 3}, {3, 1}, {1, 2}} {
					c := base
					c.OutDir = t.TempDir()
					c.Steps = 5
					first := runRanksOrOne(t, c, nm[0])
					c.Steps, c.Resume = 10, true
					second := runRanksOrOne(t, c, nm[1])
					ck, err := LoadCheckpoint(filepath.Join(c.OutDir, checkpointFile))
					require.NoError(t, err)
					got := &distRun{append(first, second...), ck}
					dl, dp := got.diff(t, want)
					t.Logf("%s %v, %d ranks then %d: max relative loss difference %.2g, max parameter difference %.2g", name, dt, nm[0], nm[1], dl, dp)
					require.Less(t, dl, lossTol, fmt.Sprintf("%d ranks then %d: losses", nm[0], nm[1]))
					require.Less(t, dp, paramTol, fmt.Sprintf("%d ranks then %d: parameters", nm[0], nm[1]))
				}
			})
		}
	}
}

// runRanksOrOne runs cfg (in cfg.OutDir) as n ranks, or one process, and
// returns rank 0's step records, the ranks' parameters required equal.
func runRanksOrOne(t *testing.T, cfg Config, n int) []StepRecord {
	t.Helper()
	if n == 1 {
		res, err := Run(context.Background(), cfg)
		require.NoError(t, err)
		return res.StepLog
	}
	res := runRanks(t, cfg, n)
	for r := range res {
		require.Equal(t, res[0].ParamsDigest, res[r].ParamsDigest, "rank %d's parameters differ from rank 0's", r)
	}
	return res[0].StepLog
}
