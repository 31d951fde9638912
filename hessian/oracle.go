package hessian

// The batch oracle: the current batch, and the loss, gradient, H·v and
// sampled-label gradient on it at the current parameters.

import (
	"errors"
	"fmt"
	"github.com/curvopt/curvopt/internal/num"
	"math"

	"github.com/curvopt/curvopt/nn"
	"github.com/curvopt/curvopt/optim"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// checkInput checks that x is a batch [N, example...] (or [N, Π example])
// of the engine's dtype and returns N.
func (e *Engine) checkInput(x *tensor.Dense, what string) (int, error) {
	if x == nil {
		return 0, fmt.Errorf("hessian: %s: nil input", what)
	}
	if x.Dtype() != e.dt {
		return 0, fmt.Errorf("hessian: %s: input dtype %v, model dtype %v", what, x.Dtype(), e.dt)
	}
	xs := x.Shape()
	per := 1
	for _, d := range e.example {
		per *= d
	}
	if xs.Dims() < 2 || xs[0] < 1 || xs.TotalSize() != xs[0]*per {
		return 0, fmt.Errorf("hessian: %s: input shape %v, want [N %v]", what, xs, e.example)
	}
	return xs[0], nil
}

// SetBatch makes (x, labels) the current batch. x has shape [N,
// input_shape...] (or [N, Π input_shape]) and the model's dtype; labels has
// one class in [0, classes) per row of the logits (N for a classifier; N·T,
// sample by sample, for a sequence model with T logit rows per example).
// Both are copied. On an engine from New, the first batch of each size N
// compiles that size's graphs; on one from NewGraph, N must be the graph's
// batch size. A model with dropout draws new masks here: the gradient, H·v
// and sampled gradient of one batch see the same masks.
func (e *Engine) SetBatch(x *tensor.Dense, labels []int) error {
	if err := e.enter(); err != nil {
		return err
	}
	defer e.exit()
	return e.setBatch(x, labels)
}

// setBatch is SetBatch without the guard.
func (e *Engine) setBatch(x *tensor.Dense, labels []int) error {
	n, err := e.checkInput(x, "SetBatch")
	if err != nil {
		return err
	}
	if k := e.cfg.gnbBatch; e.needs.SampledGrad && n < k {
		return fmt.Errorf("hessian: SetBatch: batch of %d rows is smaller than the sampled-gradient batch %d (WithGNBBatch)", n, k)
	}
	p, err := e.prog(n)
	if err != nil {
		return fmt.Errorf("hessian: SetBatch: %w", err)
	}
	if err := e.checkLabels(labels, p.y.Shape()[0], n, "SetBatch"); err != nil {
		return err
	}
	if err := copyDense(p.x, x); err != nil {
		return fmt.Errorf("hessian: SetBatch: %w", err)
	}
	e.setTargets(p.y, labels)
	if e.model != nil && e.model.DropoutState() != nil {
		e.model.DropoutState().Next() // new dropout masks for the new batch
	}
	if e.user != nil && e.user.drop != nil {
		e.user.drop.Next() // a user graph's stock dropouts, likewise
	}
	e.cur = p
	e.labels = append(e.labels[:0], labels...)
	e.ran = false
	return nil
}

// checkLabels checks that labels has one class in [0, classes) per row of
// the logits (rows; a multiple of the batch's n inputs for a model with
// several predictions per input).
func (e *Engine) checkLabels(labels []int, rows, n int, what string) error {
	if len(labels) != rows {
		return fmt.Errorf("hessian: %s: %d labels for a batch of %d inputs, want one per row of the logits (%d)", what, len(labels), n, rows)
	}
	for i, l := range labels {
		if l < 0 || l >= e.classes {
			return fmt.Errorf("hessian: %s: label %d at row %d out of range [0, %d)", what, l, i, e.classes)
		}
	}
	return nil
}

// setTargets writes the one-hot rows of labels into y.
func (e *Engine) setTargets(y *tensor.Dense, labels []int) {
	if e.dt == tensor.Float64 {
		oneHot(y.Float64s(), labels, e.classes)
	} else {
		oneHot(y.Float32s(), labels, e.classes)
	}
}

func oneHot[T nn.Float](y []T, labels []int, c int) {
	clear(y)
	for r, l := range labels {
		y[r*c+l] = 1
	}
}

func (e *Engine) current() (*trainProg, error) {
	if e.cur == nil {
		return nil, errors.New("hessian: no batch set (call SetBatch first)")
	}
	return e.cur, nil
}

// lossValue reads the scalar loss node and checks it is finite.
func lossValue(n *gorgonia.Node, what string) (float64, error) {
	d, ok := n.Value().(*tensor.Dense)
	if !ok {
		return 0, fmt.Errorf("hessian: %s not computed", what)
	}
	l := first(d)
	if math.IsNaN(l) || math.IsInf(l, 0) {
		return l, fmt.Errorf("hessian: %s is %v: %w", what, l, optim.ErrNonFinite)
	}
	return l, nil
}

// readInto checks the node values for non-finite entries and copies them
// into out (nil nodes give zeros).
func (e *Engine) readInto(nodes []*gorgonia.Node, out []*tensor.Dense, what string) error {
	for i, n := range nodes {
		if n == nil {
			continue
		}
		d, ok := n.Value().(*tensor.Dense)
		if !ok {
			return fmt.Errorf("hessian: %s of %q not computed", what, e.params[i].Name)
		}
		if err := finite(d); err != nil {
			return fmt.Errorf("hessian: %s of %q: %w", what, e.params[i].Name, err)
		}
	}
	for i, n := range nodes {
		if n == nil {
			fillConst(out[i], 0)
			continue
		}
		if err := copyDense(out[i], n.Value().(*tensor.Dense)); err != nil {
			return fmt.Errorf("hessian: %s of %q: %w", what, e.params[i].Name, err)
		}
	}
	return nil
}

// LossGrad runs the forward and backward pass on the current batch at the
// current parameters, fills Params()[i].Grad with ∇L and returns the loss
// L = (1/N) Σₙ [log Σⱼ exp(zₙⱼ) − zₙ,labelₙ]. Batch-norm running statistics
// are updated. A non-finite loss or gradient is an error naming it, and then
// the gradients are left unchanged.
func (e *Engine) LossGrad() (float64, error) {
	if err := e.enter(); err != nil {
		return 0, err
	}
	defer e.exit()
	return e.lossGrad()
}

// lossGrad is LossGrad without the guard.
func (e *Engine) lossGrad() (float64, error) {
	p, err := e.current()
	if err != nil {
		return 0, err
	}
	return e.trainRun(p, p.mGrad)
}

func (e *Engine) trainRun(p *trainProg, vm gorgonia.VM) (float64, error) {
	if err := p.run(vm); err != nil {
		return 0, err
	}
	loss, err := lossValue(p.loss, "loss")
	if err != nil {
		return loss, err
	}
	if err := e.readInto(p.grads, e.grads, "gradient"); err != nil {
		return loss, err
	}
	if p.net != nil {
		if err := e.model.UpdateRunningStats(p.net); err != nil {
			return loss, fmt.Errorf("hessian: %w", err)
		}
	}
	if err := e.saveLogits(p); err != nil {
		return loss, err
	}
	e.ran = true
	return loss, nil
}

// LossGradHVP is LossGrad that also computes out = H·v, at the same
// parameters, in the same run of the graph: the fused pass a Hutchinson
// optimizer's step asks for before its update (optim.Requester). v and out
// hold one tensor per parameter, with its shape and dtype. Nothing is
// cached: a later HVP runs the graph again at the parameters of that time.
// It needs an engine built with Needs.HVP.
func (e *Engine) LossGradHVP(v, out []*tensor.Dense) (float64, error) {
	if err := e.enter(); err != nil {
		return 0, err
	}
	defer e.exit()
	return e.lossGradHVP(v, out)
}

// lossGradHVP is LossGradHVP without the guard.
func (e *Engine) lossGradHVP(v, out []*tensor.Dense) (float64, error) {
	p, err := e.current()
	if err != nil {
		return 0, err
	}
	if p.mHVP == nil {
		return 0, fmt.Errorf("hessian: LossGradHVP: %w (engine built without Needs.HVP)", optim.ErrNotProvided)
	}
	if err := e.checkTensors(v, "direction"); err != nil {
		return 0, err
	}
	if err := e.checkTensors(out, "output"); err != nil {
		return 0, err
	}
	for i := range v {
		if err := copyDense(p.v[i], v[i]); err != nil {
			return 0, err
		}
	}
	loss, err := e.trainRun(p, p.mHVP)
	if err != nil {
		return loss, err
	}
	return loss, e.readInto(p.hv, out, "Hessian-vector product")
}

// Logits returns the logits [N, classes] of the last LossGrad (or
// LossGradHVP) run, copied when that run finished; the tensor is owned by
// the engine and overwritten by the next such run. Nil before the first run.
func (e *Engine) Logits() *tensor.Dense {
	if !e.ran {
		return nil
	}
	return e.logits
}

// saveLogits copies the current run's logits.
func (e *Engine) saveLogits(p *trainProg) error {
	if p.logitN == nil { // a user's cost without logits (NewGraph)
		return nil
	}
	v, ok := p.logitN.Value().(*tensor.Dense)
	if !ok {
		return errors.New("hessian: logits not computed")
	}
	if e.logits == nil || !e.logits.Shape().Eq(v.Shape()) {
		e.logits = tensor.New(tensor.Of(e.dt), tensor.WithShape(v.Shape().Clone()...))
	}
	return copyDense(e.logits, v)
}

// Labels returns the labels of the current batch (shared; do not modify).
func (e *Engine) Labels() []int { return e.labels }

func (e *Engine) checkTensors(ts []*tensor.Dense, what string) error {
	if len(ts) != len(e.params) {
		return fmt.Errorf("hessian: %d %s tensors for %d parameters", len(ts), what, len(e.params))
	}
	for i, t := range ts {
		p := e.params[i]
		if t == nil {
			return fmt.Errorf("hessian: %s for %q is nil", what, p.Name)
		}
		if t.Dtype() != e.dt || !t.Shape().Eq(p.Value.Shape()) {
			return fmt.Errorf("hessian: %s for %q has %v %v, want %v %v", what, p.Name, t.Dtype(), t.Shape(), e.dt, p.Value.Shape())
		}
	}
	return nil
}

// HVP sets out = H·v, H the Hessian of the current batch's loss at the
// current parameters, exactly (double backprop through the graph). It
// implements optim.Oracle; without Needs.HVP it returns optim.ErrNotProvided.
func (e *Engine) HVP(v, out []*tensor.Dense) error {
	if err := e.enter(); err != nil {
		return err
	}
	defer e.exit()
	return e.hvp(v, out)
}

// hvp is HVP without the guard.
func (e *Engine) hvp(v, out []*tensor.Dense) error {
	p, err := e.current()
	if err != nil {
		return err
	}
	if p.mHVP == nil {
		return fmt.Errorf("hessian: HVP: %w (engine built without Needs.HVP)", optim.ErrNotProvided)
	}
	if err := e.checkTensors(v, "direction"); err != nil {
		return err
	}
	if err := e.checkTensors(out, "output"); err != nil {
		return err
	}
	for i := range v {
		if err := copyDense(p.v[i], v[i]); err != nil {
			return err
		}
	}
	if err := p.run(p.mHV); err != nil {
		return err
	}
	if _, err := lossValue(p.loss, "loss"); err != nil {
		return err
	}
	return e.readInto(p.hv, out, "Hessian-vector product")
}

// SampledGrad sets out to the gradient of the mean cross-entropy of the
// current batch against labels drawn from softmax(logits) at the current
// parameters (Sophia's Gauss-Newton-Bartlett ĝ), sampling and
// differentiating in one run; a sequence model gets a label drawn at every
// position (every row of the logits), as Sophia does for GPT-2. With
// WithGNBBatch(n) only the first n inputs of the batch are used (their
// n·T logit rows): ĝ is then the gradient of the mean cross-entropy over
// those rows (set SophiaG's BatchSize, its bs, to the number of rows
// averaged: n, or n·T for a sequence model; train does). The run includes a forward
// pass, since the parameters usually changed since the last LossGrad
// (SophiaG queries after its update). It implements optim.Oracle; without
// Needs.SampledGrad it returns optim.ErrNotProvided.
func (e *Engine) SampledGrad(out []*tensor.Dense) error {
	if err := e.enter(); err != nil {
		return err
	}
	defer e.exit()
	return e.sampledGrad(out)
}

// sampledGrad is SampledGrad without the guard.
func (e *Engine) sampledGrad(out []*tensor.Dense) error {
	p, err := e.current()
	if err != nil {
		return err
	}
	if !e.needs.SampledGrad {
		return fmt.Errorf("hessian: SampledGrad: %w (engine built without Needs.SampledGrad)", optim.ErrNotProvided)
	}
	if err := e.checkTensors(out, "output"); err != nil {
		return err
	}
	s, q := p.gnb, p
	if s == nil {
		// New with WithGNBBatch: the first rows of the batch on their own graph.
		s, q = e.gnb.gnb, e.gnb
		xs := e.gnb.x
		if err := copyPrefix(xs, p.x); err != nil {
			return fmt.Errorf("hessian: SampledGrad: %w", err)
		}
	}
	e.lastGNB = s
	if err := q.run(s.m); err != nil {
		return err
	}
	if _, err := lossValue(s.loss, "sampled-label loss"); err != nil {
		return err
	}
	return e.readInto(s.grads, out, "sampled gradient")
}

// SampledLabels returns the labels drawn by the last SampledGrad, one per
// row it used (shared, overwritten by the next call); nil if there was none.
func (e *Engine) SampledLabels() []int {
	if e.lastGNB == nil {
		return nil
	}
	return e.lastGNB.labels
}

// Hutchinson sets out = z⊙(H·z) for a probe z drawn from the engine's probe
// source (WithProbes), a one-sample unbiased estimate of diag(H) when z has
// independent entries of mean 0 and variance 1. It is optim.Hutchinson,
// the estimator the optimizers use, asked at the current parameters; a
// NaN or ±Inf in H·z is an error wrapping optim.ErrNonFinite.
func (e *Engine) Hutchinson(out []*tensor.Dense) error {
	if err := e.enter(); err != nil {
		return err
	}
	defer e.exit()
	return e.hutchinson(out)
}

// hutchinson is Hutchinson without the guard.
func (e *Engine) hutchinson(out []*tensor.Dense) error {
	if err := e.checkTensors(out, "output"); err != nil {
		return err
	}
	if e.hutch == nil {
		e.hutch = optim.NewHutchinson("hessian: Hutchinson", e.cfg.probes, 1)
	}
	e.hutchCalls++
	d, err := e.hutch.Estimate(e.params, unguarded{e}, e.hutchCalls)
	if err != nil {
		e.hutchCalls--
		return err
	}
	e.hutch.Used()
	for i := range out {
		num.CopyInto(out[i], d[i])
	}
	return nil
}

// unguarded is the engine as an optim.Oracle for a query made inside one
// of its guarded calls (the guard refuses a second entry).
type unguarded struct{ e *Engine }

func (u unguarded) HVP(v, out []*tensor.Dense) error { return u.e.hvp(v, out) }

func (u unguarded) SampledGrad(out []*tensor.Dense) error { return u.e.sampledGrad(out) }
