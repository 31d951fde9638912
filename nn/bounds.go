package nn

import "fmt"

// MaxTensorElements bounds the number of elements of every tensor a model
// description implies, per example: the input, each layer's output, each
// parameter, a convolution's im2col columns [C·K·K, OH·OW] and attention
// scores [H, T, T]. 2⁴⁰ is far beyond any machine's memory (4 TB of
// float32), so the bound refuses nothing that could run, while products
// and sums of such counts with a batch size stay far from overflowing
// int64: DAG.Check (and so Spec.DAG) refuses a shape above it (naming the
// node or layer) before any arithmetic on it can wrap around, and Memory then
// estimates in saturating arithmetic.
const MaxTensorElements = 1 << 40

// elements returns the number of elements of a tensor of shape dims, and
// false when a dimension is below 1 or the count exceeds
// MaxTensorElements (checked before each product, so nothing overflows).
func elements(dims ...int) (int64, bool) {
	n := int64(1)
	for _, d := range dims {
		if d < 1 || d > MaxTensorElements || n > MaxTensorElements/int64(d) {
			return 0, false
		}
		n *= int64(d)
	}
	return n, true
}

// checkElements returns an error naming what (a tensor of the given
// shape) when its element count is out of range (see elements).
func checkElements(what string, dims ...int) error {
	if _, ok := elements(dims...); !ok {
		return fmt.Errorf("%s %v: want dimensions ≥ 1 and at most %d elements (MaxTensorElements)", what, dims, int64(MaxTensorElements))
	}
	return nil
}

// checkParams checks the element count of each parameter.
func checkParams(ps []ParamInfo) error {
	for _, p := range ps {
		if err := checkElements("parameter "+p.Name+" of shape", p.Shape...); err != nil {
			return err
		}
	}
	return nil
}

// checkSize refuses a size parameter (padding, kernel, width) large enough
// to overflow the shape arithmetic that uses it.
func checkSize(what string, v int) error {
	if v > MaxTensorElements {
		return fmt.Errorf("%s %d exceeds %d (MaxTensorElements)", what, v, int64(MaxTensorElements))
	}
	return nil
}
