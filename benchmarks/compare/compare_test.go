package compare

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/curvopt/curvopt/data"
	"github.com/curvopt/curvopt/internal/fileio"
	"github.com/curvopt/curvopt/nn"
	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/optim/mfac"
	"github.com/curvopt/curvopt/train"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func tinyDataset(n int) *data.Dataset {
	ds := &data.Dataset{Name: "tiny", Classes: 10, C: 1, H: 2, W: 2, Pixels: make([]uint8, 4*n), Labels: make([]int, n)}
	for i := range ds.Labels {
		ds.Labels[i] = i % 10
		for j := 0; j < 4; j++ {
			ds.Pixels[4*i+j] = uint8(i)
		}
	}
	return ds
}

func TestSplitTail(t *testing.T) {
	ds := tinyDataset(10)
	tr, val, err := SplitTail(ds, 0.2)
	require.NoError(t, err)
	require.NoError(t, tr.Validate())
	require.NoError(t, val.Validate())
	assert.Equal(t, 8, tr.Len())
	assert.Equal(t, 2, val.Len())
	assert.Equal(t, "tiny/train-part", tr.Name)
	assert.Equal(t, "tiny/val", val.Name)
	assert.Equal(t, []int{8, 9}, val.Labels)
	assert.Equal(t, []uint8{8, 8, 8, 8, 9, 9, 9, 9}, val.Pixels)
	assert.Equal(t, ds.Pixels[:32], tr.Pixels)
	// Copies: writing a part leaves the source alone.
	val.Pixels[0], tr.Labels[0] = 200, 7
	assert.Equal(t, uint8(8), ds.Pixels[32])
	assert.Equal(t, 0, ds.Labels[0])
	// Rounds the validation part up; deterministic.
	tr2, val2, err := SplitTail(ds, 0.15)
	require.NoError(t, err)
	assert.Equal(t, 8, tr2.Len())
	assert.Equal(t, 2, val2.Len())

	for _, tc := range []struct {
		name string
		ds   *data.Dataset
		frac float64
	}{
		{"nil", nil, 0.2}, {"zero", ds, 0}, {"one", ds, 1}, {"nan", ds, nanF()},
		{"no train left", tinyDataset(1), 0.5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := SplitTail(tc.ds, tc.frac)
			assert.Error(t, err)
		})
	}
}

func nanF() float64 { z := 0.0; return z / z }

func TestMeanStd(t *testing.T) {
	assert.Equal(t, Stat{}, MeanStd(nil))
	assert.Equal(t, Stat{Mean: 3, Min: 3, Max: 3, N: 1}, MeanStd([]float64{3}))
	s := MeanStd([]float64{2, 4, 4, 4, 5, 5, 7, 9})
	assert.InDelta(t, 5, s.Mean, 1e-12)
	assert.InDelta(t, 2.138089935, s.Std, 1e-9) // sample std
	assert.Equal(t, 8, s.N)
	assert.Equal(t, 2.0, s.Min)
	assert.Equal(t, 9.0, s.Max)
}

func evals(accs ...float64) []EvalPoint {
	out := make([]EvalPoint, len(accs))
	for i, a := range accs {
		out[i] = EvalPoint{Step: 10 * (i + 1), WallS: float64(i + 1), TestAcc: a, TestLoss: 1 - a}
	}
	return out
}

func TestTimeToTarget(t *testing.T) {
	step, wall, ok := TimeToTarget(evals(0.1, 0.5, 0.4, 0.6), Target{Acc: 0.5})
	assert.True(t, ok)
	assert.Equal(t, 20.0, step)
	assert.Equal(t, 2.0, wall)
	step, wall, ok = TimeToTarget(evals(0.5, 0.6), Target{Acc: 0.4}) // the first evaluation already meets it
	assert.True(t, ok)
	assert.Equal(t, 10.0, step)
	assert.Equal(t, 1.0, wall)
	_, _, ok = TimeToTarget(evals(0.1, 0.2), Target{Acc: 0.5})
	assert.False(t, ok)
	step, wall, ok = TimeToTarget(evals(0.1, 0.5, 0.4, 0.6), Target{Loss: 0.45}) // losses 0.9, 0.5, 0.6, 0.4
	assert.True(t, ok)
	assert.InDelta(t, 37.5, step, 1e-12) // 0.45 lies 3/4 of the way from 0.6 (step 30) to 0.4 (step 40)
	assert.InDelta(t, 3.75, wall, 1e-12)
	_, _, ok = TimeToTarget(evals(0.1, 0.5), Target{Loss: 0.45, Acc: 0.1}) // a loss target ignores Acc
	assert.False(t, ok)
	_, _, ok = TimeToTarget(nil, Target{})
	assert.False(t, ok)

	// Evaluations 2.5 s apart (1 s apart, the time scale would hide a
	// fraction divided where it should multiply): 0.5 lies 3/4 of the way
	// from 0.2 to 0.6, at 4 + 0.75·2.5 s.
	step, wall, ok = TimeToTarget([]EvalPoint{{Step: 10, WallS: 1.5, TestAcc: 0.1}, {Step: 20, WallS: 4, TestAcc: 0.2}, {Step: 30, WallS: 6.5, TestAcc: 0.6}}, Target{Acc: 0.5})
	assert.True(t, ok)
	assert.InDelta(t, 27.5, step, 1e-12)
	assert.InDelta(t, 5.875, wall, 1e-12)
}

