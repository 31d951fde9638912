package train

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/curvopt/curvopt/optim"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// cancelAt is a progress writer that cancels its context once step `at`
// is reported: the run then stops before the next step and checkpoints
// there, without evaluating, as a signal would make it (Config.LogEvery
// must be 1).
type cancelAt struct {
	at     int
	cancel context.CancelFunc
}

func (c *cancelAt) Write(b []byte) (int, error) {
	if strings.HasPrefix(string(b), fmt.Sprintf("step %d/", c.at)) {
		c.cancel()
	}
	return len(b), nil
}

// interrupted runs cfg until step `at` and stops it there (cancelAt).
func interrupted(t *testing.T, cfg Config, at int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg.Progress, cfg.LogEvery = &cancelAt{at: at, cancel: cancel}, 1
	_, err := Run(ctx, cfg)
	require.ErrorIs(t, err, context.Canceled)
	c, err := ReadCheckpointInfo(filepath.Join(cfg.OutDir, checkpointFile))
	require.NoError(t, err)
	require.Equal(t, at, c.Step)
}

// resumableRun is a run of 6 steps an epoch, evaluated every 4 steps,
// stopped at step 10: its checkpoint is in epoch 2, after evaluations at
// steps 4, 6 and 8, two steps into the running sums of the next.
func resumableRun(t *testing.T) Config {
	cfg := tinyConfig(t, "adam", nil)
	cfg.OutDir = t.TempDir()
	cfg.Epochs, cfg.EvalEvery = 2, 4
	interrupted(t, cfg, 10)
	return cfg
}

// TestResumeMidEpochRestoresRunningSums stops a run inside an epoch, after
// an evaluation and before the epoch's end, and resumes it: its records
// equal an uninterrupted run's, the epoch's training loss and accuracy
// included, which need the running sums from the checkpoint.
func TestResumeMidEpochRestoresRunningSums(t *testing.T) {
	straight := tinyConfig(t, "adam", nil)
	straight.OutDir = t.TempDir()
	straight.Epochs, straight.EvalEvery = 2, 4
	_, err := Run(context.Background(), straight)
	require.NoError(t, err)

	cfg := resumableRun(t)
	c, err := LoadCheckpoint(filepath.Join(cfg.OutDir, checkpointFile))
	require.NoError(t, err)
	sums, err := c.blobFloats("epoch_sums", 3)
	require.NoError(t, err)
	require.Equal(t, 2.0, sums[2], "the checkpoint holds two steps' running sums")
	require.Greater(t, sums[0], 0.0)

	cfg.Resume = true
	res, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	require.NotEmpty(t, res.EpochLog)
	sameRecords(t, straight.OutDir, cfg.OutDir)
}

