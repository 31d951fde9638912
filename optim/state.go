package optim

import (
	"fmt"
	"math"

	"github.com/curvopt/curvopt/internal/num"
	"github.com/curvopt/curvopt/optim/internal/kernel"
	"gorgonia.org/tensor"
)

// State is an optimizer's exported state: everything needed to resume
// training bit-identically. It is plain data (encodable with encoding/gob or
// encoding/json) and shares no memory with the optimizer.
type State struct {
	// Optimizer is the exporting optimizer's Name.
	Optimizer string
	// Step is the number of completed steps.
	Step int64
	// Params is the parameter list the state was exported for (names,
	// dtypes, shapes, in the order of the params given to Step); LoadState
	// refuses a state for another list. Empty before the first step, and
	// in states written before it was recorded.
	Params []ParamInfo
	// Tensors holds per-parameter state (moments, Hessian estimates) and any
	// global buffers (M-FAC's gradient window, with an empty Param).
	Tensors []StateTensor
	// Scalars holds named scalar state beyond the step counter.
	Scalars map[string]float64
	// Blobs holds opaque state, such as a random source's, by name.
	Blobs map[string][]byte
	// Groups holds the parameter groups (nil: the single default group).
	Groups []Group
}

// StateTensor is one state buffer, kept in the dtype of the live buffer:
// exactly one of F32 and F64 holds the values (row-major), as Dtype says.
// Keeping the dtype halves a float32 state's size against a float64 copy
// and lets a checkpoint stream the values as they are.
type StateTensor struct {
	Param string // the parameter it belongs to; empty for global buffers
	Slot  string // e.g. "exp_avg", "exp_avg_sq", "momentum_buffer"
	Dtype string // "float32" or "float64"
	Shape []int
	F32   []float32 // the values when Dtype is "float32"
	F64   []float64 // the values when Dtype is "float64"
}

// NewStateTensor returns a state tensor holding a copy of t's values (t
// must be float32 or float64).
func NewStateTensor(param, slot string, t *tensor.Dense) StateTensor {
	st := StateTensor{Param: param, Slot: slot, Dtype: t.Dtype().String(), Shape: append([]int(nil), t.Shape()...)}
	switch d := kernel.Backing(t).(type) {
	case []float32:
		st.F32 = append([]float32(nil), d...)
	case []float64:
		st.F64 = append([]float64(nil), d...)
	}
	return st
}

// viewTensor returns a state tensor whose values are t's backing slice
// (no copy).
func viewTensor(param, slot string, t *tensor.Dense) StateTensor {
	st := StateTensor{Param: param, Slot: slot, Dtype: t.Dtype().String(), Shape: append([]int(nil), t.Shape()...)}
	switch d := kernel.Backing(t).(type) {
	case []float32:
		st.F32 = d
	case []float64:
		st.F64 = d
	}
	return st
}

// SliceTensor returns a state tensor holding a copy of x with the given shape.
func SliceTensor[T num.Float](param, slot string, shape []int, x []T) StateTensor {
	st := StateTensor{Param: param, Slot: slot, Shape: append([]int(nil), shape...)}
	switch d := any(x).(type) {
	case []float32:
		st.Dtype, st.F32 = "float32", append([]float32(nil), d...)
	case []float64:
		st.Dtype, st.F64 = "float64", append([]float64(nil), d...)
	}
	return st
}

// Len returns the number of values held.
func (st *StateTensor) Len() int {
	if st.Dtype == "float32" {
		return len(st.F32)
	}
	return len(st.F64)
}

// Float64s returns a new []float64 copy of the values.
func (st *StateTensor) Float64s() []float64 {
	if st.Dtype == "float32" {
		out := make([]float64, len(st.F32))
		for i, v := range st.F32 {
			out[i] = float64(v)
		}
		return out
	}
	return append([]float64(nil), st.F64...)
}

// NonFinite returns the index of the first NaN or ±Inf value, or -1.
func (st *StateTensor) NonFinite() int {
	if st.Dtype == "float32" {
		return num.NonFinite(st.F32)
	}
	return num.NonFinite(st.F64)
}

// at returns value i as float64 (for error messages).
func (st *StateTensor) at(i int) float64 {
	if st.Dtype == "float32" {
		return float64(st.F32[i])
	}
	return st.F64[i]
}

// CheckFinite returns an error naming the tensor's parameter, slot and entry
// when it holds a NaN or ±Inf (wrapping ErrNonFinite).
func (st *StateTensor) CheckFinite() error {
	if i := st.NonFinite(); i >= 0 {
		return fmt.Errorf("state %q of param %q: entry %d is %v: %w", st.Slot, st.Param, i, st.at(i), ErrNonFinite)
	}
	return nil
}

