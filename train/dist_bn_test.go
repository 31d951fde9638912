package train

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/curvopt/curvopt/data"
	"github.com/curvopt/curvopt/hessian"
	"github.com/curvopt/curvopt/internal/num"
	"github.com/curvopt/curvopt/nn"
	"github.com/curvopt/curvopt/optim"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

// TestDataParallelDropout: a small GPT with dropout 0.1 after attention
// and MLP trains on 2 and 3 ranks (batches of 10 sequences: shares 5, 5 and
// 4, 3, 3) as one process does, with SGD and SophiaH (whose H·v runs
// through the same masks), in float64 to dist64Tol: every rank draws the
// global batch's masks and keeps its rows (nn.DropoutState.SetRows).
func TestDataParallelDropout(t *testing.T) {
	corpus := filepath.Join(t.TempDir(), "corpus.txt")
	require.NoError(t, os.WriteFile(corpus, []byte(strings.Repeat("the quick brown fox jumps over the lazy dog; ", 20)), 0o600))
	txt, txtTest, err := data.LoadSpec(data.Spec{Kind: data.KindText, File: corpus, Context: 8})
	require.NoError(t, err)
	gpt, err := nn.GPT(nn.GPTConfig{Vocab: txt.Classes, Context: 8, Layers: 1, Heads: 2, Width: 16, Dropout: 0.1})
	require.NoError(t, err)
	for _, opt := range []string{"sgd", "sophiah"} {
		t.Run(opt, func(t *testing.T) {
			cfg := Config{Model: gpt, Train: txt, Test: txtTest, Optimizer: opt, Hyper: distHypers[opt],
				Steps: 4, BatchSize: 10, EvalBatch: 8, Seed: 3, Dtype: tensor.Float64, DropLast: true}
			want := runDist(t, cfg, 1)
			for _, n := range []int{2, 3} {
				got := runDist(t, cfg, n)
				dl, dp := got.diff(t, want)
				t.Logf("gpt with dropout, %s, %d ranks: loss %.2g, parameters %.2g", opt, n, dl, dp)
				require.Less(t, dl, dist64Tol, "%d ranks: losses", n)
				require.Less(t, dp, dist64Tol, "%d ranks: parameters", n)
			}
		})
	}
}

// TestDataParallelSyncBN: with synchronised batch norm a ResNet-8 trains
// on 2 and 3 ranks (batches of 10: shares 5, 5 and 4, 3, 3) as one process
// does, with SGD and SophiaH (H·v through the synchronised statistics), in
// float64 to dist64Tol, running statistics included (ParamsDigest on every
// rank, the checkpoint's values against one process); and without it (per
// rank statistics) the same run is measurably not the single process's,
// so the comparison can tell. In float32 (SGD, 3 ranks) within the
// round-off tolerances of TestDataParallelEqualsOneProcess.
func TestDataParallelSyncBN(t *testing.T) {
	tr, te, err := data.Synthetic(data.SyntheticConfig{Train: 40, Test: 8, Seed: 5})
	require.NoError(t, err)
	d, err := nn.ResNet(8, 3, 32, 10)
	require.NoError(t, err)
	for _, opt := range []string{"sgd", "sophiah"} {
		t.Run(opt, func(t *testing.T) {
			cfg := Config{Model: d, Train: tr, Test: te, Optimizer: opt, Hyper: distHypers[opt],
				Steps: 3, BatchSize: 10, EvalBatch: 8, Seed: 3, Dtype: tensor.Float64, DropLast: true, Normalize: true, SyncBN: true}
			want := runDist(t, cfg, 1)
			for _, n := range []int{2, 3} {
				got := runDist(t, cfg, n)
				dl, dp := got.diff(t, want)
				ds := maxStatDiff(t, got.ck, want.ck)
				t.Logf("resnet8, sync-bn, %s, %d ranks: loss %.2g, parameters %.2g, running statistics %.2g", opt, n, dl, dp, ds)
				require.Less(t, dl, dist64Tol, "%d ranks: losses", n)
				require.Less(t, dp, dist64Tol, "%d ranks: parameters", n)
				require.Less(t, ds, dist64Tol, "%d ranks: running statistics", n)
			}
			if opt == "sgd" { // float32: round-off only (distLossTol, distParamTol)
				c := cfg
				c.Dtype = tensor.Float32
				want32, got32 := runDist(t, c, 1), runDist(t, c, 3)
				dl, dp := got32.diff(t, want32)
				t.Logf("resnet8, sync-bn, sgd, float32, 3 ranks: loss %.2g, parameters %.2g", dl, dp)
				require.Less(t, dl, distLossTol)
				require.Less(t, dp, distParamTol)
			}
			cfg.SyncBN = false
			got := runDist(t, cfg, 3)
			dl := 0.0
			for i, rec := range got.steps {
				dl = math.Max(dl, math.Abs(rec.Loss-want.steps[i].Loss)/math.Abs(want.steps[i].Loss))
			}
			dp := maxParamDiff(t, got.ck, want.ck)
			t.Logf("resnet8, per-rank statistics, %s, 3 ranks: loss %.2g, parameters %.2g", opt, dl, dp)
			require.Greater(t, dl, 1e-6, "per-rank statistics: the losses should differ from one process's")
		})
	}
}

