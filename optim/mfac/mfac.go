package mfac

import (
	"fmt"
	"github.com/curvopt/curvopt/internal/num"
	"math"
	"unsafe"

	"github.com/curvopt/curvopt/optim"
	ik "github.com/curvopt/curvopt/optim/internal/kernel"
	"gorgonia.org/tensor"
)

// Config holds M-FAC's hyperparameters (the reference's names in brackets).
type Config struct {
	LR          float64 `hyper:"lr" doc:"learning rate"`                           // η > 0 [lr]
	Momentum    float64 `hyper:"momentum" doc:"momentum"`                          // μ in [0, 1) [momentum]
	WeightDecay float64 `hyper:"weight_decay" doc:"weight decay (coupled L2)"`     // ≥ 0 [weight_decay]
	NGrads      int     `hyper:"ngrads" doc:"window size m (number of gradients)"` // m ≥ 1 [ngrads]
	Damp        float64 `hyper:"damp" doc:"damping"`                               // λ > 0 [damp]
}

// Default returns the reference's defaults: lr 1e-3, momentum 0, weight
// decay 0, m = 1024 gradients, damp 1e-5. The window costs m·d elements
// (4 KiB per float32 parameter at m = 1024: 1.1 GB for ResNet20's 0.27M
// parameters); pick a smaller NGrads for large models.
func Default() Config {
	return Config{LR: 1e-3, NGrads: 1024, Damp: 1e-5}
}

// Validate reports the first invalid hyperparameter.
func (c Config) Validate() error {
	v := optim.Validator{Optimizer: "mfac"}
	v.Positive("lr", c.LR)
	v.Unit("momentum", c.Momentum)
	v.NonNegative("weight_decay", c.WeightDecay)
	v.PositiveInt("ngrads", c.NGrads)
	v.Positive("damp", c.Damp)
	return v.Err()
}

// MFAC is the M-FAC optimizer (dynamic algorithm, one global block). Create
// it with New. It uses only gradients: Needs is empty.
//
// Its state (State, StateView, LoadState, TakeState, from optim.Base) is
// the window, the Gram matrix, its factor, the ring counters and, with
// momentum, the per-parameter slot "v" (state.go).
type MFAC struct {
	// Base holds the learning rate, the parameter groups (SetLR,
	// SetGroups), the step counter, the parameter list and the state.
	optim.Base
	cfg Config
	eng engine  // allocated at the first Step, when d is known
	red Reducer // nil: the whole window is here (see SetReducer)
}

// engine is the dtype-specific part.
type engine interface {
	dtype() tensor.Dtype
	step(c Config, h *optim.Hyper, params []optim.Param, t int64) error
	export(st *optim.State, view bool)
	lastIHVP(dst []float64) []float64
	solve(h *optim.Hyper, params []optim.Param, v, out []*tensor.Dense) error
	slot() int
	setReducer(r Reducer)
	close()
}

// New returns an M-FAC optimizer, or an error naming an invalid
// hyperparameter. The window is allocated at the first Step, when d is known.
func New(c Config) (*MFAC, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	o := &MFAC{cfg: c}
	o.Base = optim.NewBase("mfac", c.LR, c.WeightDecay, optim.Layout{Parts: []optim.Part{windowState{o}}, Upgrade: upgradeShapes})
	return o, nil
}

// Name returns "mfac".
func (*MFAC) Name() string { return "mfac" }

// Needs returns no curvature queries.
func (*MFAC) Needs() optim.Needs { return optim.Needs{} }

// Config returns the hyperparameters.
func (o *MFAC) Config() Config {
	c := o.cfg
	c.LR = o.LR()
	return c
}

var _ optim.Optimizer = (*MFAC)(nil)

// LastSlot returns the window row the last Step overwrote, or −1 before the
// first step.
func (o *MFAC) LastSlot() int {
	if o.eng == nil || o.Steps() == 0 {
		return -1
	}
	return o.eng.slot()
}

// LastIHVP appends to dst the last Step's u = F⁻¹·g (before momentum), in the
// flattened parameter layout; after a Step refused for a non-finite value,
// that step's u. Like LastSlot, call it between steps.
func (o *MFAC) LastIHVP(dst []float64) []float64 {
	if o.eng == nil {
		return dst
	}
	return o.eng.lastIHVP(dst)
}

