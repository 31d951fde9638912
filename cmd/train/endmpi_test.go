package main

import (
	"bytes"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

// fakeWorld records how endMPI ends a rank.
type fakeWorld struct {
	rank, size         int
	aborted, finalized int
}

func (w *fakeWorld) Rank() int                                          { return w.rank }
func (w *fakeWorld) Size() int                                          { return w.size }
func (w *fakeWorld) AllreduceFloat32([]float32) error                   { return nil }
func (w *fakeWorld) AllreduceFloat64([]float64) error                   { return nil }
func (w *fakeWorld) AllgatherFloat32(_, _ []float32, _ []int) error     { return nil }
func (w *fakeWorld) AllgatherFloat64(_, _ []float64, _ []int) error     { return nil }
func (w *fakeWorld) GatherFloat32(_, _ []float32, _ []int, _ int) error { return nil }
func (w *fakeWorld) GatherFloat64(_, _ []float64, _ []int, _ int) error { return nil }
func (w *fakeWorld) Abort(code int) error                               { w.aborted = code; return errors.New("no MPI") }
func (w *fakeWorld) Finalize() error                                    { w.finalized++; return nil }

// TestEndMPI: a failing rank of several aborts the job (its peers may wait
// for it in a collective) and keeps its exit status; a rank that succeeded,
// or a lone process, finalizes.
func TestEndMPI(t *testing.T) {
	var stderr bytes.Buffer
	w := &fakeWorld{rank: 1, size: 3}
	require.Equal(t, 130, endMPI(w, 130, &stderr))
	require.Equal(t, 130, w.aborted)
	require.Zero(t, w.finalized)
	require.Contains(t, stderr.String(), "rank 1 of 3 failed (exit status 130): aborting the MPI job")

	w = &fakeWorld{rank: 0, size: 3}
	require.Equal(t, 0, endMPI(w, 0, &stderr))
	require.Equal(t, 1, w.finalized)
	require.Zero(t, w.aborted)

	w = &fakeWorld{rank: 0, size: 1}
	require.Equal(t, 1, endMPI(w, 1, &stderr))
	require.Equal(t, 1, w.finalized, "a lone process has no peers to abort")
}

// TestRanksOption: ranks other than 0 are quiet, and -analyze is refused
// in a job of several ranks.
func TestRanksOption(t *testing.T) {
	o := options{}
	require.NoError(t, o.ranks(&fakeWorld{rank: 1, size: 2}))
	require.True(t, o.quiet)
	require.NotNil(t, o.comm)
	o = options{}
	require.NoError(t, o.ranks(&fakeWorld{rank: 0, size: 2}))
	require.False(t, o.quiet)
	o = options{analyze: true}
	require.ErrorContains(t, o.ranks(&fakeWorld{rank: 0, size: 2}), "-analyze runs on one process")
	o = options{analyze: true}
	require.NoError(t, o.ranks(&fakeWorld{rank: 0, size: 1}))
	require.Nil(t, o.comm)
}