// maxStatDiff is the largest difference between two checkpoints'
// batch-norm running statistics (the Params entries other than values).
func maxStatDiff(t *testing.T, a, b *Checkpoint) float64 {
	t.Helper()
	require.Equal(t, len(a.Params), len(b.Params))
	d, stats := 0.0, 0
	for i := range a.Params {
		if a.Params[i].Slot == "value" {
			continue
		}
		stats++
		x, y := stateValues(a.Params[i]), stateValues(b.Params[i])
		require.Equal(t, len(x), len(y), a.Params[i].Param)
		for j := range x {
			d = math.Max(d, math.Abs(x[j]-y[j]))
		}
	}
	require.NotZero(t, stats, "no running statistics in the checkpoint")
	return d
}

// TestSyncBNGradHVP checks the engine's answers directly, at one point: on
// a small ResNet-8 (8×8 images) the gradient and H·v of a global batch of
// 7 rows over 2 and 3 ranks (shares 4, 3 and 3, 2, 2), each rank's answer
// weighted by its share and all-reduced (dist), equal one process's at the
// global batch in float64 to 1e-12 relative; and with per-rank statistics
// they do not.
func TestSyncBNGradHVP(t *testing.T) {
	d, err := nn.ResNet(8, 3, 8, 10)
	require.NoError(t, err)
	const rows = 7
	rng := rand.New(rand.NewPCG(1, 2))
	x := tensor.New(tensor.WithShape(rows, 3, 8, 8), tensor.WithBacking(make([]float64, rows*3*64)))
	for i := range num.Slice[float64](x) {
		num.Slice[float64](x)[i] = rng.NormFloat64()
	}
	labels := make([]int, rows)
	for i := range labels {
		labels[i] = rng.IntN(10)
	}
	one := syncBNAnswers(t, d, x, labels, 1, true)[0]
	for _, n := range []int{2, 3} {
		for _, synced := range []bool{true, false} {
			got := syncBNAnswers(t, d, x, labels, n, synced)
			for r := range got {
				require.Equal(t, got[0], got[r], "%d ranks: rank %d's answers differ from rank 0's", n, r)
			}
			dl := math.Abs(got[0].loss-one.loss) / math.Abs(one.loss)
			dg, dh := relDiff(got[0].grad, one.grad), relDiff(got[0].hv, one.hv)
			t.Logf("%d ranks, synchronised %v: loss %.2g, gradient %.2g, H·v %.2g (relative); %d bytes all-reduced (gradient and H·v: %d)",
				n, synced, dl, dg, dh, got[0].bytes, 16*len(one.grad)+16)
			if synced {
				require.Less(t, dl, 1e-12)
				require.Less(t, dg, 1e-12)
				require.Less(t, dh, 1e-12)
			} else {
				require.Greater(t, dg, 1e-6)
				require.Greater(t, dh, 1e-6)
			}
		}
	}
}

// bnAnswers are one rank's loss, gradient and H·v, flattened.
type bnAnswers struct {
	loss     float64
	grad, hv []float64
	bytes    int64 // all-reduced by the query (data parallel)
}

