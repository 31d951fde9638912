package sophia

import (
	"fmt"
	"github.com/curvopt/curvopt/internal/num"
	"math"
	"unsafe"

	"github.com/curvopt/curvopt/optim"
	ik "github.com/curvopt/curvopt/optim/internal/kernel"
	"gorgonia.org/tensor"
)

// Estimator selects how Sophia estimates the diagonal of the Hessian.
type Estimator int

const (
	// GNB is the Gauss-Newton-Bartlett estimator ĥ = ĝ⊙ĝ, where ĝ is the
	// gradient against labels sampled from the model (Oracle.SampledGrad):
	// SophiaG.
	GNB Estimator = iota
	// Hutchinson is the estimator ĥ = u⊙(H·u) with a random probe u
	// (Oracle.HVP): SophiaH.
	Hutchinson
)

// String returns "gnb" or "hutchinson".
func (e Estimator) String() string {
	switch e {
	case GNB:
		return "gnb"
	case Hutchinson:
		return "hutchinson"
	}
	return fmt.Sprintf("Estimator(%d)", int(e))
}

// Config holds Sophia's hyperparameters. The field comments give the
// reference's names in parentheses.
type Config struct {
	// Estimator selects SophiaG (GNB) or SophiaH (Hutchinson).
	Estimator Estimator
	// LR is the learning rate η > 0 (lr): the largest per-coordinate step.
	LR float64 `hyper:"lr" doc:"learning rate"`
	// Beta1 is the momentum decay β1 in [0, 1) (betas[0]).
	Beta1 float64 `hyper:"beta1" doc:"momentum decay"`
	// Beta2 is the Hessian-EMA decay β2 in [0, 1) (betas[1]), applied once
	// per Hessian refresh, not per step.
	Beta2 float64 `hyper:"beta2" doc:"Hessian-EMA decay, per refresh"`
	// Rho is the clipping scale ρ > 0 (rho; γ in the paper).
	Rho float64 `hyper:"rho" doc:"clipping scale"`
	// WeightDecay is the decoupled weight decay λ ≥ 0 (weight_decay).
	WeightDecay float64 `hyper:"weight_decay" doc:"weight decay (decoupled)"`
	// BatchSize is bs ≥ 1 (bs): the number of predictions per batch (tokens
	// for language models, examples for image classification). The
	// denominator is ρ·bs·h.
	BatchSize int `hyper:"bs" doc:"predictions per batch in rho·bs·h"`
	// Interval is k ≥ 1 (hessian_interval): the Hessian estimate is
	// refreshed every k steps.
	Interval int `hyper:"hessian_interval" doc:"steps between Hessian estimates"`
	// Eps is ε > 0 added to the denominator (1e-15 in the SophiaG code).
	Eps float64 `hyper:"eps" doc:"epsilon added to the denominator"`
	// Probe is the distribution of the Hutchinson probes u when Probes is
	// nil (Hutchinson only; DefaultH sets Gaussian).
	Probe optim.ProbeKind
	// Seed seeds the default probe source (Hutchinson only).
	Seed uint64
	// Probes, if not nil, supplies the Hutchinson probes instead of
	// optim.NewRandomProbes(Probe, Seed). If it implements
	// encoding.BinaryMarshaler and encoding.BinaryUnmarshaler its state is
	// saved and restored with the optimizer's.
	Probes optim.ProbeSource
}

// DefaultG returns the SophiaG class defaults of the reference
// (Liuhong99/Sophia sophia.py): lr 1e-4, betas (0.965, 0.99), rho 0.04,
// weight decay 0.1, bs 5120, with k = 10 (train_sophiag.py) and ε = 1e-15.
// For image classification set BatchSize to the batch size (Sophia#48); for
// GPT-2 the reference runs use 480·1024 tokens.
func DefaultG() Config {
	return Config{
		Estimator: GNB, LR: 1e-4, Beta1: 0.965, Beta2: 0.99, Rho: 0.04,
		WeightDecay: 0.1, BatchSize: 5120, Interval: 10, Eps: 1e-15,
	}
}