// TestCheckpointMeaningValidated writes checkpoints whose checksums are
// valid (SaveCheckpoint) but whose fields are wrong: each is refused by
// LoadCheckpoint and by a resume, naming the file and the field, and the
// refused resume leaves the metrics files as they were.
func TestCheckpointMeaningValidated(t *testing.T) {
	cfg := resumableRun(t)
	path := filepath.Join(cfg.OutDir, checkpointFile)
	orig, err := os.ReadFile(path)
	require.NoError(t, err)
	steps, err := os.ReadFile(filepath.Join(cfg.OutDir, "steps.jsonl"))
	require.NoError(t, err)
	floats := func(name string, xs ...float64) func(c *Checkpoint) {
		return func(c *Checkpoint) { c.Blobs[name] = encodeFloats(xs...) }
	}
	cases := []struct {
		name  string
		mod   func(c *Checkpoint)
		want  string
		state bool // refused only on resume, against the metrics files
	}{
		{"negative step", func(c *Checkpoint) { c.Step = -4 }, "step -4 is negative", false},
		{"zero step", func(c *Checkpoint) {
			c.Step, c.Epoch, c.Evals, c.EvalStep, c.Opt.Step, c.Data.Epoch = 0, 0, 0, -1, 0, 0
			c.Blobs["epoch_sums"], c.Blobs["last_eval"] = encodeFloats(0, 0, 0), encodeFloats(0, 0)
		}, "step 0, but the data iterator is at batch 4 of epoch 1 with 6 batches an epoch (step 4)", false},
		{"step beyond the data position", func(c *Checkpoint) {
			c.Step, c.Opt.Step = 25, 25
			c.Blobs["epoch_sums"] = encodeFloats(1, 0, 17)
		}, "step 25, but the data iterator is at batch 4 of epoch 2", false},
		{"negative epoch", func(c *Checkpoint) { c.Epoch = -1 }, "epoch -1 is negative", false},
		{"epoch beyond the data", func(c *Checkpoint) { c.Epoch = 0 }, "epoch 0, but the data iterator has completed 1 epochs", false},
		{"huge eval count", func(c *Checkpoint) { c.Evals = 1 << 40 }, "1099511627776 evaluations, out of range for step 10", false},
		{"negative eval step", func(c *Checkpoint) { c.EvalStep = -3 }, "the last of 3 evaluations at step -3, out of range", false},
		{"NaN best", func(c *Checkpoint) { c.Best = math.NaN() }, "the best test accuracy NaN is not in [0, 1]", false},
		{"Inf wall", func(c *Checkpoint) { c.Wall = math.Inf(1) }, "the training time +Inf s is not finite", false},
		{"optimizer step", func(c *Checkpoint) { c.Opt.Step = 3 }, "the optimizer's state is at step 3 but the checkpoint at step 10", false},
		{"NaN running sum", floats("epoch_sums", math.NaN(), 0, 2), `the "epoch_sums" record's value 0 is NaN`, false},
		{"running sums of another span", floats("epoch_sums", 1, 0, 3), "over 3 steps) are inconsistent: 2 steps since the last evaluation at step 8", false},
		{"short record", func(c *Checkpoint) { c.Blobs["last_eval"] = []byte{1, 2, 3} }, `the "last_eval" record has 3 bytes, want 16`, false},
		{"missing record", func(c *Checkpoint) { delete(c.Blobs, "epoch_sums") }, `no "epoch_sums" record`, false},
		{"last accuracy above the best", floats("last_eval", 1, 2), "accuracy 2) is inconsistent", false},
		{"data between batches", func(c *Checkpoint) { c.Data.Pos = 5 }, "image 5 of 96 in batches of 16 (epoch started: true), is not at a batch boundary", false},
		{"NaN parameter", func(c *Checkpoint) { c.Params[0].F64[3] = math.NaN() }, `state "value" of param "` + "", false},
		{"steps the metrics files do not hold", func(c *Checkpoint) {
			c.Step, c.Epoch, c.Evals, c.EvalStep, c.Opt.Step = 12, 2, 4, 12, 12
			c.Data.Epoch, c.Data.Started, c.Data.Pos, c.Data.Perm = 2, false, 0, nil
			c.Blobs["epoch_sums"] = encodeFloats(0, 0, 0)
		}, "steps.jsonl: 10 complete lines, but the checkpoint counts 12 records", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := LoadCheckpoint(path)
			require.NoError(t, err)
			tc.mod(c)
			require.NoError(t, SaveCheckpoint(path, c))
			defer func() { require.NoError(t, os.WriteFile(path, orig, 0o600)) }()
			_, err = LoadCheckpoint(path)
			if tc.state {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
				assert.Contains(t, err.Error(), path)
				assert.Contains(t, err.Error(), tc.want)
			}
			res := cfg
			res.Resume = true
			_, err = Run(context.Background(), res)
			require.Error(t, err)
			assert.Contains(t, err.Error(), path[:len(path)-len(checkpointFile)])
			assert.Contains(t, err.Error(), tc.want)
			after, err := os.ReadFile(filepath.Join(cfg.OutDir, "steps.jsonl"))
			require.NoError(t, err)
			assert.Equal(t, string(steps), string(after), "a refused resume changes no metrics file")
		})
	}
	// The original checkpoint resumes.
	res := cfg
	res.Resume = true
	_, err = Run(context.Background(), res)
	require.NoError(t, err)
}

// TestCheckpointValuesFinite: a NaN among the values is refused when the
// checkpoint is read, naming the tensor and its bytes.
func TestCheckpointValuesFinite(t *testing.T) {
	cfg := resumableRun(t)
	path := filepath.Join(cfg.OutDir, checkpointFile)
	c, err := LoadCheckpoint(path)
	require.NoError(t, err)
	c.Opt.Tensors[1].F64[2] = math.Inf(-1)
	require.NoError(t, SaveCheckpoint(path, c))
	_, err = LoadCheckpoint(path)
	require.ErrorIs(t, err, optim.ErrNonFinite)
	for _, w := range []string{path, fmt.Sprintf("state %q of param %q: entry 2 is -Inf", c.Opt.Tensors[1].Slot, c.Opt.Tensors[1].Param), "(bytes "} {
		assert.Contains(t, err.Error(), w)
	}
}

