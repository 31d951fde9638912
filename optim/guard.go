package optim

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"unsafe"

	"github.com/curvopt/curvopt/optim/internal/kernel"
	"gorgonia.org/tensor"
)

// ErrConcurrentUse is wrapped by the error of a call made on an optimizer
// (or on a hessian.Engine) while another of its calls is running, from
// another goroutine: neither is safe for concurrent use, so the second call
// is refused rather than allowed to corrupt the first one's state.
var ErrConcurrentUse = errors.New("used from two goroutines at once (not safe for concurrent use)")

// ErrClosed is wrapped by the error of a call made on an optimizer (or on a
// hessian.Engine) after its Close.
var ErrClosed = errors.New("used after Close")

// guard is the part of an optimizer that every call goes through: it
// refuses concurrent use and use after Close, and remembers the memory of
// the last parameter list found free of aliasing. One guard is shared by an
// optimizer's Hyper and every copy of it (LoadState works on a copy).
type guard struct {
	busy   atomic.Bool
	closed bool // written and read only while busy is held
	// spans holds, in parameter order (value, gradient, value, …), the
	// memory of the last parameter list found free of aliasing; sorted is
	// the scratch of a full check. Both are reused, so that a Step with the
	// same tensors as the last one checks in O(n) without allocating.
	spans, sorted []span
}

// span is the memory [lo, hi) of one parameter tensor (empty for a
// zero-size tensor, which stores nothing).
type span struct {
	lo, hi uintptr
	param  int
	grad   bool
}

// Begin claims the optimizer for one call of the named method (used in
// errors): it returns an error wrapping ErrConcurrentUse while another call
// is running and one wrapping ErrClosed after Close. Every exported method
// of an optimizer that reads or writes its state calls it first and End
// when it returns:
//
//	if err := o.Begin("State"); err != nil {
//		return nil, err
//	}
//	defer o.End()
//
// It allocates nothing unless it refuses.
func (h *Hyper) Begin(method string) error {
	if h.g == nil {
		return fmt.Errorf("%s: %s: optimizer not made by its New function", h.name, method)
	}
	if !h.g.busy.CompareAndSwap(false, true) {
		return fmt.Errorf("%s: %s: %w", h.name, method, ErrConcurrentUse)
	}
	if h.g.closed {
		h.g.busy.Store(false)
		return fmt.Errorf("%s: %s: %w", h.name, method, ErrClosed)
	}
	return nil
}

// End releases the optimizer claimed by a successful Begin, BeginStep or
// BeginLoad.
func (h *Hyper) End() { h.g.busy.Store(false) }

// BeginStep is the prologue every optimizer's Step runs first, written once
// here: Begin("Step"), then the checks that must pass before anything
// changes. It refuses, with an error naming the parameter(s):
//
//   - an empty or nil parameter list, a nil value or gradient, a value and
//     gradient of different shapes or dtypes, a dtype other than float32 or
//     float64, a view, a non-finite gradient entry (CheckParams);
//   - parameters whose tensors share memory: two parameters with one value,
//     a value that is its own gradient, one parameter's value that is
//     another's gradient, or tensors over overlapping parts of one backing
//     array (an in-place update would then read what it has just written);
//   - two parameters with the same name (state and groups go by name);
//   - an oracle that does not provide needs (CheckOracle);
//   - a parameter in no group (ResolveGroups).
//
// On success the optimizer is claimed: call End when Step returns. On error
// it is released. With the same parameter tensors as the last Step it runs
// in time linear in the number of parameters and allocates nothing.
func (h *Hyper) BeginStep(params []Param, needs Needs, o Oracle) error {
	if err := h.Begin("Step"); err != nil {
		return err
	}
	if err := h.checkStep(params, needs, o); err != nil {
		h.End()
		return err
	}
	return nil
}

func (h *Hyper) checkStep(params []Param, needs Needs, o Oracle) error {
	if err := CheckParams(h.name, params); err != nil {
		return err
	}
	if err := h.g.checkAliases(h.name, params); err != nil {
		return err
	}
	if err := CheckOracle(h.name, needs, o); err != nil {
		return err
	}
	return h.ResolveGroups(params)
}

// BeginLoad is the prologue of LoadState: Begin("LoadState"), then
// State.CheckHeader (a nil state, another optimizer's, a negative step, a
// non-finite scalar) and CheckValues (the parameters the state is loaded
// for). On success the optimizer is claimed: call End when LoadState
// returns.
func (h *Hyper) BeginLoad(params []Param, st *State) error {
	if err := h.Begin("LoadState"); err != nil {
		return err
	}
	err := st.CheckHeader(h.name)
	if err == nil {
		err = CheckValues(h.name+": load state", params)
	}
	if err == nil {
		err = checkNames(h.name+": load state", params)
	}
	if err != nil {
		h.End()
		return err
	}
	return nil
}

