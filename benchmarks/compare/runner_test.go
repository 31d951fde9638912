package compare

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/curvopt/curvopt/data"
	"github.com/curvopt/curvopt/internal/fileio"
	"github.com/curvopt/curvopt/nn"
	"github.com/curvopt/curvopt/train"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Distinct learning rates never share a key, so never a result file or a
// work directory: rates one rounding apart (0.0015 and 0.002 at one digit),
// one ulp apart, and written differently.
func TestKeysOfDistinctRatesNeverCollide(t *testing.T) {
	lrs := []float64{0.0015, 0.002, 0.001, math.Nextafter(0.001, 1), 1e-5, 1.5e-5, 2e-5, 0.3, 0.30000000000000004, 3, 30}
	seen := map[string]float64{}
	for _, lr := range lrs {
		k := RunSpec{Phase: PhaseSweep, Optimizer: "adam", LR: lr, Seed: 1}.Key()
		if prev, ok := seen[k]; ok {
			t.Fatalf("rates %v and %v share the key %q", prev, lr, k)
		}
		seen[k] = lr
	}
	assert.Equal(t, "adam-lr0.0015-seed1", RunSpec{Optimizer: "adam", LR: 0.0015, Seed: 1}.Key())

	// Stored side by side: a rerun finds every one of them.
	dir := t.TempDir()
	ft := &fakeTrainer{}
	r := &Runner{Dir: filepath.Join(dir, "runs"), WorkDir: filepath.Join(dir, "work"), Fingerprint: "fp", Train: ft.train}
	var specs []RunSpec
	for _, lr := range lrs {
		specs = append(specs, RunSpec{Phase: PhaseSweep, Optimizer: "adam", LR: lr, Seed: 1})
	}
	_, err := r.RunAll(context.Background(), specs)
	require.NoError(t, err)
	ft.calls = nil
	out, err := r.RunAll(context.Background(), specs)
	require.NoError(t, err)
	assert.Empty(t, ft.calls, "every run stored under its own name")
	for i, res := range out {
		assert.Equal(t, lrs[i], res.Spec.LR)
	}
}

// A kill can leave a temporary result file, a finished run's work
// directory (killed before its removal) or one half removed; the next RunAll
// removes them all, and keeps the work directory of a run not yet stored
// (its checkpoint to resume from).
func TestRunAllRemovesLeftoversOfAKill(t *testing.T) {
	dir := t.TempDir()
	ft := &fakeTrainer{}
	r := &Runner{Dir: filepath.Join(dir, "runs"), WorkDir: filepath.Join(dir, "work"), Fingerprint: "fp", Train: ft.train}
	stored := RunSpec{Phase: PhaseFinal, Optimizer: "sgd", LR: 0.1, Seed: 1}
	removing := RunSpec{Phase: PhaseFinal, Optimizer: "sgd", LR: 0.1, Seed: 2}
	pending := RunSpec{Phase: PhaseFinal, Optimizer: "sgd", LR: 0.1, Seed: 3}
	_, err := r.RunAll(context.Background(), []RunSpec{stored, removing})
	require.NoError(t, err)

	mk := func(path string) {
		require.NoError(t, os.MkdirAll(path, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(path, "checkpoint.gob"), []byte("x"), 0o644))
	}
	mk(r.workPath(stored))                                // killed after storing, before removing
	mk(r.workPath(removing) + trashSuffix)                // killed while removing
	mk(r.workPath(pending))                               // killed while training: to resume
	tmp := r.ResultPath(stored) + fileio.TmpInfix + "123" // killed while storing
	require.NoError(t, os.WriteFile(tmp, []byte("{"), 0o644))

	ft.calls = nil
	_, err = r.RunAll(context.Background(), []RunSpec{stored, removing})
	require.NoError(t, err)
	assert.Empty(t, ft.calls)
	assert.NoDirExists(t, r.workPath(stored))
	assert.NoDirExists(t, r.workPath(removing)+trashSuffix)
	assert.NoFileExists(t, tmp)
	assert.FileExists(t, filepath.Join(r.workPath(pending), "checkpoint.gob"), "an unfinished run's checkpoint is kept")
	left, err := os.ReadDir(filepath.Join(r.WorkDir, PhaseFinal))
	require.NoError(t, err)
	assert.Len(t, left, 1, "only the unfinished run's directory")

	// KeepWork keeps finished runs' directories.
	r.KeepWork = true
	mk(r.workPath(stored))
	_, err = r.RunAll(context.Background(), []RunSpec{stored})
	require.NoError(t, err)
	assert.DirExists(t, r.workPath(stored))
}

