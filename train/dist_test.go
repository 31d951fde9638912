package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"sync"
	"testing"

	"github.com/curvopt/curvopt/data"
	"github.com/curvopt/curvopt/internal/num"
	"github.com/curvopt/curvopt/nn"
	"github.com/curvopt/curvopt/optim"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

// hub joins the goroutine "ranks" of an in-process data-parallel run: a
// Comm with MPI's semantics (every rank ends with the same sums, computed
// in rank order) without MPI, so the data-parallel arithmetic is tested by
// go test ./... (the MPI runs are .ci/mpi's).
type hub struct {
	n       int
	mu      sync.Mutex
	cond    *sync.Cond
	gen     int
	arrived int
	broken  error
	slots   []any
}

func newHub(n int) *hub {
	h := &hub{n: n, slots: make([]any, n)}
	h.cond = sync.NewCond(&h.mu)
	return h
}

// wait is a barrier; it fails once a rank has left (a dead rank's peers
// must not hang).
func (h *hub) wait() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.broken != nil {
		return h.broken
	}
	g := h.gen
	h.arrived++
	if h.arrived == h.n {
		h.arrived = 0
		h.gen++
		h.cond.Broadcast()
		return nil
	}
	for g == h.gen && h.broken == nil {
		h.cond.Wait()
	}
	if g == h.gen {
		return h.broken
	}
	return nil
}

func (h *hub) leave(rank int, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.broken == nil {
		h.broken = fmt.Errorf("rank %d left: %v", rank, err)
	}
	h.cond.Broadcast()
}

type fakeComm struct {
	h    *hub
	rank int
}

func (c fakeComm) Rank() int { return c.rank }
func (c fakeComm) Size() int { return c.h.n }

func (c fakeComm) AllreduceFloat32(buf []float32) error { return fakeAllreduce(c, buf) }
func (c fakeComm) AllreduceFloat64(buf []float64) error { return fakeAllreduce(c, buf) }
func (c fakeComm) AllgatherFloat32(send, recv []float32, counts []int) error {
	return fakeAllgather(c, send, recv)
}
func (c fakeComm) AllgatherFloat64(send, recv []float64, counts []int) error {
	return fakeAllgather(c, send, recv)
}

func (c fakeComm) GatherFloat32(send, recv []float32, counts []int, root int) error {
	return fakeGather(c, send, recv, root)
}
func (c fakeComm) GatherFloat64(send, recv []float64, counts []int, root int) error {
	return fakeGather(c, send, recv, root)
}

func fakeGather[T num.Float](c fakeComm, send, recv []T, root int) error {
	c.h.slots[c.rank] = send
	if err := c.h.wait(); err != nil {
		return err
	}
	if c.rank == root {
		k := 0
		for r := range c.h.n {
			k += copy(recv[k:], c.h.slots[r].([]T))
		}
		if k != len(recv) {
			return fmt.Errorf("gather: %d values for a buffer of %d", k, len(recv))
		}
	}
	return c.h.wait()
}

func fakeAllreduce[T num.Float](c fakeComm, buf []T) error {
	c.h.slots[c.rank] = buf
	if err := c.h.wait(); err != nil {
		return err
	}
	sum := make([]T, len(buf))
	for r := range c.h.n {
		s := c.h.slots[r].([]T)
		if len(s) != len(buf) {
			return fmt.Errorf("all-reduce of %d values on rank %d, %d on rank %d", len(buf), c.rank, len(s), r)
		}
		for i, v := range s {
			sum[i] += v
		}
	}
	if err := c.h.wait(); err != nil {
		return err
	}
	copy(buf, sum)
	return nil
}

func fakeAllgather[T num.Float](c fakeComm, send, recv []T) error {
	c.h.slots[c.rank] = send
	if err := c.h.wait(); err != nil {
		return err
	}
	k := 0
	for r := range c.h.n {
		k += copy(recv[k:], c.h.slots[r].([]T))
	}
	if k != len(recv) {
		return fmt.Errorf("all-gather: %d values for a buffer of %d", k, len(recv))
	}
	return c.h.wait()
}

