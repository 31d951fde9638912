package optim

import (
	"fmt"

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

// StateTensor is one state buffer. Values are stored as float64, which
// represents float32 values exactly, so a float32 optimizer round-trips
// bit-identically; Dtype records the dtype of the live buffer.
type StateTensor struct {
	Param string // the parameter it belongs to; empty for global buffers
	Slot  string // e.g. "exp_avg", "exp_avg_sq", "momentum_buffer"
	Dtype string // "float32" or "float64"
	Shape []int
	Data  []float64
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

// ExportSlot appends the per-parameter buffers bufs[i] (one per parameter)
// to s under slot.
func (s *State) ExportSlot(slot string, params []Param, bufs []*tensor.Dense) {
	for i, p := range params {
		s.Tensors = append(s.Tensors, StateTensor{
			Param: p.Name, Slot: slot, Dtype: bufs[i].Dtype().String(),
			Shape: append([]int(nil), bufs[i].Shape()...), Data: ToFloat64(bufs[i]),
		})
	}
}

// CheckHeader verifies that s was exported by an optimizer named name.
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
	return nil
}

// ImportSlot builds one buffer per parameter from the slot's tensors in s,
// checking that each exists and matches its parameter's name, shape and dtype.
// It returns an error naming the first mismatch and allocates nothing that
// the caller keeps on error.
func (s *State) ImportSlot(prefix, slot string, params []Param) ([]*tensor.Dense, error) {
	out := make([]*tensor.Dense, len(params))
	for i, p := range params {
		st := s.Find(p.Name, slot)
		if st == nil {
			return nil, fmt.Errorf("%s: state has no %q for param %q", prefix, slot, p.Name)
		}
		if err := st.Check(p.Value.Dtype(), p.Value.Shape()); err != nil {
			return nil, fmt.Errorf("%s: state %q of param %q: %w", prefix, slot, p.Name, err)
		}
		out[i] = st.Tensor()
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
	if len(st.Data) != shape.TotalSize() {
		return fmt.Errorf("%d values for shape %v", len(st.Data), shape)
	}
	return nil
}

// Tensor returns a new dense tensor with the state's dtype, shape and values.
func (st *StateTensor) Tensor() *tensor.Dense {
	shape := append([]int(nil), st.Shape...)
	switch st.Dtype {
	case "float32":
		d := make([]float32, len(st.Data))
		for i, v := range st.Data {
			d[i] = float32(v)
		}
		return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(d))
	default:
		return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(append([]float64(nil), st.Data...)))
	}
}

// ToFloat64 copies a float32 or float64 tensor's values into a new []float64.
func ToFloat64(t *tensor.Dense) []float64 {
	switch d := Backing(t).(type) {
	case []float64:
		return append([]float64(nil), d...)
	case []float32:
		out := make([]float64, len(d))
		for i, v := range d {
			out[i] = float64(v)
		}
		return out
	}
	return nil
}

// CopyInto copies src's values into dst (same dtype and size).
func CopyInto(dst, src *tensor.Dense) {
	switch d := Backing(dst).(type) {
	case []float64:
		copy(d, src.Float64s())
	case []float32:
		copy(d, src.Float32s())
	}
}
