//go:build unix

// Package proctest drives a command's built binary in tests: it builds it,
// stops it with a signal at a chosen stage, and tells an exit from a death
// by the signal. cmd/train and benchmarks/cmd/compare share it for their
// SIGINT/SIGTERM tests.
package proctest

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Build compiles the package in the test's working directory (a command's
// own directory) into a temporary directory and returns the binary's path.
func Build(t *testing.T, name string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	if out, err := exec.Command(goBin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v: %s", err, out)
	}
	return bin
}

// ExitStatus returns the exit status of a finished command (err from
// Wait), failing the test if a signal killed it instead of letting it exit.
func ExitStatus(t *testing.T, err error, stderr string) int {
	t.Helper()
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("%v: %s", err, stderr)
	}
	ws := ee.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		t.Fatalf("killed by %v instead of exiting (stderr: %q)", ws.Signal(), stderr)
	}
	return ws.ExitStatus()
}

// StopAtFirstLine starts bin with args behind a stdout pipe that is
// already full, sends it sig once it is blocked writing its first output
// line (so during its start-up, past the Go runtime's own), lets it go on,
// and returns its exit status and stderr.
func StopAtFirstLine(t *testing.T, sig syscall.Signal, bin string, args ...string) (status int, stderr string) {
	t.Helper()
	w, drain := fullPipe(t)
	cmd := exec.Command(bin, args...)
	cmd.Stdout = w
	errb, done := start(t, cmd)
	waitBlockedWriting(t, cmd.Process.Pid, done)
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	// The signal is handled by another thread of the process than the one
	// blocked: give it time to arrive before that one goes on.
	time.Sleep(250 * time.Millisecond)
	drain()
	err := <-done
	return ExitStatus(t, err, errb.String()), errb.String()
}

// fullPipe returns a pipe whose buffer is already full: a process given w
// as its stdout blocks at its first output line (in the kernel) until drain
// starts reading. drain also closes the test's copy of w, so that the reader
// ends with the process.
func fullPipe(t *testing.T) (w *os.File, drain func()) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	fd := int(w.Fd()) // Fd leaves the file in blocking mode, as the child will see it
	if err := syscall.SetNonblock(fd, true); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	for {
		if _, err := syscall.Write(fd, buf); err != nil {
			if !errors.Is(err, syscall.EAGAIN) {
				t.Fatal(err)
			}
			break
		}
	}
	if err := syscall.SetNonblock(fd, false); err != nil {
		t.Fatal(err)
	}
	return w, func() {
		w.Close()
		go io.Copy(io.Discard, r) //nolint:errcheck // drained only to unblock the child
	}
}

// waitBlockedWriting waits until process pid sits in a pipe write. Where
// the kernel shows no wait channels (/proc/PID/task/*/wchan: not Linux, or
// hidden) it waits 2 s instead.
func waitBlockedWriting(t *testing.T, pid int, done <-chan error) {
	t.Helper()
	if !wchanShown() {
		t.Log("no wait channels in /proc: waiting 2 s for the first output line")
		time.Sleep(2 * time.Second)
		return
	}
	tasks := filepath.Join("/proc", strconv.Itoa(pid), "task", "*", "wchan")
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			t.Fatalf("the process ended before writing its first line: %v", err)
		default:
		}
		ws, _ := filepath.Glob(tasks)
		for _, f := range ws {
			if b, err := os.ReadFile(f); err == nil && strings.Contains(string(b), "pipe_write") {
				return
			}
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("the process did not block on its first output line within a minute")
}

// wchanShown reports whether the kernel shows the wait channels of this
// process's threads (some of which always wait).
func wchanShown() bool {
	ws, _ := filepath.Glob("/proc/self/task/*/wchan")
	for _, f := range ws {
		if b, err := os.ReadFile(f); err == nil && len(b) > 0 && string(b) != "0" {
			return true
		}
	}
	return false
}

// StopWhen starts bin with args, polls ready every millisecond until it
// reports true (failing the test if the command ends first, or after a
// minute), then sends sig and returns the exit status and stderr. The
// commands' tests use it to stop a run once its first checkpoint exists.
func StopWhen(t *testing.T, sig syscall.Signal, ready func() bool, bin string, args ...string) (status int, stderr string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	errb, done := start(t, cmd)
	for waited := 0; !ready(); waited++ {
		select {
		case err := <-done:
			t.Fatalf("%s ended before it was ready: %v: %s", filepath.Base(bin), err, errb.String())
		case <-time.After(time.Millisecond):
		}
		if waited >= 60000 {
			cmd.Process.Kill()
			<-done
			t.Fatalf("%s not ready after a minute: %s", filepath.Base(bin), errb.String())
		}
	}
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	err := <-done
	return ExitStatus(t, err, errb.String()), errb.String()
}

// start starts cmd with its stderr captured and returns the capture and a
// channel that receives Wait's result.
func start(t *testing.T, cmd *exec.Cmd) (*bytes.Buffer, <-chan error) {
	t.Helper()
	errb := new(bytes.Buffer)
	cmd.Stderr = errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	return errb, done
}