func result(opt string, lr float64, seed uint64, accs ...float64) *RunResult {
	ev := evals(accs...)
	r := &RunResult{Spec: RunSpec{Phase: PhaseFinal, Optimizer: opt, LR: lr, Seed: seed}, Evals: ev,
		MeanStepMS: float64(seed), StateBytes: 100 * int64(seed), Steps: 10 * len(accs), TrainWallS: float64(len(accs))}
	for i := 0; i < 10*len(accs); i++ {
		r.StepLog = append(r.StepLog, StepPoint{Step: i + 1, WallS: 0.1 * float64(i+1), Loss: 2 / float64(i+1+int(seed)), StepMS: 100})
	}
	for _, e := range ev {
		r.BestTestAcc = max(r.BestTestAcc, e.TestAcc)
	}
	if len(ev) > 0 {
		r.FinalTestAcc = ev[len(ev)-1].TestAcc
	}
	return r
}

func TestSummarize(t *testing.T) {
	rs := []*RunResult{
		result("adam", 1e-3, 1, 0.3, 0.6, 0.5),
		result("sgd", 0.1, 1, 0.2, 0.3),
		result("adam", 1e-3, 2, 0.4, 0.5, 0.7),
		nil,
		result("sgd", 0.1, 2, 0.1, 0.2),
	}
	rs[4].Diverged = true
	sums := Summarize(rs, Target{Acc: 0.55})
	require.Len(t, sums, 2)
	a, s := sums[0], sums[1]
	assert.Equal(t, "adam", a.Optimizer)
	assert.Equal(t, 2, a.Runs)
	assert.InDelta(t, 0.6, a.FinalAcc.Mean, 1e-12)
	assert.InDelta(t, 0.65, a.BestAcc.Mean, 1e-12)
	assert.Equal(t, 2, a.Reached)
	// Seed 1 crosses 0.55 at 10 + 10·(0.25/0.3), seed 2 at 20 + 10·(0.05/0.2).
	assert.InDelta(t, (10+10*0.25/0.3+22.5)/2, a.StepsToTarget.Mean, 1e-12)
	assert.InDelta(t, (1+0.25/0.3+2.25)/2, a.WallToTarget.Mean, 1e-12)
	assert.InDelta(t, 1.5, a.StepMS.Mean, 1e-12)
	assert.Equal(t, int64(200), a.StateBytes)
	assert.Equal(t, "sgd", s.Optimizer)
	assert.Equal(t, 0, s.Reached)
	assert.Equal(t, 1, s.Diverged)
	assert.Equal(t, Stat{}, s.StepsToTarget)
}

