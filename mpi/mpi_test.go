//go:build mpi

package mpi

import (
	"os"
	"testing"
)

var world *World

// TestMain starts MPI once for the package's tests; run the test binary
// under mpirun (.ci/mpi does): go test -c -tags mpi ./mpi && mpirun -np 3 ./mpi.test
func TestMain(m *testing.M) {
	w, err := Init()
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(2)
	}
	world = w
	code := m.Run()
	if code != 0 {
		_ = w.Abort(code) // the other ranks may be waiting in a collective
	}
	if err := w.Finalize(); err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(2)
	}
	os.Exit(code)
}

func TestAllreduceSums(t *testing.T) {
	r, n := world.Rank(), world.Size()
	f32 := []float32{float32(r), 1, float32(r * r)}
	f64 := []float64{float64(r) + 0.5, -1}
	if err := world.AllreduceFloat32(f32); err != nil {
		t.Fatal(err)
	}
	if err := world.AllreduceFloat64(f64); err != nil {
		t.Fatal(err)
	}
	var s, s2 float64
	for i := 0; i < n; i++ {
		s += float64(i)
		s2 += float64(i * i)
	}
	if f32[0] != float32(s) || f32[1] != float32(n) || f32[2] != float32(s2) {
		t.Fatalf("rank %d of %d: float32 sums %v, want [%v %v %v]", r, n, f32, s, n, s2)
	}
	if f64[0] != s+0.5*float64(n) || f64[1] != -float64(n) {
		t.Fatalf("rank %d of %d: float64 sums %v", r, n, f64)
	}
	if err := world.AllreduceFloat64(nil); err != nil {
		t.Fatalf("empty all-reduce: %v", err)
	}
}

func TestAllgatherUneven(t *testing.T) {
	r, n := world.Rank(), world.Size()
	counts := make([]int, n)
	total := 0
	for i := range counts {
		counts[i] = i + 1 // rank i sends i+1 values
		total += i + 1
	}
	send32 := make([]float32, r+1)
	send64 := make([]float64, r+1)
	for i := range send32 {
		send32[i] = float32(100*r + i)
		send64[i] = float64(100*r+i) + 0.25
	}
	recv32 := make([]float32, total)
	recv64 := make([]float64, total)
	if err := world.AllgatherFloat32(send32, recv32, counts); err != nil {
		t.Fatal(err)
	}
	if err := world.AllgatherFloat64(send64, recv64, counts); err != nil {
		t.Fatal(err)
	}
	k := 0
	for i := 0; i < n; i++ {
		for j := 0; j <= i; j++ {
			if recv32[k] != float32(100*i+j) || recv64[k] != float64(100*i+j)+0.25 {
				t.Fatalf("rank %d: entry %d: %v %v, want rank %d's value %d", r, k, recv32[k], recv64[k], i, j)
			}
			k++
		}
	}
	// Counts that disagree with the buffers are refused before any call.
	if err := world.AllgatherFloat32(send32, recv32[:total-1], counts); err == nil {
		t.Fatal("a receive buffer one short was accepted")
	}
}

func TestGatherToRoot(t *testing.T) {
	r, n := world.Rank(), world.Size()
	counts := make([]int, n)
	for i := range counts {
		counts[i] = 2
	}
	root := n - 1
	var recv []float64
	if r == root {
		recv = make([]float64, 2*n)
	}
	if err := world.GatherFloat64([]float64{float64(r), -float64(r)}, recv, counts, root); err != nil {
		t.Fatal(err)
	}
	if r == root {
		for i := 0; i < n; i++ {
			if recv[2*i] != float64(i) || recv[2*i+1] != -float64(i) {
				t.Fatalf("root got %v", recv)
			}
		}
	}
	var recv32 []float32
	if r == 0 {
		recv32 = make([]float32, 2*n)
	}
	if err := world.GatherFloat32([]float32{1, float32(r)}, recv32, counts, 0); err != nil {
		t.Fatal(err)
	}
	if r == 0 && recv32[2*n-1] != float32(n-1) {
		t.Fatalf("rank 0 got %v", recv32)
	}
}

func TestBcastBarrier(t *testing.T) {
	buf := []byte{0, 0, 0}
	if world.Rank() == 0 {
		copy(buf, "abc")
	}
	if err := world.Bcast(buf, 0); err != nil {
		t.Fatal(err)
	}
	if string(buf) != "abc" {
		t.Fatalf("rank %d got %q", world.Rank(), buf)
	}
	if err := world.Bcast(buf, world.Size()); err == nil {
		t.Fatal("a root out of range was accepted")
	}
	if err := world.Barrier(); err != nil {
		t.Fatal(err)
	}
}
