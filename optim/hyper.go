package optim

import (
	"fmt"
	"math"
)

// HyperError reports an invalid hyperparameter: which optimizer, which
// field, the value given and what is required.
type HyperError struct {
	Optimizer string
	Field     string
	Value     float64
	Want      string
}

func (e *HyperError) Error() string {
	return fmt.Sprintf("%s: invalid %s = %v: must be %s", e.Optimizer, e.Field, e.Value, e.Want)
}

// Validator collects the first invalid hyperparameter of a configuration.
// Use it in a Config's Validate method:
//
//	v := optim.Validator{Optimizer: "adam"}
//	v.Positive("lr", c.LR)
//	v.Unit("beta1", c.Beta1)
//	return v.Err()
type Validator struct {
	Optimizer string
	err       error
}

// Err returns the first recorded error, or nil.
func (v *Validator) Err() error { return v.err }

func (v *Validator) fail(field string, x float64, want string) {
	if v.err == nil {
		v.err = &HyperError{Optimizer: v.Optimizer, Field: field, Value: x, Want: want}
	}
}

// Positive requires a finite x > 0.
func (v *Validator) Positive(field string, x float64) {
	if !(x > 0) || math.IsInf(x, 0) {
		v.fail(field, x, "finite and > 0")
	}
}

// NonNegative requires a finite x ≥ 0.
func (v *Validator) NonNegative(field string, x float64) {
	if !(x >= 0) || math.IsInf(x, 0) {
		v.fail(field, x, "finite and >= 0")
	}
}

// Unit requires 0 ≤ x < 1 (a decay rate such as a beta or a momentum).
func (v *Validator) Unit(field string, x float64) {
	if !(x >= 0 && x < 1) {
		v.fail(field, x, "in [0, 1)")
	}
}

// UnitClosed requires 0 ≤ x ≤ 1 (e.g. dampening).
func (v *Validator) UnitClosed(field string, x float64) {
	if !(x >= 0 && x <= 1) {
		v.fail(field, x, "in [0, 1]")
	}
}

// PowerInterval requires 0 < x ≤ 1 (e.g. AdaHessian's Hessian power).
func (v *Validator) PowerInterval(field string, x float64) {
	if !(x > 0 && x <= 1) {
		v.fail(field, x, "in (0, 1]")
	}
}

// PositiveInt requires n ≥ 1.
func (v *Validator) PositiveInt(field string, n int) {
	if n < 1 {
		v.fail(field, float64(n), "an integer >= 1")
	}
}

// Require records a custom failure when ok is false.
func (v *Validator) Require(ok bool, field string, x float64, want string) {
	if !ok {
		v.fail(field, x, want)
	}
}
