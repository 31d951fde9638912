//go:build unix

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/curvopt/curvopt/internal/proctest"
	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/train"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// buildTrain compiles this command once into a temporary directory.
func buildTrain(t *testing.T) string {
	t.Helper()
	return proctest.Build(t, "train")
}

// killRunArgs is a tiny run (MLP 3072-16-10, 8 steps an epoch, 80 steps)
// with a checkpoint every 4 steps, evaluations at every 6th step and every
// epoch's end (some coincide with checkpoints, some with epoch ends), a
// cosine schedule with warm-up, and SophiaH's random probes.
func killRunArgs(out, opt string) []string {
	args := []string{"-model", "mlp", "-hidden", "16", "-synthetic-train", "256", "-synthetic-test", "64",
		"-batch", "32", "-epochs", "10", "-checkpoint-every", "4", "-eval-every", "6", "-seed", "3", "-quiet", "-out", out,
		"-optimizer", opt}
	switch opt {
	case "sophiah":
		args = append(args, "-hessian_interval", "3", "-schedule", "cosine", "-warmup", "2")
	case "mfac":
		args = append(args, "-ngrads", "8")
	}
	return args
}

// TestKilledRunsResumeExactly kills a real training process with SIGKILL
// at random moments (seeded; at most 12 kills and 20 s per optimizer),
// resumes it each time with "-resume -out DIR" alone, requires at least one
// resume to start from a checkpoint written mid-run, and requires the
// finished run to equal an uninterrupted one: bit-identical parameters and
// optimizer state, every step recorded exactly once with identical values,
// every evaluation once, and no temporary file left.
func TestKilledRunsResumeExactly(t *testing.T) {
	bin := buildTrain(t)
	for i, opt := range []string{"sophiah", "mfac"} {
		t.Run(opt, func(t *testing.T) {
			ref := filepath.Join(t.TempDir(), "ref")
			runOK(t, bin, "-h") // a warm start for the timing below
			t0 := time.Now()
			runOK(t, bin, killRunArgs(ref, opt)...)
			full := time.Since(t0)

			dir := filepath.Join(t.TempDir(), "killed")
			rng := rand.New(rand.NewPCG(uint64(i)+1, 12))
			deadline := time.Now().Add(20 * time.Second)
			kills, resumes := 0, 0
			// fromCheckpoint counts the resumes that started from a
			// checkpoint written mid-run (step > 0): without one, the
			// runs would merely have restarted from scratch, and the test
			// would prove nothing about resuming.
			fromCheckpoint := 0
			var at []int // the checkpoint's step after each kill
			for {
				args := killRunArgs(dir, opt)
				ck := filepath.Join(dir, "checkpoint.gob")
				if _, err := os.Stat(ck); err == nil {
					c, err := train.ReadCheckpointInfo(ck)
					require.NoError(t, err, "the checkpoint a kill left")
					if c.Step > 0 {
						fromCheckpoint++
					}
					args = []string{"-resume", "-out", dir, "-quiet"}
					resumes++
				}
				cmd := exec.Command(bin, args...)
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				require.NoError(t, cmd.Start())
				done := make(chan error, 1)
				go func() { done <- cmd.Wait() }()
				// At most 12 kills, once a resume has started from a
				// checkpoint; else until the deadline.
				if (kills >= 12 && fromCheckpoint > 0) || time.Now().After(deadline) {
					require.NoError(t, <-done, "the final run: %s", stderr.String())
					break
				}
				delay := time.Duration(rng.Float64() * 0.5 * float64(full))
				select {
				case err := <-done:
					require.NoError(t, err, "%v: %s", args, stderr.String())
				case <-time.After(delay):
					// The run may have finished just as the delay ran out.
					if err := cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
						require.NoError(t, err)
					}
					err := <-done
					var ee *exec.ExitError
					if errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signaled() {
						kills++
						if c, err := train.ReadCheckpointInfo(filepath.Join(dir, "checkpoint.gob")); err == nil {
							at = append(at, c.Step)
						} else {
							at = append(at, 0)
						}
						continue
					}
					require.NoError(t, err, "%v: %s", args, stderr.String())
				}
				if fromCheckpoint == 0 && time.Now().Before(deadline) {
					// A fresh run faster than the reference (which paid
					// for a cold start): start over with shorter delays.
					require.NoError(t, os.RemoveAll(dir))
					full /= 2
					kills, resumes, fromCheckpoint, at = 0, 0, 0, nil
					continue
				}
				break // finished before the kill
			}
			if len(at) > 20 {
				at = at[:20] // the first ones tell the story
			}
			t.Logf("%s: %d kills, %d resumes (%d from a checkpoint past step 0), checkpoint step after each of the first kills %v (an uninterrupted run takes %v)",
				opt, kills, resumes, fromCheckpoint, at, full.Round(time.Millisecond))
			assert.Greater(t, kills, 0)
			assert.Greater(t, fromCheckpoint, 0, "no resume started from a checkpoint written mid-run: are checkpoints written?")
			sameRun(t, ref, dir)

			// Resuming a finished run adds no record.
			runOK(t, bin, "-resume", "-out", dir, "-quiet")
			sameRun(t, ref, dir)
		})
	}
}

func runOK(t *testing.T, bin string, args ...string) {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	require.NoError(t, err, "%v: %s", args, out)
}

