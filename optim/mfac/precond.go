package mfac

import (
	"fmt"

	"github.com/curvopt/curvopt/optim"
	"gorgonia.org/tensor"
)

// PrecondSolve sets out = F⁻¹·v with the window's current inverse
// (damp·I + GᵀG/m)⁻¹, applied as Step applies it (Window.IHVP, the
// flattened parameters in the order of params); with parameter groups,
// block i is then scaled by its group's LRScale. The window, the factor
// and the last step's u (LastIHVP) are not changed: only scratch is, two
// d-vectors allocated at the first call. Before the first step it returns
// an error wrapping optim.ErrNoPreconditioner; with a Reducer (a window
// split over processes) it refuses, since the solve would need a
// collective call on every process.
func (o *MFAC) PrecondSolve(params []optim.Param, v, out []*tensor.Dense) error {
	if err := o.BeginSolve("mfac", params, v, out); err != nil {
		return err
	}
	defer o.End()
	if o.eng == nil {
		return fmt.Errorf("mfac: PrecondSolve: %w", optim.ErrNoPreconditioner)
	}
	if o.red != nil {
		return fmt.Errorf("mfac: PrecondSolve: the window is split over processes (a Reducer is set): not supported")
	}
	if dt := o.eng.dtype(); dt != params[0].Value.Dtype() {
		return fmt.Errorf("mfac: PrecondSolve: the window holds %v, the parameters are %v", dt, params[0].Value.Dtype())
	}
	return o.eng.solve(&o.Hyper, params, v, out)
}

// StabilityLimit returns optim.EMALimit(μ), 2(1+μ)/(1−μ): the momentum
// v ← μ·v + (1−μ)·u is an EMA; 2 without momentum.
func (o *MFAC) StabilityLimit() float64 { return optim.EMALimit(o.cfg.Momentum) }

// solve is PrecondSolve on the flattened vectors.
func (e *eng[T]) solve(h *optim.Hyper, params []optim.Param, v, out []*tensor.Dense) error {
	if n := numEl(params); n != len(e.g) {
		return fmt.Errorf("mfac: PrecondSolve: %d parameter entries, but the window has d = %d", n, len(e.g))
	}
	if e.px == nil {
		e.px, e.py = make([]T, len(e.g)), make([]T, len(e.g))
	}
	off := 0
	for i := range params {
		off += copy(e.px[off:], backing[T](v[i]))
	}
	if err := e.w.IHVP(e.px, e.py); err != nil {
		return fmt.Errorf("mfac: PrecondSolve: %w", err)
	}
	off = 0
	for i := range params {
		s := T(h.LRScale(i))
		o := backing[T](out[i])
		for j := range o {
			o[j] = s * e.py[off+j]
		}
		off += len(o)
	}
	return nil
}
