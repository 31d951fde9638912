package mfac

import (
	"fmt"
	"math"

	"github.com/curvopt/curvopt/optim"
	"gorgonia.org/tensor"
)

// State slots of the global buffers (Param "") and of the momentum.
const (
	slotWindow = "window" // [k, d], the k rows of G written so far (k = "filled"), dtype of θ; [m, d] in old states
	slotGram   = "gram"   // [m, m] float64, K = G·Gᵀ
	slotFactor = "factor" // [m, m] float64, Cholesky factor by slot
	slotV      = "v"      // per parameter: momentum buffer (μ > 0)
	// slotShape is the slot of the old layout's per-parameter shapes
	// (float64 dims), replaced by State.Params (upgradeShapes).
	slotShape = "shape"
)

// scalarNames are the ring counters saved in State.Scalars.
var scalarNames = [...]string{"ring_slot", "filled", "count", "last_slot"}

// windowState is the optim.Part of M-FAC's state that is neither a slot
// nor a blob: the window, the Gram matrix, its factor, the ring counters
// and the momentum buffer (kept flat, exported per parameter as "v").
type windowState struct{ o *MFAC }

// SaveState exports the window, Gram matrix, factor, ring counters and
// momentum: resuming from them is bit-identical. The window is exported as
// its k = filled rows written so far (rows 0..k-1: the ring fills them in
// order), not all m: the others were never written and are never read
// before they are (see PrepareLoad). Before the first step there is
// nothing to export.
func (w windowState) SaveState(st *optim.State, view bool) error {
	if w.o.eng == nil || st.Step == 0 {
		return nil
	}
	w.o.eng.export(st, view)
	return nil
}