func TestChooseLRs(t *testing.T) {
	sw := func(opt string, lr float64, seed uint64, acc float64, div bool) *RunResult {
		r := result(opt, lr, seed, acc)
		r.Spec.Phase, r.Diverged = PhaseSweep, div
		return r
	}
	entries, best := ChooseLRs([]*RunResult{
		sw("sgd", 1, 1, 0.9, true), // diverged counts as 0 even with a good last evaluation
		sw("sgd", 0.1, 1, 0.5, false),
		sw("sgd", 0.01, 1, 0.3, false),
		sw("adam", 0.01, 1, 0.4, false),
		sw("adam", 0.001, 1, 0.4, false), // tie: the smaller rate
		sw("adam", 0.001, 2, 0.4, false),
	}, false)
	assert.Equal(t, map[string]float64{"sgd": 0.1, "adam": 0.001}, best)
	require.Len(t, entries, 5)
	assert.Equal(t, []float64{0.01, 0.1, 1}, []float64{entries[0].LR, entries[1].LR, entries[2].LR})
	assert.Equal(t, 1, entries[2].Diverged)
	assert.Equal(t, 0.0, entries[2].ValAcc.Mean)
	assert.Equal(t, "adam", entries[3].Optimizer)
	assert.Equal(t, 2, entries[3].Runs)
	assert.Equal(t, []int{0, 0, 0, -1, 0}, []int{entries[0].Edge, entries[1].Edge, entries[2].Edge, entries[3].Edge, entries[4].Edge})
	w := Widen(entries)
	require.Len(t, w, 1)
	assert.InEpsilon(t, 1e-4, w["adam"], 1e-12) // 0.001 / (0.01 / 0.001)

	// By loss: the lowest final loss wins; a diverged run is +Inf.
	entries, best = ChooseLRs([]*RunResult{
		sw("adamw", 1e-3, 1, 0.5, false),   // loss 0.5
		sw("adamw", 3e-3, 1, 0.7, false),   // loss 0.3
		sw("adamw", 1e-2, 1, 0.99, true),   // diverged
		sw("sophiag", 1e-4, 1, 0.2, false), // loss 0.8
		sw("sophiag", 2e-4, 1, 0.3, false), // loss 0.7: at the high edge
	}, true)
	assert.Equal(t, map[string]float64{"adamw": 3e-3, "sophiag": 2e-4}, best)
	assert.True(t, math.IsInf(entries[2].ValLoss.Mean, 1))
	assert.Equal(t, 0, entries[1].Edge)
	assert.Equal(t, +1, entries[4].Edge)
	w = Widen(entries)
	require.Len(t, w, 1)
	assert.InEpsilon(t, 4e-4, w["sophiag"], 1e-12)
}

func TestFinalLossAndLossTarget(t *testing.T) {
	a1, a2 := result("adamw", 1e-3, 1, 0.2, 0.6), result("adamw", 1e-3, 2, 0.2, 0.4) // final losses 0.4, 0.6
	d := result("adamw", 1e-3, 3, 0.9)
	d.Diverged = true
	l, ok := FinalLoss([]*RunResult{a1, a2, d, result("sophiag", 1e-4, 1, 0.9)}, "adamw")
	require.True(t, ok)
	assert.InDelta(t, 0.5, l, 1e-12)
	_, ok = FinalLoss([]*RunResult{d}, "adamw")
	assert.False(t, ok)
	sums := Summarize([]*RunResult{a1, a2, result("sophiag", 1e-4, 1, 0.5, 0.55)}, Target{Loss: l})
	require.Len(t, sums, 2)
	assert.Equal(t, 1, sums[0].Reached)                        // seed 1 ends at loss 0.4
	assert.InDelta(t, 17.5, sums[0].StepsToTarget.Mean, 1e-12) // losses 0.8 → 0.4 cross 0.5 at 3/4
	assert.InDelta(t, 0.5, sums[0].FinalLoss.Mean, 1e-12)
	assert.Equal(t, 1, sums[1].Reached)
	assert.Equal(t, 10.0, sums[1].StepsToTarget.Mean) // sophiag reaches 0.5 at its first evaluation
}

func TestSubsample(t *testing.T) {
	ds := &data.Dataset{Name: "d", Classes: 10, C: 1, H: 1, W: 2, Labels: []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}}
	for i := range 10 {
		ds.Pixels = append(ds.Pixels, uint8(i), uint8(100+i))
	}
	sub, err := Subsample(ds, 4)
	require.NoError(t, err)
	assert.Equal(t, []int{0, 2, 5, 7}, sub.Labels)
	assert.Equal(t, []uint8{0, 100, 2, 102, 5, 105, 7, 107}, sub.Pixels)
	same, err := Subsample(ds, 0)
	require.NoError(t, err)
	assert.Same(t, ds, same)
	same, err = Subsample(ds, 10)
	require.NoError(t, err)
	assert.Same(t, ds, same)
}

