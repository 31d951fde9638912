//go:build mpi

package mpi

/*
#cgo pkg-config: ompi-c
#include <mpi.h>
#include <stdlib.h>

static int curv_init(int *provided) {
	int flag = 0;
	int rc = MPI_Initialized(&flag);
	if (rc != MPI_SUCCESS) return rc;
	if (!flag) {
		rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, provided);
		if (rc != MPI_SUCCESS) return rc;
	} else {
		rc = MPI_Query_thread(provided);
		if (rc != MPI_SUCCESS) return rc;
	}
	return MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
}
static int curv_rank(int *r) { return MPI_Comm_rank(MPI_COMM_WORLD, r); }
static int curv_size(int *s) { return MPI_Comm_size(MPI_COMM_WORLD, s); }
static int curv_allreduce_f32(float *buf, int n) {
	return MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
}
static int curv_allreduce_f64(double *buf, int n) {
	return MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
}
static int curv_allgatherv_f32(float *send, int n, float *recv, int *counts, int *displs) {
	return MPI_Allgatherv(send, n, MPI_FLOAT, recv, counts, displs, MPI_FLOAT, MPI_COMM_WORLD);
}
static int curv_allgatherv_f64(double *send, int n, double *recv, int *counts, int *displs) {
	return MPI_Allgatherv(send, n, MPI_DOUBLE, recv, counts, displs, MPI_DOUBLE, MPI_COMM_WORLD);
}
static int curv_gatherv_f32(float *send, int n, float *recv, int *counts, int *displs, int root) {
	return MPI_Gatherv(send, n, MPI_FLOAT, recv, counts, displs, MPI_FLOAT, root, MPI_COMM_WORLD);
}
static int curv_gatherv_f64(double *send, int n, double *recv, int *counts, int *displs, int root) {
	return MPI_Gatherv(send, n, MPI_DOUBLE, recv, counts, displs, MPI_DOUBLE, root, MPI_COMM_WORLD);
}
static int curv_bcast(void *buf, int n, int root) {
	return MPI_Bcast(buf, n, MPI_BYTE, root, MPI_COMM_WORLD);
}
static int curv_barrier(void) { return MPI_Barrier(MPI_COMM_WORLD); }
static int curv_abort(int code) { return MPI_Abort(MPI_COMM_WORLD, code); }
static int curv_finalize(void) { return MPI_Finalize(); }
static int curv_error_string(int code, char *buf, int *len) { return MPI_Error_string(code, buf, len); }
*/
import "C"

import (
	"errors"
	"fmt"
	"sync"
	"unsafe"
)

// Enabled reports whether this binary was built with the MPI binding (the
// build tag mpi): true here.
const Enabled = true

// World is MPI_COMM_WORLD. Its calls are serialised (MPI runs with
// MPI_THREAD_SERIALIZED), so it may be shared by goroutines; a collective
// must still be called by every rank in the same order.
type World struct {
	mu         sync.Mutex
	rank, size int
	done       bool
}

// Init starts MPI (once per process: a second World shares the first's
// MPI) with MPI_THREAD_SERIALIZED and MPI_ERRORS_RETURN on MPI_COMM_WORLD,
// and returns MPI_COMM_WORLD.
func Init() (*World, error) {
	var provided C.int
	if rc := C.curv_init(&provided); rc != C.MPI_SUCCESS {
		return nil, mpiError("Init", rc)
	}
	if provided < C.MPI_THREAD_SERIALIZED {
		return nil, fmt.Errorf("mpi: Init: the library provides thread level %d, below MPI_THREAD_SERIALIZED (%d)", int(provided), int(C.MPI_THREAD_SERIALIZED))
	}
	var r, s C.int
	if rc := C.curv_rank(&r); rc != C.MPI_SUCCESS {
		return nil, mpiError("Comm_rank", rc)
	}
	if rc := C.curv_size(&s); rc != C.MPI_SUCCESS {
		return nil, mpiError("Comm_size", rc)
	}
	return &World{rank: int(r), size: int(s)}, nil
}

// Finalize ends MPI (every rank must call it); a second call is an error.
func (w *World) Finalize() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return errors.New("mpi: Finalize: already finalized")
	}
	w.done = true
	if rc := C.curv_finalize(); rc != C.MPI_SUCCESS {
		return mpiError("Finalize", rc)
	}
	return nil
}

// Rank is this process's rank in [0, Size()).
func (w *World) Rank() int { return w.rank }

// Size is the number of ranks.
func (w *World) Size() int { return w.size }

// AllreduceFloat32 sums buf elementwise over the ranks, in place
// (MPI_IN_PLACE, MPI_SUM): every rank ends with the same sums.
func (w *World) AllreduceFloat32(buf []float32) error {
	return w.chunks("AllreduceFloat32", len(buf), func(a, b int) C.int {
		return C.curv_allreduce_f32((*C.float)(unsafe.Pointer(&buf[a])), C.int(b-a))
	})
}

// AllreduceFloat64 is AllreduceFloat32 for float64 values.
func (w *World) AllreduceFloat64(buf []float64) error {
	return w.chunks("AllreduceFloat64", len(buf), func(a, b int) C.int {
		return C.curv_allreduce_f64((*C.double)(unsafe.Pointer(&buf[a])), C.int(b-a))
	})
}

// chunks runs call on [a, b) pieces of at most maxCount elements.
func (w *World) chunks(what string, n int, call func(a, b int) C.int) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return fmt.Errorf("mpi: %s after Finalize", what)
	}
	for a := 0; a < n; a += maxCount {
		b := min(a+maxCount, n)
		if rc := call(a, b); rc != C.MPI_SUCCESS {
			return mpiError(what, rc)
		}
	}
	return nil
}

