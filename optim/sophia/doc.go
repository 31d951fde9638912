// Package sophia implements Sophia (Liu et al., 2023, "Sophia: A Scalable
// Stochastic Second-order Optimizer for Language Model Pre-training"):
// SophiaG with the Gauss-Newton-Bartlett (GNB) estimator, as the official
// Liuhong99/Sophia code (sophia.py SophiaG and the loop of train_sophiag.py)
// runs it, and SophiaH with Hutchinson's estimator. Both are one optimizer,
// [Sophia], whose diagonal estimator ([optim.DiagEstimator]: [optim.GNB],
// taken after the update, or [optim.Hutchinson], before it) is selected by
// [Config].Estimator; Step runs whichever estimator it has at the time the
// estimator says.
//
// # Update rule
//
// At step t, with gradient g, parameters θ, learning rate η, β1, β2, ρ, the
// batch size bs, weight decay λ, ε and the refresh interval k:
//
//	θ ← θ·(1 − η·λ)                                 decoupled weight decay, first
//	m ← β1·m + (1−β1)·g                             no bias correction
//	θ ← θ − η·sign(m)·min(|m| / (ρ·bs·max(h, 0) + ε), 1)
//
// The Hessian EMA h (state "hessian") is refreshed every k steps:
//
//	h ← β2·h + (1−β2)·ĥ
//
// The estimate ĥ and when it is taken depend on the estimator:
//
//   - SophiaG ([GNB], Needs SampledGrad): ĥ = ĝ⊙ĝ with ĝ = Oracle.SampledGrad,
//     queried after the parameter update of steps t = k, 2k, 3k, ... at the
//     updated θ (train_sophiag.py calls update_hessian after optimizer.step
//     when iter_num % k == k−1), so the first Hessian arrives after step k and
//     steps 1..k are sign descent η·sign(m). The reference's denominator
//     ρ·bs·h + 1e-15 is reproduced exactly (h ≥ 0 always, so max(h, 0) = h).
//   - SophiaH ([Hutchinson], Needs HVP): ĥ = u⊙(H·u) with a probe u from the
//     injected [optim.ProbeSource] (Gaussian by default, Rademacher as an
//     option), queried before the parameter update of steps t = 1, k+1,
//     2k+1, ... (the paper's t mod k = 1) at the current θ and batch, so the
//     update of that step already uses it. Sophia implements [optim.Requester]:
//     a training step (train.Step) asks for H·u before running the graph,
//     computes it with the gradient in the same run and hands it over; the
//     probe life cycle is [optim.Hutchinson].
//
// The same two estimators drive AdaHessian (optim/adahessian, whose
// Config.Estimator selects GNB as a configuration).
//
// Negative curvature (Sophia#34): a Hutchinson estimate can make h negative.
// The reference's clamp(None, 1) then lets a negative ratio through, which
// flips and enlarges the step. Here the denominator uses relu(h) = max(h, 0),
// as the paper and the old official SophiaH do (γ·relu(h) + ε): where h ≤ 0
// the ratio is |m|/ε ≥ 1 (for |m| ≥ ε) and the step is the full-size sign
// step η·sign(m); it can never exceed η per coordinate. For SophiaG this is
// bit-identical to the reference.
//
// Win rate: after each Step, [Sophia.WinRate] (and Diagnostics()["win_rate"])
// is the fraction of coordinates with |m| < ρ·bs·h, the unclipped ones. The
// Sophia README suggests tuning ρ to keep it in 0.1–0.5.
//
// # Defaults
//
// [DefaultG] (SophiaG class defaults): lr 1e-4, betas (0.965, 0.99), rho
// 0.04, weight decay 0.1, bs 5120, ε 1e-15, k 10. bs is the number of
// predictions per batch: 480·1024 tokens for the GPT-2 runs, the batch size
// for image classification (Sophia#48). The GPT-2 runs use peak lr 6e-4 /
// 7e-4 / 3e-4, rho 0.05 / 0.08 / 0.05 and weight decay 0.2.
//
// [DefaultH] (old official SophiaH, Liuhong99/Sophia@c503211): lr 1e-3,
// betas (0.9, 0.99), rho (γ) 10 with bs 1, weight decay 1e-2, ε 1e-12, k 10,
// Gaussian probes. Not ported: that version's β1 bias correction of the step
// size, and kozistr's SophiaH quirks (late first estimate; its 'rademacher'
// option that always draws −1).
//
// # Cost
//
// Memory: two state tensors per parameter (m, h), as Adam, plus scratch:
// one tensor per parameter for ĝ (SophiaG) or two for u and H·u (SophiaH).
// Time: one fused pass over the parameters per step (no allocation), plus
// one extra forward/backward (SophiaG) or one HVP (SophiaH) every k steps.
//
// # Errors
//
// Hyperparameters are checked by New. Step checks the parameters
// (optim.Hyper.BeginStep) and that an oracle is given before changing
// anything, and computes every value the update would write (m, θ, and for
// SophiaH the refreshed h) in a check pass before writing any: a NaN or
// ±Inf there is an error wrapping optim.ErrNonFinite that names the
// parameter and entry, with nothing changed. SophiaH queries the oracle
// before the update: an HVP error or a non-finite estimate leaves parameters
// and state unchanged. SophiaG queries after the update: on a SampledGrad
// error or non-finite ĝ the parameters, m and the step counter hold the
// step's update and h keeps its previous value, as if the refresh had been
// skipped; h and m never receive NaN or Inf.
//
// # State
//
// State exports "exp_avg", "hessian" (the reference's names), the step
// counter and, when the probe source implements encoding.BinaryMarshaler
// (as optim.RandomProbes does), its state in Blobs["probes"], so resuming
// from a checkpoint is bit-identical.
package sophia
