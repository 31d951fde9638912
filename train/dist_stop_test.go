package train

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/curvopt/curvopt/data"
	"github.com/curvopt/curvopt/nn"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

// TestDataParallelStopsTogether cancels one rank's context mid-run (a
// signal reaching one process first): every rank stops at the same step,
// rank 0's checkpoint of that step is written (with -shard: gathered, a
// collective all ranks must enter together), and resuming from it ends
// where the uninterrupted run ends.
func TestDataParallelStopsTogether(t *testing.T) {
	tr, te, err := data.Synthetic(data.SyntheticConfig{Train: 250, Test: 40, Seed: 5})
	require.NoError(t, err)
	for _, shard := range []bool{false, true} {
		base := Config{Model: nn.MLP(3*32*32, []int{16}, 10), Train: tr, Test: te, Optimizer: "sophiah",
			Hyper: distHypers["sophiah"], Steps: 12, BatchSize: 32, Seed: 3, Normalize: true, Dtype: tensor.Float64, Shard: shard}
		want := runDist(t, base, 1)

		c := base
		c.OutDir = t.TempDir()
		const n = 3
		h := newHub(n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for r := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cr := c
				cr.Comm = fakeComm{h, r}
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				if r == 1 { // rank 1 is cancelled when it reports its fifth step
					cr.Progress, cr.LogEvery = &cancelOnLine{prefix: "step 5/", cancel: cancel}, 1
				}
				_, errs[r] = Run(ctx, cr)
				if errs[r] != nil { // a rank that stops alone leaves the others failing, not hanging
					h.leave(r, errs[r])
				}
			}()
		}
		wg.Wait()
		for r, err := range errs {
			require.ErrorIs(t, err, context.Canceled, "shard %v: rank %d", shard, r)
		}
		ck, err := LoadCheckpoint(filepath.Join(c.OutDir, checkpointFile))
		require.NoError(t, err)
		require.Greater(t, ck.Step, 0)
		require.Less(t, ck.Step, 12, "the run was not stopped")
		c.Resume = true
		got := runRanksOrOne(t, c, 2)
		require.Len(t, got, 12-ck.Step)
		end, err := LoadCheckpoint(filepath.Join(c.OutDir, checkpointFile))
		require.NoError(t, err)
		require.Less(t, maxParamDiff(t, want.ck, end), dist64Tol, "shard %v: stopped at step %d and resumed", shard, ck.Step)
		t.Logf("shard %v: stopped together at step %d, resumed on 2 ranks to step 12", shard, ck.Step)
	}
}

// cancelOnLine is a progress writer that calls cancel at the first line
// starting with prefix.
type cancelOnLine struct {
	prefix string
	cancel func()
}

func (c *cancelOnLine) Write(b []byte) (int, error) {
	if strings.HasPrefix(string(b), c.prefix) {
		c.cancel()
	}
	return len(b), nil
}
