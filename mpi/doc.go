// Package mpi is curvopt's binding to MPI, the message-passing library
// clusters already run (Open MPI, MPICH): the handful of collectives a
// data-parallel training run needs, on MPI_COMM_WORLD.
//
// The binding itself is behind the build tag mpi (cgo over libmpi; Debian:
// libopenmpi-dev); without the tag this package is a stub whose World is a
// single process (rank 0 of 1, every collective the identity), so the
// default build and go test ./... need neither a C toolchain nor MPI. A stub
// binary launched by mpirun with several ranks refuses to start (Init's
// error says to rebuild with -tags mpi) instead of running N independent
// copies of one job.
//
//	go build -tags mpi ./cmd/train
//	mpirun -np 2 ./train -model mlp -optimizer adam -batch 128
//
// Errors are returned, never panicked: the binding sets MPI_ERRORS_RETURN on
// MPI_COMM_WORLD, so a failed call comes back as an error carrying MPI's
// own message. A process that cannot go on while its peers wait in a
// collective calls Abort, which ends the whole job (a plain exit would leave
// them waiting until mpirun notices the missing rank).
//
// MPI is initialised with MPI_THREAD_SERIALIZED and every call of a World is
// serialised by a mutex, so a World may be used from any goroutine.
package mpi

import (
	"fmt"
	"os"
	"strconv"
)

// maxCount is the largest element count of one MPI call (MPI counts are C
// ints); longer buffers are sent in pieces of this size.
const maxCount = 1 << 30

// launchedSize returns the number of ranks the launcher started, from the
// environment Open MPI, MPICH/Hydra and Slurm set (0: not launched by one).
func launchedSize() int {
	for _, k := range []string{"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"} {
		if v := os.Getenv(k); v != "" {
			if n, err := strconv.Atoi(v); err == nil {
				return n
			}
		}
	}
	return 0
}

// checkCounts checks an all-gather's counts against the world's size and
// the buffers, and returns the displacements.
func checkCounts(what string, size, sendLen, recvLen int, counts []int, rank int) ([]int, error) {
	if len(counts) != size {
		return nil, fmt.Errorf("mpi: %s: %d counts for %d ranks", what, len(counts), size)
	}
	displs := make([]int, size)
	total := 0
	for i, c := range counts {
		if c < 0 || c > maxCount {
			return nil, fmt.Errorf("mpi: %s: count %d of rank %d out of [0, %d]", what, c, i, maxCount)
		}
		displs[i] = total
		total += c
	}
	switch {
	case counts[rank] != sendLen:
		return nil, fmt.Errorf("mpi: %s: rank %d sends %d values, its count says %d", what, rank, sendLen, counts[rank])
	case total != recvLen:
		return nil, fmt.Errorf("mpi: %s: the counts add up to %d, the receive buffer holds %d", what, total, recvLen)
	case total > maxCount:
		return nil, fmt.Errorf("mpi: %s: %d values in all, more than one call moves (%d)", what, total, maxCount)
	}
	return displs, nil
}

// sum adds counts (checkCounts bounds each).
func sum(counts []int) int {
	n := 0
	for _, c := range counts {
		n += c
	}
	return n
}