// TestResumeVerifiesMetricFiles damages steps.jsonl and epochs.jsonl up to
// the checkpoint (refused, naming the file and line, nothing changed) and
// after it (repaired: the lines after the checkpoint dropped, and said so).
func TestResumeVerifiesMetricFiles(t *testing.T) {
	cfg := resumableRun(t)
	spath, epath := filepath.Join(cfg.OutDir, "steps.jsonl"), filepath.Join(cfg.OutDir, "epochs.jsonl")
	ckpt, err := os.ReadFile(filepath.Join(cfg.OutDir, checkpointFile))
	require.NoError(t, err)
	steps, evals := readLines(t, spath), readLines(t, epath)
	require.Len(t, steps, 10)
	require.Len(t, evals, 3)
	join := func(lines ...string) string { return strings.Join(lines, "\n") + "\n" }
	with := func(lines []string, i int, s string) []string {
		out := append([]string(nil), lines...)
		out[i] = s
		return out
	}
	cat := func(parts ...[]string) []string {
		var out []string
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	cases := []struct {
		name, file, content string
		want                []string
	}{
		{"duplicated step", spath, join(cat(steps[:3], steps[2:9])...), []string{"line 4: step 3 where step 4 was expected: a duplicated or out-of-order record"}},
		{"missing step", spath, join(cat(steps[:2], steps[3:])...), []string{"line 3: step 4 where step 3 was expected: records missing or out of order"}},
		{"swapped steps", spath, join(cat(steps[:4], steps[5:6], steps[4:5], steps[6:])...), []string{"line 5: step 6 where step 5 was expected"}},
		{"step in another epoch", spath, join(with(steps, 7, strings.Replace(steps[7], `"epoch":2`, `"epoch":1`, 1))...), []string{"line 8: step 8 in epoch 1, but with 6 steps an epoch it is in epoch 2"}},
		{"unreadable step", spath, join(with(steps, 1, `{"step":2,`)...), []string{"line 2 (offset"}},
		{"torn step before the checkpoint", spath, join(steps[:9]...) + `{"step":10,"ep`, []string{"9 complete lines, but the checkpoint counts 10 records"}},
		{"over-long line", spath, join(with(steps, 1, strings.Repeat(" ", maxRecordLine+1))...), []string{"line 2 (offset", "is longer than"}},
		{"missing steps file", spath, "", []string{"missing, but the checkpoint counts 10 records"}},
		{"swapped evaluations", epath, join(evals[1], evals[0], evals[2]), []string{"line 2: an evaluation at step 4, out of order"}},
		{"duplicated evaluation", epath, join(evals[0], evals[0], evals[1], evals[2]), []string{"line 2: an evaluation at step 4, out of order"}},
		{"evaluation in another epoch", epath, join(with(evals, 2, strings.Replace(evals[2], `"epoch":2`, `"epoch":3`, 1))...), []string{"line 3: an evaluation at step 8 of epoch 3"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			orig, err := os.ReadFile(tc.file)
			require.NoError(t, err)
			defer func() { // also the checkpoint, should a resume have run
				require.NoError(t, os.WriteFile(tc.file, orig, 0o644))
				require.NoError(t, os.WriteFile(filepath.Join(cfg.OutDir, checkpointFile), ckpt, 0o600))
			}()
			if tc.name == "missing steps file" {
				require.NoError(t, os.Remove(tc.file))
			} else {
				require.NoError(t, os.WriteFile(tc.file, []byte(tc.content), 0o644))
			}
			before := snapshot(t, cfg.OutDir)
			res := cfg
			res.Resume = true
			_, err = Run(context.Background(), res)
			require.Error(t, err)
			for _, w := range append(tc.want, "refused", tc.file, "nothing was changed") {
				assert.Contains(t, err.Error(), w)
			}
			assert.Equal(t, before, snapshot(t, cfg.OutDir), "a refused resume changes nothing")
		})
	}

	// Lines after the checkpoint are dropped, and the repair is said.
	appendFile(t, spath, `{"step":11,"epoch":2,"loss":9}`+"\n"+`{"step":12,"epoch":2,"loss":9}`+"\n"+`{"step":13,"ep`)
	appendFile(t, epath, `{"epoch":2,"step":12,"train_loss":0}`+"\n")
	var out strings.Builder
	res := cfg
	res.Resume, res.Progress, res.Epochs = true, &out, 0
	res.Steps = 10 // nothing to train: the files are only rewritten
	_, err = Run(context.Background(), res)
	require.NoError(t, err)
	assert.Contains(t, out.String(), "resume: repaired "+spath+": kept the 10 records up to the checkpoint, dropped 2 lines and a torn last line written after it")
	assert.Contains(t, out.String(), "resume: repaired "+epath+": kept the 3 records up to the checkpoint, dropped 1 line written after it")
	assert.Equal(t, steps, readLines(t, spath))
}

// snapshot returns the contents of every file in dir.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	out := map[string]string{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		out[e.Name()] = string(b)
	}
	return out
}

// TestMetricErrorsNameTheFile: a record that JSON cannot hold is refused
// naming the file and line.
func TestMetricErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	l, err := openLog[EpochRecord](dir, "epochs", epochColumns, 0, 0)
	require.NoError(t, err)
	defer l.Close()
	require.NoError(t, l.Add(EpochRecord{Epoch: 1, Step: 6}))
	err = l.Add(EpochRecord{Epoch: 2, Step: 12, WallS: math.Inf(1)})
	require.Error(t, err)
	assert.Contains(t, err.Error(), filepath.Join(dir, "epochs.jsonl")+": line 2: json: unsupported value: +Inf")
}
