package optim

import (
	"fmt"

	"gorgonia.org/tensor"
)

// Buffers is per-parameter optimizer state: for each named slot (such as
// "exp_avg"), one zero-initialised tensor per parameter with the parameter's
// shape and dtype. It is allocated on the first Ensure and reused on every
// later step, and it checks that the parameter list does not change between
// steps. Base keeps an optimizer's declared slots in one; scratch that is
// not state (a probe, a sampled gradient) can use one of its own.
type Buffers struct {
	slots  []string
	bufs   [][]*tensor.Dense // bufs[slot][param]
	names  []string
	shapes []tensor.Shape
	dtypes []tensor.Dtype
}

// NewBuffers returns empty state with the given slot names.
func NewBuffers(slots ...string) Buffers {
	return Buffers{slots: slots}
}

// Ready reports whether the buffers have been allocated.
func (b *Buffers) Ready() bool { return b.names != nil }

// Slot returns the tensors of slot i (in the order given to NewBuffers), one
// per parameter.
func (b *Buffers) Slot(i int) []*tensor.Dense { return b.bufs[i] }

// Ensure allocates the buffers for params on the first call; on later calls
// it checks that params has the same names, shapes and dtypes as before and
// returns an error naming the first difference.
func (b *Buffers) Ensure(prefix string, params []Param) error {
	if b.names == nil {
		b.record(params)
		b.bufs = make([][]*tensor.Dense, len(b.slots))
		for s := range b.slots {
			b.bufs[s] = Like(params)
		}
		return nil
	}
	return b.Match(prefix, params)
}

// record remembers the names, shapes and dtypes of params.
func (b *Buffers) record(params []Param) {
	b.names = make([]string, len(params))
	b.shapes = make([]tensor.Shape, len(params))
	b.dtypes = make([]tensor.Dtype, len(params))
	for i, p := range params {
		b.names[i] = p.Name
		b.shapes[i] = p.Value.Shape().Clone()
		b.dtypes[i] = p.Value.Dtype()
	}
}

// Match checks params against the parameters the buffers were made for.
func (b *Buffers) Match(prefix string, params []Param) error {
	if len(params) != len(b.names) {
		return fmt.Errorf("%s: %d parameters, but the optimizer state is for %d", prefix, len(params), len(b.names))
	}
	for i, p := range params {
		switch {
		case p.Name != b.names[i]:
			return fmt.Errorf("%s: parameter %d is %q, but the optimizer state is for %q", prefix, i, p.Name, b.names[i])
		case !p.Value.Shape().Eq(b.shapes[i]):
			return fmt.Errorf("%s: param %q has shape %v, but the optimizer state has %v", prefix, p.Name, p.Value.Shape(), b.shapes[i])
		case p.Value.Dtype() != b.dtypes[i]:
			return fmt.Errorf("%s: param %q has dtype %v, but the optimizer state has %v", prefix, p.Name, p.Value.Dtype(), b.dtypes[i])
		}
	}
	return nil
}

// List returns the parameter list the buffers were made for (nil before
// the first Ensure).
func (b *Buffers) List() []ParamInfo {
	if !b.Ready() {
		return nil
	}
	out := make([]ParamInfo, len(b.names))
	for i, n := range b.names {
		out[i] = ParamInfo{Name: n, Dtype: b.dtypes[i].String(), Shape: append([]int(nil), b.shapes[i]...)}
	}
	return out
}

// Export appends every slot's tensors to s: copies, or with view tensors
// that alias the buffers. Before the first Ensure there is nothing to
// export.
func (b *Buffers) Export(s *State, view bool) {
	if !b.Ready() {
		return
	}
	for i, slot := range b.slots {
		for j, name := range b.names {
			if view {
				s.Tensors = append(s.Tensors, viewTensor(name, slot, b.bufs[i][j]))
			} else {
				s.Tensors = append(s.Tensors, NewStateTensor(name, slot, b.bufs[i][j]))
			}
		}
	}
}

// imported returns buffers holding the slots found in s, after checking
// every one against params (with take, holding s's values instead of
// copies). A state exported before the first step (with no tensors) gives
// empty buffers. The receiver does not change.
func (b *Buffers) imported(prefix string, params []Param, s *State, take bool) (Buffers, error) {
	if len(s.Tensors) == 0 && s.Step == 0 {
		return Buffers{slots: b.slots}, nil
	}
	bufs := make([][]*tensor.Dense, len(b.slots))
	for i, slot := range b.slots {
		t, err := s.importSlot(prefix, slot, params, take)
		if err != nil {
			return Buffers{}, err
		}
		bufs[i] = t
	}
	nb := Buffers{slots: b.slots}
	nb.record(params)
	nb.bufs = bufs
	return nb, nil
}