// AllgatherFloat32 concatenates every rank's send, of counts[rank] values,
// into recv in rank order (MPI_Allgatherv); counts has one entry per rank
// and recv holds their sum.
func (w *World) AllgatherFloat32(send, recv []float32, counts []int) error {
	displs, err := checkCounts("AllgatherFloat32", w.size, len(send), len(recv), counts, w.rank)
	if err != nil {
		return err
	}
	var s, r *C.float
	if len(send) > 0 {
		s = (*C.float)(unsafe.Pointer(&send[0]))
	}
	if len(recv) > 0 {
		r = (*C.float)(unsafe.Pointer(&recv[0]))
	}
	return w.gather("AllgatherFloat32", counts, displs, func(c, d *C.int) C.int {
		return C.curv_allgatherv_f32(s, C.int(len(send)), r, c, d)
	})
}

// AllgatherFloat64 is AllgatherFloat32 for float64 values.
func (w *World) AllgatherFloat64(send, recv []float64, counts []int) error {
	displs, err := checkCounts("AllgatherFloat64", w.size, len(send), len(recv), counts, w.rank)
	if err != nil {
		return err
	}
	var s, r *C.double
	if len(send) > 0 {
		s = (*C.double)(unsafe.Pointer(&send[0]))
	}
	if len(recv) > 0 {
		r = (*C.double)(unsafe.Pointer(&recv[0]))
	}
	return w.gather("AllgatherFloat64", counts, displs, func(c, d *C.int) C.int {
		return C.curv_allgatherv_f64(s, C.int(len(send)), r, c, d)
	})
}

// GatherFloat32 concatenates every rank's send, of counts[rank] values,
// into root's recv in rank order (MPI_Gatherv); the other ranks' recv is
// not used (nil will do).
func (w *World) GatherFloat32(send, recv []float32, counts []int, root int) error {
	if root < 0 || root >= w.size {
		return fmt.Errorf("mpi: GatherFloat32: root %d out of [0, %d)", root, w.size)
	}
	rl := len(recv)
	if w.rank != root {
		rl = sum(counts)
	}
	displs, err := checkCounts("GatherFloat32", w.size, len(send), rl, counts, w.rank)
	if err != nil {
		return err
	}
	var s, r *C.float
	if len(send) > 0 {
		s = (*C.float)(unsafe.Pointer(&send[0]))
	}
	if w.rank == root && len(recv) > 0 {
		r = (*C.float)(unsafe.Pointer(&recv[0]))
	}
	return w.gather("GatherFloat32", counts, displs, func(c, d *C.int) C.int {
		return C.curv_gatherv_f32(s, C.int(len(send)), r, c, d, C.int(root))
	})
}

// GatherFloat64 is GatherFloat32 for float64 values.
func (w *World) GatherFloat64(send, recv []float64, counts []int, root int) error {
	if root < 0 || root >= w.size {
		return fmt.Errorf("mpi: GatherFloat64: root %d out of [0, %d)", root, w.size)
	}
	rl := len(recv)
	if w.rank != root {
		rl = sum(counts)
	}
	displs, err := checkCounts("GatherFloat64", w.size, len(send), rl, counts, w.rank)
	if err != nil {
		return err
	}
	var s, r *C.double
	if len(send) > 0 {
		s = (*C.double)(unsafe.Pointer(&send[0]))
	}
	if w.rank == root && len(recv) > 0 {
		r = (*C.double)(unsafe.Pointer(&recv[0]))
	}
	return w.gather("GatherFloat64", counts, displs, func(c, d *C.int) C.int {
		return C.curv_gatherv_f64(s, C.int(len(send)), r, c, d, C.int(root))
	})
}

func (w *World) gather(what string, counts, displs []int, call func(c, d *C.int) C.int) error {
	cc := make([]C.int, len(counts))
	cd := make([]C.int, len(counts))
	for i := range counts {
		cc[i], cd[i] = C.int(counts[i]), C.int(displs[i])
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return fmt.Errorf("mpi: %s after Finalize", what)
	}
	if rc := call(&cc[0], &cd[0]); rc != C.MPI_SUCCESS {
		return mpiError(what, rc)
	}
	return nil
}

// Bcast copies root's buf to every rank's buf (all of the same length).
func (w *World) Bcast(buf []byte, root int) error {
	if root < 0 || root >= w.size {
		return fmt.Errorf("mpi: Bcast: root %d out of [0, %d)", root, w.size)
	}
	return w.chunks("Bcast", len(buf), func(a, b int) C.int {
		return C.curv_bcast(unsafe.Pointer(&buf[a]), C.int(b-a), C.int(root))
	})
}

// Barrier returns once every rank has called it.
func (w *World) Barrier() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return errors.New("mpi: Barrier after Finalize")
	}
	if rc := C.curv_barrier(); rc != C.MPI_SUCCESS {
		return mpiError("Barrier", rc)
	}
	return nil
}

// Abort ends every rank of the job, this one included, with the exit code
// code (MPI_Abort); it returns only if MPI could not abort. It takes no
// lock: another goroutine may be blocked in a collective.
func (w *World) Abort(code int) error {
	return mpiError("Abort", C.curv_abort(C.int(code)))
}

// mpiError turns an MPI error code into an error with MPI's message.
func mpiError(what string, rc C.int) error {
	buf := make([]C.char, C.MPI_MAX_ERROR_STRING)
	var n C.int
	if C.curv_error_string(rc, &buf[0], &n) != C.MPI_SUCCESS || n <= 0 {
		return fmt.Errorf("mpi: %s: error code %d", what, int(rc))
	}
	return fmt.Errorf("mpi: %s: %s (code %d)", what, C.GoStringN(&buf[0], n), int(rc))
}