func TestRenderMarkdown(t *testing.T) {
	rs := []*RunResult{result("adam", 1e-3, 1, 0.3, 0.6), result("adam", 1e-3, 2, 0.4, 0.5), result("sgd", 0.1, 1, 0.2)}
	sums := Summarize(rs, Target{Acc: 0.55})
	sweep := []SweepEntry{{Optimizer: "adam", LR: 1e-3, ValAcc: Stat{Mean: 0.5, N: 1}, Runs: 1, Chosen: true}, {Optimizer: "adam", LR: 1e-2, ValAcc: Stat{N: 1}, Runs: 1, Diverged: 1}}
	var b bytes.Buffer
	require.NoError(t, RenderMarkdown(&b, Report{Title: "T", Command: "go run x", Settings: [][2]string{{"seeds", "2"}}, Target: Target{Acc: 0.55}, Notes: []string{"a note"}},
		sums, sweep, map[string]float64{"adam": 1e-3}))
	md := b.String()
	assert.True(t, strings.HasPrefix(md, "# T\n"))
	assert.Contains(t, md, "- seeds: 2")
	assert.Contains(t, md, "| optimizer | lr | seeds | final test acc % | best test acc % | final test loss | steps to 55% |")
	assert.Contains(t, md, "| adam | 0.001 | 2 | 55.00 ± 7.07 (50.00–60.00) | 55.00 ± 7.07 (50.00–60.00) | 0.4500 ± 0.0707 (0.4000–0.5000) | 18 | 1.83 | 1/2 | 1.50 | 200 |")
	assert.Contains(t, md, "| sgd | 0.1 | 1 | 20.00 | 20.00 | 0.8000 | — | — | 0/1 | 1.00 | 100 |")
	assert.Contains(t, md, "| adam | 0.001 | 50.00 | — | 1 | **✓** |")
	assert.Contains(t, md, "| adam | 0.01 | 0.00 (1 diverged) | — | 1 |  |")
	assert.Contains(t, md, "- a note")
	// Every table row has the header's number of cells.
	for _, line := range strings.Split(md, "\n") {
		if strings.HasPrefix(line, "| adam | 0.001 | 2") {
			assert.Equal(t, 12, strings.Count(line, "|"))
		}
	}
}

func TestWriteCSVs(t *testing.T) {
	rs := []*RunResult{result("adam", 1e-3, 1, 0.3, 0.6), nil, result("sgd", 0.1, 2, 0.2)}
	top := 12.5
	rs[0].StepLog[1].Diag = map[string]float64{"win_rate": 0.25, "window_fill": 0.5}
	rs[0].StepLog[1].HessTop = &top
	var b bytes.Buffer
	require.NoError(t, WriteCurvesCSV(&b, rs))
	rows, err := csv.NewReader(&b).ReadAll()
	require.NoError(t, err)
	assert.Equal(t, CurveColumns, rows[0])
	assert.Len(t, rows, 1+20+2+10+1)
	assert.Equal(t, []string{"final", "adam", "0.001", "1", "step", "1", "0.1", "1", "", "", "", "", "", ""}, rows[1])
	assert.Equal(t, []string{"0.25", "0.5", "12.5", ""}, rows[2][len(rows[2])-4:], "the diagnostics and λmax of step 2")
	assert.Equal(t, []string{"final", "adam", "0.001", "1", "eval", "20", "2", "0", "0.4", "0.6", "", "", "", ""}, rows[22])
	assert.Equal(t, "sgd", rows[len(rows)-1][1])

	b.Reset()
	sums := Summarize(rs, Target{Acc: 0.5})
	require.NoError(t, WriteSummaryCSV(&b, sums, Target{Acc: 0.5}))
	rows, err = csv.NewReader(&b).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 3)
	assert.Equal(t, SummaryColumns, rows[0])
	col := func(name string) int {
		for i, c := range SummaryColumns {
			if c == name {
				return i
			}
		}
		t.Fatalf("no column %s", name)
		return -1
	}
	assert.Equal(t, "0.6", rows[1][col("final_acc_mean")])
	assert.Equal(t, "16.666667", rows[1][col("steps_to_target_mean")]) // 0.3 → 0.6 crosses 0.5 at 2/3
	assert.Equal(t, "0.6", rows[1][col("final_acc_min")])              // one seed
	assert.Equal(t, "", rows[2][col("steps_to_target_mean")])
	assert.Equal(t, "0", rows[2][col("reached")])
}

// fakeTrainer is a TrainFunc that fabricates results and counts calls.
type fakeTrainer struct {
	calls   []string
	failOn  string // key whose first call fails after leaving a marker
	workDir map[string]string
}

func (f *fakeTrainer) train(_ context.Context, s RunSpec, work string) (*RunResult, error) {
	f.calls = append(f.calls, s.Key())
	if f.workDir == nil {
		f.workDir = map[string]string{}
	}
	f.workDir[s.Key()] = work
	marker := filepath.Join(work, "partial")
	if s.Key() == f.failOn {
		if _, err := os.Stat(marker); err != nil {
			if err := os.WriteFile(marker, []byte("x"), 0o644); err != nil {
				return nil, err
			}
			return nil, context.Canceled
		}
	}
	r := result(s.Optimizer, s.LR, s.Seed, 0.5)
	if _, err := os.Stat(marker); err == nil {
		r.Error = "resumed" // the retry saw the interrupted attempt's work dir
	}
	return r, nil
}

