package adahessian

import (
	"fmt"
	"github.com/curvopt/curvopt/internal/num"
	"math"
	"unsafe"

	"github.com/curvopt/curvopt/optim"
	ik "github.com/curvopt/curvopt/optim/internal/kernel"
	"gorgonia.org/tensor"
)

// Config holds AdaHessian's hyperparameters. The field comments give the
// reference's names in parentheses.
type Config struct {
	// LR is the learning rate η > 0 (lr).
	LR float64 `hyper:"lr" doc:"learning rate"`
	// Beta1 is the first-moment decay β1 in [0, 1) (betas[0]).
	Beta1 float64 `hyper:"beta1" doc:"first-moment decay"`
	// Beta2 is the decay β2 in [0, 1) of the EMA of D⊙D (betas[1]).
	Beta2 float64 `hyper:"beta2" doc:"decay of the EMA of D⊙D"`
	// Eps is ε > 0 added to the denominator (eps).
	Eps float64 `hyper:"eps" doc:"epsilon added to the denominator"`
	// WeightDecay is λ ≥ 0 (weight_decay), decoupled and scaled by η:
	// θ ← θ − η·(… + λ·θ).
	WeightDecay float64 `hyper:"weight_decay" doc:"weight decay (decoupled, scaled by lr)"`
	// HessianPower is k in (0, 1] (hessian_power): the denominator is
	// (√v)ᵏ/(√(1−β2ᵗ))ᵏ + ε.
	HessianPower float64 `hyper:"hessian_power" doc:"Hessian power"`
	// Interval is the Hessian refresh interval n ≥ 1 (hessian_interval): a fresh D is computed
	// at steps 1, n+1, 2n+1, ...; the steps in between reuse the last D.
	// 1 (every step) is the reference.
	Interval int `hyper:"hessian_interval" doc:"steps between Hessian estimates"`
	// Probe is the distribution of the probes z when Probes is nil
	// (Rademacher in the reference).
	Probe optim.ProbeKind
	// Seed seeds the default probe source.
	Seed uint64
	// Probes, if not nil, supplies the probes instead of
	// optim.NewRandomProbes(Probe, Seed). If it implements
	// encoding.BinaryMarshaler and encoding.BinaryUnmarshaler its state is
	// saved and restored with the optimizer's.
	Probes optim.ProbeSource
	// GNB selects the Gauss-Newton-Bartlett estimate of the diagonal,
	// D = bs·ĝ⊙ĝ with ĝ the gradient against labels sampled from the model
	// (Oracle.SampledGrad, SophiaG's estimator), taken before the update like
	// the Hutchinson estimate it replaces (false: Hutchinson's
	// D = |z⊙(H·z)|, the reference).
	GNB bool `hyper:"gnb" doc:"the Gauss-Newton-Bartlett estimator (sampled labels) instead of Hutchinson's"`
	// BatchSize is bs ≥ 1, used with GNB: D = bs·ĝ⊙ĝ estimates the
	// Gauss-Newton diagonal of the mean loss over bs predictions (set it to
	// the predictions per batch).
	BatchSize int `hyper:"bs" doc:"predictions per batch in bs·ĝ⊙ĝ (with gnb)"`
}

// estimator returns the configured diagonal estimator, refreshed before
// the update at steps 1, n+1, 2n+1, ….
func (c Config) estimator() optim.DiagEstimator {
	if c.GNB {
		return optim.NewGNB("adahessian", c.Interval, optim.Before, float64(c.BatchSize))
	}
	src := c.Probes
	if src == nil {
		src = optim.NewRandomProbes(c.Probe, c.Seed)
	}
	return optim.NewHutchinson("adahessian", src, c.Interval)
}