// Close releases the window (its memory and its helper goroutine, which is
// also released when the optimizer is garbage collected); afterwards Step,
// State, StateView, LoadState, TakeState, SetLR and SetGroups return an
// error wrapping optim.ErrClosed. Closing twice is not an error.
func (o *MFAC) Close() error {
	return o.CloseWith(func() {
		if o.eng != nil {
			o.eng.close()
		}
		o.eng = nil
	})
}

// checkDtype requires one dtype for all parameters (one global window).
func checkDtype(params []optim.Param) (tensor.Dtype, error) {
	dt := params[0].Value.Dtype()
	for _, p := range params[1:] {
		if p.Value.Dtype() != dt {
			return dt, fmt.Errorf("mfac: param %q has dtype %v but param %q has %v: M-FAC keeps one window for all parameters and needs one dtype",
				p.Name, p.Value.Dtype(), params[0].Name, dt)
		}
	}
	return dt, nil
}

// Step applies one update: g = ∇L + wd·θ enters the window, u = F⁻¹·g,
// optional momentum, θ ← θ − lr·u. The oracle is not used and may be nil.
// The checks of optim.Hyper.BeginStep come first. Every new value (u, the
// momentum buffer, the parameters) is checked before any parameter is
// written; a NaN or ±Inf (a gradient too large for float64 inner products,
// or damp too small for the gradients' scale) is an error wrapping
// optim.ErrNonFinite that names the parameter and entry, and the window is
// then restored exactly as it was. On error nothing has changed.
func (o *MFAC) Step(params []optim.Param, or optim.Oracle) error {
	if err := o.BeginStep(params, o.Needs(), or); err != nil {
		return err
	}
	defer o.End()
	dt, err := checkDtype(params)
	if err != nil {
		return err
	}
	if o.eng == nil {
		eng, err := newEngine(dt, o.cfg, numEl(params))
		if err != nil {
			return err
		}
		eng.setReducer(o.red)
		o.eng = eng
	}
	if err := o.eng.step(o.cfg, &o.Hyper, params, o.Steps()+1); err != nil {
		return err
	}
	o.Advance()
	return nil
}

func newEngine(dt tensor.Dtype, c Config, d int) (engine, error) {
	switch dt {
	case tensor.Float32:
		return newEng[float32](c, d)
	case tensor.Float64:
		return newEng[float64](c, d)
	}
	return nil, fmt.Errorf("mfac: unsupported dtype %v", dt)
}

type eng[T optim.Float] struct {
	w       *Window[T]
	g, u, v []T
	last    int
	px, py  []T // PrecondSolve's scratch (precond.go), allocated at its first call
}

func newEng[T optim.Float](c Config, d int) (*eng[T], error) {
	w, err := NewWindow[T](d, c.NGrads, c.Damp)
	if err != nil {
		return nil, err
	}
	e := &eng[T]{w: w, g: make([]T, d), u: make([]T, d), last: -1}
	if c.Momentum > 0 {
		e.v = make([]T, d)
	}
	return e, nil
}

func (e *eng[T]) dtype() tensor.Dtype {
	var z T
	if _, ok := any(z).(float32); ok {
		return tensor.Float32
	}
	return tensor.Float64
}

func (e *eng[T]) slot() int { return e.last }
func (e *eng[T]) close()    { e.w.Close() }
func (e *eng[T]) lastIHVP(dst []float64) []float64 {
	for _, v := range e.u {
		dst = append(dst, float64(v))
	}
	return dst
}

// backing returns t's backing slice (also for a 0-d tensor) without
// allocating.
func backing[T optim.Float](t *tensor.Dense) []T { return num.Slice[T](t) }

