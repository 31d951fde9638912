package optim

import (
	"math"

	"gorgonia.org/tensor"
)

// GlobalNorm returns ‖g‖₂ over all parameters' gradients, accumulated in
// float64. With ClipGlobalNorm it is the reusable gradient transformation a
// training loop applies between computing the gradient and Step, as
// torch.nn.utils.clip_grad_norm_ or optax.clip_by_global_norm. A nil
// gradient contributes nothing (Step refuses it, naming the parameter).
func GlobalNorm(params []Param) float64 {
	s := 0.0
	for _, p := range params {
		if p.Grad == nil {
			continue
		}
		switch p.Grad.Dtype() {
		case tensor.Float64:
			s += sumSq(p.Grad.Float64s())
		case tensor.Float32:
			s += sumSq(p.Grad.Float32s())
		}
	}
	return math.Sqrt(s)
}

func sumSq[T Float](x []T) float64 {
	s := 0.0
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	return s
}

// ClipGlobalNorm scales every gradient by maxNorm/‖g‖ when the global norm
// ‖g‖ exceeds maxNorm (torch.nn.utils.clip_grad_norm_), and returns the norm
// before clipping. maxNorm ≤ 0 disables clipping.
func ClipGlobalNorm(params []Param, maxNorm float64) float64 {
	n := GlobalNorm(params)
	if maxNorm <= 0 || n <= maxNorm {
		return n
	}
	c := maxNorm / (n + 1e-6)
	for _, p := range params {
		if p.Grad == nil {
			continue
		}
		switch p.Grad.Dtype() {
		case tensor.Float64:
			scale(p.Grad.Float64s(), c)
		case tensor.Float32:
			scale(p.Grad.Float32s(), c)
		}
	}
	return n
}

func scale[T Float](x []T, c float64) {
	cc := T(c)
	for i := range x {
		x[i] *= cc
	}
}
