// Package nonfinite holds the one sentinel error for NaN and ±Inf values in
// curvopt. It sits below every other package, so that optim (gradients,
// curvature estimates, optimizer state), hessian (losses and products) and
// hessian/spectrum (operator products) share it without importing one
// another: optim.ErrNonFinite and spectrum.ErrNonFinite are this value, and
// errors.Is matches either name whichever package reported the value.
package nonfinite

import "errors"

// Err is wrapped by every error that reports a NaN or ±Inf.
var Err = errors.New("non-finite value")
