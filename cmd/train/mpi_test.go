//go:build unix

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/curvopt/curvopt/train"
	"github.com/stretchr/testify/require"
)

// The tests of the command under mpirun need Open MPI (openmpi-bin,
// libopenmpi-dev) and run only with CURVOPT_MPI=1 (.ci/mpi sets it): they
// build the command with -tags mpi.

// mpiBinary builds the command with the MPI binding, or skips.
func mpiBinary(t *testing.T) string {
	t.Helper()
	if os.Getenv("CURVOPT_MPI") != "1" {
		t.Skip("CURVOPT_MPI=1 runs the MPI tests (.ci/mpi)")
	}
	if _, err := exec.LookPath("mpirun"); err != nil {
		t.Fatal("CURVOPT_MPI=1 but no mpirun: install openmpi-bin")
	}
	bin := filepath.Join(t.TempDir(), "train-mpi")
	out, err := exec.Command("go", "build", "-tags", "mpi", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build -tags mpi: %s", out)
	return bin
}

// mpirun returns the command running bin with args on np ranks (np 0: bin
// alone, a single process of the MPI build).
func mpirun(bin string, np int, args ...string) *exec.Cmd {
	if np == 0 {
		return exec.Command(bin, args...)
	}
	return exec.Command("mpirun", append([]string{"--allow-run-as-root", "--oversubscribe", "-np", strconv.Itoa(np), bin}, args...)...)
}

// mpiArgs is a small MLP run with SophiaG (sampled labels every 2 steps) on
// a batch of 32 (3 ranks: 11, 11, 10 rows), a checkpoint every 4 steps.
func mpiArgs(out string, steps int) []string {
	return []string{"-model", "mlp", "-hidden", "16", "-synthetic-train", "250", "-synthetic-test", "40",
		"-batch", "32", "-steps", strconv.Itoa(steps), "-checkpoint-every", "4", "-seed", "3", "-quiet", "-out", out,
		"-optimizer", "sophiag", "-hessian_interval", "2", "-lr", "3e-4"}
}

// stepLosses reads the losses of steps.jsonl.
func stepLosses(t *testing.T, dir string) []float64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "steps.jsonl"))
	require.NoError(t, err)
	var ls []float64
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var r train.StepRecord
		require.NoError(t, json.Unmarshal(sc.Bytes(), &r))
		require.Equal(t, len(ls)+1, r.Step, "steps.jsonl: every step once, in order")
		ls = append(ls, r.Loss)
	}
	return ls
}

// TestMPIResumeAcrossRankCounts: the command run by 2 ranks to step 6,
// resumed by 3 ranks to step 12 and alone to step 16, records the losses
// of the uninterrupted single-process run and ends with its parameters,
// within float32 round-off (the tolerances of train's
// TestDataParallelEqualsOneProcess).
func TestMPIResumeAcrossRankCounts(t *testing.T) {
	bin := mpiBinary(t)
	want, got := t.TempDir(), t.TempDir()
	out, err := mpirun(bin, 0, mpiArgs(want, 16)...).CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, leg := range []struct{ np, steps int }{{2, 6}, {3, 12}, {0, 16}} {
		args := mpiArgs(got, leg.steps)
		if leg.steps > 6 {
			args = append(args, "-resume")
		}
		out, err := mpirun(bin, leg.np, args...).CombinedOutput()
		require.NoError(t, err, "%d ranks to step %d: %s", leg.np, leg.steps, out)
	}
	wl, gl := stepLosses(t, want), stepLosses(t, got)
	require.Len(t, gl, len(wl))
	for i := range wl {
		require.InEpsilon(t, wl[i], gl[i], 1e-5, "step %d", i+1)
	}
	a, err := train.LoadCheckpoint(filepath.Join(want, "checkpoint.gob"))
	require.NoError(t, err)
	b, err := train.LoadCheckpoint(filepath.Join(got, "checkpoint.gob"))
	require.NoError(t, err)
	require.Equal(t, 16, b.Step)
	d := 0.0
	for i := range a.Params {
		for j := range a.Params[i].F32 {
			d = math.Max(d, math.Abs(float64(a.Params[i].F32[j]-b.Params[i].F32[j])))
		}
	}
	t.Logf("2 ranks, then 3, then alone against one process: max parameter difference %.2g", d)
	require.Less(t, d, 1e-5)
}

// TestMPIKilledRank kills rank 1 of a 3-rank run with SIGKILL mid-run,
// then rank 0 (the one that writes) of another: mpirun must end the job
// (the other ranks would otherwise wait for it in the next all-reduce
// forever) with an error naming the rank, within a minute, and leave the
// last checkpoint intact: it loads, and the run resumes from it alone.
func TestMPIKilledRank(t *testing.T) {
	bin := mpiBinary(t)
	for _, victim := range []int{1, 0} {
		t.Run(strconv.Itoa(victim), func(t *testing.T) { killRank(t, bin, victim) })
	}
}

func killRank(t *testing.T, bin string, victim int) {
	dir := t.TempDir()
	cmd := mpirun(bin, 3, mpiArgs(dir, 1_000_000)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	ck := filepath.Join(dir, "checkpoint.gob")
	deadline := time.Now().Add(60 * time.Second)
	for { // until a checkpoint past step 8 exists
		if c, err := train.ReadCheckpointInfo(ck); err == nil && c.Step >= 8 {
			break
		}
		require.True(t, time.Now().Before(deadline), "no checkpoint past step 8 within a minute: %s", stderr.String())
		time.Sleep(50 * time.Millisecond)
	}
	pid := rankPID(t, cmd.Process.Pid, victim)
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	select {
	case err := <-done:
		require.Error(t, err, "mpirun exited 0 after a rank was killed")
		t.Logf("mpirun: %v; %s", err, strings.TrimSpace(stderr.String()))
		require.Contains(t, stderr.String(), "rank "+strconv.Itoa(victim))
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("the job still runs a minute after rank %d was killed: the other ranks hang", victim)
	}
	c, err := train.LoadCheckpoint(ck)
	require.NoError(t, err, "the last checkpoint must survive")
	out, err := mpirun(bin, 0, append(mpiArgs(dir, c.Step+2), "-resume")...).CombinedOutput()
	require.NoError(t, err, "resuming alone from step %d: %s", c.Step, out)
}

// rankPID finds the process of rank among mpirun's children (its
// environment's OMPI_COMM_WORLD_RANK).
func rankPID(t *testing.T, mpirunPID, rank int) int {
	t.Helper()
	want := "OMPI_COMM_WORLD_RANK=" + strconv.Itoa(rank)
	procs, err := filepath.Glob("/proc/[0-9]*/stat")
	require.NoError(t, err)
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) < 2 || f[1] != strconv.Itoa(mpirunPID) {
			continue
		}
		env, err := os.ReadFile(filepath.Join(filepath.Dir(p), "environ"))
		if err != nil {
			continue
		}
		for _, kv := range bytes.Split(env, []byte{0}) {
			if string(kv) == want {
				pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
				return pid
			}
		}
	}
	t.Fatalf("no child of mpirun %d with %s", mpirunPID, want)
	return 0
}
