package train

import (
	"fmt"

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
	n := optim.Norm(out)
	switch {
	case !finite(n):
		return fmt.Errorf("train: the sampled-label gradient's norm is %v: %w", n, optim.ErrNonFinite)
	case n <= c.norm:
		return nil
	}
	optim.Scale(out, c.norm/(n+1e-6))
	return nil
}