// Default returns the official defaults (amirgholami/adahessian
// image_classification): lr 0.15, betas (0.9, 0.999), eps 1e-4, weight decay
// 0, Hessian power 1, a fresh Rademacher probe every step, seed 0.
func Default() Config {
	return Config{LR: 0.15, Beta1: 0.9, Beta2: 0.999, Eps: 1e-4, HessianPower: 1, Interval: 1, Probe: optim.Rademacher}
}

// Validate reports the first invalid hyperparameter, naming the field and
// its value.
func (c Config) Validate() error {
	v := optim.Validator{Optimizer: "adahessian"}
	v.Positive("lr", c.LR)
	v.Unit("beta1", c.Beta1)
	v.Unit("beta2", c.Beta2)
	v.Positive("eps", c.Eps)
	v.NonNegative("weight_decay", c.WeightDecay)
	v.PowerInterval("hessian_power", c.HessianPower)
	v.PositiveInt("hessian_interval", c.Interval)
	if c.GNB {
		v.PositiveInt("bs", c.BatchSize)
	} else {
		v.Require(c.BatchSize >= 0, "bs", float64(c.BatchSize), "an integer >= 1 with gnb, unused (>= 0) without")
	}
	if !c.GNB && c.Probes == nil {
		v.Require(c.Probe == optim.Rademacher || c.Probe == optim.Gaussian, "probe", float64(c.Probe), "Rademacher (0) or Gaussian (1)")
	}
	return v.Err()
}

// AdaHessian is the optimizer. Create it with New.
type AdaHessian struct {
	// Base holds the learning rate, the parameter groups (SetLR,
	// SetGroups), the step counter and the state: the slots "exp_avg" (m),
	// "exp_hessian_diag_sq" (v) and, when Interval > 1, "hessian_diag_est"
	// (the D reused between refreshes), and the probe source's state.
	optim.Base
	cfg Config
	est optim.DiagEstimator // D: Hutchinson (the reference) or GNB
}

var (
	_ optim.Optimizer = (*AdaHessian)(nil)
	_ optim.Requester = (*AdaHessian)(nil)
)

// Slot names.
const (
	slotExpAvg = "exp_avg"
	slotExpHSq = "exp_hessian_diag_sq"
	slotDiag   = "hessian_diag_est"
)

// New returns an AdaHessian optimizer, or an error naming an invalid
// hyperparameter.
func New(c Config) (*AdaHessian, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	a := &AdaHessian{cfg: c, est: c.estimator()}
	l := optim.Layout{Slots: []string{slotExpAvg, slotExpHSq}}
	if c.Interval > 1 {
		l.Slots = append(l.Slots, slotDiag)
	}
	l = l.With(a.est.Layout())
	a.Base = optim.NewBase("adahessian", c.LR, c.WeightDecay, l)
	return a, nil
}

// Name returns "adahessian".
func (*AdaHessian) Name() string { return "adahessian" }

// Needs returns the estimator's: HVP (Hutchinson) or SampledGrad (GNB).
func (a *AdaHessian) Needs() optim.Needs { return a.est.Needs() }

// Config returns the hyperparameters, with the current learning rate.
func (a *AdaHessian) Config() Config {
	c := a.cfg
	c.LR = a.LR()
	return c
}

// Request implements optim.Requester: it returns the H·z the coming Step
// needs at the current parameters (z its Hutchinson probe), or nil when that
// Step reuses the last D or (GNB) queries the oracle itself. Calling it again before that Step returns the same
// probe.
func (a *AdaHessian) Request(params []optim.Param) (*optim.HVPRequest, error) {
	if err := a.Begin("Request"); err != nil {
		return nil, err
	}
	defer a.End()
	if err := optim.CheckValues("adahessian", params); err != nil {
		return nil, err
	}
	return a.est.Request(params, a.Steps()+1)
}

