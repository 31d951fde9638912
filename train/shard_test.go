package train

import (
	"path/filepath"
	"testing"

	"github.com/curvopt/curvopt/data"
	"github.com/curvopt/curvopt/nn"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

// TestShardEqualsUnsharded: with the optimizer state split over 2 and 3
// ranks (Config.Shard) a data-parallel run is the unsharded one bit for
// bit (the updates are elementwise and see the same gradient, curvature
// and probes): the same parameters, and a checkpoint holding the same
// optimizer state in the same format. A run resumed with the other
// setting, and with another number of ranks, goes on as it would have.
func TestShardEqualsUnsharded(t *testing.T) {
	tr, te, err := data.Synthetic(data.SyntheticConfig{Train: 250, Test: 40, Seed: 5})
	require.NoError(t, err)
	for _, name := range []string{"sgd", "adam", "adamw", "sophiag", "sophiah", "adahessian"} {
		t.Run(name, func(t *testing.T) {
			base := Config{Model: nn.MLP(3*32*32, []int{16}, 10), Train: tr, Test: te, Optimizer: name,
				Hyper: distHypers[name], Steps: 10, BatchSize: 32, Seed: 3, Normalize: true, Dtype: tensor.Float64}
			for _, n := range []int{2, 3} {
				plain := base
				plain.OutDir = t.TempDir()
				want := runRanks(t, plain, n)
				sharded := plain
				sharded.OutDir, sharded.Shard = t.TempDir(), true
				got := runRanks(t, sharded, n)
				require.Equal(t, want[0].ParamsDigest, got[0].ParamsDigest, "%d ranks: sharded parameters differ", n)
				for i := range want[0].StepLog {
					require.Equal(t, want[0].StepLog[i].Loss, got[0].StepLog[i].Loss, "%d ranks, step %d", n, i+1)
				}
				a, err := LoadCheckpoint(filepath.Join(plain.OutDir, checkpointFile))
				require.NoError(t, err)
				b, err := LoadCheckpoint(filepath.Join(sharded.OutDir, checkpointFile))
				require.NoError(t, err)
				requireSameState(t, a, b)

				// Resume: sharded to step 5 on n ranks, unsharded on 5-n ranks... to 10.
				c := base
				c.OutDir, c.Shard, c.Steps = t.TempDir(), true, 5
				runRanks(t, c, n)
				c.Shard, c.Steps, c.Resume = false, 10, true
				res := runRanksOrOne(t, c, 5-n)
				_ = res
				d, err := LoadCheckpoint(filepath.Join(c.OutDir, checkpointFile))
				require.NoError(t, err)
				require.Less(t, maxParamDiff(t, a, d), dist64Tol, "sharded on %d ranks, resumed unsharded on %d", n, 5-n)
				// And the other way: unsharded to 5, sharded to 10.
				c = base
				c.OutDir, c.Steps = t.TempDir(), 5
				runRanks(t, c, n)
				c.Shard, c.Steps, c.Resume = true, 10, true
				runRanks(t, c, 5-n)
				e, err := LoadCheckpoint(filepath.Join(c.OutDir, checkpointFile))
				require.NoError(t, err)
				require.Less(t, maxParamDiff(t, a, e), dist64Tol, "unsharded on %d ranks, resumed sharded on %d", n, 5-n)
				requireSameStateTol(t, a, e)
			}
		})
	}
}

// requireSameState requires two checkpoints' optimizer states to be equal
// bit for bit, tensor by tensor.
func requireSameState(t *testing.T, a, b *Checkpoint) {
	t.Helper()
	require.Equal(t, a.Opt.Step, b.Opt.Step)
	require.Equal(t, a.Opt.Params, b.Opt.Params)
	require.Equal(t, a.Opt.Groups, b.Opt.Groups)
	require.Equal(t, a.Opt.Blobs, b.Opt.Blobs)
	require.Equal(t, len(a.Opt.Tensors), len(b.Opt.Tensors))
	want := map[[2]string][]float64{}
	for _, st := range a.Opt.Tensors {
		want[[2]string{st.Param, st.Slot}] = stateValues(st)
	}
	for _, st := range b.Opt.Tensors {
		w, ok := want[[2]string{st.Param, st.Slot}]
		require.True(t, ok, "%s of %s", st.Slot, st.Param)
		require.Equal(t, w, stateValues(st), "%s of %s", st.Slot, st.Param)
	}
}

// requireSameStateTol is requireSameState within dist64Tol (after a change
// of the number of ranks).
func requireSameStateTol(t *testing.T, a, b *Checkpoint) {
	t.Helper()
	require.Equal(t, a.Opt.Step, b.Opt.Step)
	require.Equal(t, a.Opt.Blobs, b.Opt.Blobs)
	want := map[[2]string][]float64{}
	for _, st := range a.Opt.Tensors {
		want[[2]string{st.Param, st.Slot}] = stateValues(st)
	}
	for _, st := range b.Opt.Tensors {
		w := want[[2]string{st.Param, st.Slot}]
		require.InDeltaSlice(t, w, stateValues(st), dist64Tol, "%s of %s", st.Slot, st.Param)
	}
}
