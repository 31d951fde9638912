package mfac

import (
	"fmt"

	"github.com/curvopt/curvopt/internal/num"
	"github.com/curvopt/curvopt/optim"
)

// Reducer sums values over the processes of a run whose window is split by
// coordinates: each process holds a contiguous slice of the d coordinates
// of every window row (its Window has that slice's dimension), the m×m
// Gram matrix and its factor are replicated, and the only values that need
// the other processes are the inner products c = G·x, which each process
// forms over its slice and a Reducer sums.
//
// AllReduceSum must replace buf by its elementwise sum over the processes,
// the same bits on every process, and must be called by all of them in the
// same order with the same length. A Window makes exactly one call per
// Update, UpdateIHVP or IHVP (of its filled rows' m or fewer values), on
// every process, also when the values are not finite, so that no process
// waits on one that left early. An error found after the sum (a non-finite
// entry of F⁻¹·x, or of the update, in one process's slice) is that
// process's alone, which undoes its update: the caller must make the
// processes agree on it (train's -shard ends the run on every rank).
type Reducer interface {
	AllReduceSum(buf []float64) error
}

// SetReducer makes the window one slice of a window split by coordinates
// over several processes, their inner products summed by r (nil: a window
// of its own, the default). With a Reducer, F⁻¹·x is the slice of the
// whole window's F⁻¹·x; it differs from the unsplit window's only in the
// order in which the inner products' terms are added (float64 round-off).
func (w *Window[T]) SetReducer(r Reducer) { w.red = r }

// reduce sums c over the processes (nothing without a Reducer).
func (c *core[T]) reduce(x []float64) error {
	if c.red == nil {
		return nil
	}
	if err := c.red.AllReduceSum(x); err != nil {
		return fmt.Errorf("summing the window's inner products over the processes: %w", err)
	}
	return nil
}

// nonFiniteGrad returns the error for a non-finite entry of g, or nil.
// Alone, the caller returns it at once; with a Reducer, it goes on to make
// the update's collective call like every other process (the non-finite
// entry makes the summed inner product of g with itself non-finite on all
// of them, so all refuse the update) and returns this error then.
func nonFiniteGrad[T optim.Float](g []T) error {
	if i := num.NonFinite(g); i >= 0 {
		return fmt.Errorf("mfac: update: gradient entry %d is %v: %w", i, g[i], optim.ErrNonFinite)
	}
	return nil
}

// SetReducer makes the optimizer one process's part of an M-FAC whose
// window is split by coordinates (see Reducer): the params given to Step
// are this process's contiguous slice of the whole parameter vector, every
// process calls Step in turn, and r sums the inner products. Gradients,
// learning rates and weight decays must be the same on every process. nil
// (the default) is an optimizer of its own. The state it exports is its
// slice's window (all m·m Gram and factor values, which every process
// holds alike).
func (o *MFAC) SetReducer(r Reducer) {
	o.red = r
	if o.eng != nil {
		o.eng.setReducer(r)
	}
}

func (e *eng[T]) setReducer(r Reducer) { e.w.SetReducer(r) }