// Step applies one AdaHessian update (see the package documentation). All
// checks, the HVP (from an answered Request, or queried from the oracle)
// and a check pass that computes every new value (m, v, the parameters)
// without writing come before any change: on error (the checks of
// optim.Hyper.BeginStep; an oracle that is nil or does not provide HVP or
// an HVP error; a non-finite H·z, D or update, wrapping optim.ErrNonFinite)
// parameters and state are unchanged, and a drawn probe is kept for the
// next call.
func (a *AdaHessian) Step(params []optim.Param, o optim.Oracle) error {
	if err := a.BeginStep(params, a.Needs(), o); err != nil {
		return err
	}
	defer a.End()
	t := a.Steps() + 1
	var d []*tensor.Dense // the D of this step
	if a.cfg.Interval > 1 {
		d = a.Slot(2) // the D of the last refresh
	}
	fresh := a.est.Due(t)
	if fresh {
		hz, err := a.estimate(params, o, t)
		if err != nil {
			return err
		}
		d = hz
	}
	if err := a.update(params, d, t, true); err != nil {
		return err
	}
	if fresh {
		if a.cfg.Interval > 1 {
			keep := a.Slot(2)
			for i := range params {
				num.CopyInto(keep[i], d[i])
			}
			d = keep
		}
		a.est.Used()
	}
	_ = a.update(params, d, t, false)
	a.Advance()
	return nil
}

// estimate returns the new D = avg(|z⊙H·z|) (in the probe's scratch, owned
// by the Hutchinson life cycle); on error nothing is kept.
func (a *AdaHessian) estimate(params []optim.Param, o optim.Oracle, t int64) ([]*tensor.Dense, error) {
	hz, err := a.est.Estimate(params, o, t)
	if err != nil {
		return nil, err
	}
	for i, p := range params {
		block := BlockSize(p.Value.Shape())
		j := -1
		switch hz[i].Dtype() {
		case tensor.Float64:
			j = absAverage(hz[i].Float64s(), block)
		case tensor.Float32:
			j = absAverage(hz[i].Float32s(), block)
		}
		if j >= 0 {
			return nil, fmt.Errorf("adahessian: step %d: Hessian diagonal estimate for param %q: entry %d is too large (D or D⊙D is not finite): %w", t, p.Name, j, optim.ErrNonFinite)
		}
	}
	return hz, nil
}

// BlockSize returns the number of consecutive entries (in row-major order)
// over which AdaHessian averages |z⊙H·z| for a parameter of the given shape:
//
//   - rank ≤ 2 (biases, linear weights): 1, no averaging (the reference);
//   - rank 4 (conv2d weights [out, in, kh, kw]): kh·kw, the mean over the
//     kernel window for each (out, in) pair (the reference);
//   - rank 3 ([out, in, k], e.g. conv1d weights): k, the mean over the last
//     dimension, as the reference's instruction/ variant does (the main
//     reference fails on rank 3);
//   - rank ≥ 5 (conv3d [out, in, kd, kh, kw], ...): the product of all
//     dimensions after the first two, by the same rule.
func BlockSize(shape tensor.Shape) int {
	if len(shape) <= 2 {
		return 1
	}
	b := 1
	for _, s := range shape[2:] {
		b *= s
	}
	if b < 1 {
		return 1
	}
	return b
}

// absAverage replaces the Hutchinson product d = z⊙(H·z) by |d| averaged
// over consecutive blocks of size block (the mean is accumulated in
// float64). It returns the index of the first entry whose D or D⊙D is not
// finite, or −1.
func absAverage[T optim.Float](hz []T, block int) int {
	n := len(hz)
	for j := range hz {
		hz[j] = T(math.Abs(float64(hz[j])))
	}
	if block > 1 {
		for s := 0; s+block <= n; s += block {
			sum := 0.0
			for _, x := range hz[s : s+block] {
				sum += float64(x)
			}
			mean := T(sum / float64(block))
			for j := s; j < s+block; j++ {
				hz[j] = mean
			}
		}
	}
	for j, x := range hz {
		if f := float64(x * x); math.IsInf(f, 0) || math.IsNaN(f) {
			return j
		}
	}
	return -1
}

