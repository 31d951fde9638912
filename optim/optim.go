package optim

import (
	"errors"
	"fmt"

	"github.com/curvopt/curvopt/internal/num"
	"github.com/curvopt/curvopt/optim/internal/kernel"
	"gorgonia.org/tensor"

	"github.com/curvopt/curvopt/internal/nonfinite"
)

// Param is one named parameter tensor and the gradient of the current batch's
// loss with respect to it. An optimizer's Step updates Value in place and only
// reads Grad. Value and Grad must have the same shape and dtype (float32 or
// float64) and be dense, contiguous tensors. Names are unique within a
// parameter list, and no two of its tensors (values and gradients) share
// memory: Step refuses a list that breaks either rule.
type Param struct {
	Name  string
	Value *tensor.Dense
	Grad  *tensor.Dense
}

// Needs says which curvature queries an optimizer will make, so that a
// curvature engine builds only the graphs it requires: an Adam run never pays
// for a Hessian-vector-product graph. It plays the role of gonum/optimize's
// Method.Uses.
type Needs struct {
	// HVP: the optimizer calls Oracle.HVP.
	HVP bool
	// SampledGrad: the optimizer calls Oracle.SampledGrad.
	SampledGrad bool
}

// Oracle answers curvature queries for the current batch at the current
// parameter values (the values in Param.Value at the time of the call, so a
// query made after an in-place update sees the updated parameters).
//
// Both methods take and fill one tensor per parameter, in the order of the
// params slice given to Step, each with its parameter's shape and dtype.
type Oracle interface {
	// HVP sets out = H·v, where H is the Hessian of the batch loss with
	// respect to all parameters (exact, by double backprop in the hessian
	// package).
	HVP(v, out []*tensor.Dense) error
	// SampledGrad sets out to the gradient of the batch loss taken against
	// labels drawn from the model's own predictive distribution (softmax of
	// the logits): the Gauss-Newton-Bartlett estimator's ĝ, whose square
	// ĝ⊙ĝ estimates diag of the Gauss-Newton matrix divided by the batch size.
	SampledGrad(out []*tensor.Dense) error
}

// ErrNotProvided is returned (wrapped) by an Oracle that cannot answer a
// query, for example because it was built without the HVP graph.
var ErrNotProvided = errors.New("curvature query not provided by this oracle")

// Provider is implemented by oracles that know in advance which queries they
// answer (the hessian engine builds only the graphs its Needs require).
type Provider interface {
	Provides() Needs
}

// CheckOracle reports, before anything changes, whether o can answer the
// queries in needs: a nil oracle cannot answer any, and a Provider answers
// only what it Provides. The error names the missing query and wraps
// ErrNotProvided. Oracles that are not Providers are trusted until they fail.
func CheckOracle(prefix string, needs Needs, o Oracle) error {
	if !needs.HVP && !needs.SampledGrad {
		return nil
	}
	var have Needs
	switch p := o.(type) {
	case nil:
	case Provider:
		have = p.Provides()
	default:
		return nil
	}
	switch {
	case needs.HVP && !have.HVP:
		return fmt.Errorf("%s: Step needs an oracle that answers HVP (Hessian-vector products), got %T: %w", prefix, o, ErrNotProvided)
	case needs.SampledGrad && !have.SampledGrad:
		return fmt.Errorf("%s: Step needs an oracle that answers SampledGrad (gradients against labels sampled from the model), got %T: %w", prefix, o, ErrNotProvided)
	}
	return nil
}

// ErrNonFinite is wrapped by every error that reports a NaN or ±Inf in a
// gradient, a curvature estimate or a loss, so that a caller can tell
// divergence from other failures with errors.Is. It is the one sentinel for
// non-finite values in curvopt (spectrum.ErrNonFinite is the same value).
var ErrNonFinite = nonfinite.Err

// NoCurvature is an Oracle that answers no query. Pass it (or nil) to
// first-order optimizers.
type NoCurvature struct{}

var (
	_ Oracle   = NoCurvature{}
	_ Provider = NoCurvature{}
)

// Provides returns no queries.
func (NoCurvature) Provides() Needs { return Needs{} }

// HVP returns ErrNotProvided.
func (NoCurvature) HVP(v, out []*tensor.Dense) error {
	return fmt.Errorf("HVP: %w", ErrNotProvided)
}

// SampledGrad returns ErrNotProvided.
func (NoCurvature) SampledGrad(out []*tensor.Dense) error {
	return fmt.Errorf("SampledGrad: %w", ErrNotProvided)
}

