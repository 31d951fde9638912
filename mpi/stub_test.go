//go:build !mpi

package mpi

import "testing"

func TestStubIsOneProcess(t *testing.T) {
	t.Setenv("OMPI_COMM_WORLD_SIZE", "")
	t.Setenv("PMI_SIZE", "")
	t.Setenv("PMIX_SIZE", "")
	w, err := Init()
	if err != nil {
		t.Fatal(err)
	}
	if w.Rank() != 0 || w.Size() != 1 {
		t.Fatalf("rank %d of %d, want 0 of 1", w.Rank(), w.Size())
	}
	buf := []float32{1, 2}
	if err := w.AllreduceFloat32(buf); err != nil || buf[0] != 1 || buf[1] != 2 {
		t.Fatalf("all-reduce over one rank: %v, %v", buf, err)
	}
	recv := make([]float64, 2)
	if err := w.AllgatherFloat64([]float64{3, 4}, recv, []int{2}); err != nil || recv[1] != 4 {
		t.Fatalf("all-gather over one rank: %v, %v", recv, err)
	}
	if err := w.Finalize(); err != nil {
		t.Fatal(err)
	}
	if err := w.Barrier(); err == nil {
		t.Fatal("Barrier after Finalize: no error")
	}
}

func TestStubRefusesSeveralRanks(t *testing.T) {
	t.Setenv("OMPI_COMM_WORLD_SIZE", "2")
	if _, err := Init(); err == nil {
		t.Fatal("a stub launched as one of 2 ranks started")
	}
}
