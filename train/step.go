package train

import (
	"errors"
	"fmt"
	"math"
	"reflect"

	"github.com/curvopt/curvopt/hessian"
	"github.com/curvopt/curvopt/optim"
	"gorgonia.org/tensor"
)

// Oracle is what one training step needs from a curvature engine
// (hessian.Engine implements it): the parameters with their gradient
// tensors, the loss and gradient of the current batch, the same run with a
// Hessian-vector product, and the optimizer's own queries (optim.Oracle),
// answered at the parameters of the moment they are made.
type Oracle interface {
	optim.Oracle
	Params() []optim.Param
	LossGrad() (float64, error)
	LossGradHVP(v, out []*tensor.Dense) (float64, error)
}

// StepResult is what Step measured.
type StepResult struct {
	// Loss is the batch loss before the update.
	Loss float64
	// GradNorm is the global gradient norm before clipping.
	GradNorm float64
}

// Step takes one optimization step of opt on eng's current batch. Data
// flows one way:
//
//  1. before the graph runs, the optimizer says what curvature it wants at
//     the current parameters (optim.Requester; SophiaH and AdaHessian ask
//     for H·z at their probe z);
//  2. one run of the graph computes the loss, the gradient and that
//     request (LossGradHVP), or the loss and gradient alone (LossGrad), and
//     the answer is handed to the optimizer as data (HVPRequest.Answer);
//  3. the gradient is clipped to the global norm clipNorm (≤ 0: off);
//  4. opt.Step updates the parameters in place; any query it makes after
//     its update (SophiaG's sampled-label gradient) goes to eng and is
//     computed at the updated parameters. With clipNorm > 0 the
//     sampled-label gradient is clipped to the same norm before the
//     optimizer sees it, as the Sophia reference's training script does
//     (clip_grad_norm_ before update_hessian()).
//
// A non-finite loss or gradient norm is an error wrapping
// optim.ErrNonFinite, returned before the update.
//
// A nil eng or opt is an error, as is a NaN clipNorm.
func Step(eng Oracle, opt optim.Optimizer, clipNorm float64) (StepResult, error) {
	var res StepResult
	switch {
	case isNil(eng):
		return res, errors.New("train: step: nil oracle (engine)")
	case isNil(opt):
		return res, errors.New("train: step: nil optimizer")
	case math.IsNaN(clipNorm):
		return res, fmt.Errorf("train: step: clip norm %v: want a number (<= 0: off)", clipNorm)
	}
	params := eng.Params()
	var req *optim.HVPRequest
	if r, ok := opt.(optim.Requester); ok {
		var err error
		if req, err = r.Request(params); err != nil {
			return res, fmt.Errorf("%s: curvature request: %w", opt.Name(), err)
		}
	}
	var err error
	if req != nil {
		res.Loss, err = eng.LossGradHVP(req.V, req.Out)
		if err == nil {
			req.Answer()
		}
	} else {
		res.Loss, err = eng.LossGrad()
	}
	if err != nil {
		return res, err
	}
	if !finite(res.Loss) {
		return res, fmt.Errorf("the loss is %v: %w", res.Loss, optim.ErrNonFinite)
	}
	res.GradNorm = optim.ClipGlobalNorm(params, clipNorm)
	if !finite(res.GradNorm) {
		return res, fmt.Errorf("the gradient norm is %v: %w", res.GradNorm, optim.ErrNonFinite)
	}
	var o optim.Oracle = eng
	if clipNorm > 0 && opt.Needs().SampledGrad {
		o = &clipSampled{Oracle: eng, norm: clipNorm}
	}
	if err := opt.Step(params, o); err != nil {
		return res, err
	}
	return res, nil
}

var _ Oracle = (*hessian.Engine)(nil)

// isNil reports whether v is nil or an interface holding a nil pointer (a
// typed nil would pass v == nil and panic at its first method call).
func isNil(v any) bool {
	if v == nil {
		return true
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Func, reflect.Interface, reflect.Chan:
		return rv.IsNil()
	}
	return false
}