// Optimizer is what every curvopt optimizer implements.
//
// An optimizer is not safe for concurrent use: a call of Step, State,
// LoadState, SetLR, SetGroups, Close (or Requester.Request) made while
// another of these is running returns an error wrapping ErrConcurrentUse and
// changes nothing. After Close they return an error wrapping ErrClosed.
// Embedding a Base (which embeds a Hyper) provides the guard (Begin,
// BeginStep) and State, LoadState from a declared Layout.
type Optimizer interface {
	// Name is the optimizer's short name ("sgd", "adam", "sophiag", ...),
	// recorded in exported state.
	Name() string
	// Needs declares the curvature queries Step will make.
	Needs() Needs
	// Step updates params[i].Value in place from params[i].Grad and, where
	// Needs says so, curvature from o. The parameter list must be the same
	// (names, shapes, dtypes, order) at every call, with unique names and
	// tensors that share no memory (Hyper.BeginStep lists the checks). An
	// update that would make a parameter or a state entry NaN or ±Inf is
	// refused with an error wrapping ErrNonFinite that names the parameter,
	// the quantity and the entry. On error no parameter value and no state
	// has changed unless the error says otherwise.
	Step(params []Param, o Oracle) error
	// State exports the optimizer's state (moments, step counter, random
	// state) for a checkpoint. The result shares no memory with the
	// optimizer.
	State() (*State, error)
	// LoadState replaces the optimizer's state with s, after checking that s
	// was exported by an optimizer of the same kind for the same parameters
	// (names, shapes and dtypes) and holds only finite values; otherwise it
	// returns an error saying what does not match (for a NaN or ±Inf, the
	// parameter, slot and entry, wrapping ErrNonFinite) and changes nothing.
	LoadState(params []Param, s *State) error
	// LR returns the current base learning rate; SetLR changes it (a
	// schedule calls it before each step), refusing a value that is not
	// finite and > 0. Groups returns the parameter groups (nil: one group
	// of all parameters with the configured weight decay) and SetGroups
	// replaces them (see Group). Embedding a Hyper implements all four.
	LR() float64
	SetLR(lr float64) error
	Groups() []Group
	SetGroups(groups []Group) error
	// Close releases what the optimizer holds (M-FAC: its window and
	// helper goroutine); afterwards every call above except Name, Needs,
	// LR and Groups returns an error wrapping ErrClosed. Closing twice is
	// not an error. Embedding a Hyper implements it for an optimizer that
	// holds nothing beyond memory.
	Close() error
}

// Diagnostics is implemented by optimizers that report per-step
// diagnostics, such as Sophia's win rate. The map is keyed by metric name;
// it reflects the most recent Step.
type Diagnostics interface {
	Diagnostics() map[string]float64
}

// CheckParams verifies that every parameter is usable by an optimizer: a
// name, a float32 or float64 value, a gradient of the same shape and dtype,
// and a gradient with only finite entries. The error names the parameter.
// Optimizers call it before changing anything, so a bad gradient leaves all
// parameters unchanged.
func CheckParams(prefix string, params []Param) error {
	if len(params) == 0 {
		return fmt.Errorf("%s: no parameters", prefix)
	}
	for i, p := range params {
		if err := checkParam(p); err != nil {
			name := p.Name
			if name == "" {
				name = fmt.Sprintf("#%d", i)
			}
			return fmt.Errorf("%s: param %q: %w", prefix, name, err)
		}
	}
	return nil
}

func checkParam(p Param) error {
	if p.Value == nil {
		return errors.New("nil value")
	}
	if p.Grad == nil {
		return errors.New("nil gradient")
	}
	if p.Value.Dtype() != p.Grad.Dtype() {
		return fmt.Errorf("value dtype %v but gradient dtype %v", p.Value.Dtype(), p.Grad.Dtype())
	}
	if !p.Value.Shape().Eq(p.Grad.Shape()) {
		return fmt.Errorf("value shape %v but gradient shape %v", p.Value.Shape(), p.Grad.Shape())
	}
	if err := kernel.CheckDense("value", p.Value); err != nil {
		return err
	}
	if err := kernel.CheckDense("gradient", p.Grad); err != nil {
		return err
	}
	switch p.Grad.Dtype() {
	case tensor.Float64:
		g := p.Grad.Float64s()
		if i := num.NonFinite(g); i >= 0 {
			return fmt.Errorf("gradient entry %d is %v: %w", i, g[i], ErrNonFinite)
		}
	case tensor.Float32:
		g := p.Grad.Float32s()
		if i := num.NonFinite(g); i >= 0 {
			return fmt.Errorf("gradient entry %d is %v: %w", i, g[i], ErrNonFinite)
		}
	default:
		return fmt.Errorf("unsupported dtype %v (want float32 or float64)", p.Value.Dtype())
	}
	return nil
}

// CheckFinite returns an error naming the parameter and entry of the first
// non-finite value among ts (one tensor per parameter, same order as params).
// what describes the tensors ("Hutchinson estimate", "sampled gradient").
func CheckFinite(prefix, what string, params []Param, ts []*tensor.Dense) error {
	for i, t := range ts {
		var j int
		switch t.Dtype() {
		case tensor.Float64:
			j = num.NonFinite(t.Float64s())
		case tensor.Float32:
			j = num.NonFinite(t.Float32s())
		default:
			return fmt.Errorf("%s: %s for param %q: unsupported dtype %v", prefix, what, params[i].Name, t.Dtype())
		}
		if j >= 0 {
			return fmt.Errorf("%s: %s for param %q: entry %d: %w", prefix, what, params[i].Name, j, ErrNonFinite)
		}
	}
	return nil
}

// Float is the element type of parameter tensors (an alias of the
// module's one constraint, for optimizers written outside it).
type Float = num.Float

// Like allocates one zero tensor per parameter with its shape and dtype.
func Like(params []Param) []*tensor.Dense {
	out := make([]*tensor.Dense, len(params))
	for i, p := range params {
		out[i] = tensor.New(tensor.Of(p.Value.Dtype()), tensor.WithShape(p.Value.Shape().Clone()...))
	}
	return out
}
