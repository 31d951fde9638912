// Package num holds what the module's numeric code shares about dense
// float32 and float64 tensors, written once for nn, optim and hessian: the
// Float constraint, the unsafe cast of a tensor's backing slice, the NaN
// scan, and copies that do not box a slice (a boxed slice allocates).
package num

import (
	"math"
	"unsafe"

	"gorgonia.org/tensor"
)

// Float is the element type of the project's tensors and kernels.
type Float interface{ ~float32 | ~float64 }

// Slice returns t's backing slice as []T without allocating (Data boxes
// it), also for a 0-d tensor, or nil when t's dtype is not T's. Generic
// kernels use it in hot paths.
func Slice[T Float](t *tensor.Dense) []T {
	var z T
	switch any(z).(type) {
	case float64:
		if t.Dtype() != tensor.Float64 {
			return nil
		}
		s := t.Float64s()
		return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(s))), len(s))
	case float32:
		if t.Dtype() != tensor.Float32 {
			return nil
		}
		s := t.Float32s()
		return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(s))), len(s))
	}
	return nil
}

// NonFinite returns the index of the first NaN or ±Inf in x, or -1.
func NonFinite[T Float](x []T) int {
	// Fast path without branches: v − v is 0 for finite v and NaN for NaN
	// and ±Inf, so the sums are 0 exactly when every entry is finite (four
	// of them, so that the loop does not wait on one chain of additions).
	var a0, a1, a2, a3 T
	i := 0
	for ; i+4 <= len(x); i += 4 {
		q := x[i : i+4 : i+4]
		a0 += q[0] - q[0]
		a1 += q[1] - q[1]
		a2 += q[2] - q[2]
		a3 += q[3] - q[3]
	}
	for ; i < len(x); i++ {
		a0 += x[i] - x[i]
	}
	if (a0+a1)+(a2+a3) == 0 {
		return -1
	}
	for i, v := range x {
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return i
		}
	}
	return -1
}

// CopyInto copies src's values into dst (same dtype and size) without
// allocating.
func CopyInto(dst, src *tensor.Dense) {
	switch dst.Dtype() {
	case tensor.Float64:
		copy(dst.Float64s(), src.Float64s())
	case tensor.Float32:
		copy(dst.Float32s(), src.Float32s())
	}
}

// ToFloat64 copies a float32 or float64 tensor's values into a new
// []float64 (nil for other dtypes).
func ToFloat64(t *tensor.Dense) []float64 {
	switch t.Dtype() {
	case tensor.Float64:
		return append([]float64(nil), t.Float64s()...)
	case tensor.Float32:
		d := t.Float32s()
		out := make([]float64, len(d))
		for i, v := range d {
			out[i] = float64(v)
		}
		return out
	}
	return nil
}