// coeffs are the per-step scalars of the update kernel.
type coeffs struct {
	lr, b1, c1, b2, c2, bc1, sbc2k, power, eps, wd float64
}

// update applies step t with the Hessian diagonal estimate d to every
// parameter or, with check, computes it without writing and returns an
// error naming the first new value (m, v or θ) that is not finite.
func (a *AdaHessian) update(params []optim.Param, d []*tensor.Dense, t int64, check bool) error {
	c := a.cfg
	tf := float64(t)
	k := coeffs{
		b1: c.Beta1, c1: 1 - c.Beta1, b2: c.Beta2, c2: 1 - c.Beta2,
		bc1:   1 - math.Pow(c.Beta1, tf),
		sbc2k: math.Pow(math.Sqrt(1-math.Pow(c.Beta2, tf)), c.HessianPower),
		power: c.HessianPower, eps: c.Eps,
	}
	m, v := a.Slot(0), a.Slot(1)
	for i, p := range params {
		k.lr, k.wd = a.ParamLR(i), a.ParamWD(i)
		j, what, x := -1, "", 0.0
		switch p.Value.Dtype() {
		case tensor.Float64:
			if th, g, mi, vi, di := p.Value.Float64s(), p.Grad.Float64s(), m[i].Float64s(), v[i].Float64s(), d[i].Float64s(); !check || !finite(k, th, g, mi, vi, di) {
				j, what, x = kernel(k, check, th, g, mi, vi, di)
			}
		case tensor.Float32:
			if th, g, mi, vi, di := p.Value.Float32s(), p.Grad.Float32s(), m[i].Float32s(), v[i].Float32s(), d[i].Float32s(); !check || !finite(k, th, g, mi, vi, di) {
				j, what, x = kernel(k, check, th, g, mi, vi, di)
			}
		}
		if j >= 0 {
			return optim.NonFiniteUpdate("adahessian", t, p.Name, what, j, x)
		}
	}
	return nil
}

// finite is the fast path of the check pass: it reports true only when
// kernel would find every new θ, m and v finite, from integer max scans
// (ik.MaxAbs, MaxNonNeg: no floating-point arithmetic per entry, which is
// slow on subnormal moments) and a bound on kernel's arithmetic. With the
// largest |θ| Θ, |g| G, |m| A, v V (every v finite and not negative, or no
// bound) and |D| E, and β1, 1−β1, β2, 1−β2 ≤ 1 in T:
//
//	|m'| ≤ (A + G)·R =: M,  0 ≤ v' ≤ (V + E²)·R
//	|m'/bc1| ≤ M/bc1·R,  |m'/bc1/den + λ·θ| ≤ (M/(bc1·eps) + λ·Θ)·R =: S
//	|θ − η·(m'/bc1/den + λ·θ)| ≤ (Θ + η·S)·R
//
// where den = (√v')ᵏ/sbc2k + eps is at least eps or +Inf (k ≥ 0 and
// 0 < sbc2k < +Inf; a +Inf den makes the quotient 0) and R = 1.001
// covers the rounding of every operation (a factor of at most 1 + 2⁻²⁴
// each). It answers true when every bound is below half the largest finite
// T. False means "not proven": the caller then runs kernel's exact check,
// so a step is refused exactly when one of its new values is not finite.
func finite[T optim.Float](k coeffs, theta, g, m, v, d []T) bool {
	const r = 1.001
	limit := maxFinite[T]() / 2
	lr, wd, bc1 := float64(T(k.lr)), float64(T(k.wd)), float64(T(k.bc1))
	sbc2k, eps := float64(T(k.sbc2k)), float64(T(k.eps))
	for _, c := range [...]float64{k.b1, k.c1, k.b2, k.c2} {
		if !(c >= 0 && c <= 1) {
			return false
		}
	}
	if !(eps > 0 && bc1 > 0 && sbc2k > 0 && sbc2k <= math.MaxFloat64 && k.power >= 0 && lr >= 0 && wd >= 0) {
		return false
	}
	th, e := ik.MaxAbs(theta), ik.MaxAbs(d)
	mb := (ik.MaxAbs(m) + ik.MaxAbs(g)) * r
	vb := (ik.MaxNonNeg(v) + e*e) * r
	sb := (mb/(bc1*eps) + wd*th) * r
	tb := (th + lr*sb) * r
	return mb < limit && vb < limit && mb/bc1*r < limit && sb < limit && tb < limit
}

