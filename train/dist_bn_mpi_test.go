//go:build mpi

package train

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/curvopt/curvopt/data"
	"github.com/curvopt/curvopt/nn"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

// TestMPIDropoutSyncBN is TestDataParallelDropout and
// TestDataParallelSyncBN over MPI, with SophiaH (its H·v through the masks
// and the synchronised statistics): a small GPT with dropout 0.1 and a
// ResNet-8 with -sync-bn equal the single process (run on every rank) in
// float64 to dist64Tol, parameters bit-identical on every rank.
func TestMPIDropoutSyncBN(t *testing.T) {
	require.Greater(t, world.Size(), 1, "run under mpirun with 2 or more ranks")
	corpus := filepath.Join(t.TempDir(), "corpus.txt")
	require.NoError(t, os.WriteFile(corpus, []byte(strings.Repeat("the quick brown fox jumps over the lazy dog; ", 20)), 0o600))
	txt, txtTest, err := data.LoadSpec(data.Spec{Kind: data.KindText, File: corpus, Context: 8})
	require.NoError(t, err)
	gpt, err := nn.GPT(nn.GPTConfig{Vocab: txt.Classes, Context: 8, Layers: 1, Heads: 2, Width: 16, Dropout: 0.1})
	require.NoError(t, err)
	img, imgTest, err := data.Synthetic(data.SyntheticConfig{Train: 40, Test: 8, Seed: 5})
	require.NoError(t, err)
	res8, err := nn.ResNet(8, 3, 32, 10)
	require.NoError(t, err)
	for _, c := range []Config{
		{Model: gpt, Train: txt, Test: txtTest},
		{Model: res8, Train: img, Test: imgTest, Normalize: true, SyncBN: true},
	} {
		c.Optimizer, c.Hyper, c.Steps, c.BatchSize, c.EvalBatch, c.Seed, c.Dtype, c.DropLast =
			"sophiah", distHypers["sophiah"], 3, 10, 8, 3, tensor.Float64, true
		name := "gpt-dropout"
		if c.SyncBN {
			name = "resnet8-sync-bn"
		}
		t.Run(name, func(t *testing.T) {
			want := runDist(t, c, 1) // on every rank
			c.Comm = world
			c.OutDir = sharedDir(t, name)
			res, err := Run(context.Background(), c)
			require.NoError(t, err)
			sameOnEveryRank(t, res.ParamsDigest)
			ck, err := LoadCheckpoint(filepath.Join(c.OutDir, checkpointFile))
			require.NoError(t, err)
			dl, dp := (&distRun{res.StepLog, ck}).diff(t, want)
			if world.Rank() == 0 {
				t.Logf("%s, %d MPI ranks: loss %.2g, parameters %.2g", name, world.Size(), dl, dp)
			}
			require.Less(t, dl, dist64Tol)
			require.Less(t, dp, dist64Tol)
			require.NoError(t, world.Barrier())
		})
	}
}
