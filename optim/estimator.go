package optim

import (
	"fmt"

	"github.com/curvopt/curvopt/optim/internal/kernel"
	"gorgonia.org/tensor"
)

// DiagEstimator is a stochastic estimate of the diagonal of the loss's
// curvature, the piece that Sophia and AdaHessian take as optax's
// hessian_diagonal_fn: SophiaG and SophiaH are Sophia with GNB and
// Hutchinson, and AdaHessian takes either. An implementation says what it
// needs from the oracle (Needs), when it runs relative to the update
// (Timing, Due) and what state it keeps (Layout); Estimate computes it.
//
// The life cycle within one Step at step t (1-based):
//
//	if Due(t) {
//		d, err := Estimate(params, o, t)  // at θ_t (Before) or θ_{t+1} (After)
//		... check and use d; on success:
//		Used()
//	}
//
// An estimator that runs Before the update can offer its query to the
// training step as an HVPRequest (Request), to be answered together with
// the gradient.
type DiagEstimator interface {
	// Kind names the estimator in errors and descriptions ("hutchinson",
	// "gnb").
	Kind() string
	// What describes the estimate in errors ("Hutchinson estimate z⊙(H·z)").
	What() string
	// Needs declares the oracle queries Estimate makes.
	Needs() Needs
	// Timing says whether the estimate is taken before the update (at the
	// parameters the gradient was computed at) or after it.
	Timing() Timing
	// Due reports whether step t computes a fresh estimate.
	Due(t int64) bool
	// Request returns the query step t needs before the update, to be
	// answered with the gradient, or nil (not due, or nothing to request).
	// Calling it again before that step returns the same request.
	Request(params []Param, t int64) (*HVPRequest, error)
	// Estimate returns the estimate for step t at the current parameters,
	// one tensor per parameter (owned by the estimator, valid until the
	// next Estimate and free to overwrite), checked finite. On error
	// (naming the parameter) the estimator is as before.
	Estimate(params []Param, o Oracle, t int64) ([]*tensor.Dense, error)
	// Used marks the last estimate as accepted by the optimizer.
	Used()
	// Layout declares the estimator's state (blobs, scratch to forget on
	// LoadState), to be merged into the optimizer's (Layout.With).
	Layout() Layout
}

// Timing is when a DiagEstimator runs relative to the update of a step.
type Timing int

const (
	// Before: at step t = 1, k+1, 2k+1, …, before the update, at the
	// parameters of the gradient (SophiaH, AdaHessian).
	Before Timing = iota
	// After: at step t = k, 2k, …, after the update, at the updated
	// parameters (SophiaG, as train_sophiag.py does).
	After
)

func (t Timing) String() string {
	if t == After {
		return "after"
	}
	return "before"
}

// due is the refresh schedule every k ≥ 1 steps: Before at t = 1, k+1, …;
// After at t = k, 2k, … (the same estimates, taken at the end of the step
// before).
func due(t, k int64, when Timing) bool {
	if when == After {
		return t%k == 0
	}
	return (t-1)%k == 0
}

// With returns l with other's slots, blobs, parts, load hooks appended
// (and other's Upgrade when l has none).
func (l Layout) With(other Layout) Layout {
	l.Slots = append(append([]string(nil), l.Slots...), other.Slots...)
	l.Blobs = append(append([]Blob(nil), l.Blobs...), other.Blobs...)
	l.Parts = append(append([]Part(nil), l.Parts...), other.Parts...)
	l.OnLoad = append(append([]func(){}, l.OnLoad...), other.OnLoad...)
	if l.Upgrade == nil {
		l.Upgrade = other.Upgrade
	}
	return l
}

// GNB is the Gauss-Newton-Bartlett estimator of Sophia: ĥ = s·ĝ⊙ĝ, where
// ĝ is the gradient of the batch loss against labels sampled from the
// model's predictive distribution (Oracle.SampledGrad) and s a scale (1 in
// SophiaG, which puts the batch size in its denominator; the batch size
// for an estimate of diag of the Gauss-Newton matrix itself). It keeps no
// state: the labels' generator belongs to the oracle.
type GNB struct {
	name     string
	interval int64
	when     Timing
	scale    float64
	work     Buffers // "sampled_grad" (scratch, not state)
}

var (
	_ DiagEstimator = (*GNB)(nil)
	_ DiagEstimator = (*Hutchinson)(nil)
)

// NewGNB returns the GNB estimator for the optimizer name (used in
// errors), refreshed every interval ≥ 1 steps, taken at when, and scaled
// by scale > 0.
func NewGNB(name string, interval int, when Timing, scale float64) *GNB {
	return &GNB{name: name, interval: int64(max(interval, 1)), when: when, scale: scale, work: NewBuffers("sampled_grad")}
}

// Kind returns "gnb".
func (*GNB) Kind() string { return "gnb" }

// What returns "GNB estimate ĝ⊙ĝ".
func (*GNB) What() string { return "GNB estimate ĝ⊙ĝ" }

// Needs returns SampledGrad.
func (*GNB) Needs() Needs { return Needs{SampledGrad: true} }

// Timing returns when the estimate is taken.
func (g *GNB) Timing() Timing { return g.when }

// Due reports whether step t refreshes the estimate.
func (g *GNB) Due(t int64) bool { return due(t, g.interval, g.when) }

// Request returns nil: the sampled gradient is queried by Estimate.
func (*GNB) Request([]Param, int64) (*HVPRequest, error) { return nil, nil }

// Estimate queries the sampled gradient ĝ and returns s·ĝ⊙ĝ.
func (g *GNB) Estimate(params []Param, o Oracle, t int64) ([]*tensor.Dense, error) {
	if err := g.work.Ensure(g.name, params); err != nil {
		return nil, err
	}
	sg := g.work.Slot(0)
	if err := o.SampledGrad(sg); err != nil {
		return nil, fmt.Errorf("%s: step %d: SampledGrad query for the GNB estimate failed: %w", g.name, t, err)
	}
	if err := CheckFinite(g.name, "sampled gradient", params, sg); err != nil {
		return nil, fmt.Errorf("step %d: %w", t, err)
	}
	for i := range sg {
		switch sg[i].Dtype() {
		case tensor.Float64:
			square(sg[i].Float64s(), g.scale)
		case tensor.Float32:
			square(sg[i].Float32s(), g.scale)
		}
	}
	return sg, nil
}

// square sets x ← s·x⊙x (x⊙x exactly when s = 1).
func square[T Float](x []T, s float64) {
	if s == 1 {
		kernel.MulInto(x, x)
		return
	}
	S := T(s)
	for i, v := range x {
		x[i] = S * v * v
	}
}

// Used does nothing: GNB keeps nothing between estimates.
func (*GNB) Used() {}

// Layout returns an empty layout: GNB keeps no state.
func (*GNB) Layout() Layout { return Layout{} }
