// Package adam implements Adam and AdamW with the semantics of
// torch.optim.Adam and torch.optim.AdamW (amsgrad off).
//
// At step t, with gradient g, parameters θ, learning rate η, decay rates β1,
// β2, epsilon ε and weight decay λ:
//
//	Adam (coupled L2):   g ← g + λ·θ
//	AdamW (decoupled):   θ ← θ·(1 − η·λ)
//	m ← β1·m + (1 − β1)·g
//	v ← β2·v + (1 − β2)·g⊙g
//	θ ← θ − η/(1 − β1ᵗ) · m / (√v / √(1 − β2ᵗ) + ε)
//
// Cost: one pass over the parameters; state: two buffers per parameter.
package adam

import (
	"math"
	"unsafe"

	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/optim/internal/kernel"
	"gorgonia.org/tensor"
)

// Config holds the hyperparameters of Adam and AdamW.
type Config struct {
	LR          float64 `hyper:"lr" doc:"learning rate"`                     // η > 0
	Beta1       float64 `hyper:"beta1" doc:"first-moment decay"`             // β1 in [0, 1)
	Beta2       float64 `hyper:"beta2" doc:"second-moment decay"`            // β2 in [0, 1)
	Eps         float64 `hyper:"eps" doc:"epsilon added to the denominator"` // ε > 0
	WeightDecay float64 `hyper:"weight_decay" doc:"weight decay"`            // λ ≥ 0 (coupled L2 for Adam, decoupled for AdamW)
	// Decoupled selects AdamW's decoupled weight decay θ ← θ·(1 − η·λ)
	// instead of Adam's coupled L2 term g ← g + λ·θ.
	Decoupled bool
}