// sameRun requires two finished run directories to hold the same run.
func sameRun(t *testing.T, ref, got string) {
	t.Helper()
	a, err := train.LoadCheckpoint(filepath.Join(ref, "checkpoint.gob"))
	require.NoError(t, err)
	b, err := train.LoadCheckpoint(filepath.Join(got, "checkpoint.gob"))
	require.NoError(t, err)
	require.Equal(t, a.Step, b.Step)
	sameTensors(t, "parameter", a.Params, b.Params)
	sameTensors(t, "optimizer state", a.Opt.Tensors, b.Opt.Tensors)

	sa, sb := readJSONL[train.StepRecord](t, filepath.Join(ref, "steps.jsonl")), readJSONL[train.StepRecord](t, filepath.Join(got, "steps.jsonl"))
	require.Len(t, sb, len(sa), "steps.jsonl records")
	for i := range sb {
		require.Equal(t, i+1, sb[i].Step, "steps.jsonl holds every step once, in order")
		sa[i].StepMS, sb[i].StepMS = 0, 0 // wall time
	}
	require.Equal(t, sa, sb, "step records")
	ea, eb := readJSONL[train.EpochRecord](t, filepath.Join(ref, "epochs.jsonl")), readJSONL[train.EpochRecord](t, filepath.Join(got, "epochs.jsonl"))
	require.Len(t, eb, len(ea), "epochs.jsonl records")
	for i := range eb {
		ea[i].WallS, eb[i].WallS = 0, 0
	}
	require.Equal(t, ea, eb, "evaluation records")
	for _, f := range []string{"steps.csv", "epochs.csv"} {
		ca, cb := csvLines(t, filepath.Join(ref, f)), csvLines(t, filepath.Join(got, f))
		require.Len(t, cb, len(ca), f)
	}
	left, err := filepath.Glob(filepath.Join(got, "*.tmp-*"))
	require.NoError(t, err)
	assert.Empty(t, left, "temporary files left")
}

func sameTensors(t *testing.T, what string, a, b []optim.StateTensor) {
	t.Helper()
	require.Len(t, b, len(a), what+"s")
	for i := range a {
		require.Equal(t, a[i].Param+"/"+a[i].Slot, b[i].Param+"/"+b[i].Slot)
		x, y := a[i].Float64s(), b[i].Float64s()
		require.Len(t, y, len(x))
		for j := range x {
			if math.Float64bits(x[j]) != math.Float64bits(y[j]) {
				t.Fatalf("%s %s/%s entry %d: %v uninterrupted, %v after kills", what, a[i].Param, a[i].Slot, j, x[j], y[j])
			}
		}
	}
}

func readJSONL[R any](t *testing.T, path string) []R {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var out []R
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var r R
		require.NoError(t, json.Unmarshal(sc.Bytes(), &r), "%s: %q", path, sc.Text())
		out = append(out, r)
	}
	require.True(t, len(b) == 0 || b[len(b)-1] == '\n', "%s ends with a torn line", path)
	return out
}

func csvLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// TestResumeFlags: -resume -out DIR needs no other flag; a budget flag
// extends the run; a flag that may not change is refused naming both
// values; a fresh run into DIR is refused unless -overwrite.
func TestResumeFlags(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	args := append(killRunArgs(dir, "adam"), "-epochs", "1")
	var out, errb bytes.Buffer
	require.Equal(t, 0, run(args, &out, &errb), errb.String())

	errb.Reset()
	require.Equal(t, 1, run([]string{"-resume", "-out", dir, "-batch", "16", "-quiet"}, &out, &errb))
	assert.Contains(t, errb.String(), "batch size")
	assert.Contains(t, errb.String(), "16 for this run but 32 in the checkpoint")

	errb.Reset()
	require.Equal(t, 1, run(args, &out, &errb), "a fresh run over a checkpoint")
	assert.Contains(t, errb.String(), "-overwrite")

	// A line written after the checkpoint (a killed run) is dropped, and
	// the repair is reported on stderr even with -quiet.
	steps := filepath.Join(dir, "steps.jsonl")
	f, err := os.OpenFile(steps, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString(`{"step":9,"epoch":2,"loss":9}` + "\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())
	out.Reset()
	errb.Reset()
	require.Equal(t, 0, run([]string{"-resume", "-out", dir, "-epochs", "2", "-quiet"}, &out, &errb), errb.String())
	assert.Contains(t, errb.String(), "resume: repaired "+steps+": kept the 8 records up to the checkpoint, dropped 1 line written after it")
	assert.Empty(t, out.String(), "-quiet")
	c, err := train.ReadCheckpointInfo(filepath.Join(dir, "checkpoint.gob"))
	require.NoError(t, err)
	assert.Equal(t, 16, c.Step, "two epochs of 8 steps")
	assert.Len(t, readJSONL[train.StepRecord](t, steps), 16, "each step once")
	assert.Len(t, readJSONL[train.EpochRecord](t, filepath.Join(dir, "epochs.jsonl")), 4, "evaluations at steps 6, 8, 12, 16")

	errb.Reset()
	require.Equal(t, 0, run(append(args, "-overwrite"), &out, &errb), errb.String())
	assert.Len(t, readJSONL[train.StepRecord](t, filepath.Join(dir, "steps.jsonl")), 8)
}
