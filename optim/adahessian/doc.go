// Package adahessian implements AdaHessian (Yao et al., 2021, "ADAHESSIAN:
// An Adaptive Second Order Optimizer for Machine Learning") as the official
// amirgholami/adahessian image_classification/optim_adahessian.py runs it,
// with rank-3 (and higher) weights supported and an optional Hessian refresh
// interval.
//
// # Update rule
//
// At step t, with gradient g, parameters θ, learning rate η, β1, β2, ε,
// weight decay λ and Hessian power k:
//
//	z: a probe from the injected optim.ProbeSource (Rademacher ±1 by default)
//	D = avg(|z⊙(H·z)|)                      one HVP; = |H·z| for Rademacher z
//	m ← β1·m + (1−β1)·g
//	v ← β2·v + (1−β2)·D⊙D
//	denom = (√v)ᵏ / (√(1−β2ᵗ))ᵏ + ε
//	θ ← θ − η·( m/(1−β1ᵗ)/denom + λ·θ )     weight decay decoupled, inside η
//
// avg is the spatial averaging over a parameter's kernel dimensions (see
// [BlockSize]): none for rank ≤ 2; the mean over (kh, kw) for rank-4 conv
// weights [out, in, kh, kw] (the reference); the mean over the last
// dimension for rank-3 weights [out, in, k] (the reference fails on them;
// this is the rule of its instruction/ variant); the mean over all
// dimensions after the first two for rank ≥ 5.
//
// Hessian refresh interval n ([Config].Interval, 1 = every step as the
// reference): a fresh D is computed (one probe, one HVP) at steps 1, n+1,
// 2n+1, ...; the other steps reuse the last D and make no HVP query. v's EMA
// still advances on every step, fed with the reused D: v ← β2·v + (1−β2)·D⊙D
// with the last D, so v is an EMA over t terms and the bias correction
// 1−β2ᵗ keeps counting steps (not refreshes). With Interval > 1 the reused D
// is part of the exported state ("hessian_diag_est").
//
// AdaHessian implements [optim.Requester]: a training step (train.Step) asks
// for H·z before running the graph and computes loss, gradient and H·z in
// one run; the probe life cycle is [optim.Hutchinson].
//
// D comes from an [optim.DiagEstimator] taken before the update:
// [optim.Hutchinson] (the reference) or, with [Config].GNB (the gnb knob),
// [optim.GNB], SophiaG's Gauss-Newton-Bartlett estimate D = avg(bs·ĝ⊙ĝ) of
// the Gauss-Newton diagonal (Needs SampledGrad; no probes, no request), with
// bs the predictions per batch ([Config].BatchSize). No reference runs
// AdaHessian with GNB; it is checked on the conformance quadratic.
//
// # Defaults
//
// [Default] (official): lr 0.15, betas (0.9, 0.999), eps 1e-4, weight decay
// 0, Hessian power 1, Rademacher probes every step. The CIFAR script passes
// weight decay 5e-4/lr; jettify's port uses Hessian power 0.5.
//
// # Cost
//
// One HVP per refreshed step (≈ 2–3× an SGD step in the engine). Memory: two
// state tensors per parameter (m, v) plus scratch for z and H·z (and the
// reused D when Interval > 1). The update is one pass over the parameters
// with no allocation; Hessian power 1 avoids math.Pow.
//
// # Errors
//
// Hyperparameters are checked by New. Step makes every check and the HVP
// query before changing anything: bad parameters (optim.Hyper.BeginStep:
// nil, aliased, duplicate names, non-finite gradients, ...), a missing
// oracle, an HVP error, a non-finite H·z or D, or an update that would
// make m, v or θ non-finite (computed in a check pass before anything is
// written; the error wraps optim.ErrNonFinite and names the parameter and
// entry) leave parameters and state unchanged.
//
// # State
//
// State exports "exp_avg", "exp_hessian_diag_sq" (the reference's names), the
// step counter, the reused D when Interval > 1 and, when the probe source
// implements encoding.BinaryMarshaler, its state in Blobs["probes"], so
// resuming is bit-identical.
package adahessian