func TestRunnerReuse(t *testing.T) {
	dir := t.TempDir()
	ft := &fakeTrainer{failOn: "sgd-lr0.1-seed2"}
	var log bytes.Buffer
	r := &Runner{Dir: filepath.Join(dir, "runs"), WorkDir: filepath.Join(dir, "work"), Fingerprint: "fp1", Train: ft.train, Progress: &log}
	specs := []RunSpec{
		{Phase: PhaseFinal, Optimizer: "adam", LR: 1e-3, Seed: 1},
		{Phase: PhaseFinal, Optimizer: "sgd", LR: 0.1, Seed: 1},
		{Phase: PhaseFinal, Optimizer: "sgd", LR: 0.1, Seed: 2},
		{Phase: PhaseFinal, Optimizer: "adam", LR: 1e-3, Seed: 2},
	}
	// First attempt: interrupted at the third run; the first two are stored.
	out, err := r.RunAll(context.Background(), specs)
	require.Error(t, err)
	assert.True(t, errors.Is(err, context.Canceled))
	assert.Equal(t, []string{"adam-lr0.001-seed1", "sgd-lr0.1-seed1", "sgd-lr0.1-seed2"}, ft.calls)
	assert.NotNil(t, out[0])
	assert.Nil(t, out[2])
	assert.FileExists(t, r.ResultPath(specs[0]))
	assert.NoFileExists(t, r.ResultPath(specs[2]))
	assert.NoDirExists(t, ft.workDir["adam-lr0.001-seed1"], "a finished run's work dir is removed")
	assert.DirExists(t, ft.workDir["sgd-lr0.1-seed2"], "an interrupted run's work dir is kept")

	// Second attempt: only the missing runs train; the interrupted one gets
	// its work dir back.
	ft.calls = nil
	out, err = r.RunAll(context.Background(), specs)
	require.NoError(t, err)
	assert.Equal(t, []string{"sgd-lr0.1-seed2", "adam-lr0.001-seed2"}, ft.calls)
	assert.Equal(t, "resumed", out[2].Error)
	for i, res := range out {
		require.NotNil(t, res)
		assert.Equal(t, specs[i], res.Spec)
		assert.Equal(t, "fp1", res.Fingerprint)
	}
	assert.Contains(t, log.String(), "4 runs: 2 stored, 2 to train")
	assert.Contains(t, log.String(), "[2/2] final adam lr=0.001 seed=2")
	assert.Contains(t, log.String(), "ETA")

	// Third attempt: everything reused, results identical.
	ft.calls = nil
	again, err := r.RunAll(context.Background(), specs)
	require.NoError(t, err)
	assert.Empty(t, ft.calls)
	assert.Equal(t, out, again)

	// A corrupt file and another fingerprint are retrained.
	require.NoError(t, os.WriteFile(r.ResultPath(specs[1]), []byte("{"), 0o644))
	_, err = r.RunAll(context.Background(), specs)
	require.NoError(t, err)
	assert.Equal(t, []string{"sgd-lr0.1-seed1"}, ft.calls)
	ft.calls = nil
	r.Fingerprint = "fp2"
	_, err = r.RunAll(context.Background(), specs[:2])
	require.NoError(t, err)
	assert.Len(t, ft.calls, 2)

	// A fingerprint an older version wrote is compared after Upgrade.
	ft.calls = nil
	r.Fingerprint = "fp3"
	r.Upgrade = func(stored string) string { return map[string]string{"fp2": "fp3"}[stored] }
	got, err := r.RunAll(context.Background(), specs[:2])
	require.NoError(t, err)
	assert.Empty(t, ft.calls, "the upgraded fingerprint matches")
	assert.Equal(t, "fp3", got[0].Fingerprint)
}

func TestIsDivergence(t *testing.T) {
	assert.True(t, IsDivergence(fmt.Errorf("x: %w", train.ErrDiverged)))
	assert.True(t, IsDivergence(fmt.Errorf("hessian: gradient of \"w\": entry 2 is NaN: %w", optim.ErrNonFinite)))
	assert.False(t, IsDivergence(errors.New("the loss is NaN (a message alone is not a divergence)")))
	assert.False(t, IsDivergence(nil))
	assert.False(t, IsDivergence(context.Canceled))
	assert.False(t, IsDivergence(errors.New("open foo: permission denied")))
}

