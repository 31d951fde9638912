// Package kernel holds helpers that optim and its optimizers share and
// that are no part of optim's API: the boxed backing slice for switches
// outside hot loops, the in-place product of a Hutchinson estimate, and
// the dense-tensor check of parameters.
package kernel

import (
	"fmt"

	"github.com/curvopt/curvopt/internal/num"
	"gorgonia.org/tensor"
)

// Backing returns a float32 or float64 tensor's backing slice ([]float32 or
// []float64), also for a scalar (0-d) tensor, whose Data method returns a
// bare number instead; it returns nil for other dtypes. Boxing the slice
// allocates: a hot path switches on Dtype and calls Float64s or Float32s
// (or num.Slice).
func Backing(t *tensor.Dense) any {
	switch t.Dtype() {
	case tensor.Float64:
		return t.Float64s()
	case tensor.Float32:
		return t.Float32s()
	}
	return nil
}

// MulInto sets o ← o⊙z elementwise: the z⊙(H·z) of a Hutchinson estimate.
func MulInto[T num.Float](o, z []T) {
	z = z[:len(o)]
	for i := range o {
		o[i] *= z[i]
	}
}

// CheckDense returns an error when t is not a dense tensor whose backing
// slice holds exactly its entries in row-major order: a view (a slice or a
// transpose of another tensor) is refused, since the update kernels work on
// backing slices. what names the tensor ("value", "gradient").
func CheckDense(what string, t *tensor.Dense) error {
	if t.Shape().TotalSize() == 0 {
		return nil // nothing stored
	}
	if t.IsView() || t.RequiresIterator() || !t.IsNativelyAccessible() {
		return fmt.Errorf("%s of shape %v is a view of another tensor (sliced or transposed), not a contiguous tensor of its own: pass a copy (tensor.Dense.Materialize or Clone)", what, t.Shape())
	}
	if n := t.Shape().TotalSize(); t.DataSize() != n && !(n == 1 && t.Shape().IsScalar()) {
		return fmt.Errorf("%s of shape %v has %d stored entries, want %d", what, t.Shape(), t.DataSize(), n)
	}
	return nil
}
