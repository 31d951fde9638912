//go:build mpi

package train

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/curvopt/curvopt/data"
	"github.com/curvopt/curvopt/nn"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

// TestMPIShardConvAndMFAC is TestShardConvAndMFAC over MPI (every rank
// count mpirun gives): AdaHessian on shardCNN (cuts inside its 5×5
// convolution weight) sharded equals unsharded bit for bit; M-FAC sharded
// (the window split by coordinates, its inner products all-reduced) equals
// unsharded within mfacShardTol in float64 and, in float32, within the
// data-parallel tolerances (distLossTol, distParamTol: the float64 inner
// products' other order rounds a float32 update's last bit now and then);
// parameters bit-identical on every rank, the checkpoint in the unsharded
// format.
func TestMPIShardConvAndMFAC(t *testing.T) {
	require.Greater(t, world.Size(), 1, "run under mpirun with 2 or more ranks")
	tr, te, err := data.Synthetic(data.SyntheticConfig{Train: 250, Test: 40, Seed: 5})
	require.NoError(t, err)
	for _, c := range []struct {
		name, opt string
		model     nn.DAG
		dtypes    []tensor.Dtype
	}{
		{"adahessian-cnn", "adahessian", shardCNN(t), []tensor.Dtype{tensor.Float64}},
		{"mfac-mlp", "mfac", nn.MLP(3*32*32, []int{16}, 10), []tensor.Dtype{tensor.Float32, tensor.Float64}},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, dt := range c.dtypes {
				cfg := Config{Model: c.model, Train: tr, Test: te, Optimizer: c.opt, Hyper: distHypers[c.opt],
					Steps: 10, BatchSize: 32, Seed: 3, Normalize: true, Dtype: dt, Comm: world}
				plainDir := sharedDir(t, c.name+"-"+dt.String())
				cfg.OutDir = plainDir
				res, err := Run(context.Background(), cfg)
				require.NoError(t, err)
				sameOnEveryRank(t, res.ParamsDigest)
				require.NoError(t, world.Barrier())
				cfg.Shard = true
				cfg.OutDir = sharedDir(t, c.name+"-"+dt.String()+"-shard")
				sh, err := Run(context.Background(), cfg)
				require.NoError(t, err)
				sameOnEveryRank(t, sh.ParamsDigest)
				a, err := LoadCheckpoint(filepath.Join(plainDir, checkpointFile))
				require.NoError(t, err)
				b, err := LoadCheckpoint(filepath.Join(cfg.OutDir, checkpointFile))
				require.NoError(t, err)
				switch {
				case c.opt == "adahessian":
					require.Equal(t, res.ParamsDigest, sh.ParamsDigest, "-shard changed the parameters")
					requireSameState(t, a, b)
				default:
					tol := mfacShardTol
					if dt == tensor.Float32 {
						tol = distParamTol
					}
					dp, ds := maxParamDiff(t, a, b), maxStateDiff(t, a, b)
					if world.Rank() == 0 {
						t.Logf("%s %v, %d MPI ranks: sharded against unsharded: parameters %.2g, state %.2g", c.name, dt, world.Size(), dp, ds)
					}
					require.Less(t, dp, tol, "%v: parameters", dt)
					if dt == tensor.Float64 {
						require.Less(t, ds, mfacShardStateTol, "%v: state", dt)
					}
				}
				require.NoError(t, world.Barrier())
			}
		})
	}
}