// Once ctx is cancelled (SIGINT, SIGTERM), no further run starts.
func TestRunAllStopsBeforeTheNextRun(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	var calls int
	r := &Runner{Dir: filepath.Join(dir, "runs"), WorkDir: filepath.Join(dir, "work"), Fingerprint: "fp",
		Train: func(_ context.Context, s RunSpec, _ string) (*RunResult, error) {
			calls++
			cancel() // the signal comes during the first run, which finishes
			return result(s.Optimizer, s.LR, s.Seed, 0.5), nil
		}}
	specs := []RunSpec{{Phase: PhaseFinal, Optimizer: "sgd", LR: 0.1, Seed: 1}, {Phase: PhaseFinal, Optimizer: "sgd", LR: 0.1, Seed: 2}}
	out, err := r.RunAll(ctx, specs)
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, 1, calls)
	assert.NotNil(t, out[0])
	assert.FileExists(t, r.ResultPath(specs[0]), "the finished run is stored")
}

// A stored result is read as a regular file of bounded size: a FIFO in its
// place is refused at once (the run is retrained), not waited on forever;
// so are a run's logs.
func TestLoadRefusesAFIFO(t *testing.T) {
	dir := t.TempDir()
	r := &Runner{Dir: dir, Fingerprint: "fp"}
	spec := RunSpec{Phase: PhaseFinal, Optimizer: "sgd", LR: 0.1, Seed: 1}
	require.NoError(t, os.MkdirAll(filepath.Dir(r.ResultPath(spec)), 0o755))
	require.NoError(t, syscall.Mkfifo(r.ResultPath(spec), 0o644))
	got := make(chan *RunResult, 1)
	go func() { got <- r.Load(spec) }()
	select {
	case res := <-got:
		assert.Nil(t, res)
	case <-time.After(time.Minute):
		t.Fatal("Load blocked on a FIFO")
	}

	// The same for a run's logs.
	work := t.TempDir()
	require.NoError(t, syscall.Mkfifo(filepath.Join(work, "steps.jsonl"), 0o644))
	errc := make(chan error, 1)
	go func() { _, err := readLogs(work); errc <- err }()
	select {
	case err := <-errc:
		assert.ErrorIs(t, err, fileio.ErrNotRegular)
		assert.ErrorContains(t, err, "steps.jsonl")
	case <-time.After(time.Minute):
		t.Fatal("readLogs blocked on a FIFO")
	}
}

// tinyRunner is a TrainRunner of a tiny MLP on synthetic data, with a
// validation split and a test set that differs from it.
func tinyRunner(t *testing.T, testSeed uint64) *TrainRunner {
	t.Helper()
	tr, _, err := data.Synthetic(data.SyntheticConfig{Train: 200, Test: 50, Seed: 1})
	require.NoError(t, err)
	_, te, err := data.Synthetic(data.SyntheticConfig{Train: 10, Test: 50, Seed: testSeed})
	require.NoError(t, err)
	sub, val, err := SplitTail(tr, 0.2)
	require.NoError(t, err)
	return &TrainRunner{
		Base:  train.Config{Model: nn.MLP(tr.ImageSize(), []int{8}, 10), Steps: 3, BatchSize: 32, EvalBatch: 50, Normalize: true, CheckpointEvery: -1},
		Train: tr, Test: te, SweepTrain: sub, Val: val,
	}
}