// runRanks runs cfg as n in-process ranks and returns every rank's result.
func runRanks(t *testing.T, cfg Config, n int) []*Result {
	t.Helper()
	h := newHub(n)
	res := make([]*Result, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for r := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := cfg
			c.Comm = fakeComm{h, r}
			res[r], errs[r] = Run(context.Background(), c)
			if errs[r] != nil {
				h.leave(r, errs[r])
			}
		}()
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	return res
}

// distHypers exercise every curvature estimate within a few steps, at
// learning rates where training is stable: at AdaHessian's default 0.15 the
// MLP's loss jumps from 2.4 to 400 within three steps, a chaotic regime in
// which any round-off difference grows to the size of the values.
var distHypers = map[string]Hyper{
	"sgd":        {"lr": 0.01},
	"sophiag":    {"lr": 3e-4, "hessian_interval": 2},
	"sophiah":    {"lr": 3e-4, "hessian_interval": 2},
	"adahessian": {"lr": 0.02},
	"mfac":       {"ngrads": 4, "lr": 0.03},
}

// Tolerances of a data-parallel run against one process. In float32 the
// engine sums a share's rows on its own and the all-reduce adds the shares
// (and the uneven split's weights n/B are rounded), so the sums differ in
// their last bits (float32's ε = 1.2e-7 per operation); over 10 steps that
// stays below distLossTol and distParamTol, or, where the optimizer itself
// amplifies round-off, below twice the float32 run's own distance from the
// float64 run (two float32 runs each that far from the float64 one are at
// most twice that far apart): AdaHessian divides by |z⊙(H·z)| + ε with ε = 1e-4, so an entry
// of H·z that cancels to near 0 turns its round-off into a change of the
// update of order lr·g·δ/ε (its float32 run is 5e-5 from its float64 run in
// the loss after 10 steps; the data-parallel ones 7e-6 and 6e-5 from it).
// In float64 the same runs agree to dist64Tol (measured: 1e-16, M-FAC 2e-12),
// which is the test that the data-parallel arithmetic is exact.
const (
	distLossTol  = 1e-5 // relative, per step
	distParamTol = 1e-5 // absolute, parameters of size ~0.05
	dist64Tol    = 1e-10
)

// TestDataParallelEqualsOneProcess: 2 and 3 in-process ranks (an even and
// an uneven split of the batch of 32, and a last batch of 26) train the MLP
// as one process does, with every optimizer, in float32 and float64: losses
// and parameters within round-off (above), and the same parameters, bit for
// bit, on every rank.
func TestDataParallelEqualsOneProcess(t *testing.T) {
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
				one[dt] = runDist(t, c, 1)
			}
			ownLoss, ownParam := one[tensor.Float32].diff(t, one[tensor.Float64])
			t.Logf("%s: float32 against float64, one process: loss %.2g, parameters %.2g", name, ownLoss, ownParam)
			for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
				lossTol, paramTol := max(distLossTol, 2*ownLoss), max(distParamTol, 2*ownParam)
				if dt == tensor.Float64 {
					lossTol, paramTol = dist64Tol, dist64Tol
				}
				for _, n := range []int{2, 3} {
					c := base
					c.Dtype = dt
					got := runDist(t, c, n)
					dl, dp := got.diff(t, one[dt])
					t.Logf("%s %v, %d ranks: max relative loss difference %.2g, max parameter difference %.2g", name, dt, n, dl, dp)
					require.Less(t, dl, lossTol, "%v, %d ranks: losses", dt, n)
					require.Less(t, dp, paramTol, "%v, %d ranks: parameters", dt, n)
				}
			}
		})
	}
}

// distRun is a run's step records and final checkpoint.
type distRun struct {
	steps []StepRecord
	ck    *Checkpoint
}

// runDist runs cfg as n ranks (1: one process, no Comm), requires the
// same parameters on every rank, and returns rank 0's records and
// checkpoint.
func runDist(t *testing.T, cfg Config, n int) *distRun {
	t.Helper()
	cfg.OutDir = t.TempDir()
	var res []*Result
	if n == 1 {
		r, err := Run(context.Background(), cfg)
		require.NoError(t, err)
		res = []*Result{r}
	} else {
		res = runRanks(t, cfg, n)
	}
	for r := range res {
		require.Equal(t, res[0].ParamsDigest, res[r].ParamsDigest, "%d ranks: rank %d's parameters differ from rank 0's", n, r)
	}
	ck, err := LoadCheckpoint(filepath.Join(cfg.OutDir, checkpointFile))
	require.NoError(t, err)
	return &distRun{res[0].StepLog, ck}
}