func TestReadLogs(t *testing.T) {
	dir := t.TempDir()
	steps := `{"step":1,"epoch":1,"loss":2.5,"step_ms":10}
{"step":2,"epoch":1,"loss":2.0,"step_ms":30,"diag":{"win_rate":0.125}}
`
	epochs := `{"epoch":1,"step":2,"train_loss":2.25,"test_acc":0.3,"wall_s":0.04}
{"epoch":1,"step":2,"train_loss":0,"test_acc":0.35,"wall_s":0.04}
`
	require.NoError(t, os.WriteFile(filepath.Join(dir, "steps.jsonl"), []byte(steps), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "epochs.jsonl"), []byte(epochs), 0o644))
	r, err := readLogs(dir)
	require.NoError(t, err)
	assert.Equal(t, 2, r.Steps)
	assert.InDelta(t, 20, r.MeanStepMS, 1e-12)
	assert.InDelta(t, 0.04, r.StepLog[1].WallS, 1e-12)
	assert.Equal(t, map[string]float64{"win_rate": 0.125}, r.StepLog[1].Diag, "the win rate is kept")
	require.Len(t, r.Evals, 1, "a repeated evaluation at one step is kept once")
	assert.Equal(t, 0.35, r.Evals[0].TestAcc)
	assert.Equal(t, 2.25, r.Evals[0].TrainLoss)
	assert.Equal(t, 0.35, r.FinalTestAcc)

	// The best accuracy is the highest of the evaluations, not the last.
	epochs = `{"epoch":1,"step":1,"test_acc":0.3,"wall_s":0.01}
{"epoch":1,"step":2,"test_acc":0.5,"wall_s":0.04}
{"epoch":2,"step":3,"test_acc":0.4,"wall_s":0.06}
`
	require.NoError(t, os.WriteFile(filepath.Join(dir, "epochs.jsonl"), []byte(epochs), 0o644))
	r, err = readLogs(dir)
	require.NoError(t, err)
	assert.Equal(t, 0.5, r.BestTestAcc)
	assert.Equal(t, 0.4, r.FinalTestAcc)

	require.NoError(t, os.WriteFile(filepath.Join(dir, "epochs.jsonl"), []byte("{bad\n"), 0o644))
	_, err = readLogs(dir)
	assert.ErrorContains(t, err, "epochs.jsonl:1")
}

// TestAddWindowFill: M-FAC's window fill is min(step, m)/m, with the run's
// ngrads or M-FAC's default m.
func TestAddWindowFill(t *testing.T) {
	log := []StepPoint{{Step: 1}, {Step: 2, Diag: map[string]float64{"x": 1}}, {Step: 8}}
	addWindowFill(log, train.Hyper{"ngrads": 4.0})
	assert.Equal(t, 0.25, log[0].Diag["window_fill"])
	assert.Equal(t, map[string]float64{"x": 1, "window_fill": 0.5}, log[1].Diag)
	assert.Equal(t, 1.0, log[2].Diag["window_fill"])
	addWindowFill(log, nil)
	assert.Equal(t, 8/float64(mfac.Default().NGrads), log[2].Diag["window_fill"])
}

