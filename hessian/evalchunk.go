package hessian

import (
	"fmt"

	"gorgonia.org/tensor"
)

// evalChunk is the largest batch an evaluation graph is built for. A larger
// EvalLogits input runs through the evaluation graph of evalChunk rows in
// chunks (the last one padded with zero rows, whose logits are dropped):
// evaluation mode treats rows independently, and a forward graph's memory
// grows with its batch (the CNN's im2col buffers take ~0.7 MB a row), so a
// batch of 500 in one graph would double a training run's peak memory.
const evalChunk = 32

// evalChunked returns the logits [n, classes] of x (n > evalChunk rows) in
// evaluation mode, computed evalChunk rows at a time.
func (e *Engine) evalChunked(x *tensor.Dense, n int) (*tensor.Dense, error) {
	p, err := e.evalProg(evalChunk)
	if err != nil {
		return nil, fmt.Errorf("hessian: compiling evaluation graph for batch size %d: %w", evalChunk, err)
	}
	var out *tensor.Dense
	for lo := 0; lo < n; lo += evalChunk {
		r := min(evalChunk, n-lo)
		if err := copyRows(p.x, x, lo, r); err != nil {
			return nil, err
		}
		if err := runVM(p.m); err != nil {
			return nil, err
		}
		v, ok := p.net.Logits.Value().(*tensor.Dense)
		if !ok {
			return nil, fmt.Errorf("hessian: EvalLogits: logits not computed")
		}
		if out == nil {
			out = tensor.New(tensor.Of(e.dt), tensor.WithShape(n, v.Shape()[1]))
		}
		if err := copyRowsTo(out, v, lo, r); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// copyRows sets the first r rows of dst to rows lo..lo+r-1 of src (rows
// along the first axis, same row size) and zeroes dst's other rows.
func copyRows(dst, src *tensor.Dense, lo, r int) error {
	switch d := dst.Data().(type) {
	case []float32:
		s, ok := src.Data().([]float32)
		if !ok {
			return fmt.Errorf("hessian: input dtype %v, want float32", src.Dtype())
		}
		return rowsInto(d, s, dst.Shape()[0], lo, r)
	case []float64:
		s, ok := src.Data().([]float64)
		if !ok {
			return fmt.Errorf("hessian: input dtype %v, want float64", src.Dtype())
		}
		return rowsInto(d, s, dst.Shape()[0], lo, r)
	}
	return fmt.Errorf("hessian: unsupported dtype %v", dst.Dtype())
}

func rowsInto[T float32 | float64](dst, src []T, rows, lo, r int) error {
	per := len(dst) / rows
	if (lo+r)*per > len(src) {
		return fmt.Errorf("hessian: rows %d..%d of an input of %d values of %d per row", lo, lo+r, len(src), per)
	}
	copy(dst, src[lo*per:(lo+r)*per])
	clear(dst[r*per:])
	return nil
}

// copyRowsTo sets rows lo..lo+r-1 of dst to the first r rows of src.
func copyRowsTo(dst, src *tensor.Dense, lo, r int) error {
	per := src.Shape().TotalSize() / src.Shape()[0]
	switch d := dst.Data().(type) {
	case []float32:
		copy(d[lo*per:(lo+r)*per], src.Float32s()[:r*per])
	case []float64:
		copy(d[lo*per:(lo+r)*per], src.Float64s()[:r*per])
	default:
		return fmt.Errorf("hessian: unsupported dtype %v", dst.Dtype())
	}
	return nil
}
