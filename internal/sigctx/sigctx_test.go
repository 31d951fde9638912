//go:build unix

package sigctx

import (
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// waitDone waits for l's context, failing after a minute.
func waitDone(t *testing.T, l *Listener) {
	t.Helper()
	select {
	case <-l.Context().Done():
	case <-time.After(time.Minute):
		t.Fatal("the context was not cancelled by the signal")
	}
}

// Each of SIGTERM and SIGINT, sent to this very process, cancels the
// context and is reported; a repeated signal is swallowed (the test process
// survives it) until Stop.
func TestSignalsCancel(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			l := Notify()
			assert.Nil(t, l.Received())
			assert.NoError(t, l.Context().Err())
			require.NoError(t, syscall.Kill(os.Getpid(), sig))
			waitDone(t, l)
			assert.Equal(t, sig, l.Received())
			require.NoError(t, syscall.Kill(os.Getpid(), sig)) // a second one: still ours
			time.Sleep(10 * time.Millisecond)                  // let it arrive (the test would die by it otherwise)
			assert.Equal(t, sig, l.Stop())
			assert.Equal(t, sig, l.Stop(), "Stop may be called again")
		})
	}
}

func TestStopWithoutSignal(t *testing.T) {
	l := Notify()
	assert.Nil(t, l.Stop())
	assert.Error(t, l.Context().Err(), "Stop cancels the context")
	assert.Nil(t, l.Received())
}

func TestExitStatusAndName(t *testing.T) {
	assert.Equal(t, 143, ExitStatus(syscall.SIGTERM))
	assert.Equal(t, 130, ExitStatus(os.Interrupt))
	assert.Equal(t, 1, ExitStatus(nil))
	assert.Equal(t, "SIGTERM", Name(syscall.SIGTERM))
	assert.Equal(t, "SIGINT (Ctrl-C)", Name(os.Interrupt))
	assert.Equal(t, "no signal", Name(nil))
	assert.Equal(t, "hangup", Name(syscall.SIGHUP))
}