func TestWritePlots(t *testing.T) {
	dir := t.TempDir()
	rs := []*RunResult{
		result("adam", 1e-3, 1, 0.3, 0.6, 0.7), result("adam", 1e-3, 2, 0.4, 0.5, 0.8),
		result("sgd", 0.1, 1, 0.2), // one evaluation: a point, no band
	}
	require.NoError(t, WritePlots(dir, "test", rs))
	for _, name := range PlotNames {
		png, err := os.ReadFile(filepath.Join(dir, name+".png"))
		require.NoError(t, err)
		assert.True(t, bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")), name)
		svg, err := os.ReadFile(filepath.Join(dir, name+".svg"))
		require.NoError(t, err)
		s := strings.TrimSpace(string(svg))
		assert.True(t, strings.HasPrefix(s, "<?xml") || strings.HasPrefix(s, "<svg"), name)
		assert.Contains(t, s, "adam (mean of 2 seeds)")
		assert.Contains(t, s, "shaded: min–max over seeds", "the band is labelled")
	}
	left, err := filepath.Glob(filepath.Join(dir, "*"+fileio.TmpInfix+"*"))
	require.NoError(t, err)
	assert.Empty(t, left, "no temporary files are left")
}

func TestMakeBandAndSmooth(t *testing.T) {
	b := makeBand([][]float64{{1, 2, 3}, {1, 2}}, [][]float64{{1, 2, 3}, {3, 4}})
	assert.Equal(t, []float64{1, 2}, b.x)
	assert.Equal(t, []float64{2, 3}, b.mean)
	assert.Equal(t, []float64{1, 2}, b.lo)
	assert.Equal(t, []float64{3, 4}, b.hi)
	assert.Equal(t, []float64{1, 1.5, 2.5, 3.5}, smooth([]float64{1, 2, 3, 4}, 2))
	assert.Equal(t, []float64{1, 2}, smooth([]float64{1, 2}, 1))
}

// TestTrainRunnerEvalEvery trains a tiny MLP for real through train.Run with
// extra evaluations and checks the curve read back.
func TestTrainRunnerEvalEvery(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a model")
	}
	tr, te, err := data.Synthetic(data.SyntheticConfig{Train: 200, Test: 50, Seed: 1})
	require.NoError(t, err)
	sub, val, err := SplitTail(tr, 0.2)
	require.NoError(t, err)
	runner := &TrainRunner{
		Base:  train.Config{Model: nn.MLP(tr.ImageSize(), []int{8}, 10), Steps: 7, BatchSize: 32, EvalBatch: 50, Normalize: true, CheckpointEvery: -1},
		Train: tr, Test: te, SweepTrain: sub, Val: val, EvalEvery: 3,
	}
	evalSteps := func(r *RunResult) []int {
		var at []int
		for _, e := range r.Evals {
			at = append(at, e.Step)
		}
		return at
	}
	res, err := runner.Run(context.Background(), RunSpec{Phase: PhaseFinal, Optimizer: "adam", LR: 1e-3, Seed: 1}, t.TempDir())
	require.NoError(t, err)
	assert.Equal(t, 7, res.Steps)
	assert.Len(t, res.StepLog, 7)
	// 200 training images / 32 = 6 full steps an epoch: evaluations every 3
	// steps, at the epoch's end (6) and at the end of the run (7).
	assert.Equal(t, []int{3, 6, 7}, evalSteps(res))
	assert.Greater(t, res.StateBytes, int64(0))
	assert.Greater(t, res.MeanStepMS, 0.0)
	assert.False(t, res.Diverged)

	// A sweep run reads only its final validation result: it evaluates at
	// the ends of epochs (160 images: 5 steps) and of the run only.
	res, err = runner.Run(context.Background(), RunSpec{Phase: PhaseSweep, Optimizer: "adam", LR: 1e-3, Seed: 1}, t.TempDir())
	require.NoError(t, err)
	assert.Equal(t, []int{5, 7}, evalSteps(res))

	// A diverging rate is a result, not an error.
	res, err = runner.Run(context.Background(), RunSpec{Phase: PhaseFinal, Optimizer: "sgd", LR: 1e9, Seed: 1}, t.TempDir())
	require.NoError(t, err)
	assert.True(t, res.Diverged)
	assert.NotEmpty(t, res.Error)
}

