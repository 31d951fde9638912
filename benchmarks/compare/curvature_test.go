package compare

import (
	"bytes"
	"context"
	"encoding/csv"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/curvopt/curvopt/data"
	"github.com/curvopt/curvopt/nn"
	"github.com/curvopt/curvopt/train"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCurvature builds fake results with preconditioned-curvature
// measurements and checks the summary, results.md's section and
// sharpness.csv's new columns.
func TestCurvature(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	mk := func(opt string, lr float64, seed uint64, pts ...[4]float64) *RunResult { // step, step lr, λ(P⁻¹H), c
		r := &RunResult{Spec: RunSpec{Phase: PhaseFinal, Optimizer: opt, LR: lr, Seed: seed}}
		for i := 1; i <= 6; i++ {
			r.StepLog = append(r.StepLog, StepPoint{Step: i, LR: lr})
		}
		for _, p := range pts {
			s := &r.StepLog[int(p[0])-1]
			conv := p[0] != 6 // the last measurement of seed 1 stopped at its budget
			s.LR, s.HessTop, s.PrecondTop, s.StabilityLimit, s.PrecondConverged = p[1], f(2*p[2]), f(p[2]), f(p[3]), &conv
		}
		return r
	}
	rs := []*RunResult{
		// adam, c = 38: bounds 38/380 = 0.1, 38/190 = 0.2, 38/76 = 0.5
		mk("adam", 0.01, 1, [4]float64{1, 0.01, 380, 38}, [4]float64{3, 0.01, 190, 38}, [4]float64{6, 0.002, 76, 38}),
		// seed 2: bounds 38/152 = 0.25, +Inf (λ < 0)
		mk("adam", 0.01, 2, [4]float64{1, 0.01, 152, 38}, [4]float64{3, 0.01, -5, 38}),
		mk("sgd", 0.1, 1), // nothing measured: left out
		nil,
	}
	sums := SummarizeCurvature(rs)
	require.Len(t, sums, 1)
	s := sums[0]
	assert.Equal(t, "adam", s.Label)
	assert.Equal(t, 2, s.Runs)
	assert.Equal(t, 5, s.Points)
	assert.Equal(t, 0.01, s.Chosen)
	assert.Equal(t, 38.0, s.Limit)
	assert.InDelta(t, 266, s.StartTop, 1e-12)     // (380 + 152)/2
	assert.InDelta(t, 0.175, s.StartBound, 1e-12) // (0.1 + 0.25)/2
	assert.InDelta(t, 0.1, s.MinBound, 1e-12)
	assert.InDelta(t, 0.25, s.MedianBound, 1e-12) // of 0.1, 0.2, 0.25, 0.5, +Inf
	assert.InDelta(t, 0.1, s.MaxEdge, 1e-12)      // 0.01·380/38
	assert.Equal(t, 1, s.NonPositive)
	assert.Equal(t, 1, s.Unconverged)

	var b bytes.Buffer
	require.NoError(t, RenderCurvature(&b, sums))
	md := b.String()
	assert.Contains(t, md, "## Curvature and the chosen rate")
	assert.Contains(t, md, "| adam | 0.01 | 38 | 266 | 0.175 | 0.1 | 0.25 | 0.0571 | 0.04 | 0.1 | 5 (1 with λ ≤ 0, 1 not converged) |")
	header := 0
	for _, line := range strings.Split(md, "\n") {
		if strings.HasPrefix(line, "| optimizer") {
			header = strings.Count(line, "|")
		}
		if strings.HasPrefix(line, "| adam") {
			assert.Equal(t, header, strings.Count(line, "|"), "cells")
		}
	}
	assert.Equal(t, 12, header)
	b.Reset()
	require.NoError(t, RenderCurvature(&b, nil))
	assert.Empty(t, b.String())

	// results.md carries the section.
	b.Reset()
	require.NoError(t, RenderMarkdown(&b, Report{Title: "t", Curvature: sums}, Summarize(rs[:1], Target{Acc: 0.5}), nil, nil))
	assert.Contains(t, b.String(), "## Curvature and the chosen rate")

	b.Reset()
	require.NoError(t, WriteSharpnessCSV(&b, rs, nil))
	rows, err := csv.NewReader(&b).ReadAll()
	require.NoError(t, err)
	assert.Equal(t, SharpnessColumns, rows[0])
	require.Len(t, rows, 6)
	assert.Equal(t, []string{"380", "38", "0.1"}, rows[1][len(rows[1])-3:])
	assert.Equal(t, []string{"-5", "38", "+Inf"}, rows[5][len(rows[5])-3:])
}

// TestReadLogsPrecond: the step log reader keeps precond_top and
// stability_limit.
func TestReadLogsPrecond(t *testing.T) {
	dir := t.TempDir()
	steps := `{"step":1,"epoch":1,"loss":2.5,"step_ms":10,"hessian_top":40,"precond_top":120,"stability_limit":38,"precond_converged":false}
{"step":2,"epoch":1,"loss":2.0,"step_ms":30}
`
	require.NoError(t, os.WriteFile(filepath.Join(dir, "steps.jsonl"), []byte(steps), 0o644))
	r, err := readLogs(dir)
	require.NoError(t, err)
	require.NotNil(t, r.StepLog[0].PrecondTop)
	require.NotNil(t, r.StepLog[0].StabilityLimit)
	assert.Equal(t, 120.0, *r.StepLog[0].PrecondTop)
	assert.Equal(t, 38.0, *r.StepLog[0].StabilityLimit)
	assert.Nil(t, r.StepLog[1].PrecondTop)
	pts := Curvature(r)
	require.Len(t, pts, 1)
	assert.InDelta(t, 38.0/120, pts[0].Bound(), 1e-15)
	assert.True(t, pts[0].Unconverged)
}

// TestWriteChosenCSV: one row per optimizer in order, the knobs as swept
// and in -hyper syntax with a per-rate value resolved at the chosen rate.
func TestWriteChosenCSV(t *testing.T) {
	var b bytes.Buffer
	chosen := map[string]float64{"sgd": 0.05, "adahessian": 0.2, "adam": 0.001}
	knobs := map[string]string{"sgd": "nesterov=true,weight_decay=0.0005", "adahessian": "hessian_interval=10,weight_decay=0.0005/lr"}
	require.NoError(t, WriteChosenCSV(&b, []string{"sgd", "adahessian", "adam", "mfac"}, chosen, knobs))
	rows, err := csv.NewReader(&b).ReadAll()
	require.NoError(t, err)
	assert.Equal(t, [][]string{
		ChosenColumns,
		{"sgd", "0.05", "nesterov=true,weight_decay=0.0005", "nesterov=true,weight_decay=0.0005"},
		{"adahessian", "0.2", "hessian_interval=10,weight_decay=0.0005/lr", "hessian_interval=10,weight_decay=0.0025"},
		{"adam", "0.001", "", ""},
	}, rows)
	assert.False(t, math.IsNaN(chosen["sgd"]))
}

// TestTrainRunnerPrecond: a run with SharpnessPrecond records λ(P⁻¹H) and
// the limit at step 1 and every SharpnessEvery steps; without it, none.
func TestTrainRunnerPrecond(t *testing.T) {
	runner := precondRunner(t)
	spec := RunSpec{Phase: PhaseFinal, Optimizer: "adam", LR: 1e-3, Seed: 1, SharpnessEvery: 3, SharpnessPrecond: true}
	res, err := runner.Run(context.Background(), spec, t.TempDir())
	require.NoError(t, err)
	var at []int
	for _, p := range Curvature(res) {
		at = append(at, p.Step)
		assert.InDelta(t, 38.0, p.Lim, 1e-12)
		assert.Greater(t, p.Top, 0.0)
	}
	assert.Equal(t, []int{1, 3, 6}, at)
	spec.SharpnessPrecond = false
	res, err = runner.Run(context.Background(), spec, t.TempDir())
	require.NoError(t, err)
	assert.Empty(t, Curvature(res))
	require.NotNil(t, res.StepLog[2].HessTop, "sharpness still tracked")
}

// precondRunner trains an 8-unit MLP on 200 synthetic images for 7 steps.
func precondRunner(t *testing.T) *TrainRunner {
	if testing.Short() {
		t.Skip("trains a model")
	}
	tr, te, err := data.Synthetic(data.SyntheticConfig{Train: 200, Test: 50, Seed: 1})
	require.NoError(t, err)
	return &TrainRunner{
		Base:  train.Config{Model: nn.MLP(tr.ImageSize(), []int{8}, 10), Steps: 7, BatchSize: 32, EvalBatch: 50, Normalize: true, CheckpointEvery: -1},
		Train: tr, Test: te, EvalEvery: 3,
	}
}
