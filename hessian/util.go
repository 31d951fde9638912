package hessian

import (
	"fmt"
	"github.com/curvopt/curvopt/internal/num"
	"math"

	"github.com/curvopt/curvopt/nn"
	"github.com/curvopt/curvopt/optim"
	"gorgonia.org/tensor"
)

// The helpers below switch on the dtype and use Float64s/Float32s, which
// do not allocate, instead of Data, which boxes the backing slice.

// copyDense copies src into dst (same dtype and number of elements).
func copyDense(dst, src *tensor.Dense) error {
	if dst.Dtype() != src.Dtype() || dst.Shape().TotalSize() != src.Shape().TotalSize() {
		return fmt.Errorf("cannot copy %v %v into %v %v", src.Dtype(), src.Shape(), dst.Dtype(), dst.Shape())
	}
	switch dst.Dtype() {
	case tensor.Float64:
		copy(dst.Float64s(), src.Float64s())
	case tensor.Float32:
		copy(dst.Float32s(), src.Float32s())
	default:
		return fmt.Errorf("unsupported dtype %v", dst.Dtype())
	}
	return nil
}

func equalDense(a, b *tensor.Dense) bool {
	if a.Dtype() != b.Dtype() {
		return false
	}
	switch a.Dtype() {
	case tensor.Float64:
		return equalSlices(a.Float64s(), b.Float64s())
	case tensor.Float32:
		return equalSlices(a.Float32s(), b.Float32s())
	}
	return false
}

func equalSlices[T nn.Float](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func fillConst(t *tensor.Dense, v float64) {
	switch t.Dtype() {
	case tensor.Float64:
		d := t.Float64s()
		for i := range d {
			d[i] = v
		}
	case tensor.Float32:
		d := t.Float32s()
		for i := range d {
			d[i] = float32(v)
		}
	}
}

// first returns t's first entry as a float64.
func first(t *tensor.Dense) float64 {
	switch t.Dtype() {
	case tensor.Float64:
		return t.Float64s()[0]
	case tensor.Float32:
		return float64(t.Float32s()[0])
	}
	return math.NaN()
}

func finite(t *tensor.Dense) error {
	switch t.Dtype() {
	case tensor.Float64:
		return finiteSlice(t.Float64s())
	case tensor.Float32:
		return finiteSlice(t.Float32s())
	}
	return fmt.Errorf("unsupported dtype %v", t.Dtype())
}

func finiteSlice[T nn.Float](d []T) error {
	if i := num.NonFinite(d); i >= 0 {
		return fmt.Errorf("entry %d is %v: %w", i, d[i], optim.ErrNonFinite)
	}
	return nil
}

// copyPrefix fills dst with the first elements of src (same dtype, src at
// least as large): the first rows of a row-major batch.
func copyPrefix(dst, src *tensor.Dense) error {
	if dst.Dtype() != src.Dtype() || dst.Shape().TotalSize() > src.Shape().TotalSize() {
		return fmt.Errorf("cannot copy the first %v of %v %v", dst.Shape(), src.Dtype(), src.Shape())
	}
	switch dst.Dtype() {
	case tensor.Float64:
		copy(dst.Float64s(), src.Float64s())
	case tensor.Float32:
		copy(dst.Float32s(), src.Float32s())
	default:
		return fmt.Errorf("unsupported dtype %v", dst.Dtype())
	}
	return nil
}