// DefaultH returns SophiaH defaults after the old official SophiaH
// (Liuhong99/Sophia@c503211): lr 1e-3, betas (0.9, 0.99), γ = ρ = 10 with
// bs = 1 (the Hutchinson estimate already estimates the Hessian of the mean
// loss), weight decay 1e-2, ε = 1e-12, k = 10, Gaussian probes, seed 0. The
// reference's β1 bias correction is not applied (see the package doc).
func DefaultH() Config {
	return Config{
		Estimator: Hutchinson, LR: 1e-3, Beta1: 0.9, Beta2: 0.99, Rho: 10,
		WeightDecay: 1e-2, BatchSize: 1, Interval: 10, Eps: 1e-12, Probe: optim.Gaussian,
	}
}

func (c Config) name() string {
	if c.Estimator == Hutchinson {
		return "sophiah"
	}
	return "sophiag"
}

// Validate reports the first invalid hyperparameter, naming the field and
// its value.
func (c Config) Validate() error {
	v := optim.Validator{Optimizer: c.name()}
	v.Require(c.Estimator == GNB || c.Estimator == Hutchinson, "estimator", float64(c.Estimator), "GNB (0) or Hutchinson (1)")
	v.Positive("lr", c.LR)
	v.Unit("beta1", c.Beta1)
	v.Unit("beta2", c.Beta2)
	v.Positive("rho", c.Rho)
	v.NonNegative("weight_decay", c.WeightDecay)
	v.PositiveInt("bs", c.BatchSize)
	v.PositiveInt("hessian_interval", c.Interval)
	v.Positive("eps", c.Eps)
	if c.Estimator == Hutchinson && c.Probes == nil {
		v.Require(c.Probe == optim.Rademacher || c.Probe == optim.Gaussian, "probe", float64(c.Probe), "Rademacher (0) or Gaussian (1)")
	}
	return v.Err()
}

// Sophia is the SophiaG or SophiaH optimizer. Create it with New.
type Sophia struct {
	// Base holds the learning rate, the parameter groups (SetLR,
	// SetGroups), the step counter and the state: the slots "exp_avg" (m)
	// and "hessian" (h) and, for SophiaH, the probe source's state.
	optim.Base
	cfg Config
	// est is the diagonal estimator: optim.GNB (SophiaG, after the update)
	// or optim.Hutchinson (SophiaH, before it).
	est   optim.DiagEstimator
	wins  int // unclipped coordinates in the last Step
	total int // coordinates in the last Step
}

var (
	_ optim.Optimizer   = (*Sophia)(nil)
	_ optim.Requester   = (*Sophia)(nil)
	_ optim.Diagnostics = (*Sophia)(nil)
)

// Slot names of the exported state (the reference's).
const (
	slotExpAvg  = "exp_avg"
	slotHessian = "hessian"
)

// New returns a Sophia optimizer, or an error naming an invalid
// hyperparameter.
func New(c Config) (*Sophia, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	s := &Sophia{cfg: c, est: c.estimator()}
	l := optim.Layout{Slots: []string{slotExpAvg, slotHessian}, OnLoad: []func(){s.resetDiagnostics}}
	s.Base = optim.NewBase(c.name(), c.LR, c.WeightDecay, l.With(s.est.Layout()))
	return s, nil
}

// estimator returns the configured diagonal estimator: GNB after the
// update at t = k, 2k, … (train_sophiag.py), or Hutchinson before it at
// t = 1, k+1, … (the paper's t mod k = 1).
func (c Config) estimator() optim.DiagEstimator {
	if c.Estimator == Hutchinson {
		src := c.Probes
		if src == nil {
			src = optim.NewRandomProbes(c.Probe, c.Seed)
		}
		return optim.NewHutchinson(c.name(), src, c.Interval)
	}
	return optim.NewGNB(c.name(), c.Interval, optim.After, 1)
}

// Name returns "sophiag" (GNB) or "sophiah" (Hutchinson).
func (s *Sophia) Name() string { return s.cfg.name() }

