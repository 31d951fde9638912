package hessian

// The flat-vector operator the spectrum code uses: the parameters as one
// vector of Dim() entries, H·v on it, and a finite-difference cross-check.

import (
	"fmt"

	"github.com/curvopt/curvopt/optim"
	"gorgonia.org/tensor"
)

// HVPFlat sets out = H·v over the flat parameter vector (length Dim(), the
// concatenation of all parameters in model order; see ParamBlocks). Values
// are converted to and from the model's dtype.
func (e *Engine) HVPFlat(v, out []float64) error {
	if err := e.enter(); err != nil {
		return err
	}
	defer e.exit()
	return e.hvpFlat(v, out)
}

// hvpFlat is HVPFlat without the guard.
func (e *Engine) hvpFlat(v, out []float64) error {
	if len(v) != e.dim || len(out) != e.dim {
		return fmt.Errorf("hessian: HVPFlat: lengths %d and %d, want Dim() = %d", len(v), len(out), e.dim)
	}
	if e.fv == nil {
		e.fv, e.fo = optim.Like(e.params), optim.Like(e.params)
	}
	e.unflatten(v, e.fv)
	if err := e.hvp(e.fv, e.fo); err != nil {
		return err
	}
	e.flatten(e.fo, out)
	return nil
}

// GradFlat copies the gradient of the last LossGrad into out (length Dim()).
func (e *Engine) GradFlat(out []float64) error {
	if err := e.enter(); err != nil {
		return err
	}
	defer e.exit()
	return e.gradFlat(out)
}

// gradFlat is GradFlat without the guard.
func (e *Engine) gradFlat(out []float64) error {
	if len(out) != e.dim {
		return fmt.Errorf("hessian: GradFlat: length %d, want Dim() = %d", len(out), e.dim)
	}
	e.flatten(e.grads, out)
	return nil
}

func (e *Engine) flatten(ts []*tensor.Dense, out []float64) {
	for i, b := range e.blocks {
		dst := out[b.Offset : b.Offset+b.Size]
		if ts[i].Dtype() == tensor.Float64 {
			copy(dst, ts[i].Float64s())
			continue
		}
		for j, x := range ts[i].Float32s() {
			dst[j] = float64(x)
		}
	}
}

func (e *Engine) unflatten(v []float64, ts []*tensor.Dense) {
	for i, b := range e.blocks {
		src := v[b.Offset : b.Offset+b.Size]
		if ts[i].Dtype() == tensor.Float64 {
			copy(ts[i].Float64s(), src)
			continue
		}
		d := ts[i].Float32s()
		for j, x := range src {
			d[j] = float32(x)
		}
	}
}

// gradFlatNow runs the gradient graph at the current parameters and
// flattens ∇L into out without touching Params' gradients or running stats.
func (e *Engine) gradFlatNow(out []float64) (float64, error) {
	p, err := e.current()
	if err != nil {
		return 0, err
	}
	if err := p.run(p.mGrad); err != nil {
		return 0, err
	}
	loss, err := lossValue(p.loss, "loss")
	if err != nil {
		return loss, err
	}
	if e.ftmp == nil {
		e.ftmp = optim.Like(e.params)
	}
	if err := e.readInto(p.grads, e.ftmp, "gradient"); err != nil {
		return loss, err
	}
	e.flatten(e.ftmp, out)
	return loss, nil
}

// FiniteDiffHVP sets out ≈ H·v by central differences of the gradient,
// (∇L(θ + εv) − ∇L(θ − εv)) / 2ε, restoring θ afterwards. It is a
// cross-check for HVP, meaningful in float64 (ε ≈ 1e-5 gives ~1e-8 relative
// error); batch-norm running statistics are not updated.
func (e *Engine) FiniteDiffHVP(v, out []float64, eps float64) error {
	if err := e.enter(); err != nil {
		return err
	}
	defer e.exit()
	return e.finiteDiffHVP(v, out, eps)
}

// finiteDiffHVP is FiniteDiffHVP without the guard.
func (e *Engine) finiteDiffHVP(v, out []float64, eps float64) error {
	if len(v) != e.dim || len(out) != e.dim {
		return fmt.Errorf("hessian: FiniteDiffHVP: lengths %d and %d, want Dim() = %d", len(v), len(out), e.dim)
	}
	if !(eps > 0) {
		return fmt.Errorf("hessian: FiniteDiffHVP: step %v must be positive", eps)
	}
	theta := make([]float64, e.dim)
	vals := make([]*tensor.Dense, len(e.params))
	for i, p := range e.params {
		vals[i] = p.Value
	}
	e.flatten(vals, theta)
	defer e.unflatten(theta, vals)
	shifted := make([]float64, e.dim)
	gp, gm := make([]float64, e.dim), make([]float64, e.dim)
	for i := range shifted {
		shifted[i] = theta[i] + eps*v[i]
	}
	e.unflatten(shifted, vals)
	if _, err := e.gradFlatNow(gp); err != nil {
		return err
	}
	for i := range shifted {
		shifted[i] = theta[i] - eps*v[i]
	}
	e.unflatten(shifted, vals)
	if _, err := e.gradFlatNow(gm); err != nil {
		return err
	}
	for i := range out {
		out[i] = (gp[i] - gm[i]) / (2 * eps)
	}
	return nil
}

// Loss evaluates the training-mode loss of the current batch at the current
// parameters without computing or storing anything else of note (batch-norm
// running statistics are not updated).
func (e *Engine) Loss() (float64, error) {
	if err := e.enter(); err != nil {
		return 0, err
	}
	defer e.exit()
	return e.loss()
}

// loss is Loss without the guard.
func (e *Engine) loss() (float64, error) {
	if e.flat == nil {
		e.flat = make([]float64, e.dim)
	}
	return e.gradFlatNow(e.flat)
}