// A sweep run is evaluated on the validation split, never on the test set:
// two sweeps that differ only in the test set evaluate identically, while
// final runs, evaluated on the test set, differ. And the seed is the run's:
// two seeds train differently.
func TestTrainRunnerValidationAndSeed(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a model")
	}
	a, b := tinyRunner(t, 2), tinyRunner(t, 3)
	runOn := func(tr *TrainRunner, phase string, seed uint64) *RunResult {
		res, err := tr.Run(context.Background(), RunSpec{Phase: phase, Optimizer: "adam", LR: 1e-3, Seed: seed}, t.TempDir())
		require.NoError(t, err)
		require.NotEmpty(t, res.Evals)
		require.NotEmpty(t, res.StepLog)
		return res
	}
	sa, sb := runOn(a, PhaseSweep, 1), runOn(b, PhaseSweep, 1)
	for i := range sa.Evals {
		sa.Evals[i].WallS, sb.Evals[i].WallS = 0, 0
	}
	assert.Equal(t, sa.Evals, sb.Evals, "a sweep's evaluations depend on the validation split alone")
	fa, fb := runOn(a, PhaseFinal, 1), runOn(b, PhaseFinal, 1)
	assert.NotEqual(t, fa.Evals[len(fa.Evals)-1].TestLoss, fb.Evals[len(fb.Evals)-1].TestLoss, "final runs are evaluated on the test set")

	s2 := runOn(a, PhaseFinal, 2)
	assert.NotEqual(t, fa.StepLog[0].Loss, s2.StepLog[0].Loss, "seeds 1 and 2 start from different models")
}

// A diverged run's stored error says where and why it diverged, and names
// no path in its work directory, which is removed once the result is
// stored.
func TestStoredDivergenceNamesNoWorkPath(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a model")
	}
	tr := tinyRunner(t, 2)
	tr.Base.Steps, tr.Base.CheckpointEvery = 7, 1 // a checkpoint before the divergence
	work := t.TempDir()
	res, err := tr.Run(context.Background(), RunSpec{Phase: PhaseFinal, Optimizer: "sgd", LR: 1e9, Seed: 1}, work)
	require.NoError(t, err)
	require.True(t, res.Diverged)
	assert.Contains(t, res.Error, "diverged")
	assert.Regexp(t, `step \d+`, res.Error)
	assert.NotContains(t, res.Error, work)
	assert.NotContains(t, res.Error, "checkpoint")

	assert.Equal(t, "x", divergence(errors.New("x")), "other errors are kept whole")
}

// TestOrphans: stored runs of no spec in the plan are listed, and removed
// on request; the plan's own runs stay.
func TestOrphans(t *testing.T) {
	dir := t.TempDir()
	r := &Runner{Dir: filepath.Join(dir, "runs")}
	none, err := r.Orphans(nil)
	require.NoError(t, err)
	assert.Empty(t, none, "no runs directory: no orphans")
	used := []RunSpec{{Phase: PhaseFinal, Optimizer: "adam", LR: 1e-3, Seed: 1}, {Phase: PhaseSweep, Optimizer: "sgd", LR: 0.1, Seed: 1}}
	old := []RunSpec{{Phase: PhaseFinal, Optimizer: "adam", LR: 3e-3, Seed: 1}, {Phase: PhaseSweep, Optimizer: "sgd", LR: 0.1, Seed: 2}}
	for _, s := range append(append([]RunSpec{}, used...), old...) {
		require.NoError(t, writeJSONAtomic(r.ResultPath(s), &RunResult{Spec: s}))
	}
	want := []string{r.ResultPath(old[0]), r.ResultPath(old[1])}
	got, err := r.Orphans(used)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	got, err = r.RemoveOrphans(used)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	for _, s := range old {
		assert.NoFileExists(t, r.ResultPath(s))
	}
	for _, s := range used {
		assert.FileExists(t, r.ResultPath(s))
	}
}