// Needs returns the estimator's: SampledGrad for SophiaG and HVP for
// SophiaH.
func (s *Sophia) Needs() optim.Needs { return s.est.Needs() }

// Config returns the hyperparameters, with the current learning rate.
func (s *Sophia) Config() Config {
	c := s.cfg
	c.LR = s.LR()
	return c
}

// resetDiagnostics forgets the last step's win rate (after LoadState).
func (s *Sophia) resetDiagnostics() { s.wins, s.total = 0, 0 }

// WinRate returns the fraction of coordinates that were not clipped in the
// most recent Step, |m| < ρ·bs·h (0 before the first step). The Sophia
// README suggests tuning ρ to keep it in 0.1–0.5.
func (s *Sophia) WinRate() float64 {
	if s.total == 0 {
		return 0
	}
	return float64(s.wins) / float64(s.total)
}

// Diagnostics returns {"win_rate": WinRate()}.
func (s *Sophia) Diagnostics() map[string]float64 {
	return map[string]float64{"win_rate": s.WinRate()}
}

// Request implements optim.Requester for SophiaH: it returns the H·u the
// coming Step needs at the current parameters (u its Hutchinson probe), or
// nil when that Step makes no HVP query (SophiaG, whose estimate comes after
// the update, or a step between Hessian refreshes). Calling it again before
// that Step returns the same probe.
func (s *Sophia) Request(params []optim.Param) (*optim.HVPRequest, error) {
	if err := s.Begin("Request"); err != nil {
		return nil, err
	}
	defer s.End()
	if err := optim.CheckValues(s.Name(), params); err != nil {
		return nil, err
	}
	if s.est.Timing() != optim.Before {
		return nil, nil
	}
	return s.est.Request(params, s.Steps()+1)
}

// Step applies one Sophia update (see the package documentation).
//
// Errors: the checks of optim.Hyper.BeginStep (a bad parameter list, or an
// oracle that is nil or does not provide the estimator's query) come before
// anything changes. SophiaH takes H·u before the update (from an answered
// Request, or by querying the oracle), and every new value (h refreshed
// from u⊙(H·u), m, the parameters) is computed and checked before any is
// written, so an HVP error or a NaN or ±Inf in the estimate or the update
// (wrapping optim.ErrNonFinite) leaves parameters and state unchanged (the
// drawn probe is kept and reused by the next call). SophiaG checks m and
// the parameters the same way, then queries the oracle after the update: if
// SampledGrad fails or returns non-finite values, the error says so and the
// parameters, m and the step counter hold step t's update while h keeps its
// previous (finite) value, exactly as if this refresh had been skipped.
func (s *Sophia) Step(params []optim.Param, o optim.Oracle) error {
	if err := s.BeginStep(params, s.Needs(), o); err != nil {
		return err
	}
	defer s.End()
	t := s.Steps() + 1
	refresh := s.est.Due(t)
	var d []*tensor.Dense // the estimate that refreshes h before this update
	if refresh && s.est.Timing() == optim.Before {
		est, err := s.est.Estimate(params, o, t)
		if err != nil {
			return err
		}
		d = est
	}
	if err := s.check(params, d, t); err != nil {
		return err
	}
	if d != nil {
		s.refreshApply(params, d)
		s.est.Used()
	}
	s.update(params)
	s.Advance()
	if refresh && s.est.Timing() == optim.After {
		return s.refreshAfter(params, o, t)
	}
	return nil
}

// refreshAfter refreshes h from an estimate at the updated parameters.
func (s *Sophia) refreshAfter(params []optim.Param, o optim.Oracle, t int64) error {
	const kept = "parameters and exp_avg hold this step's update, hessian is not refreshed"
	d, err := s.est.Estimate(params, o, t)
	if err != nil {
		return fmt.Errorf("%w (%s)", err, kept)
	}
	if err := s.refresh(params, d, t, s.est.What()); err != nil {
		return err
	}
	s.est.Used()
	return nil
}