func TestSharpness(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	mk := func(opt string, seed uint64, pts ...[3]float64) *RunResult { // step, lr, top
		r := &RunResult{Spec: RunSpec{Phase: PhaseFinal, Optimizer: opt, LR: 0.1, Seed: seed}}
		for i := 1; i <= 4; i++ {
			r.StepLog = append(r.StepLog, StepPoint{Step: i, LR: 0.1})
		}
		for _, p := range pts {
			r.StepLog[int(p[0])-1].LR, r.StepLog[int(p[0])-1].HessTop = p[1], f(p[2])
		}
		return r
	}
	rs := []*RunResult{
		mk("sgd", 1, [3]float64{2, 0.1, 10}, [3]float64{4, 0.1, 30}), // 2/lr = 20: the second is above
		mk("sgd", 2, [3]float64{2, 0.05, 20}, [3]float64{4, 0.05, 30}),
		mk("adam", 1), // no measurements: left out
		nil,
	}
	pts := Sharpness(rs[0], Momentum{})
	for i := range pts {
		assert.True(t, math.IsNaN(pts[i].Precond) && math.IsNaN(pts[i].Limit), "not measured: NaN")
		pts[i].Precond, pts[i].Limit = 0, 0
	}
	assert.Equal(t, []SharpPoint{{Step: 2, LR: 0.1, Top: 10, Edge: 20}, {Step: 4, LR: 0.1, Top: 30, Edge: 20}}, pts)
	sums := SummarizeSharpness(rs, nil)
	require.Len(t, sums, 1)
	s := sums[0]
	assert.Equal(t, "sgd", s.Optimizer)
	assert.Equal(t, 2, s.Runs)
	assert.Equal(t, 4, s.Points)
	assert.InDelta(t, 15, s.First, 1e-12)
	assert.InDelta(t, 30, s.Last, 1e-12)
	assert.InDelta(t, 30, s.Max, 1e-12)
	assert.InDelta(t, 1.5, s.MaxRatio, 1e-12) // 30·0.1/2
	assert.InDelta(t, 0.25, s.Above, 1e-12)   // 30 > 20 only; 20 < 40, 30 < 40

	var b bytes.Buffer
	require.NoError(t, RenderSharpness(&b, sums))
	assert.Contains(t, b.String(), "| sgd | 2 | 4 | 15 | 30 | 30 | 1.5 | 25% |")
	b.Reset()
	require.NoError(t, RenderSharpness(&b, nil))
	assert.Empty(t, b.String())

	b.Reset()
	require.NoError(t, WriteSharpnessCSV(&b, rs, nil))
	rows, err := csv.NewReader(&b).ReadAll()
	require.NoError(t, err)
	assert.Equal(t, SharpnessColumns, rows[0])
	require.Len(t, rows, 5)
	assert.Equal(t, []string{"final", "sgd", "0.1", "2", "2", "0.05", "20", "40", "40", "", "", ""}, rows[3])

	dir := t.TempDir()
	require.NoError(t, WriteSharpnessPlots(dir, "t", rs, nil))
	for _, n := range SharpnessPlotNames {
		for _, ext := range []string{".png", ".svg"} {
			st, err := os.Stat(filepath.Join(dir, n+ext))
			require.NoError(t, err)
			assert.Greater(t, st.Size(), int64(1000))
		}
	}
	empty := t.TempDir()
	require.NoError(t, WriteSharpnessPlots(empty, "t", rs[2:], nil))
	entries, err := os.ReadDir(empty)
	require.NoError(t, err)
	assert.Empty(t, entries)
}

func TestWelch(t *testing.T) {
	d, p, ok := Welch([]float64{1, 2, 3}, []float64{4, 5, 6})
	require.True(t, ok)
	assert.Equal(t, -3.0, d)
	assert.InDelta(t, 0.0213116, p, 1e-6) // t = −3.674, 4 degrees of freedom
	d, p, ok = Welch([]float64{1, 2, 3, 4}, []float64{2, 4})
	require.True(t, ok)
	assert.Equal(t, -0.5, d)
	assert.InDelta(t, 0.717192, p, 1e-5) // t = −0.420, Welch–Satterthwaite df = 1.897 (a pooled df of 4 gives 0.696)
	_, _, ok = Welch([]float64{1}, []float64{2, 3})
	assert.False(t, ok)
	_, _, ok = Welch([]float64{1, 1}, []float64{2, 2})
	assert.False(t, ok)
}

func TestRenderReference(t *testing.T) {
	rs := []*RunResult{result("sgd", 0.1, 1, 0.5, 0.8), result("sgd", 0.1, 2, 0.5, 0.9), result("sgd", 0.1, 3, 0.5, 0.85),
		result("adam", 1e-3, 1, 0.7, 0.6), result("adam", 1e-3, 2, 0.7, 0.7), result("adam", 1e-3, 3, 0.7, 0.65)}
	sums := Summarize(rs, Target{Acc: 0.6})
	var b bytes.Buffer
	require.NoError(t, RenderMarkdown(&b, Report{Target: Target{Acc: 0.6}, Reference: "sgd", RefSteps: 20}, sums, nil, nil))
	md := b.String()
	assert.Contains(t, md, "| final acc (pp) − sgd (Welch p) | speed-up in steps vs sgd |")
	_, p, _ := Welch([]float64{0.6, 0.7, 0.65}, []float64{0.8, 0.9, 0.85})
	assert.Contains(t, md, "| — | 1.55x |")                                 // sgd against itself: 20 ÷ its mean interpolated steps, 12.9
	assert.Contains(t, md, fmt.Sprintf("| -20.00 (p = %.2g) | 2.00x |", p)) // adam reaches 0.6 at step 10
	b.Reset()
	require.NoError(t, RenderMarkdown(&b, Report{Target: Target{Acc: 0.6}, Reference: "sgd", ByLoss: true}, sums, nil, nil))
	assert.Contains(t, b.String(), "| final loss − sgd (Welch p) |")
	assert.Contains(t, b.String(), fmt.Sprintf("| +0.2000 (p = %.2g) | — |", p)) // no RefSteps: no speed-up
}
