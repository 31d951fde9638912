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
		s += sumSqOf(p.Grad)
	}
	return math.Sqrt(s)
}

// Norm returns ‖t‖₂ over all the tensors, accumulated in float64 (nil
// entries contribute nothing): GlobalNorm of tensors that are not
// parameters' gradients, such as a curvature query's answer.
func Norm(ts []*tensor.Dense) float64 {
	s := 0.0
	for _, t := range ts {
		s += sumSqOf(t)
	}
	return math.Sqrt(s)
}

// Scale multiplies every element of the tensors by c (nil entries are
// skipped), as ClipGlobalNorm does to the gradients.
func Scale(ts []*tensor.Dense, c float64) {
	for _, t := range ts {
		scaleOf(t, c)
	}
}

func sumSqOf(t *tensor.Dense) float64 {
	if t == nil {
		return 0
	}
	switch t.Dtype() {
	case tensor.Float64:
		return sumSq(t.Float64s())
	case tensor.Float32:
		return sumSq(t.Float32s())
	}
	return 0
}

func scaleOf(t *tensor.Dense, c float64) {
	if t == nil {
		return
	}
	switch t.Dtype() {
	case tensor.Float64:
		scale(t.Float64s(), c)
	case tensor.Float32:
		scale(t.Float32s(), c)
	}
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
		scaleOf(p.Grad, c)
	}
	return n
}

func scale[T Float](x []T, c float64) {
	cc := T(c)
	for i := range x {
		x[i] *= cc
	}
}