// check computes, without writing, every value step t would write: h
// refreshed from d (when d is not nil), m and the parameters, and returns
// an error naming the first that is not finite.
func (s *Sophia) check(params []optim.Param, d []*tensor.Dense, t int64) error {
	c := s.cfg
	k := coeffs{b1: c.Beta1, c1: 1 - c.Beta1, rb: c.Rho * float64(c.BatchSize), eps: c.Eps}
	m, h := s.Slot(0), s.Slot(1)
	for i, p := range params {
		k.lr = s.ParamLR(i)
		k.decay = 1 - k.lr*s.ParamWD(i)
		j, what, v := -1, "", 0.0
		switch p.Value.Dtype() {
		case tensor.Float64:
			if di, th, g, mi, hi := dslice[float64](d, i), p.Value.Float64s(), p.Grad.Float64s(), m[i].Float64s(), h[i].Float64s(); !finite(k, c.Beta2, di, th, g, mi, hi) {
				j, what, v = checkKernel(k, c.Beta2, di, th, g, mi, hi)
			}
		case tensor.Float32:
			if di, th, g, mi, hi := dslice[float32](d, i), p.Value.Float32s(), p.Grad.Float32s(), m[i].Float32s(), h[i].Float32s(); !finite(k, c.Beta2, di, th, g, mi, hi) {
				j, what, v = checkKernel(k, c.Beta2, di, th, g, mi, hi)
			}
		}
		if j < 0 {
			continue
		}
		if what == slotHessian {
			return fmt.Errorf("%s: step %d: %s for param %q: entry %d makes the Hessian EMA %v (nothing changed): %w", s.Name(), t, s.est.What(), p.Name, j, v, optim.ErrNonFinite)
		}
		return optim.NonFiniteUpdate(s.Name(), t, p.Name, what, j, v)
	}
	return nil
}

// dslice returns d[i]'s values, or nil without an estimate.
func dslice[T optim.Float](d []*tensor.Dense, i int) []T {
	if d == nil {
		return nil
	}
	return num.Slice[T](d[i])
}

// finite is the fast path of check: it reports true only when checkKernel
// would find every refreshed h, m and new θ finite, from integer max scans
// (ik.MaxAbs: no floating-point arithmetic per entry, which is slow on
// subnormal moments) and a bound on the arithmetic. With the largest |θ|
// Θ, |g| G, |m| A, |h| H and |d| D, and β1, 1−β1, β2, 1−β2 ≤ 1 in T:
//
//	|h·β2 + (1−β2)·d| ≤ (H + D)·R,  |m'| ≤ (A + G)·R
//	|θ·decay − lr·clamp(m'/(ρ·bs·max(h', 0) + eps), −1, 1)| ≤ (Θ·|decay| + lr)·R
//
// (with eps > 0 and a finite ρ·bs ≥ 0 the denominator is at least eps, or
// +Inf, so the clamped quotient is in [−1, 1]; without d, h' = h and H
// must be finite), where R = 1.001 covers the rounding of every operation
// (a factor of at most 1 + 2⁻²⁴ each). It answers true when the bounds are
// below half the largest finite T. False means "not proven": the caller
// then runs checkKernel, so a step is refused exactly when one of its new
// values is not finite.
func finite[T optim.Float](k coeffs, beta2 float64, d, theta, g, m, h []T) bool {
	const r = 1.001
	limit := maxFinite[T]() / 2
	lr, decay := float64(T(k.lr)), math.Abs(float64(T(k.decay)))
	rb, eps := float64(T(k.rb)), float64(T(k.eps))
	if !(eps > 0 && rb >= 0 && rb <= math.MaxFloat64 && beta2 >= 0 && beta2 <= 1 && k.b1 >= 0 && k.b1 <= 1 && k.c1 >= 0 && k.c1 <= 1) {
		return false
	}
	hb := ik.MaxAbs(h)
	if d != nil {
		hb = (hb + ik.MaxAbs(d)) * r
	}
	mb := (ik.MaxAbs(m) + ik.MaxAbs(g)) * r
	tb := (ik.MaxAbs(theta)*decay + lr) * r
	return hb < limit && mb < limit && tb < limit
}