// Close marks the optimizer closed: later calls of Step, State, LoadState,
// SetLR, SetGroups (and Request) return an error wrapping ErrClosed.
// Closing twice is not an error; Close during another call returns an error
// wrapping ErrConcurrentUse and closes nothing.
func (h *Hyper) Close() error { return h.CloseWith(nil) }

// CloseWith is Close for an optimizer that holds resources: release (if not
// nil) runs once, at the first Close, while the optimizer is claimed.
func (h *Hyper) CloseWith(release func()) error {
	if err := h.Begin("Close"); err != nil {
		if errors.Is(err, ErrClosed) {
			return nil
		}
		return err
	}
	defer h.End()
	h.g.closed = true
	if release != nil {
		release()
	}
	return nil
}

// CheckValues verifies the parameters given to a method that needs their
// values but not their gradients (LoadState, Request): a non-empty list,
// each with a non-nil float32 or float64 value that is not a view. The
// error names the parameter.
func CheckValues(prefix string, params []Param) error {
	if len(params) == 0 {
		return fmt.Errorf("%s: no parameters", prefix)
	}
	for i, p := range params {
		var err error
		switch {
		case p.Value == nil:
			err = errors.New("nil value")
		case p.Value.Dtype() != tensor.Float64 && p.Value.Dtype() != tensor.Float32:
			err = fmt.Errorf("unsupported dtype %v (want float32 or float64)", p.Value.Dtype())
		default:
			err = kernel.CheckDense("value", p.Value)
		}
		if err != nil {
			return fmt.Errorf("%s: param %q: %w", prefix, paramName(p, i), err)
		}
	}
	return nil
}

// checkNames refuses two parameters with the same name.
func checkNames(prefix string, params []Param) error {
	seen := make(map[string]int, len(params))
	for i, p := range params {
		if j, ok := seen[p.Name]; ok {
			return fmt.Errorf("%s: parameters %d and %d are both named %q: parameter names must be unique (state and groups go by name)", prefix, j, i, p.Name)
		}
		seen[p.Name] = i
	}
	return nil
}

// paramName is p's name for errors ("#i" when it has none).
func paramName(p Param, i int) string {
	if p.Name == "" {
		return fmt.Sprintf("#%d", i)
	}
	return p.Name
}

// spanOf returns the memory of t (a checked float32 or float64 tensor).
func spanOf(t *tensor.Dense, param int, grad bool) span {
	s := span{param: param, grad: grad}
	if t.Shape().TotalSize() == 0 {
		return s
	}
	switch t.Dtype() {
	case tensor.Float64:
		d := t.Float64s()
		s.lo = uintptr(unsafe.Pointer(unsafe.SliceData(d)))
		s.hi = s.lo + uintptr(len(d))*8
	case tensor.Float32:
		d := t.Float32s()
		s.lo = uintptr(unsafe.Pointer(unsafe.SliceData(d)))
		s.hi = s.lo + uintptr(len(d))*4
	}
	return s
}

// checkAliases refuses parameter tensors that share memory (after
// CheckParams). A list whose tensors occupy exactly the memory of the last
// accepted one is accepted without sorting: whether intervals overlap
// depends on the intervals alone.
func (g *guard) checkAliases(prefix string, params []Param) error {
	need := 2 * len(params)
	same := len(g.spans) == need
	if cap(g.spans) < need {
		g.spans = make([]span, need)
	}
	g.spans = g.spans[:need]
	for i, p := range params {
		v, gr := spanOf(p.Value, i, false), spanOf(p.Grad, i, true)
		if same && (g.spans[2*i] != v || g.spans[2*i+1] != gr) {
			same = false
		}
		g.spans[2*i], g.spans[2*i+1] = v, gr
	}
	if same {
		return nil
	}
	g.sorted = g.sorted[:0]
	for _, s := range g.spans {
		if s.hi > s.lo {
			g.sorted = append(g.sorted, s)
		}
	}
	slices.SortFunc(g.sorted, func(a, b span) int { return cmp.Compare(a.lo, b.lo) })
	// Sorted by start, some two spans overlap exactly when some neighbours
	// do: a span overlapping an earlier one also overlaps every span
	// between them.
	for i := 1; i < len(g.sorted); i++ {
		if a, b := g.sorted[i-1], g.sorted[i]; b.lo < a.hi {
			g.spans = g.spans[:0] // check the next list in full
			return aliasError(prefix, params, a, b)
		}
	}
	return nil
}

func aliasError(prefix string, params []Param, a, b span) error {
	if a.param > b.param || (a.param == b.param && a.grad) {
		a, b = b, a
	}
	what := func(s span) string {
		if s.grad {
			return "gradient"
		}
		return "value"
	}
	pa, pb := paramName(params[a.param], a.param), paramName(params[b.param], b.param)
	if a.param == b.param {
		return fmt.Errorf("%s: param %q: value and gradient share memory: a parameter's value and gradient need separate tensors", prefix, pa)
	}
	return fmt.Errorf("%s: params %q and %q share memory (the %s of %q overlaps the %s of %q): every parameter's value and gradient need memory of their own", prefix, pa, pb, what(a), pa, what(b), pb)
}
