package mfac

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"

	"github.com/curvopt/curvopt/internal/num"
	"github.com/curvopt/curvopt/optim"
)

// Issue 21: a state after k < m steps holds the k rows written (k·d window
// values, not m·d); loading it (copied, taken, or taken from a buffer with
// room for the whole window, as the checkpoint reader makes with Reserve)
// resumes bit-identically; and an old state holding all m rows still loads
// and exports the same k rows.
func TestPartialWindowState(t *testing.T) {
	t.Run("float32", testPartialWindow[float32])
	t.Run("float64", testPartialWindow[float64])
}

func testPartialWindow[T optim.Float](t *testing.T) {
	const m, k = 8, 3
	c := Config{LR: 0.05, Momentum: 0.5, WeightDecay: 1e-2, NGrads: m, Damp: 1e-3}
	ps := makeParams[T](rand.New(rand.NewPCG(4, 4)))
	d := numEl(ps)
	pcg := rand.NewPCG(5, 5)
	rng := rand.New(pcg)
	o, _ := New(c)
	for i := 0; i < k; i++ {
		quadGrad[T](ps, rng)
		if err := o.Step(ps, nil); err != nil {
			t.Fatal(err)
		}
	}
	st, err := o.State()
	if err != nil {
		t.Fatal(err)
	}
	view, err := o.StateView()
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*optim.State{"State": st, "StateView": view} {
		w := s.Find("", slotWindow)
		if w == nil || len(w.Shape) != 2 || w.Shape[0] != k || w.Shape[1] != d || w.Len() != k*d {
			t.Fatalf("%s: window %v with %d values, want [%d %d] with k·d = %d (not m·d = %d)", name, w.Shape, w.Len(), k, d, k*d, m*d)
		}
	}
	// The uninterrupted run, on copies, goes on past the point where the
	// window wraps.
	const more = 2 * m
	type run struct {
		ps  []optim.Param
		rng *rand.Rand
		o   *MFAC
	}
	fork := func() run {
		q := makeParams[T](rand.New(rand.NewPCG(4, 4)))
		for i := range q {
			num.CopyInto(q[i].Value, ps[i].Value)
		}
		p := *pcg
		return run{ps: q, rng: rand.New(&p)}
	}
	want := fork()
	want.o = o
	for i := 0; i < more; i++ {
		quadGrad[T](want.ps, want.rng)
		if err := want.o.Step(want.ps, nil); err != nil {
			t.Fatal(err)
		}
	}
	resume := func(name string, load func(o *MFAC, ps []optim.Param) error, check func(o *MFAC)) {
		t.Run(name, func(t *testing.T) {
			r := fork()
			r.o, _ = New(c)
			if err := load(r.o, r.ps); err != nil {
				t.Fatal(err)
			}
			if check != nil {
				check(r.o)
			}
			for i := 0; i < more; i++ {
				quadGrad[T](r.ps, r.rng)
				if err := r.o.Step(r.ps, nil); err != nil {
					t.Fatal(err)
				}
			}
			a, b := snapshot[T](want.ps), snapshot[T](r.ps)
			for j := range a {
				if math.Float64bits(float64(a[j])) != math.Float64bits(float64(b[j])) {
					t.Fatalf("entry %d after resuming: %v, uninterrupted %v", j, b[j], a[j])
				}
			}
		})
	}
	fresh := func() *optim.State { return cloneState(st) } // TakeState keeps its buffers
	resume("LoadState", func(o *MFAC, ps []optim.Param) error { return o.LoadState(ps, fresh()) }, nil)
	resume("TakeState", func(o *MFAC, ps []optim.Param) error { return o.TakeState(ps, fresh()) }, nil)
	// The checkpoint reader's buffer: the k rows, room for m, and the room
	// never read before a step writes it (junk there changes nothing).
	var kept unsafe.Pointer
	resume("TakeState with room", func(o *MFAC, ps []optim.Param) error {
		s := fresh()
		w := s.Find("", slotWindow)
		room := o.Reserve(w)
		if room != m*d {
			t.Fatalf("Reserve(window [%d %d]) = %d, want m·d = %d", k, d, room, m*d)
		}
		buf := make([]T, room)
		for i := range buf {
			buf[i] = T(math.NaN())
		}
		copy(buf, values[T](w))
		setValues(w, buf[:k*d])
		kept = unsafe.Pointer(&buf[0])
		return o.TakeState(ps, s)
	}, func(o *MFAC) {
		if g := o.eng.(*eng[T]).w.g; unsafe.Pointer(&g[0]) != kept || len(g) != m*d {
			t.Fatal("TakeState copied a window that had room for m rows")
		}
	})
	// An old state: all m rows, the unwritten ones zero.
	old := func() *optim.State {
		s := fresh()
		w := s.Find("", slotWindow)
		full := make([]T, m*d)
		copy(full, values[T](w))
		setValues(w, full)
		w.Shape = []int{m, d}
		return s
	}
	resume("old full window, LoadState", func(o *MFAC, ps []optim.Param) error { return o.LoadState(ps, old()) }, nil)
	resume("old full window, TakeState", func(o *MFAC, ps []optim.Param) error { return o.TakeState(ps, old()) }, nil)
	t.Run("old full window, only the rows written are copied", func(t *testing.T) {
		s := old()
		full := values[T](s.Find("", slotWindow))
		for i := k * d; i < len(full); i++ {
			full[i] = 7 // finite, so refused by no check: never copied
		}
		o2, _ := New(c)
		if err := o2.LoadState(ps, s); err != nil {
			t.Fatal(err)
		}
		for i, v := range o2.eng.(*eng[T]).w.g[k*d:] {
			if v != 0 {
				t.Fatalf("window entry %d (row %d, unwritten) is %v: LoadState touched a row past the %d written", k*d+i, k+i/d, v, k)
			}
		}
	})
	t.Run("old full window exports k rows", func(t *testing.T) {
		o2, _ := New(c)
		if err := o2.LoadState(ps, old()); err != nil {
			t.Fatal(err)
		}
		got, _ := o2.State()
		w, ref := got.Find("", slotWindow), fresh().Find("", slotWindow)
		if fmt.Sprint(w.Shape) != fmt.Sprint(ref.Shape) || fmt.Sprint(values[T](w)) != fmt.Sprint(values[T](ref)) {
			t.Fatalf("exported window %v, want %v", w.Shape, ref.Shape)
		}
	})
}

func cloneState(st *optim.State) *optim.State {
	c := *st
	c.Tensors = append([]optim.StateTensor(nil), st.Tensors...)
	for i := range c.Tensors {
		t := &c.Tensors[i]
		t.Shape = append([]int(nil), t.Shape...)
		t.F32, t.F64 = append([]float32(nil), t.F32...), append([]float64(nil), t.F64...)
		if len(t.F32) == 0 {
			t.F32 = nil
		}
		if len(t.F64) == 0 {
			t.F64 = nil
		}
	}
	return &c
}

func setValues[T optim.Float](st *optim.StateTensor, x []T) {
	switch v := any(x).(type) {
	case []float32:
		st.F32 = v
	case []float64:
		st.F64 = v
	}
}