// maxFinite returns the largest finite T.
func maxFinite[T optim.Float]() float64 {
	if unsafe.Sizeof(T(0)) == 4 {
		return math.MaxFloat32
	}
	return math.MaxFloat64
}

// checkKernel is kernel (after emaApply of d into h, when d is not nil)
// without writing: it returns the first entry whose refreshed h, m or new
// θ is not finite (−1 if none), which one, and the value. The arithmetic is
// that of emaApply and kernel, operation for operation.
func checkKernel[T optim.Float](k coeffs, beta2 float64, d, theta, g, m, h []T) (int, string, float64) {
	lr, b1, c1 := T(k.lr), T(k.b1), T(k.c1)
	decay, rb, eps := T(k.decay), T(k.rb), T(k.eps)
	B2, C2 := T(beta2), T(1-beta2)
	n := len(theta)
	g, m, h = g[:n], m[:n], h[:n]
	if d != nil {
		d = d[:n]
	}
	for j := range theta {
		hj := h[j]
		if d != nil {
			hj = hj*B2 + C2*d[j]
			if !optim.Finite(hj) {
				return j, slotHessian, float64(hj)
			}
		}
		mj := m[j]*b1 + c1*g[j]
		th := theta[j]*decay - lr*max(min(mj/(rb*max(hj, 0)+eps), 1), -1)
		switch {
		case !optim.Finite(th):
			return j, "value", float64(th)
		case !optim.Finite(mj):
			return j, slotExpAvg, float64(mj)
		}
	}
	return -1, "", 0
}

// refreshApply sets h ← β2·h + (1−β2)·d for every parameter (after check).
func (s *Sophia) refreshApply(params []optim.Param, d []*tensor.Dense) {
	h := s.Slot(1)
	b2, c2 := s.cfg.Beta2, 1-s.cfg.Beta2
	for i := range params {
		switch h[i].Dtype() {
		case tensor.Float64:
			emaApply(h[i].Float64s(), d[i].Float64s(), b2, c2)
		case tensor.Float32:
			emaApply(h[i].Float32s(), d[i].Float32s(), b2, c2)
		}
	}
}

// refresh sets h ← β2·h + (1−β2)·d for every parameter, after checking
// that every new value is finite; on error h is unchanged.
func (s *Sophia) refresh(params []optim.Param, d []*tensor.Dense, t int64, what string) error {
	h := s.Slot(1)
	b2, c2 := s.cfg.Beta2, 1-s.cfg.Beta2
	for i := range params {
		j := -1
		switch h[i].Dtype() {
		case tensor.Float64:
			j = emaCheck(h[i].Float64s(), d[i].Float64s(), b2, c2)
		case tensor.Float32:
			j = emaCheck(h[i].Float32s(), d[i].Float32s(), b2, c2)
		}
		if j >= 0 {
			return fmt.Errorf("%s: step %d: %s for param %q: entry %d makes the Hessian EMA non-finite (hessian not refreshed): %w", s.Name(), t, what, params[i].Name, j, optim.ErrNonFinite)
		}
	}
	s.refreshApply(params, d)
	return nil
}

func emaCheck[T optim.Float](h, d []T, b2, c2 float64) int {
	// Fast path: with β2, 1−β2 in [0, 1], |h·β2 + (1−β2)·d| ≤ (|h| + |d|)
	// up to rounding (a factor 1.001 covers it), from integer max scans.
	if b2 >= 0 && b2 <= 1 && c2 >= 0 && c2 <= 1 && (ik.MaxAbs(h)+ik.MaxAbs(d))*1.001 < maxFinite[T]()/2 {
		return -1
	}
	B2, C2 := T(b2), T(c2)
	d = d[:len(h)]
	for j := range h {
		v := float64(h[j]*B2 + C2*d[j])
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return j
		}
	}
	return -1
}

func emaApply[T optim.Float](h, d []T, b2, c2 float64) {
	B2, C2 := T(b2), T(c2)
	d = d[:len(h)]
	for j := range h {
		h[j] = h[j]*B2 + C2*d[j]
	}
}

