// Package kernel holds helpers that optim and its optimizers share and
// that are no part of optim's API: the boxed backing slice for switches
// outside hot loops, the in-place product of a Hutchinson estimate, the
// dense-tensor check of parameters, and the scans of the check passes
// (Bits, MaxAbs, MaxNonNeg).
package kernel

import (
	"fmt"
	"math"
	"unsafe"

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

// Bits returns x's bits as a float64: 0 exactly for +0, and with the sign
// bit set for a negative x (NaN stays NaN when widened). OR-ed over a
// loop, the bits of (a − a) + (b − b) are 0 exactly when every a and b is
// finite: a branch-free check whose result is tested once after the loop.
func Bits[T num.Float](x T) uint64 { return math.Float64bits(float64(x)) }

// MaxAbs returns the largest |x| over x (0 for an empty x), or +Inf when
// some x is NaN or ±Inf. It compares the bits of |x| as integers (the bits
// of non-negative floats order as their values, and NaN's and Inf's are
// the largest), so it does no floating-point arithmetic: no branch per
// entry, and no slow path on subnormal numbers. Check passes bound an
// update's new values from it.
func MaxAbs[T num.Float](x []T) float64 { return maxBits(x, true) }

// MaxNonNeg returns the largest x over x (0 for an empty x) when every x is
// finite and carries no sign bit (+0 or positive); otherwise +Inf (also for
// −0: a bound, not a value). Like MaxAbs it compares bits as integers.
func MaxNonNeg[T num.Float](x []T) float64 { return maxBits(x, false) }

func maxBits[T num.Float](x []T, abs bool) float64 {
	// The bits are read as integers (one load per entry, no move out of a
	// floating-point register): the unsafe cast is of a float slice to
	// unsigned integers of its size.
	p := unsafe.Pointer(unsafe.SliceData(x))
	if unsafe.Sizeof(T(0)) == 4 {
		u := unsafe.Slice((*uint32)(p), len(x))
		m := uint32(0)
		if n := len(u) &^ 31; useAVX2 && n > 0 {
			mask := ^uint32(0)
			if abs {
				mask >>= 1
			}
			m = maxU32AVX2(&u[0], n, mask)
			u = u[n:]
		}
		m = max(m, maxU(u, abs))
		if m >= 0x7f800000 {
			return math.Inf(1)
		}
		return float64(math.Float32frombits(m))
	}
	m := maxU(unsafe.Slice((*uint64)(p), len(x)), abs)
	if m >= 0x7ff0000000000000 {
		return math.Inf(1)
	}
	return math.Float64frombits(m)
}

// maxU returns the largest of u (with its top bit, a float's sign, cleared
// when abs), 0 for an empty u.
func maxU[U uint32 | uint64](u []U, abs bool) U {
	mask := ^U(0)
	if abs {
		mask >>= 1
	}
	var m0, m1, m2, m3 U
	i := 0
	for ; i+4 <= len(u); i += 4 {
		q := u[i : i+4 : i+4]
		m0 = max(m0, q[0]&mask)
		m1 = max(m1, q[1]&mask)
		m2 = max(m2, q[2]&mask)
		m3 = max(m3, q[3]&mask)
	}
	for ; i < len(u); i++ {
		m0 = max(m0, u[i]&mask)
	}
	return max(m0, m1, m2, m3)
}
