package train

import (
	"fmt"
	"math"

	"github.com/curvopt/curvopt/optim"
	"gorgonia.org/tensor"
)

// clipSampled is the oracle Step hands to an optimizer when the gradient is
// clipped: it answers SampledGrad with the sampled-label gradient clipped
// to the same global norm as the training gradient, as the Sophia
// reference does (Liuhong99/Sophia, train_sophiag.py: the sampled-label
// loss is backpropagated, then clip_grad_norm_(model.parameters(),
// grad_clip), then optimizer.update_hessian()). Every other query goes to
// the wrapped oracle unchanged.
type clipSampled struct {
	Oracle
	norm float64
}

var (
	_ optim.Oracle   = (*clipSampled)(nil)
	_ optim.Provider = (*clipSampled)(nil)
)

// Provides forwards the wrapped oracle's Provides, so that optim.CheckOracle
// judges the engine, not the wrapper; an oracle that is not a Provider is
// trusted as it would be unwrapped.
func (c *clipSampled) Provides() optim.Needs {
	if p, ok := c.Oracle.(optim.Provider); ok {
		return p.Provides()
	}
	return optim.Needs{HVP: true, SampledGrad: true}
}

// SampledGrad fills out with the wrapped oracle's sampled-label gradient,
// then scales it by norm/(‖out‖ + 1e-6) when its global norm ‖out‖ exceeds
// norm (torch.nn.utils.clip_grad_norm_).
func (c *clipSampled) SampledGrad(out []*tensor.Dense) error {
	if err := c.Oracle.SampledGrad(out); err != nil {
		return err
	}
	s := 0.0
	for _, t := range out {
		switch t.Dtype() {
		case tensor.Float64:
			s += sumSquares(t.Float64s())
		case tensor.Float32:
			s += sumSquares(t.Float32s())
		}
	}
	n := math.Sqrt(s)
	switch {
	case !finite(n):
		return fmt.Errorf("train: the sampled-label gradient's norm is %v: %w", n, optim.ErrNonFinite)
	case n <= c.norm:
		return nil
	}
	k := c.norm / (n + 1e-6)
	for _, t := range out {
		switch t.Dtype() {
		case tensor.Float64:
			scaleBy(t.Float64s(), k)
		case tensor.Float32:
			scaleBy(t.Float32s(), k)
		}
	}
	return nil
}

func sumSquares[T float32 | float64](x []T) float64 {
	s := 0.0
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	return s
}

func scaleBy[T float32 | float64](x []T, k float64) {
	kk := T(k)
	for i := range x {
		x[i] *= kk
	}
}