// coeffs are the per-step scalars of the update kernel.
type coeffs struct {
	lr, b1, c1, decay, rb, eps float64
}

// update applies weight decay, the momentum EMA and the clipped step to
// every parameter, and records the win rate.
func (s *Sophia) update(params []optim.Param) {
	c := s.cfg
	k := coeffs{b1: c.Beta1, c1: 1 - c.Beta1, rb: c.Rho * float64(c.BatchSize), eps: c.Eps}
	m, h := s.Slot(0), s.Slot(1)
	wins, total := 0, 0
	for i, p := range params {
		k.lr = s.ParamLR(i)
		k.decay = 1 - k.lr*s.ParamWD(i)
		switch p.Value.Dtype() {
		case tensor.Float64:
			wins += kernel(k, p.Value.Float64s(), p.Grad.Float64s(), m[i].Float64s(), h[i].Float64s())
			total += p.Value.Shape().TotalSize()
		case tensor.Float32:
			wins += kernel(k, p.Value.Float32s(), p.Grad.Float32s(), m[i].Float32s(), h[i].Float32s())
			total += p.Value.Shape().TotalSize()
		}
	}
	s.wins, s.total = wins, total
}

// kernel is the per-coordinate Sophia update; it returns the number of
// unclipped coordinates (|m| < ρ·bs·h).
//
//	θ ← θ·(1 − η·λ); m ← β1·m + (1−β1)·g
//	θ ← θ − η·sign(m)·min(|m| / (ρ·bs·max(h, 0) + ε), 1)
func kernel[T optim.Float](k coeffs, theta, g, m, h []T) int {
	lr, b1, c1 := T(k.lr), T(k.b1), T(k.c1)
	decay, rb, eps := T(k.decay), T(k.rb), T(k.eps)
	n := len(theta)
	g, m, h = g[:n], m[:n], h[:n]
	wins := 0
	// Branch-free: the sign of m is random, so a branch on it would be
	// mispredicted half the time. sign(m)·min(|m|/d, 1) with d = ρ·bs·h + ε
	// is clamp(m/d, −1, 1), bit for bit (IEEE division is sign-symmetric).
	for j := range theta {
		mj := m[j]*b1 + c1*g[j]
		m[j] = mj
		scaled := rb * max(h[j], 0) // relu: negative curvature cannot escape the clip (Sophia#34)
		// |m| < ρ·bs·h (unclipped) counted from the sign bit of the difference.
		wins += int(math.Float64bits(float64(max(mj, -mj)-scaled)) >> 63)
		theta[j] = theta[j]*decay - lr*max(min(mj/(scaled+eps), 1), -1)
	}
	return wins
}

// PrecondSolve sets out = P⁻¹·v with Sophia's denominator from the current
// state, P = ρ·bs·max(h, 0) + ε (h the Hessian EMA the next update divides
// by, before any refresh that update makes): the preconditioner of the
// unclipped coordinates. A clipped coordinate (|m| ≥ ρ·bs·h) moves by
// exactly η whatever its curvature, so the stability bound speaks only of
// the unclipped ones (WinRate says how many); before the first Hessian
// estimate (SophiaG's steps 1..k−1) h is 0 and P = ε everywhere. With
// parameter groups, block i is scaled by its LRScale. Before the first
// step it returns an error wrapping optim.ErrNoPreconditioner.
func (s *Sophia) PrecondSolve(params []optim.Param, v, out []*tensor.Dense) error {
	if err := s.BeginSolve(s.Name(), params, v, out); err != nil {
		return err
	}
	defer s.End()
	rb, eps := s.cfg.Rho*float64(s.cfg.BatchSize), s.cfg.Eps
	optim.DiagonalSolve(&s.Hyper, params, v, out, s.Slot(1), func(x float64) float64 { return rb*max(x, 0) + eps })
	return nil
}

// StabilityLimit returns optim.EMALimit(β1), 2(1+β1)/(1−β1), the limit of
// the unclipped coordinates (m has no bias correction).
func (s *Sophia) StabilityLimit() float64 { return optim.EMALimit(s.cfg.Beta1) }
