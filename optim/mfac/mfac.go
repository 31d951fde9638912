package mfac

import (
	"fmt"
	"math"

	"github.com/curvopt/curvopt/optim"
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
type MFAC struct {
	// Hyper holds the learning rate and the parameter groups (SetLR,
	// SetGroups).
	optim.Hyper
	cfg    Config
	step   int64
	params optim.Buffers // no slots: checks the parameter list between steps
	names  []string      // parameter names and shapes, recorded at the first step
	shapes [][]int
	eng    engine
}

// engine is the dtype-specific part.
type engine interface {
	dtype() tensor.Dtype
	step(c Config, h *optim.Hyper, params []optim.Param, t int64) error
	export(names []string, shapes [][]int, st *optim.State, view bool)
	lastIHVP(dst []float64) []float64
	slot() int
	close()
}

// New returns an M-FAC optimizer, or an error naming an invalid
// hyperparameter. The window is allocated at the first Step, when d is known.
func New(c Config) (*MFAC, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &MFAC{Hyper: optim.NewHyper("mfac", c.LR, c.WeightDecay), cfg: c, params: optim.NewBuffers()}, nil
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
	if o.eng == nil || o.step == 0 {
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
	if o.params.Ready() {
		if err := o.params.Match("mfac", params); err != nil {
			return err
		}
	}
	if o.eng == nil {
		eng, err := newEngine(dt, o.cfg, optim.NumEl(params))
		if err != nil {
			return err
		}
		o.eng = eng
	}
	if err := o.eng.step(o.cfg, &o.Hyper, params, o.step+1); err != nil {
		return err
	}
	if !o.params.Ready() {
		o.record(params)
	}
	o.step++
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
func backing[T optim.Float](t *tensor.Dense) []T { return optim.Slice[T](t) }

func (e *eng[T]) step(c Config, h *optim.Hyper, params []optim.Param, t int64) error {
	if n := optim.NumEl(params); n != len(e.g) {
		return fmt.Errorf("mfac: %d parameter entries, but the window has d = %d", n, len(e.g))
	}
	off := 0
	for i, p := range params {
		th, gr := backing[T](p.Value), backing[T](p.Grad)
		g := e.g[off : off+len(th)]
		if pwd := h.ParamWD(i); pwd > 0 {
			wd := T(pwd)
			for j := range g {
				g[j] = gr[j] + wd*th[j]
			}
			if j := optim.NonFinite(g); j >= 0 {
				return fmt.Errorf("mfac: param %q: gradient + weight_decay·θ entry %d is %v: %w", p.Name, j, g[j], optim.ErrNonFinite)
			}
		} else {
			copy(g, gr)
		}
		off += len(th)
	}
	slot := e.w.Slot()
	if err := e.w.updateIHVP(e.g, e.u); err != nil {
		return fmt.Errorf("mfac: step %d: %w", t, err)
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
		off += len(th)
	}
	return nil
}

// State slots of the global buffers (Param "").
const (
	slotWindow = "window" // [m, d], the gradient ring buffer G, dtype of θ
	slotGram   = "gram"   // [m, m] float64, K = G·Gᵀ
	slotFactor = "factor" // [m, m] float64, Cholesky factor by slot
	slotV      = "v"      // per parameter: momentum buffer (μ > 0)
	slotShape  = "shape"  // per parameter: its shape (float64 dims), so that a state is refused for other parameters
)

// State exports the step counter, the window, the Gram matrix, its
// factor, the ring slot and the momentum buffer: resuming from it is
// bit-identical.
func (o *MFAC) State() (*optim.State, error) {
	if err := o.Begin("State"); err != nil {
		return nil, err
	}
	defer o.End()
	st := &optim.State{Optimizer: o.Name(), Step: o.step}
	o.ExportGroups(st)
	if o.eng == nil || !o.params.Ready() {
		return st, nil
	}
	o.eng.export(o.names, o.shapes, st, false)
	return st, nil
}

// StateView is State without the copies: the window, Gram matrix, factor
// and momentum tensors alias the optimizer's live buffers, so they are valid
// only until the next Step or LoadState. A checkpoint writer uses it to
// stream the m×d window (hundreds of MB) to disk in its own dtype.
func (o *MFAC) StateView() (*optim.State, error) {
	if err := o.Begin("StateView"); err != nil {
		return nil, err
	}
	defer o.End()
	st := &optim.State{Optimizer: o.Name(), Step: o.step}
	if o.eng == nil || !o.params.Ready() {
		return st, nil
	}
	o.eng.export(o.names, o.shapes, st, true)
	return st, nil
}

func (o *MFAC) record(params []optim.Param) {
	_ = o.params.Ensure("mfac", params)
	o.names, o.shapes = make([]string, len(params)), make([][]int, len(params))
	for i, p := range params {
		o.names[i], o.shapes[i] = p.Name, append([]int(nil), p.Value.Shape()...)
	}
}

func (e *eng[T]) export(names []string, shapes [][]int, st *optim.State, view bool) {
	w := e.w
	tens := func(param, slot string, shape []int, x []T) optim.StateTensor {
		if !view {
			return optim.SliceTensor(param, slot, shape, x)
		}
		return aliasTensor(param, slot, shape, x)
	}
	st.Tensors = append(st.Tensors,
		tens("", slotWindow, []int{w.m, w.d}, w.g),
		optim.StateTensor{Slot: slotGram, Dtype: "float64", Shape: []int{w.m, w.m}, F64: w.k},
		optim.StateTensor{Slot: slotFactor, Dtype: "float64", Shape: []int{w.m, w.m}, F64: w.l},
	)
	if !view {
		st.Tensors[len(st.Tensors)-2].F64 = append([]float64(nil), w.k...)
		st.Tensors[len(st.Tensors)-1].F64 = append([]float64(nil), w.l...)
	}
	for i, name := range names {
		dims := make([]float64, len(shapes[i]))
		for j, d := range shapes[i] {
			dims[j] = float64(d)
		}
		st.Tensors = append(st.Tensors, optim.StateTensor{Param: name, Slot: slotShape, Dtype: "float64", Shape: []int{len(dims)}, F64: dims})
	}
	if e.v != nil {
		off := 0
		for i, name := range names {
			n := tensor.Shape(shapes[i]).TotalSize()
			st.Tensors = append(st.Tensors, tens(name, slotV, shapes[i], e.v[off:off+n]))
			off += n
		}
	}
	st.Scalars = map[string]float64{
		"ring_slot": float64(w.s), "filled": float64(w.filled), "count": float64(w.count), "last_slot": float64(e.last),
	}
}

// aliasTensor returns a state tensor whose values are x itself (no copy).
func aliasTensor[T optim.Float](param, slot string, shape []int, x []T) optim.StateTensor {
	st := optim.StateTensor{Param: param, Slot: slot, Shape: append([]int(nil), shape...)}
	switch d := any(x).(type) {
	case []float32:
		st.Dtype, st.F32 = "float32", d
	case []float64:
		st.Dtype, st.F64 = "float64", d
	}
	return st
}

// values returns the state tensor's values as []T (nil for another dtype).
func values[T optim.Float](st *optim.StateTensor) []T {
	var zero T
	if _, ok := any(zero).(float32); ok {
		return any(st.F32).([]T)
	}
	return any(st.F64).([]T)
}

// LoadState restores a state exported by an M-FAC optimizer with the same
// ngrads for the same parameters (names, shapes, one dtype). It checks every
// shape, dtype, scalar and value (finite, positive factor diagonal) before
// changing anything; on error nothing changes.
func (o *MFAC) LoadState(params []optim.Param, st *optim.State) error {
	return o.loadState(params, st, false)
}

// TakeState is LoadState that keeps st's window values as the live window
// instead of copying them, so that resuming holds the m×d window in memory
// once: st must not be used afterwards.
func (o *MFAC) TakeState(params []optim.Param, st *optim.State) error {
	return o.loadState(params, st, true)
}

func (o *MFAC) loadState(params []optim.Param, st *optim.State, take bool) error {
	if err := o.BeginLoad(params, st); err != nil {
		return err
	}
	defer o.End()
	dt, err := checkDtype(params)
	if err != nil {
		return fmt.Errorf("load state: %w", err)
	}
	h := o.Hyper
	if err := h.ImportGroups(st); err != nil {
		return fmt.Errorf("mfac: load state: %w", err)
	}
	if st.Step == 0 && len(st.Tensors) == 0 {
		o.Hyper = h
		if o.eng != nil {
			o.eng.close()
		}
		o.eng, o.step, o.params, o.names, o.shapes = nil, 0, optim.NewBuffers(), nil, nil
		return nil
	}
	if err := checkShapes(params, st); err != nil {
		return err
	}
	d, m := optim.NumEl(params), o.cfg.NGrads
	get := func(slot string, dtype tensor.Dtype, shape ...int) (*optim.StateTensor, error) {
		t := st.Find("", slot)
		if t == nil {
			return nil, fmt.Errorf("mfac: load state: no %q tensor", slot)
		}
		if err := t.Check(dtype, shape); err != nil {
			return nil, fmt.Errorf("mfac: load state: %q (ngrads %d, d %d): %w", slot, m, d, err)
		}
		if err := t.CheckFinite(); err != nil {
			return nil, fmt.Errorf("mfac: load state: %w", err)
		}
		return t, nil
	}
	win, err := get(slotWindow, dt, m, d)
	if err != nil {
		return err
	}
	gram, err := get(slotGram, tensor.Float64, m, m)
	if err != nil {
		return err
	}
	fac, err := get(slotFactor, tensor.Float64, m, m)
	if err != nil {
		return err
	}
	for i := 0; i < m; i++ {
		if !(fac.F64[i*m+i] > 0) {
			return fmt.Errorf("mfac: load state: factor diagonal %d is %v, want > 0", i, fac.F64[i*m+i])
		}
	}
	var sc [4]int
	for i, name := range []string{"ring_slot", "filled", "count", "last_slot"} {
		v, ok := st.Scalars[name]
		lo, hi := 0.0, float64(m)
		switch name {
		case "count":
			hi = math.MaxInt64
		case "last_slot":
			lo = -1
		}
		if !ok || v != math.Trunc(v) || v < lo || v > hi || (name == "ring_slot" && v >= float64(m)) {
			return fmt.Errorf("mfac: load state: scalar %q = %v missing or out of range for ngrads %d", name, v, m)
		}
		sc[i] = int(v)
	}
	var vs []*tensor.Dense
	if o.cfg.Momentum > 0 {
		if vs, err = st.ImportSlot("mfac: load state", slotV, params); err != nil {
			return err
		}
	}
	// Everything checked: build the new engine.
	var ne engine
	if o.eng != nil && o.eng.dtype() == dt && o.engDim() == d {
		ne = o.eng // reuse the allocation
	} else if ne, err = newEngine(dt, o.cfg, d); err != nil {
		return fmt.Errorf("load state: %w", err)
	}
	switch e := ne.(type) {
	case *eng[float32]:
		e.load(values[float32](win), gram.F64, fac.F64, sc, vs, take)
	case *eng[float64]:
		e.load(values[float64](win), gram.F64, fac.F64, sc, vs, take)
	}
	if o.eng != nil && o.eng != ne {
		o.eng.close()
	}
	o.eng = ne
	o.Hyper = h
	o.params = optim.NewBuffers()
	o.record(params)
	o.step = st.Step
	return nil
}

func (o *MFAC) engDim() int {
	switch e := o.eng.(type) {
	case *eng[float32]:
		return e.w.d
	case *eng[float64]:
		return e.w.d
	}
	return -1
}

func (e *eng[T]) load(win []T, gram, fac []float64, sc [4]int, vs []*tensor.Dense, take bool) {
	w := e.w
	if take {
		// The freshly allocated window was never written, so dropping it
		// costs no resident memory.
		w.g = win
		if w.g32 != nil {
			w.g32 = any(win).([]float32)
		}
	} else {
		copy(w.g, win)
	}
	copy(w.k, gram)
	copy(w.l, fac)
	w.s, w.filled, w.count, w.broken, w.undoable = sc[0], sc[1], int64(sc[2]), nil, false
	e.last = sc[3]
	if e.v != nil {
		off := 0
		for _, t := range vs {
			off += copy(e.v[off:], backing[T](t))
		}
	}
}

// checkShapes compares the parameter names and shapes recorded in st (slot
// "shape") with params; a state without the record (older checkpoints) is
// checked by its window's dimension only.
func checkShapes(params []optim.Param, st *optim.State) error {
	n := 0
	for _, t := range st.Tensors {
		if t.Slot == slotShape {
			n++
		}
	}
	if n == 0 {
		return nil
	}
	if n != len(params) {
		return fmt.Errorf("mfac: load state: the state is for %d parameters, got %d", n, len(params))
	}
	for _, p := range params {
		t := st.Find(p.Name, slotShape)
		if t == nil {
			return fmt.Errorf("mfac: load state: the state has no parameter %q", p.Name)
		}
		if err := t.CheckFinite(); err != nil {
			return fmt.Errorf("mfac: load state: %w", err)
		}
		sh, dims := p.Value.Shape(), t.Float64s()
		same := len(dims) == len(sh)
		for j := 0; same && j < len(sh); j++ {
			same = dims[j] == float64(sh[j])
		}
		if !same {
			return fmt.Errorf("mfac: load state: param %q has shape %v, but the state has %v", p.Name, sh, dims)
		}
	}
	return nil
}
