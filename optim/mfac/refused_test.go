package mfac

import (
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/curvopt/curvopt/optim"
)

// TestRefusedStepsChangeNothing: a gradient of 1e308 (float64: its square
// overflows the Gram matrix, the case of issue 19 that made the parameters
// NaN without an error) and a learning rate that overflows θ − lr·u after
// the window took the gradient (then undone) are refused with optim.ErrNonFinite; the
// parameters and the whole state (window, Gram matrix, factor, momentum,
// ring slot) are exactly as before, so a run that met the refused steps
// continues bit-identically to one that never did.
func TestRefusedStepsChangeNothing(t *testing.T) {
	t.Run("float64", func(t *testing.T) { refusedSteps[float64](t, 1e308) })
	t.Run("float32", func(t *testing.T) { refusedSteps[float32](t, 0) })
}

// refusedSteps runs the check with parameters of dtype T; hugeGrad, when
// not 0, is a gradient entry whose square overflows float64.
func refusedSteps[T optim.Float](t *testing.T, hugeGrad T) {
	c := Config{LR: 0.05, NGrads: 3, Damp: 1e-3, Momentum: 0.9, WeightDecay: 1e-3}
	straight, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	tried, _ := New(c)
	a, b := makeParams[T](rand.New(rand.NewPCG(5, 6))), makeParams[T](rand.New(rand.NewPCG(5, 6)))
	ra, rb := rand.New(rand.NewPCG(7, 8)), rand.New(rand.NewPCG(7, 8))
	refuse := func(step int, what string, try func() error) {
		t.Helper()
		before, err := tried.State()
		if err != nil {
			t.Fatal(err)
		}
		values := snapshot[T](b)
		err = try()
		if !errors.Is(err, optim.ErrNonFinite) {
			t.Fatalf("step %d, %s: got %v, want an error wrapping ErrNonFinite", step, what, err)
		}
		after, _ := tried.State()
		if !reflect.DeepEqual(before, after) {
			t.Fatalf("step %d, %s: the refused step changed the state", step, what)
		}
		if !reflect.DeepEqual(values, snapshot[T](b)) {
			t.Fatalf("step %d, %s: the refused step changed the parameters", step, what)
		}
	}
	for step := 0; step < 7; step++ {
		quadGrad[T](a, ra)
		quadGrad[T](b, rb)
		if step >= 1 { // the window holds gradients; from step 3 on it wraps
			if hugeGrad != 0 {
				g := b[0].Grad.Data().([]T)
				keep := g[1]
				g[1] = hugeGrad
				refuse(step, "huge gradient", func() error { return tried.Step(b, nil) })
				g[1] = keep
			}
			// The largest learning rate, doubled by a group: lr·u overflows.
			lr := tried.LR()
			if err := tried.SetLR(math.MaxFloat64); err != nil {
				t.Fatal(err)
			}
			if err := tried.SetGroups([]optim.Group{{Name: "all", Params: []string{"w", "b"}, LRScale: 2, WeightDecay: c.WeightDecay}}); err != nil {
				t.Fatal(err)
			}
			refuse(step, "huge learning rate", func() error { return tried.Step(b, nil) })
			if err := tried.SetGroups(nil); err != nil {
				t.Fatal(err)
			}
			if err := tried.SetLR(lr); err != nil {
				t.Fatal(err)
			}
		}
		if err := straight.Step(a, nil); err != nil {
			t.Fatal(err)
		}
		if err := tried.Step(b, nil); err != nil {
			t.Fatal(err)
		}
	}
	if !reflect.DeepEqual(snapshot[T](a), snapshot[T](b)) {
		t.Fatal("the run that met refused steps differs from the one that did not")
	}
}