// maxFinite returns the largest finite T.
func maxFinite[T optim.Float]() float64 {
	if unsafe.Sizeof(T(0)) == 4 {
		return math.MaxFloat32
	}
	return math.MaxFloat64
}

// kernel is the per-coordinate update:
//
//	m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·D⊙D
//	θ ← θ − η·( m/(1−β1ᵗ) / ((√v)ᵏ/(√(1−β2ᵗ))ᵏ + ε) + λ·θ )
//
// With check it writes nothing and returns the first entry whose new θ, m
// or v is not finite (−1 if none), which one, and the value.
func kernel[T optim.Float](k coeffs, check bool, theta, g, m, v, d []T) (int, string, float64) {
	b1, c1, b2, c2 := T(k.b1), T(k.c1), T(k.b2), T(k.c2)
	lr, bc1, sbc2k, eps, wd := T(k.lr), T(k.bc1), T(k.sbc2k), T(k.eps), T(k.wd)
	n := len(theta)
	g, m, v, d = g[:n], m[:n], v[:n], d[:n]
	p := k.power
	for j := range theta {
		mj := m[j]*b1 + c1*g[j]
		vj := v[j]*b2 + c2*d[j]*d[j]
		var den T
		if p == 1 {
			den = T(math.Sqrt(float64(vj)))/sbc2k + eps
		} else {
			den = T(math.Pow(math.Sqrt(float64(vj)), p))/sbc2k + eps
		}
		th := theta[j]
		th = th - lr*(mj/bc1/den+wd*th)
		if check {
			switch {
			case !optim.Finite(th):
				return j, "value", float64(th)
			case !optim.Finite(mj):
				return j, slotExpAvg, float64(mj)
			case !optim.Finite(vj):
				return j, slotExpHSq, float64(vj)
			}
			continue
		}
		m[j], v[j] = mj, vj
		theta[j] = th
	}
	return -1, "", 0
}

// PrecondSolve sets out = P⁻¹·v with AdaHessian's denominator from the
// current state, P = (√v_t)ᵏ/(√(1−β2ᵗ))ᵏ + ε at t = Steps() (k the Hessian
// power): the one the last step divided by (the next step's differs by the
// (1−β2) share of its new D⊙D). With parameter groups, block i is scaled by
// its LRScale. Before the first step it returns an error wrapping
// optim.ErrNoPreconditioner.
func (a *AdaHessian) PrecondSolve(params []optim.Param, v, out []*tensor.Dense) error {
	if err := a.BeginSolve("adahessian", params, v, out); err != nil {
		return err
	}
	defer a.End()
	c := a.cfg
	sbc2k := math.Pow(math.Sqrt(1-math.Pow(c.Beta2, float64(a.Steps()))), c.HessianPower)
	optim.DiagonalSolve(&a.Hyper, params, v, out, a.Slot(1), func(x float64) float64 {
		if c.HessianPower == 1 {
			return math.Sqrt(x)/sbc2k + c.Eps
		}
		return math.Pow(math.Sqrt(x), c.HessianPower)/sbc2k + c.Eps
	})
	return nil
}

// StabilityLimit returns optim.EMALimit(β1): 2(1+β1)/(1−β1).
func (a *AdaHessian) StabilityLimit() float64 { return optim.EMALimit(a.cfg.Beta1) }