// diff returns the largest relative difference of the step losses and the
// largest difference of the final parameters; the step accuracies must be
// equal.
func (a *distRun) diff(t *testing.T, b *distRun) (loss, param float64) {
	t.Helper()
	require.Equal(t, len(a.steps), len(b.steps))
	for i, rec := range a.steps {
		loss = math.Max(loss, math.Abs(rec.Loss-b.steps[i].Loss)/math.Abs(b.steps[i].Loss))
		require.Equal(t, b.steps[i].Acc, rec.Acc, "step %d: accuracy", i+1)
	}
	return loss, maxParamDiff(t, a.ck, b.ck)
}

// maxParamDiff is the largest difference between two checkpoints'
// parameter values.
func maxParamDiff(t *testing.T, a, b *Checkpoint) float64 {
	t.Helper()
	require.Equal(t, len(a.Params), len(b.Params))
	d := 0.0
	for i := range a.Params {
		x, y := stateValues(a.Params[i]), stateValues(b.Params[i])
		require.Equal(t, len(x), len(y), a.Params[i].Param)
		for j := range x {
			d = math.Max(d, math.Abs(x[j]-y[j]))
		}
	}
	return d
}

func stateValues(t optim.StateTensor) []float64 {
	if t.F64 != nil {
		return t.F64
	}
	xs := make([]float64, len(t.F32))
	for i, v := range t.F32 {
		xs[i] = float64(v)
	}
	return xs
}

// TestDataParallelBytesPerStep: the bytes a rank all-reduces per step are
// those of the README's cost model: 4D for the gradient every step (D
// parameters, float32), 4D more for each curvature answer (SophiaH's H·z
// at steps 1, 3, 5, … with hessian_interval 2; SophiaG's ĝ at steps 2, 4,
// …), and 16 for the loss and the correct count.
func TestDataParallelBytesPerStep(t *testing.T) {
	tr, te, err := data.Synthetic(data.SyntheticConfig{Train: 128, Test: 16, Seed: 5})
	require.NoError(t, err)
	const d = 3*32*32*16 + 16 + 16*10 + 10
	for _, c := range []struct {
		opt   string
		extra func(step int) bool
	}{
		{"adam", func(int) bool { return false }},
		{"sophiah", func(s int) bool { return s%2 == 1 }},
		{"sophiag", func(s int) bool { return s%2 == 0 }},
	} {
		cfg := Config{Model: nn.MLP(3*32*32, []int{16}, 10), Train: tr, Test: te, Optimizer: c.opt,
			Hyper: distHypers[c.opt], Steps: 6, BatchSize: 32, Seed: 3, Dtype: tensor.Float32}
		res := runRanks(t, cfg, 2)
		for i, b := range res[1].CommBytes {
			want := int64(4*d + 16)
			if c.extra(i + 1) {
				want += 4 * d
			}
			require.Equal(t, want, b, "%s, step %d", c.opt, i+1)
		}
		require.Len(t, res[1].CommBytes, 6)
	}
}

// TestDataParallelBatchNormRanksAgree: with batch norm (resnet8), each
// rank normalises with its own rows' statistics, and the running
// statistics are averaged over the ranks after every step, so every rank
// ends with the same parameters and running statistics (ParamsDigest
// covers both) and the same evaluation.
func TestDataParallelBatchNormRanksAgree(t *testing.T) {
	tr, te, err := data.Synthetic(data.SyntheticConfig{Train: 64, Test: 16, Seed: 5})
	require.NoError(t, err)
	d, err := nn.ResNet(8, 3, 32, 10)
	require.NoError(t, err)
	cfg := Config{Model: d, Train: tr, Test: te, Optimizer: "adam", Steps: 3, BatchSize: 9, DropLast: true,
		EvalBatch: 16, Seed: 3, Dtype: tensor.Float32}
	res := runRanks(t, cfg, 3)
	for r := range res {
		require.Equal(t, res[0].ParamsDigest, res[r].ParamsDigest, "rank %d", r)
		require.Equal(t, res[0].FinalTestLoss, res[r].FinalTestLoss, "rank %d", r)
	}
}