func (e *eng[T]) step(c Config, h *optim.Hyper, params []optim.Param, t int64) error {
	if n := numEl(params); n != len(e.g) {
		return fmt.Errorf("mfac: %d parameter entries, but the window has d = %d", n, len(e.g))
	}
	// bad is a non-finite g: alone, refused at once; with a Reducer, after
	// the update's collective call (see nonFiniteGrad).
	var bad error
	off := 0
	for i, p := range params {
		th, gr := backing[T](p.Value), backing[T](p.Grad)
		g := e.g[off : off+len(th)]
		if pwd := h.ParamWD(i); pwd > 0 {
			wd := T(pwd)
			for j := range g {
				g[j] = gr[j] + wd*th[j]
			}
			if j := num.NonFinite(g); j >= 0 && bad == nil {
				bad = fmt.Errorf("mfac: param %q: gradient + weight_decay·θ entry %d is %v: %w", p.Name, j, g[j], optim.ErrNonFinite)
				if e.w.red == nil {
					return bad
				}
			}
		} else {
			copy(g, gr)
		}
		off += len(th)
	}
	slot := e.w.Slot()
	if err := e.w.updateIHVP(e.g, e.u); err != nil {
		if bad != nil {
			return bad
		}
		return fmt.Errorf("mfac: step %d: %w", t, err)
	}
	if bad != nil { // not reached: updateIHVP refuses a non-finite g
		e.w.undo()
		return bad
	}
	if err := e.check(c, h, params, t); err != nil {
		e.w.undo()
		return err
	}
	e.last = slot
	u := e.u
	if e.v != nil {
		mu, omu := T(c.Momentum), T(1-c.Momentum)
		for j := range e.v {
			e.v[j] = mu*e.v[j] + omu*u[j]
		}
		u = e.v
	}
	off = 0
	for i, p := range params {
		lr := T(h.ParamLR(i))
		th := backing[T](p.Value)
		uu := u[off : off+len(th)]
		for j := range th {
			th[j] -= lr * uu[j]
		}
		off += len(th)
	}
	return nil
}

// check computes, without writing, what step t would write (u = F⁻¹·g,
// the momentum buffer, the parameters) with the arithmetic of step, and
// returns an error naming the first value that is not finite.
func (e *eng[T]) check(c Config, h *optim.Hyper, params []optim.Param, t int64) error {
	mu, omu := T(c.Momentum), T(1-c.Momentum)
	off := 0
	for i, p := range params {
		lr := T(h.ParamLR(i))
		th := backing[T](p.Value)
		uu := e.u[off : off+len(th)]
		var vv []T
		if e.v != nil {
			vv = e.v[off : off+len(th)]
		}
		off += len(th)
		if finite(mu, omu, lr, th, uu, vv) {
			continue
		}
		for j, x := range uu {
			if !optim.Finite(x) {
				return fmt.Errorf("mfac: step %d: param %q: F⁻¹·g entry %d is %v (damp %v is too small for the gradients' scale; nothing changed): %w", t, p.Name, j, x, c.Damp, optim.ErrNonFinite)
			}
			if vv != nil {
				x = mu*vv[j] + omu*x
				if !optim.Finite(x) {
					return optim.NonFiniteUpdate("mfac", t, p.Name, slotV, j, float64(x))
				}
			}
			if y := th[j] - lr*x; !optim.Finite(y) {
				return optim.NonFiniteUpdate("mfac", t, p.Name, "value", j, float64(y))
			}
		}
	}
	return nil
}

// finite is the fast path of check for one parameter: it reports true only
// when check would find every u, new momentum buffer entry and new θ
// finite, from integer max scans (ik.MaxAbs: no branch and no
// floating-point arithmetic per entry) and a bound on the arithmetic. With
// the largest |u| U, |v| V and |θ| Θ, and μ, 1−μ in [0, 1]:
//
//	|μ·v + (1−μ)·u| ≤ (V + U)·R =: X   (X = U without momentum)
//	|θ − η·x| ≤ (Θ + η·X)·R
//
// where R = 1.001 covers the rounding of every operation (a factor of at
// most 1 + 2⁻²⁴ each). It answers true when U, X and that bound are below
// half the largest finite T. False means "not proven": check then scans
// the entries, so a step is refused exactly when a value is not finite.
func finite[T optim.Float](mu, omu, lr T, th, u, v []T) bool {
	const r = 1.001
	limit := math.MaxFloat64 / 2
	if unsafe.Sizeof(T(0)) == 4 {
		limit = math.MaxFloat32 / 2
	}
	ub := ik.MaxAbs(u)
	xb := ub
	if v != nil {
		if !(mu >= 0 && mu <= 1 && omu >= 0 && omu <= 1) {
			return false
		}
		xb = (ik.MaxAbs(v) + ub) * r
	}
	tb := (ik.MaxAbs(th) + math.Abs(float64(lr))*xb) * r
	return ub < limit && xb < limit && tb < limit
}

// numEl returns the total number of scalar parameters (d).
func numEl(params []optim.Param) int {
	n := 0
	for _, p := range params {
		n += p.Value.Shape().TotalSize()
	}
	return n
}
