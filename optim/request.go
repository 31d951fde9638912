package optim

import "gorgonia.org/tensor"

// HVPRequest is a Hessian-vector product an optimizer asks for before the
// gradient is computed, at the current parameters: the caller computes
// Out = H·V (for example in the same graph run as the loss and gradient,
// hessian.Engine.LossGradHVP), then calls Answer, and then calls Step. Step
// uses Out as data instead of querying the oracle. An unanswered request is
// harmless: Step then asks the oracle for H·V itself, at the parameters of
// that moment.
//
// V and Out have one tensor per parameter, with its shape and dtype; they
// are owned by the optimizer and valid until the following Step returns.
type HVPRequest struct {
	V, Out   []*tensor.Dense
	answered bool
}

// Answer records that Out holds H·V at the current parameters.
func (r *HVPRequest) Answer() { r.answered = true }

// Answered reports whether Answer was called since the request was made.
func (r *HVPRequest) Answered() bool { return r.answered }

// take reports whether the request was answered and resets it, so that an
// answer is used at most once.
func (r *HVPRequest) take() bool {
	a := r.answered
	r.answered = false
	return a
}

// Requester is implemented by optimizers that know, before the gradient is
// computed, which curvature their coming Step needs at the current
// parameters (AdaHessian and SophiaH: H·z for the probe z they draw). A
// training step asks first, lets the curvature engine compute the request
// together with the gradient, and hands the answer over as data:
//
//	req, err := opt.Request(params)       // nil: no curvature wanted now
//	if req != nil {
//		loss, err = eng.LossGradHVP(req.V, req.Out)
//		req.Answer()
//	} else {
//		loss, err = eng.LossGrad()
//	}
//	err = opt.Step(params, eng)           // queries made after the update go to eng
//
// Calling Request again before that Step returns the same request (the same
// probe).
type Requester interface {
	Request(params []Param) (*HVPRequest, error)
}