// Find returns the state tensor for (param, slot), or nil.
func (s *State) Find(param, slot string) *StateTensor {
	for i := range s.Tensors {
		if s.Tensors[i].Param == param && s.Tensors[i].Slot == slot {
			return &s.Tensors[i]
		}
	}
	return nil
}

// ExportSlot appends copies of the per-parameter buffers bufs[i] (one per
// parameter) to s under slot.
func (s *State) ExportSlot(slot string, params []Param, bufs []*tensor.Dense) {
	for i, p := range params {
		s.Tensors = append(s.Tensors, NewStateTensor(p.Name, slot, bufs[i]))
	}
}

// CheckHeader verifies that s was exported by an optimizer named name and
// that its step and scalars are valid (non-negative, finite).
func (s *State) CheckHeader(name string) error {
	if s == nil {
		return fmt.Errorf("%s: nil state", name)
	}
	if s.Optimizer != name {
		return fmt.Errorf("%s: state was exported by optimizer %q", name, s.Optimizer)
	}
	if s.Step < 0 {
		return fmt.Errorf("%s: state has negative step %d", name, s.Step)
	}
	for k, v := range s.Scalars {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%s: state scalar %q is %v: %w", name, k, v, ErrNonFinite)
		}
	}
	return nil
}

// ImportSlot builds one buffer per parameter from the slot's tensors in s,
// checking that each exists, matches its parameter's name, shape and dtype,
// and holds only finite values. It returns an error naming the first
// mismatch (parameter, slot, and for a NaN or ±Inf the entry) and allocates
// nothing that the caller keeps on error.
func (s *State) ImportSlot(prefix, slot string, params []Param) ([]*tensor.Dense, error) {
	return s.importSlot(prefix, slot, params, false)
}

// importSlot is ImportSlot; with take, the tensors hold the state's values
// instead of copies.
func (s *State) importSlot(prefix, slot string, params []Param, take bool) ([]*tensor.Dense, error) {
	for _, p := range params {
		st := s.Find(p.Name, slot)
		if st == nil {
			return nil, fmt.Errorf("%s: state has no %q for param %q", prefix, slot, p.Name)
		}
		if err := st.Check(p.Value.Dtype(), p.Value.Shape()); err != nil {
			return nil, fmt.Errorf("%s: state %q of param %q: %w", prefix, slot, p.Name, err)
		}
		if err := st.CheckFinite(); err != nil {
			return nil, fmt.Errorf("%s: %w", prefix, err)
		}
	}
	// Every tensor in the state for this slot must belong to a parameter.
	names := make(map[string]bool, len(params))
	for _, p := range params {
		names[p.Name] = true
	}
	for _, st := range s.Tensors {
		if st.Slot == slot && !names[st.Param] {
			return nil, fmt.Errorf("%s: state has %q for param %q, which is not among the parameters", prefix, slot, st.Param)
		}
	}
	out := make([]*tensor.Dense, len(params))
	for i, p := range params {
		st := s.Find(p.Name, slot)
		if take {
			out[i] = st.view()
		} else {
			out[i] = st.Tensor()
		}
	}
	return out, nil
}

// Check verifies the tensor's dtype, shape and data length.
func (st *StateTensor) Check(dt tensor.Dtype, shape tensor.Shape) error {
	if st.Dtype != dt.String() {
		return fmt.Errorf("dtype %s, want %s", st.Dtype, dt)
	}
	if !tensor.Shape(st.Shape).Eq(shape) {
		return fmt.Errorf("shape %v, want %v", st.Shape, shape)
	}
	other := len(st.F64)
	if st.Dtype == "float64" {
		other = len(st.F32)
	}
	if st.Len() != shape.TotalSize() || other != 0 {
		return fmt.Errorf("%d %s values (and %d of the other dtype) for shape %v", st.Len(), st.Dtype, other, shape)
	}
	return nil
}

// Tensor returns a new dense tensor with the state's dtype, shape and values
// (a copy).
func (st *StateTensor) Tensor() *tensor.Dense {
	shape := append([]int(nil), st.Shape...)
	if st.Dtype == "float32" {
		return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(append([]float32(nil), st.F32...)))
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(append([]float64(nil), st.F64...)))
}

// view returns a dense tensor over the state's values (no copy).
func (st *StateTensor) view() *tensor.Dense {
	shape := append([]int(nil), st.Shape...)
	if st.Dtype == "float32" {
		return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(st.F32))
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(st.F64))
}
