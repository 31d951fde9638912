package hessian

import (
	"fmt"
	"math"

	"github.com/curvopt/curvopt/nn"
	"gorgonia.org/tensor"
)

// copyDense copies src into dst (same dtype and number of elements).
func copyDense(dst, src *tensor.Dense) error {
	if dst.Dtype() != src.Dtype() || dst.Shape().TotalSize() != src.Shape().TotalSize() {
		return fmt.Errorf("cannot copy %v %v into %v %v", src.Dtype(), src.Shape(), dst.Dtype(), dst.Shape())
	}
	switch d := dst.Data().(type) {
	case []float64:
		copy(d, src.Data().([]float64))
	case []float32:
		copy(d, src.Data().([]float32))
	default:
		return fmt.Errorf("unsupported dtype %v", dst.Dtype())
	}
	return nil
}

func equalDense(a, b *tensor.Dense) bool {
	switch x := a.Data().(type) {
	case []float64:
		y, ok := b.Data().([]float64)
		return ok && equalSlices(x, y)
	case []float32:
		y, ok := b.Data().([]float32)
		return ok && equalSlices(x, y)
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
	switch d := t.Data().(type) {
	case []float64:
		for i := range d {
			d[i] = v
		}
	case []float32:
		for i := range d {
			d[i] = float32(v)
		}
	}
}

func finite(t *tensor.Dense) error {
	switch d := t.Data().(type) {
	case []float64:
		return finiteSlice(d)
	case []float32:
		return finiteSlice(d)
	}
	return fmt.Errorf("unsupported dtype %v", t.Dtype())
}

func finiteSlice[T nn.Float](d []T) error {
	// v − v is 0 for finite v and NaN for ±Inf and NaN: one cheap test per
	// entry, accumulated so the loop has no data-dependent branch.
	var acc T
	for _, v := range d {
		acc += v - v
	}
	if acc == 0 {
		return nil
	}
	for i, v := range d {
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("entry %d is %v", i, f)
		}
	}
	return nil
}

// copyPrefix fills dst with the first elements of src (same dtype, src at
// least as large): the first rows of a row-major batch.
func copyPrefix(dst, src *tensor.Dense) error {
	if dst.Dtype() != src.Dtype() || dst.Shape().TotalSize() > src.Shape().TotalSize() {
		return fmt.Errorf("cannot copy the first %v of %v %v", dst.Shape(), src.Dtype(), src.Shape())
	}
	switch d := dst.Data().(type) {
	case []float64:
		copy(d, src.Data().([]float64))
	case []float32:
		copy(d, src.Data().([]float32))
	default:
		return fmt.Errorf("unsupported dtype %v", dst.Dtype())
	}
	return nil
}
