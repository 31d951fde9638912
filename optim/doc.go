// Package optim defines what every curvopt optimizer has in common: the
// parameters it updates ([Param]), the curvature queries it may make
// ([Oracle], declared in advance through [Needs]), the seeded random probes
// some optimizers draw ([ProbeSource]), hyperparameter validation, and state
// export and import for checkpoints ([State]).
//
// The optimizers themselves live in sub-packages (optim/sgd, optim/adam,
// optim/sophia, optim/adahessian, optim/mfac). None of them knows about
// Gorgonia graphs: an [Oracle] answers curvature queries, which the hessian
// package implements for a Gorgonia model and a test can implement for a plain
// quadratic whose Hessian is known.
//
// A training step is
//
//	// the gradient of the current batch's loss is in params[i].Grad
//	if err := opt.Step(params, oracle); err != nil { ... }
//	// params[i].Value has been updated in place
//
// Parameters may be float32 or float64 tensors; the state an optimizer keeps
// has the dtype of its parameter. Reductions are accumulated in float64.
//
// Misuse is an error, checked once for every optimizer by the guard in
// [Hyper] (guard.go): [Hyper.BeginStep] is the step prologue (nil, empty,
// mis-shaped, aliased or duplicate-named parameters, non-finite gradients,
// a missing oracle, a parameter in no group), [Hyper.Begin] refuses a call
// made during another ([ErrConcurrentUse], shared with hessian.Engine) and
// after Close ([ErrClosed]). An update that would produce a NaN or ±Inf is
// refused with [ErrNonFinite] before anything is written ([NonFiniteUpdate]).
//
// State is written once, in [Base], which every optimizer embeds: an
// optimizer declares its per-parameter slots, blobs and other parts in a
// [Layout], and Base derives State, StateView, LoadState and TakeState
// from it, recording the parameter list ([ParamInfo]) and checking it,
// every slot, the groups and the blobs before anything changes.
package optim