// syncBNAnswers returns every rank's answers to LossGradHVP at the
// model's initial parameters (seed 3) for the batch (x, labels) split over
// n in-process ranks (1: one process), with v the same on every rank.
func syncBNAnswers(t *testing.T, d nn.DAG, x *tensor.Dense, labels []int, n int, synced bool) []bnAnswers {
	t.Helper()
	h := newHub(n)
	out := make([]bnAnswers, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for r := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[r], errs[r] = syncBNRank(d, x, labels, fakeComm{h, r}, synced)
			if errs[r] != nil {
				h.leave(r, errs[r])
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	return out
}

// syncBNRank is one rank of syncBNAnswers.
func syncBNRank(d nn.DAG, x *tensor.Dense, labels []int, c fakeComm, synced bool) (bnAnswers, error) {
	model, err := nn.New(d, tensor.Float64, rand.New(rand.NewPCG(3, 4)), 3)
	if err != nil {
		return bnAnswers{}, err
	}
	red := &bnReducer{}
	if synced && c.Size() > 1 {
		model.SetBatchReducer(red)
	}
	eng, err := hessian.New(model, optim.Needs{HVP: true})
	if err != nil {
		return bnAnswers{}, err
	}
	defer eng.Close()
	var o Oracle = eng
	lx, ll := x, labels
	var dd *dist
	if c.Size() > 1 {
		dd = newDist(eng, c, nil)
		red.d = dd
		if lx, ll, err = dd.slice(x, labels); err != nil {
			return bnAnswers{}, err
		}
		o = dd
	}
	if err := eng.SetBatch(lx, ll); err != nil {
		return bnAnswers{}, err
	}
	vr := rand.New(rand.NewPCG(7, 8))
	var v, hv []*tensor.Dense
	for _, p := range eng.Params() {
		vt := tensor.New(tensor.WithShape(p.Value.Shape().Clone()...), tensor.Of(tensor.Float64))
		for i := range num.Slice[float64](vt) {
			num.Slice[float64](vt)[i] = vr.NormFloat64()
		}
		v = append(v, vt)
		hv = append(hv, tensor.New(tensor.WithShape(p.Value.Shape().Clone()...), tensor.Of(tensor.Float64)))
	}
	loss, err := o.LossGradHVP(v, hv)
	if err != nil {
		return bnAnswers{}, err
	}
	a := bnAnswers{loss: loss}
	if dd != nil {
		a.bytes = dd.commB
	}
	for i, p := range eng.Params() {
		a.grad = append(a.grad, num.Slice[float64](p.Grad)...)
		a.hv = append(a.hv, num.Slice[float64](hv[i])...)
	}
	return a, nil
}

// relDiff is max|a−b| / max|b|.
func relDiff(a, b []float64) float64 {
	d, s := 0.0, 0.0
	for i := range b {
		d = math.Max(d, math.Abs(a[i]-b[i]))
		s = math.Max(s, math.Abs(b[i]))
	}
	return d / s
}

// TestSyncBNRefusesGNBBatch: -sync-bn with -gnb-batch is refused, naming
// the setting (a rank without GNB rows would not join the statistics'
// all-reduces of the sampled-label pass).
func TestSyncBNRefusesGNBBatch(t *testing.T) {
	tr, te, err := data.Synthetic(data.SyntheticConfig{Train: 40, Test: 8, Seed: 5})
	require.NoError(t, err)
	d, err := nn.ResNet(8, 3, 32, 10)
	require.NoError(t, err)
	cfg := Config{Model: d, Train: tr, Test: te, Optimizer: "sophiag", Steps: 1, BatchSize: 10, GNBBatch: 4,
		Seed: 3, Dtype: tensor.Float32, SyncBN: true}
	h := newHub(2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for r := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := cfg
			c.Comm = fakeComm{h, r}
			_, errs[r] = Run(context.Background(), c)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		var se *SettingError
		require.ErrorAs(t, err, &se)
		require.Equal(t, "gnb_batch", se.Setting)
		require.Contains(t, err.Error(), "sync_bn")
	}
}
