package train

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeClock advances by tick at every reading: any span the progress
// output measures is a multiple of tick, whatever the machine's speed.
type fakeClock struct {
	mu   sync.Mutex
	t    time.Time
	tick time.Duration
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(c.tick)
	return c.t
}

// progressRun runs cfg with progress output timed by a clock that ticks
// tick per reading, and returns the output and the result.
func progressRun(t *testing.T, cfg Config, terminal bool, tick, after time.Duration) (string, *Result) {
	t.Helper()
	var out strings.Builder
	cfg.Progress, cfg.Terminal = &out, terminal
	clk := &fakeClock{t: time.Unix(0, 0), tick: tick}
	cfg.ProgressClock, cfg.EvalProgressAfter = clk.now, after
	res, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	return out.String(), res
}

// TestProgressFirstLines: what the run builds is the first line, then how
// long the first step (which compiles the graphs) took, then the first
// step's record.
func TestProgressFirstLines(t *testing.T) {
	cfg := tinyConfig(t, "sgd", testHypers["sgd"])
	cfg.Steps, cfg.LogEvery = 3, 1
	out, _ := progressRun(t, cfg, false, time.Millisecond, 0)
	lines := strings.Split(out, "\n")
	require.GreaterOrEqual(t, len(lines), 3, out)
	assert.Equal(t, "building: a model of 37006 parameters (float64), optimizer sgd, data synthetic/train, batch 16; loading the data, then compiling the graphs", lines[0])
	// The clock ticks 1 ms a reading: the first step spans two readings.
	assert.Regexp(t, `^first step, compiling the graphs of batch 16: 1ms \(after \d+ms of set-up\); Go memory \d+ MiB$`, lines[1])
	assert.True(t, strings.HasPrefix(lines[2], "step 1/3 epoch 1 "), lines[2])
	assert.NotContains(t, out, "evaluating", "a 1 ms-a-reading evaluation is short")
}

// TestProgressEvaluation: an evaluation longer than EvalProgressAfter
// reports how far it is, in plain lines at most every 5 s, on a terminal
// in place at most every 2 s, and its results are those of a silent run.
func TestProgressEvaluation(t *testing.T) {
	cfg := tinyConfig(t, "sgd", testHypers["sgd"])
	cfg.Steps = 2                                // one evaluation of 40 images in batches of 20
	quiet, err := Run(context.Background(), cfg) // no progress output
	require.NoError(t, err)

	// Plain lines: the clock ticks 10 s a reading (the start and each
	// batch read it once): both batches are reported, 10 s and 20 s past
	// the start.
	out, res := progressRun(t, cfg, false, 10*time.Second, 0)
	assert.Contains(t, out, "evaluating after step 2: 20/40 (50%), 10s\nevaluating after step 2: 40/40 (100%), 20s\nepoch 1 (step 2)")
	require.Len(t, res.EpochLog, 1)
	q, r := quiet.EpochLog[0], res.EpochLog[0]
	q.WallS, r.WallS = 0, 0 // the time the steps took
	assert.Equal(t, q, r, "the same results, to the bit")
	assert.Equal(t, quiet.FinalTestLoss, res.FinalTestLoss)

	// Under 5 s between readings: the second batch is not reported.
	out, _ = progressRun(t, cfg, false, 4*time.Second, 0)
	assert.Contains(t, out, "evaluating after step 2: 20/40 (50%), 4s\nepoch 1 (step 2)")
	assert.Equal(t, 1, strings.Count(out, "evaluating"), out)

	// Shorter than the threshold: nothing.
	out, _ = progressRun(t, cfg, false, time.Second, time.Hour)
	assert.NotContains(t, out, "evaluating")

	// On a terminal: in place, every 2 s, then cleared for the epoch line.
	out, _ = progressRun(t, cfg, true, 2*time.Second, time.Nanosecond)
	assert.Contains(t, out, "\revaluating after step 2: 20/40 (50%), 2s\x1b[K\revaluating after step 2: 40/40 (100%), 4s\x1b[K\r\x1b[K")
	assert.NotContains(t, out, "evaluating after step 2: 20/40 (50%), 2s\n")

	// A text model's evaluation counts its sequences.
	cfg = dagConfig(t, "gpt", "sgd")
	cfg.Steps, cfg.EvalBatch = 1, 8
	n := cfg.Test.Len()
	require.Greater(t, n, 8, "more than one batch")
	out, _ = progressRun(t, cfg, false, 10*time.Second, 0)
	assert.Contains(t, out, "evaluating after step 1: 8/"+strconv.Itoa(n)+" (")
	assert.Contains(t, out, "evaluating after step 1: "+strconv.Itoa(n)+"/"+strconv.Itoa(n)+" (100%), ")
}

// TestEvalProgressEnd: a terminal's progress line is cleared at the end of
// an evaluation that showed one, and only then; plain lines need nothing.
func TestEvalProgressEnd(t *testing.T) {
	for _, c := range []struct {
		terminal bool
		after    time.Duration
		want     string
	}{
		{true, time.Nanosecond, "\revaluating after step 7: 5/10 (50%), 1s\x1b[K\r\x1b[K"},
		{true, time.Hour, ""},
		{false, time.Nanosecond, "evaluating after step 7: 5/10 (50%), 1s\n"},
	} {
		var out strings.Builder
		clk := &fakeClock{t: time.Unix(0, 0), tick: time.Second}
		p := newProgress(&out, c.terminal, 10, 5, 1, clk.now)
		e := p.evaluation(7, 10, c.after)
		e.update(5)
		e.end()
		assert.Equal(t, c.want, out.String(), "terminal %v after %v", c.terminal, c.after)
	}
	var nilProgress *evalProgress
	nilProgress.update(1) // no progress output: nothing, no panic
	nilProgress.end()
}
