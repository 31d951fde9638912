//go:build mpi

package train

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/curvopt/curvopt/data"
	"github.com/curvopt/curvopt/mpi"
	"github.com/curvopt/curvopt/nn"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

// The tests of this file run under mpirun (.ci/mpi):
//
//	go test -c -tags mpi -o train.test ./train
//	mpirun --allow-run-as-root --oversubscribe -np 3 ./train.test -test.run MPI -mpi.dir DIR
//
// -mpi.dir is a directory every rank sees (the same one on every rank):
// rank 0 writes the runs' checkpoints there and every rank reads them.

var world *mpi.World

var mpiDir = flag.String("mpi.dir", "", "a directory shared by the ranks (default: a temporary directory, which works only for ranks on one machine)")

// runTests runs the tests as one rank of the MPI job (TestMain calls it).
func runTests(m *testing.M) int {
	flag.Parse()
	w, err := mpi.Init()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	world = w
	code := m.Run()
	if code != 0 && w.Size() > 1 {
		_ = w.Abort(code) // the others may wait in a collective
	}
	if err := w.Finalize(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	return code
}

// sharedDir returns a directory of the same path on every rank, made anew
// for each test.
func sharedDir(t *testing.T, name string) string {
	t.Helper()
	root := *mpiDir
	if root == "" {
		root = filepath.Join(os.TempDir(), fmt.Sprintf("curvopt-mpi-%d", os.Getppid()))
	}
	dir := filepath.Join(root, name)
	if world.Rank() == 0 {
		require.NoError(t, os.RemoveAll(dir))
		require.NoError(t, os.MkdirAll(dir, 0o755))
	}
	require.NoError(t, world.Barrier())
	return dir
}

// sameOnEveryRank requires hex digest d to be rank 0's on every rank: the
// ranks gather their digests and each compares them all.
func sameOnEveryRank(t *testing.T, d string) {
	t.Helper()
	b, err := hex.DecodeString(d)
	require.NoError(t, err)
	require.Len(t, b, 32)
	send := make([]float64, 32)
	for i, v := range b {
		send[i] = float64(v)
	}
	n := world.Size()
	recv := make([]float64, 32*n)
	counts := make([]int, n)
	for i := range counts {
		counts[i] = 32
	}
	require.NoError(t, world.AllgatherFloat64(send, recv, counts))
	for r := 1; r < n; r++ {
		require.Equal(t, recv[:32], recv[32*r:32*r+32], "rank %d's parameters differ from rank 0's", r)
	}
}

// TestMPIDataParallelEqualsOneProcess is TestDataParallelEqualsOneProcess
// over MPI: every rank first runs the single-process run (no Comm; rank 0
// keeps its checkpoint), then the ranks run it data-parallel; losses and
// parameters within the tolerances stated there, parameters bit-identical
// on every rank (their SHA-256 gathered); and with -shard (every optimizer
// but mfac, TestMPIShardConvAndMFAC's) the same parameters bit for bit and the same checkpointed
// optimizer state.
func TestMPIDataParallelEqualsOneProcess(t *testing.T) {
	require.Greater(t, world.Size(), 1, "run under mpirun with 2 or more ranks")
	tr, te, err := data.Synthetic(data.SyntheticConfig{Train: 250, Test: 40, Seed: 5})
	require.NoError(t, err)
	for _, name := range Optimizers() {
		t.Run(name, func(t *testing.T) {
			base := Config{Model: nn.MLP(3*32*32, []int{16}, 10), Train: tr, Test: te, Optimizer: name,
				Hyper: distHypers[name], Steps: 10, BatchSize: 32, Seed: 3, Normalize: true}
			one := map[tensor.Dtype]*distRun{}
			for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
				c := base
				c.Dtype = dt
				one[dt] = runDist(t, c, 1) // on every rank, for its records and checkpoint
			}
			ownLoss, ownParam := one[tensor.Float32].diff(t, one[tensor.Float64])
			for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
				lossTol, paramTol := max(distLossTol, 2*ownLoss), max(distParamTol, 2*ownParam)
				if dt == tensor.Float64 {
					lossTol, paramTol = dist64Tol, dist64Tol
				}
				c := base
				c.Dtype = dt
				c.Comm = world
				c.OutDir = sharedDir(t, name+"-"+dt.String())
				res, err := Run(context.Background(), c)
				require.NoError(t, err)
				sameOnEveryRank(t, res.ParamsDigest)
				ck, err := LoadCheckpoint(filepath.Join(c.OutDir, checkpointFile))
				require.NoError(t, err)
				got := &distRun{res.StepLog, ck}
				dl, dp := got.diff(t, one[dt])
				if world.Rank() == 0 {
					t.Logf("%s %v, %d MPI ranks: max relative loss difference %.2g, max parameter difference %.2g", name, dt, world.Size(), dl, dp)
				}
				require.Less(t, dl, lossTol, "%v: losses", dt)
				require.Less(t, dp, paramTol, "%v: parameters", dt)
				require.NoError(t, world.Barrier()) // every rank read the checkpoint before the next run
				if name == "mfac" {
					continue // sharded M-FAC is equal within round-off, not bit for bit: TestMPIShardConvAndMFAC
				}
				c.Shard = true
				c.OutDir = sharedDir(t, name+"-"+dt.String()+"-shard")
				sh, err := Run(context.Background(), c)
				require.NoError(t, err)
				sameOnEveryRank(t, sh.ParamsDigest)
				require.Equal(t, res.ParamsDigest, sh.ParamsDigest, "%v: -shard changed the parameters", dt)
				ck2, err := LoadCheckpoint(filepath.Join(c.OutDir, checkpointFile))
				require.NoError(t, err)
				requireSameState(t, ck, ck2)
				require.NoError(t, world.Barrier())
			}
		})
	}
}
