package mfac

import (
	"errors"
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/curvopt/curvopt/optim"
)

// sumHub sums the slices of n in-process "processes" (goroutines) in rank
// order, the same bits on every one: a Reducer with MPI's semantics.
type sumHub struct {
	n       int
	mu      sync.Mutex
	cond    *sync.Cond
	gen     int
	arrived int
	bufs    [][]float64
	calls   int
}

func newSumHub(n int) *sumHub {
	h := &sumHub{n: n, bufs: make([][]float64, n)}
	h.cond = sync.NewCond(&h.mu)
	return h
}

func (h *sumHub) barrier() {
	g := h.gen
	h.arrived++
	if h.arrived == h.n {
		h.arrived, h.gen = 0, h.gen+1
		h.cond.Broadcast()
		return
	}
	for g == h.gen {
		h.cond.Wait()
	}
}

type rankReducer struct {
	h    *sumHub
	rank int
}

func (r rankReducer) AllReduceSum(buf []float64) error {
	h := r.h
	h.mu.Lock()
	defer h.mu.Unlock()
	h.bufs[r.rank] = buf
	h.barrier()
	if r.rank == 0 {
		h.calls++
		sum := make([]float64, len(buf))
		for _, b := range h.bufs {
			if len(b) != len(buf) {
				return errors.New("lengths differ")
			}
			for i, v := range b {
				sum[i] += v
			}
		}
		for _, b := range h.bufs {
			copy(b, sum)
		}
	}
	h.barrier()
	return nil
}

// TestWindowSplitByCoordinates: a window split by coordinates over 2 and 3
// processes (each a Window of its columns, inner products summed by a
// Reducer) gives the unsplit window's F⁻¹·g, slice by slice, within
// float64 round-off: the inner products add the same terms in another
// order (relative 1e-16, here amplified by at most ‖g‖²/(m·λ) ≈ 50). It
// wraps the ring twice, checks IHVP of another vector too, and a
// gradient with a NaN in one process's slice only: every process refuses
// it (no process left waiting in the Reducer), and the windows go on
// equal to the unsplit one, which refused it too.
func TestWindowSplitByCoordinates(t *testing.T) {
	const d, m, damp, steps = 203, 4, 1.0, 11
	rng := rand.New(rand.NewPCG(1, 2))
	grads := make([][]float64, steps)
	for s := range grads {
		grads[s] = make([]float64, d)
		for j := range grads[s] {
			grads[s][j] = rng.NormFloat64()
		}
	}
	x := make([]float64, d)
	for j := range x {
		x[j] = rng.NormFloat64()
	}
	bad := 6 // this step's gradient has a NaN at coordinate 150
	whole, err := NewWindow[float64](d, m, damp)
	if err != nil {
		t.Fatal(err)
	}
	defer whole.Close()
	want := make([][]float64, steps+1) // F⁻¹·g per step, then F⁻¹·x
	for s, g := range grads {
		want[s] = make([]float64, d)
		gg := append([]float64(nil), g...)
		if s == bad {
			gg[150] = math.NaN()
			if err := whole.UpdateIHVP(gg, want[s]); !errors.Is(err, optim.ErrNonFinite) {
				t.Fatalf("unsplit, step %d: %v, want a non-finite error", s, err)
			}
			continue
		}
		if err := whole.UpdateIHVP(gg, want[s]); err != nil {
			t.Fatal(err)
		}
	}
	want[steps] = make([]float64, d)
	if err := whole.IHVP(x, want[steps]); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{2, 3} {
		h := newSumHub(n)
		got := make([][]float64, steps+1)
		for s := range got {
			got[s] = make([]float64, d)
		}
		errs := make([][]error, n)
		var wg sync.WaitGroup
		for r := range n {
			lo, hi := r*d/n, (r+1)*d/n
			wg.Add(1)
			go func() {
				defer wg.Done()
				w, err := NewWindow[float64](hi-lo, m, damp)
				if err != nil {
					errs[r] = append(errs[r], err)
					return
				}
				defer w.Close()
				w.SetReducer(rankReducer{h, r})
				for s, g := range grads {
					gg := append([]float64(nil), g[lo:hi]...)
					if s == bad && 150 >= lo && 150 < hi {
						gg[150-lo] = math.NaN()
					}
					errs[r] = append(errs[r], w.UpdateIHVP(gg, got[s][lo:hi]))
				}
				errs[r] = append(errs[r], w.IHVP(x[lo:hi], got[steps][lo:hi]))
			}()
		}
		wg.Wait()
		for r := range n {
			for s, err := range errs[r] {
				if s == bad {
					if !errors.Is(err, optim.ErrNonFinite) {
						t.Fatalf("%d processes, rank %d, step %d: %v, want a non-finite error", n, r, s, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("%d processes, rank %d, step %d: %v", n, r, s, err)
				}
			}
		}
		if h.calls != steps+1 {
			t.Fatalf("%d processes: %d reductions, want one per call (%d)", n, h.calls, steps+1)
		}
		for s := range got {
			if s == bad {
				continue
			}
			if e := relErr(got[s], want[s]); !(e < 1e-12) {
				t.Fatalf("%d processes, step %d: relative error %.3g against the unsplit window", n, s, e)
			}
		}
	}
}

// TestSplitWindowWithoutReducerDiffers is the test's own control: the
// slices' windows without a Reducer (each alone) do not give the unsplit
// F⁻¹·g, so TestWindowSplitByCoordinates's agreement is the Reducer's.
func TestSplitWindowWithoutReducerDiffers(t *testing.T) {
	const d, m, damp = 64, 2, 1e-2
	rng := rand.New(rand.NewPCG(3, 4))
	whole, _ := NewWindow[float64](d, m, damp)
	half, _ := NewWindow[float64](d/2, m, damp)
	defer whole.Close()
	defer half.Close()
	g := make([]float64, d)
	for j := range g {
		g[j] = rng.NormFloat64()
	}
	a, b := make([]float64, d), make([]float64, d/2)
	if err := whole.UpdateIHVP(g, a); err != nil {
		t.Fatal(err)
	}
	if err := half.UpdateIHVP(g[:d/2], b); err != nil {
		t.Fatal(err)
	}
	if e := relErr(b, a[:d/2]); !(e > 1e-3) {
		t.Fatalf("a slice alone gives the unsplit result (relative error %.3g): the split test proves nothing", e)
	}
}