// Default returns Adam's defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8,
// no weight decay.
func Default() Config {
	return Config{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
}

// DefaultW returns AdamW's defaults: as Default with decoupled weight decay
// 1e-2 (torch.optim.AdamW's default).
func DefaultW() Config {
	c := Default()
	c.WeightDecay = 1e-2
	c.Decoupled = true
	return c
}

func (c Config) name() string {
	if c.Decoupled {
		return "adamw"
	}
	return "adam"
}

// Validate reports the first invalid hyperparameter.
func (c Config) Validate() error {
	v := optim.Validator{Optimizer: c.name()}
	v.Positive("lr", c.LR)
	v.Unit("beta1", c.Beta1)
	v.Unit("beta2", c.Beta2)
	v.Positive("eps", c.Eps)
	v.NonNegative("weight_decay", c.WeightDecay)
	return v.Err()
}

// Adam is the Adam or AdamW optimizer. Create it with New.
type Adam struct {
	// Base holds the learning rate, the parameter groups (SetLR,
	// SetGroups), the step counter and the state: the slots "exp_avg" and
	// "exp_avg_sq".
	optim.Base
	cfg Config
}

// New returns an Adam (or, with Decoupled, AdamW) optimizer, or an error
// naming an invalid hyperparameter.
func New(c Config) (*Adam, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	l := optim.Layout{Slots: []string{"exp_avg", "exp_avg_sq"}}
	return &Adam{Base: optim.NewBase(c.name(), c.LR, c.WeightDecay, l), cfg: c}, nil
}

// Name returns "adam" or "adamw".
func (a *Adam) Name() string { return a.cfg.name() }

// Needs returns no curvature queries.
func (*Adam) Needs() optim.Needs { return optim.Needs{} }

// Config returns the hyperparameters, with the current learning rate.
func (a *Adam) Config() Config {
	c := a.cfg
	c.LR = a.LR()
	return c
}

var _ optim.Optimizer = (*Adam)(nil)

// Step applies one update. The oracle is not used and may be nil. The
// checks of optim.Hyper.BeginStep come first; then every new value (the
// parameter, exp_avg and exp_avg_sq) is computed and checked before any is
// written, so an update that would overflow (a gradient whose square is
// +Inf, say) is an error wrapping optim.ErrNonFinite, naming the
// parameter, the quantity and the entry, and changes nothing.
func (a *Adam) Step(params []optim.Param, o optim.Oracle) error {
	if err := a.BeginStep(params, a.Needs(), o); err != nil {
		return err
	}
	defer a.End()
	c := a.cfg
	t := a.Steps() + 1
	tf := float64(t)
	bc1 := 1 - math.Pow(c.Beta1, tf)
	k := coeffs{
		b1:      c.Beta1,
		b2:      c.Beta2,
		eps:     c.Eps,
		bc2Sqrt: math.Sqrt(1 - math.Pow(c.Beta2, tf)),
	}
	m, v := a.Slot(0), a.Slot(1)
	for pass := 0; pass < 2; pass++ {
		check := pass == 0
		for i, p := range params {
			lr, wd := a.ParamLR(i), a.ParamWD(i)
			k.lr, k.stepSize = lr, lr/bc1
			if c.Decoupled {
				k.decay, k.l2 = 1-lr*wd, 0
			} else {
				k.decay, k.l2 = 1, wd
			}
			j, what, x := -1, "", 0.0
			switch p.Value.Dtype() {
			case tensor.Float64:
				if th, g, mi, vi := p.Value.Float64s(), p.Grad.Float64s(), m[i].Float64s(), v[i].Float64s(); !check {
					apply(k, th, g, mi, vi)
				} else if !finite(k, th, g, mi, vi) {
					j, what, x = update(k, true, th, g, mi, vi)
				}
			case tensor.Float32:
				if th, g, mi, vi := p.Value.Float32s(), p.Grad.Float32s(), m[i].Float32s(), v[i].Float32s(); !check {
					apply(k, th, g, mi, vi)
				} else if !finite(k, th, g, mi, vi) {
					j, what, x = update(k, true, th, g, mi, vi)
				}
			}
			if j >= 0 {
				return optim.NonFiniteUpdate(a.Name(), t, p.Name, what, j, x)
			}
		}
	}
	a.Advance()
	return nil
}

type coeffs struct {
	lr, b1, b2, eps, stepSize, bc2Sqrt, decay, l2 float64
}

// update is the update of one parameter. With check it writes nothing and
// returns the first entry whose new value, exp_avg or exp_avg_sq is not
// finite (−1 if none), which one, and the value; otherwise it writes the
// update.
func update[T optim.Float](k coeffs, check bool, theta, g, m, v []T) (int, string, float64) {
	b1, b2 := T(k.b1), T(k.b2)
	c1, c2 := T(1-k.b1), T(1-k.b2)
	decay, l2, eps := T(k.decay), T(k.l2), T(k.eps)
	stepSize, bc2 := T(k.stepSize), T(k.bc2Sqrt)
	n := len(theta)
	g, m, v = g[:n], m[:n], v[:n]
	for j := range theta {
		th := theta[j]
		gj := g[j]
		if l2 != 0 {
			gj += l2 * th
		}
		th *= decay
		mj := b1*m[j] + c1*gj
		vj := b2*v[j] + c2*gj*gj
		th = th - stepSize*mj/(sqrt(vj)/bc2+eps)
		if check {
			switch {
			case !optim.Finite(th):
				return j, "value", float64(th)
			case !optim.Finite(mj):
				return j, "exp_avg", float64(mj)
			case !optim.Finite(vj):
				return j, "exp_avg_sq", float64(vj)
			}
			continue
		}
		m[j], v[j] = mj, vj
		theta[j] = th
	}
	return -1, "", 0
}

// apply is update without check, with the weight-decay branch out of the
// loop: it writes exactly what update computes.
func apply[T optim.Float](k coeffs, theta, g, m, v []T) {
	b1, b2 := T(k.b1), T(k.b2)
	c1, c2 := T(1-k.b1), T(1-k.b2)
	decay, l2, eps := T(k.decay), T(k.l2), T(k.eps)
	stepSize, bc2 := T(k.stepSize), T(k.bc2Sqrt)
	n := len(theta)
	g, m, v = g[:n], m[:n], v[:n]
	if l2 == 0 {
		for j, th := range theta {
			gj := g[j]
			mj := b1*m[j] + c1*gj
			vj := b2*v[j] + c2*gj*gj
			m[j], v[j] = mj, vj
			th *= decay
			theta[j] = th - stepSize*mj/(sqrt(vj)/bc2+eps)
		}
		return
	}
	for j, th := range theta {
		gj := g[j] + l2*th
		mj := b1*m[j] + c1*gj
		vj := b2*v[j] + c2*gj*gj
		m[j], v[j] = mj, vj
		th *= decay
		theta[j] = th - stepSize*mj/(sqrt(vj)/bc2+eps)
	}
}

// finite is the check pass's fast path: it reports true only when update
// would make every new value, exp_avg and exp_avg_sq finite, from four
// integer max scans (kernel.MaxAbs, MaxNonNeg: no floating-point
// arithmetic, which is slow on the subnormal moments that a long run
// produces) and a bound on update's arithmetic. With the largest |θ| Θ,
// |g| G, |m| A and v V (every v finite and not negative, or no bound),
// and β1, 1−β1, β2, 1−β2 ≤ 1 in T:
//
//	|g + l2·θ| ≤ (G + l2·Θ)·R =: D
//	|m'| ≤ (A + D)·R =: M,  0 ≤ v' ≤ (V + D²)·R
//	|θ·decay − stepSize·m'/(√v'/bc2 + eps)| ≤ (Θ·|decay| + stepSize·M·(1 + 1/eps))·R
//
// (with bc2 > 0 the denominator is at least eps, or +Inf, which makes the
// quotient 0),
// where R = 1.001 covers the rounding of every operation (a factor of at
// most 1 + 2⁻²⁴ each). It answers true when all three bounds are below
// half the largest finite T. False means "not proven": the caller then
// runs the exact check, so an update is refused exactly when one of its
// new values is not finite.
func finite[T optim.Float](k coeffs, theta, g, m, v []T) bool {
	const r = 1.001
	limit := maxFinite[T]() / 2
	l2, decay := float64(T(k.l2)), math.Abs(float64(T(k.decay)))
	stepSize, eps := float64(T(k.stepSize)), float64(T(k.eps))
	if !(eps > 0 && l2 >= 0 && float64(T(k.bc2Sqrt)) > 0) {
		return false
	}
	th, d := kernel.MaxAbs(theta), kernel.MaxAbs(g)
	d = (d + l2*th) * r
	mb := (kernel.MaxAbs(m) + d) * r
	vb := (kernel.MaxNonNeg(v) + d*d) * r
	tb := (th*decay + stepSize*mb*(1+1/eps)) * r
	return mb < limit && vb < limit && tb < limit
}

// maxFinite returns the largest finite T.
func maxFinite[T optim.Float]() float64 {
	if unsafe.Sizeof(T(0)) == 4 {
		return math.MaxFloat32
	}
	return math.MaxFloat64
}

func sqrt[T optim.Float](x T) T { return T(math.Sqrt(float64(x))) }

// PrecondSolve sets out = P⁻¹·v with Adam's denominator from the current
// state, P = √v_t/√(1−β2ᵗ) + ε at t = Steps(): the one the last step
// divided by (the next step's differs by the (1−β2) share of its new
// gradient). With parameter groups, block i is scaled by its LRScale.
// Before the first step it returns an error wrapping
// optim.ErrNoPreconditioner.
func (a *Adam) PrecondSolve(params []optim.Param, v, out []*tensor.Dense) error {
	if err := a.BeginSolve(a.Name(), params, v, out); err != nil {
		return err
	}
	defer a.End()
	bc2 := math.Sqrt(1 - math.Pow(a.cfg.Beta2, float64(a.Steps())))
	eps := a.cfg.Eps
	optim.DiagonalSolve(&a.Hyper, params, v, out, a.Slot(1), func(x float64) float64 { return math.Sqrt(x)/bc2 + eps })
	return nil
}

// StabilityLimit returns optim.EMALimit(β1): 2(1+β1)/(1−β1).
func (a *Adam) StabilityLimit() float64 { return optim.EMALimit(a.cfg.Beta1) }