func (e *eng[T]) export(st *optim.State, view bool) {
	w := e.w
	tens := func(param, slot string, shape []int, x []T) optim.StateTensor {
		if !view {
			return optim.SliceTensor(param, slot, shape, x)
		}
		return aliasTensor(param, slot, shape, x)
	}
	k, l := w.k, w.l
	if !view {
		k, l = append([]float64(nil), k...), append([]float64(nil), l...)
	}
	st.Tensors = append(st.Tensors,
		tens("", slotWindow, []int{w.filled, w.d}, w.g[:w.filled*w.d]),
		optim.StateTensor{Slot: slotGram, Dtype: "float64", Shape: []int{w.m, w.m}, F64: k},
		optim.StateTensor{Slot: slotFactor, Dtype: "float64", Shape: []int{w.m, w.m}, F64: l},
	)
	if e.v != nil {
		off := 0
		for _, p := range st.Params {
			n := tensor.Shape(p.Shape).TotalSize()
			st.Tensors = append(st.Tensors, tens(p.Name, slotV, p.Shape, e.v[off:off+n]))
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

// PrepareLoad checks a state exported by an M-FAC optimizer with the same
// ngrads for params (one dtype): every shape, dtype, scalar and value
// (finite, positive factor diagonal), before anything changes. The
// parameter list itself is checked by optim.Base.
func (w windowState) PrepareLoad(params []optim.Param, st *optim.State, take bool) (func(), error) {
	o := w.o
	dt, err := checkDtype(params)
	if err != nil {
		return nil, fmt.Errorf("load state: %w", err)
	}
	if st.Step == 0 && len(st.Tensors) == 0 {
		return func() {
			if o.eng != nil {
				o.eng.close()
			}
			o.eng = nil
		}, nil
	}
	d, m := numEl(params), o.cfg.NGrads
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
	var sc [len(scalarNames)]int
	for i, name := range scalarNames {
		v, ok := st.Scalars[name]
		lo, hi := 0.0, float64(m)
		switch name {
		case "count":
			hi = math.MaxInt64
		case "last_slot":
			lo = -1
		}
		if !ok || v != math.Trunc(v) || v < lo || v > hi || (name == "ring_slot" && v >= float64(m)) {
			return nil, fmt.Errorf("mfac: load state: scalar %q = %v missing or out of range for ngrads %d", name, v, m)
		}
		sc[i] = int(v)
	}
	// The ring fills rows 0, 1, … in order: until it is full the next slot
	// is the fill. Every row at or past it is then written before it is
	// read, which is why only the rows written are saved.
	if filled, slot := sc[1], sc[0]; filled < m && slot != filled {
		return nil, fmt.Errorf("mfac: load state: ring slot %d with %d of %d rows filled: a window that is not full has its next slot at the fill", slot, filled, m)
	}
	// The window holds the filled rows; a state written before issue 21
	// holds all m (the unwritten ones zero): its first filled rows are
	// kept.
	rows := sc[1]
	if t := st.Find("", slotWindow); t != nil && len(t.Shape) == 2 && t.Shape[0] == m && t.Shape[1] == d && rows < m {
		rows = m
	}
	win, err := get(slotWindow, dt, rows, d)
	if err != nil {
		return nil, err
	}
	gram, err := get(slotGram, tensor.Float64, m, m)
	if err != nil {
		return nil, err
	}
	fac, err := get(slotFactor, tensor.Float64, m, m)
	if err != nil {
		return nil, err
	}
	for i := 0; i < m; i++ {
		if !(fac.F64[i*m+i] > 0) {
			return nil, fmt.Errorf("mfac: load state: factor diagonal %d is %v, want > 0", i, fac.F64[i*m+i])
		}
	}
	var vs []*tensor.Dense
	if o.cfg.Momentum > 0 {
		if vs, err = st.ImportSlot("mfac: load state", slotV, params); err != nil {
			return nil, err
		}
	}
	// Everything checked: the engine to load into.
	var ne engine
	if o.eng != nil && o.eng.dtype() == dt && o.engDim() == d {
		ne = o.eng // reuse the allocation
	} else if ne, err = newEngine(dt, o.cfg, d); err != nil {
		return nil, fmt.Errorf("load state: %w", err)
	}
	ne.setReducer(o.red)
	return func() {
		switch e := ne.(type) {
		case *eng[float32]:
			e.load(values[float32](win)[:sc[1]*d], gram.F64, fac.F64, sc, vs, take)
		case *eng[float64]:
			e.load(values[float64](win)[:sc[1]*d], gram.F64, fac.F64, sc, vs, take)
		}
		if o.eng != nil && o.eng != ne {
			o.eng.close()
		}
		o.eng = ne
	}, nil
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

func (e *eng[T]) load(win []T, gram, fac []float64, sc [len(scalarNames)]int, vs []*tensor.Dense, take bool) {
	w := e.w
	if n := w.m * w.d; take && cap(win) >= n {
		// win holds the rows written and has room for the rest (a reader
		// that reserved it: Reserve, or a state holding all m rows).
		// The freshly allocated window was never written, so dropping it
		// costs no resident memory; neither does the room past win, whose
		// pages nobody has touched.
		w.g = win[:n]
		if w.g32 != nil {
			w.g32 = any(w.g).([]float32)
		}
	} else {
		// Only the rows written are copied: the rest of the window is never
		// read before it is written (PrepareLoad), and pages of a fresh
		// window that are not touched cost no resident memory.
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

// upgradeShapes converts a state of the old layout, written before
// State.Params recorded the parameter list: M-FAC then kept each
// parameter's shape as a float64 tensor of its dims in slot "shape", in
// parameter order, and the dtype only in its window. It returns st itself
// for a state of the current layout, and a converted copy otherwise (st is
// not modified).
func upgradeShapes(st *optim.State) (*optim.State, error) {
	if st.Params != nil {
		return st, nil
	}
	var list []optim.ParamInfo
	rest := make([]optim.StateTensor, 0, len(st.Tensors))
	for i := range st.Tensors {
		t := &st.Tensors[i]
		if t.Slot != slotShape {
			rest = append(rest, *t)
			continue
		}
		if t.Dtype != "float64" || len(t.Shape) != 1 || t.Len() != t.Shape[0] || len(t.F32) != 0 {
			return nil, fmt.Errorf("old-layout shape record of param %q: want a float64 vector of dims, got %s %v", t.Param, t.Dtype, t.Shape)
		}
		dims := make([]int, len(t.F64))
		for j, x := range t.F64 {
			if !(x >= 0 && x <= math.MaxInt32 && x == math.Trunc(x)) {
				return nil, fmt.Errorf("old-layout shape record of param %q: dim %d is %v, not a whole number in [0, 2^31)", t.Param, j, x)
			}
			dims[j] = int(x)
		}
		list = append(list, optim.ParamInfo{Name: t.Param, Shape: dims})
	}
	if list == nil {
		return st, nil
	}
	win := st.Find("", slotWindow)
	if win == nil {
		return nil, fmt.Errorf("old-layout state (parameter shapes in slot %q) without a %q tensor", slotShape, slotWindow)
	}
	for i := range list {
		list[i].Dtype = win.Dtype // one window, one dtype for all parameters
	}
	up := *st
	up.Params, up.Tensors = list, rest
	return &up, nil
}

// Reserve returns how many values a checkpoint reader should make room for
// when it allocates the values of t, a tensor of a state this optimizer
// exported: for the window, which holds the k rows written so far, the
// whole window's m·d, so that TakeState keeps the reader's buffer as the
// live window (no second copy; the room past the k rows is never touched
// before a step writes it, and untouched pages of a fresh allocation cost
// no resident memory). For any other tensor, and a window that does not
// fit, it returns 0: t's shape's size.
func (o *MFAC) Reserve(t *optim.StateTensor) int {
	m := o.cfg.NGrads
	if t.Param != "" || t.Slot != slotWindow || len(t.Shape) != 2 || t.Shape[0] < 0 || t.Shape[0] > m || t.Shape[1] < 1 ||
		uint64(t.Shape[1])*uint64(m) > math.MaxInt/8 {
		return 0
	}
	return m * t.Shape[1]
}
