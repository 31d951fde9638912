// Package sigctx turns the signals that ask a command to stop, SIGINT
// (Ctrl-C) and SIGTERM (kill, systemd, container runtimes, batch
// schedulers), into the cancellation of a context, so that a long command
// stops at its next safe point and keeps its work instead of dying where it
// stands. A command calls Notify first thing in main, before anything that
// takes time, so that no moment of its life leaves the default action (death
// by the signal) in place.
package sigctx

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// Listener receives SIGINT and SIGTERM from Notify until Stop. The first
// signal cancels its context; later ones are swallowed (the command is
// already stopping), so a repeated signal cannot kill it mid-write.
type Listener struct {
	ctx    context.Context
	cancel context.CancelFunc
	sigs   chan os.Signal
	done   chan struct{} // closed by Stop
	exited chan struct{} // closed when the goroutine has returned
	stop   sync.Once

	mu  sync.Mutex
	got os.Signal
}

// Notify starts listening for SIGINT and SIGTERM.
func Notify() *Listener {
	ctx, cancel := context.WithCancel(context.Background())
	l := &Listener{ctx: ctx, cancel: cancel, sigs: make(chan os.Signal, 1),
		done: make(chan struct{}), exited: make(chan struct{})}
	signal.Notify(l.sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		defer close(l.exited)
		select {
		case s := <-l.sigs:
			l.record(s)
		case <-l.done:
		}
	}()
	return l
}

// record keeps s and cancels the context, in this order, so that a context
// cancelled by a signal always has its signal.
func (l *Listener) record(s os.Signal) {
	l.mu.Lock()
	l.got = s
	l.mu.Unlock()
	l.cancel()
}

// Context is cancelled by the first signal (or by Stop).
func (l *Listener) Context() context.Context { return l.ctx }

// Received returns the signal that cancelled the context, nil if none has.
func (l *Listener) Received() os.Signal {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.got
}

// Stop stops listening (a later signal takes its default action again),
// cancels the context and returns the signal received, if any. It may be
// called more than once.
func (l *Listener) Stop() os.Signal {
	l.stop.Do(func() {
		signal.Stop(l.sigs)
		close(l.done)
		<-l.exited
		select { // a signal delivered just before signal.Stop counts
		case s := <-l.sigs:
			l.record(s)
		default:
		}
		l.cancel()
	})
	return l.Received()
}

// ExitStatus is the conventional exit status of a command stopped by sig:
// 128 + the signal's number (130 for SIGINT, 143 for SIGTERM); 1 for a
// signal without a number.
func ExitStatus(sig os.Signal) int {
	if s, ok := sig.(syscall.Signal); ok {
		return 128 + int(s)
	}
	return 1
}

// Name describes sig for a message: "SIGINT (Ctrl-C)", "SIGTERM", or the
// signal's own name.
func Name(sig os.Signal) string {
	switch sig {
	case os.Interrupt:
		return "SIGINT (Ctrl-C)"
	case syscall.SIGTERM:
		return "SIGTERM"
	case nil:
		return "no signal"
	}
	return sig.String()
}
