package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/curvopt/curvopt/train"
)

// world is the communicator the command runs in: mpi.World, which with the
// build tag mpi is MPI_COMM_WORLD and without it one process.
type world interface {
	train.Comm
	Abort(code int) error
	Finalize() error
}

// ranks makes the run one rank of comm's data-parallel run when comm has
// more than one rank: ranks other than 0 print no progress (rank 0 prints
// and writes for the job), and analysis mode, which runs on one process, is
// refused.
func (o *options) ranks(comm world) error {
	if comm == nil || comm.Size() <= 1 {
		return nil
	}
	if o.analyze {
		return fmt.Errorf("-analyze runs on one process: start it without mpirun (it was launched as %d ranks)", comm.Size())
	}
	o.comm = comm
	if comm.Rank() != 0 {
		o.quiet = true
	}
	return nil
}

// rankNote is the start line's mention of the ranks ("" for one process).
func (o *options) rankNote() string {
	if o.comm == nil {
		return ""
	}
	_, n := train.Share(o.cfg.BatchSize, o.comm.Size(), 0)
	return fmt.Sprintf(" over %d MPI ranks (%d rows on rank 0)", o.comm.Size(), n)
}

// endMPI ends the process's part of the MPI job and returns the exit
// status: a rank that fails while others may be waiting for it in a
// collective aborts the whole job (MPI_Abort: mpirun then ends every rank
// with an error) rather than leave them hanging; a rank that succeeded
// finalizes.
func endMPI(w world, code int, stderr io.Writer) int {
	if code != 0 && w.Size() > 1 {
		fmt.Fprintf(stderr, "train: rank %d of %d failed (exit status %d): aborting the MPI job\n", w.Rank(), w.Size(), code)
		err := w.Abort(code)
		fmt.Fprintln(stderr, "train: "+errors.Join(errors.New("MPI_Abort returned"), err).Error())
		return code
	}
	if err := w.Finalize(); err != nil {
		fmt.Fprintln(stderr, "train: "+err.Error())
		if code == 0 {
			return 1
		}
	}
	return code
}
