//go:build !mpi

package mpi

import (
	"errors"
	"fmt"
)

// Enabled reports whether this binary was built with the MPI binding (the
// build tag mpi); false here: World is a single process.
const Enabled = false

// World is MPI_COMM_WORLD. In this build (no tag mpi) it is one process,
// rank 0 of 1, and every collective leaves its buffers as they are (the sum
// over one rank is that rank's value).
type World struct {
	done bool
}

// Init starts MPI and returns MPI_COMM_WORLD. In this build it returns the
// single-process world, or an error when a launcher started several ranks
// (the binary must then be built with -tags mpi).
func Init() (*World, error) {
	if n := launchedSize(); n > 1 {
		return nil, fmt.Errorf("mpi: launched as one of %d ranks, but built without MPI: rebuild with -tags mpi (needs libopenmpi-dev)", n)
	}
	return &World{}, nil
}

// Finalize ends MPI; a second call is an error.
func (w *World) Finalize() error {
	if w.done {
		return errors.New("mpi: Finalize: already finalized")
	}
	w.done = true
	return nil
}

// Rank is this process's rank, 0.
func (w *World) Rank() int { return 0 }

// Size is the number of ranks, 1.
func (w *World) Size() int { return 1 }

// AllreduceFloat32 sums buf over the ranks, in place: the identity here.
func (w *World) AllreduceFloat32(buf []float32) error { return w.check("AllreduceFloat32") }

// AllreduceFloat64 sums buf over the ranks, in place: the identity here.
func (w *World) AllreduceFloat64(buf []float64) error { return w.check("AllreduceFloat64") }

// AllgatherFloat32 concatenates every rank's send, of counts[rank] values,
// into recv in rank order: a copy here.
func (w *World) AllgatherFloat32(send, recv []float32, counts []int) error {
	if _, err := checkCounts("AllgatherFloat32", 1, len(send), len(recv), counts, 0); err != nil {
		return err
	}
	copy(recv, send)
	return w.check("AllgatherFloat32")
}

// AllgatherFloat64 is AllgatherFloat32 for float64 values.
func (w *World) AllgatherFloat64(send, recv []float64, counts []int) error {
	if _, err := checkCounts("AllgatherFloat64", 1, len(send), len(recv), counts, 0); err != nil {
		return err
	}
	copy(recv, send)
	return w.check("AllgatherFloat64")
}

// GatherFloat32 concatenates every rank's send into root's recv: a copy
// here (root must be 0).
func (w *World) GatherFloat32(send, recv []float32, counts []int, root int) error {
	if root != 0 {
		return fmt.Errorf("mpi: GatherFloat32: root %d out of [0, 1)", root)
	}
	return w.AllgatherFloat32(send, recv, counts)
}

// GatherFloat64 is GatherFloat32 for float64 values.
func (w *World) GatherFloat64(send, recv []float64, counts []int, root int) error {
	if root != 0 {
		return fmt.Errorf("mpi: GatherFloat64: root %d out of [0, 1)", root)
	}
	return w.AllgatherFloat64(send, recv, counts)
}

// Bcast copies root's buf to every rank: the identity here (root must be 0).
func (w *World) Bcast(buf []byte, root int) error {
	if root != 0 {
		return fmt.Errorf("mpi: Bcast: root %d out of [0, 1)", root)
	}
	return w.check("Bcast")
}

// Barrier waits for every rank: returns at once here.
func (w *World) Barrier() error { return w.check("Barrier") }

// Abort ends every rank of the job with the exit code code. In this build
// there is no other rank: it returns nil and the caller exits.
func (w *World) Abort(code int) error { return nil }

func (w *World) check(what string) error {
	if w.done {
		return fmt.Errorf("mpi: %s after Finalize", what)
	}
	return nil
}
