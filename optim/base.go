package optim

import (
	"encoding"
	"fmt"

	"gorgonia.org/tensor"
)

// Layout declares an optimizer's state, as torch.optim's per-parameter
// state dict does, so that State and LoadState are written once (Base)
// instead of once per optimizer.
type Layout struct {
	// Slots are the per-parameter buffers (State.Tensors entries named by
	// parameter and slot): one zero-initialised tensor per parameter, with
	// the parameter's shape and dtype, allocated at the first Step
	// (Base.Slot).
	Slots []string
	// Blobs are the opaque states kept in State.Blobs, such as a probe
	// generator's. A state holding any other blob is refused.
	Blobs []Blob
	// Parts are state that is neither a slot nor a blob (M-FAC's window,
	// Gram matrix and ring counters), saved and restored by their own
	// methods.
	Parts []Part
	// OnLoad runs after every successful LoadState, to forget scratch that
	// belongs to the replaced state (a drawn probe, last step's
	// diagnostics).
	OnLoad []func()
	// Upgrade, if not nil, converts a state exported by an older version of
	// the optimizer to the current layout before it is checked. It returns
	// st itself when there is nothing to convert and must not modify st.
	Upgrade func(st *State) (*State, error)
}

// Blob is one opaque state an optimizer keeps in State.Blobs.
type Blob struct {
	// Key is its State.Blobs key ("probes").
	Key string
	// What names it in errors ("probe source").
	What string
	// Of is the object whose state it is: State saves it when Of implements
	// encoding.BinaryMarshaler, LoadState restores it when Of implements
	// encoding.BinaryUnmarshaler.
	Of any
}

// Part is optimizer state that is neither a per-parameter slot nor a blob.
type Part interface {
	// SaveState adds the part's state to st (st.Step is already set).
	// With view, tensors may alias the part's live memory, valid until the
	// next Step or LoadState.
	SaveState(st *State, view bool) error
	// PrepareLoad checks, changing nothing, that st holds a state the part
	// can restore for params, and returns the function that restores it.
	// LoadState calls restore only once every check (of every part) has
	// passed; restore cannot fail. With take, restore may keep st's
	// buffers instead of copying them.
	PrepareLoad(params []Param, st *State, take bool) (restore func(), err error)
}

// Base is what every optimizer of the suite embeds, as torch.optim's
// Optimizer base class: the Hyper (learning rate, groups, guard), the step
// counter, the per-parameter slots its Layout declares and the parameter
// list they were made for. It implements State, StateView, LoadState and
// TakeState from the Layout, once for every optimizer:
//
//   - State records the step, the parameter list (names, shapes, dtypes),
//     the slots, the groups, the blobs and the parts;
//   - LoadState checks the header, the parameter list, every slot tensor
//     (name, shape, dtype, finite values), the groups, the blobs and the
//     parts before it changes anything.
//
// An optimizer's Step opens with Base.BeginStep, reads and writes its
// buffers through Slot, and calls Advance once the update is written.
// The zero value is not usable; make one with NewBase.
type Base struct {
	// Hyper holds the learning rate, the parameter groups and the guard.
	Hyper
	layout Layout
	step   int64
	bufs   Buffers
}

// NewBase returns the base of the optimizer name (used in errors and as
// State.Optimizer), with learning rate lr, default weight decay wd and the
// state declared by l.
func NewBase(name string, lr, wd float64, l Layout) Base {
	return Base{Hyper: NewHyper(name, lr, wd), layout: l, bufs: NewBuffers(l.Slots...)}
}

// Steps returns the number of completed steps.
func (b *Base) Steps() int64 { return b.step }

// Advance counts one completed step: call it once the update is written.
func (b *Base) Advance() { b.step++ }

// Slot returns the buffers of slot i of the Layout, one per parameter
// (after BeginStep).
func (b *Base) Slot(i int) []*tensor.Dense { return b.bufs.Slot(i) }

// BeginStep is Hyper.BeginStep followed by the parameter-list check: at
// the first step it allocates the slots for params; later it refuses a
// list whose names, shapes or dtypes differ from the first one's. On
// success the optimizer is claimed (call End when Step returns); on error
// it is released.
func (b *Base) BeginStep(params []Param, needs Needs, o Oracle) error {
	if err := b.Hyper.BeginStep(params, needs, o); err != nil {
		return err
	}
	if err := b.bufs.Ensure(b.name, params); err != nil {
		b.End()
		return err
	}
	return nil
}

// State exports the optimizer's state: see Base. The result shares no
// memory with the optimizer.
func (b *Base) State() (*State, error) { return b.export("State", false) }

// StateView is State without copies: the tensors alias the optimizer's
// live buffers and are valid only until the next Step or LoadState. A
// checkpoint writer streams them to disk (M-FAC's window takes hundreds of
// MB).
func (b *Base) StateView() (*State, error) { return b.export("StateView", true) }

func (b *Base) export(method string, view bool) (*State, error) {
	if err := b.Begin(method); err != nil {
		return nil, err
	}
	defer b.End()
	st := &State{Optimizer: b.name, Step: b.step}
	if b.step > 0 { // a refused first step leaves zero buffers: nothing to export
		st.Params = b.bufs.List()
		b.bufs.Export(st, view)
	}
	b.ExportGroups(st)
	for _, bl := range b.layout.Blobs {
		m, ok := bl.Of.(encoding.BinaryMarshaler)
		if !ok {
			continue
		}
		data, err := m.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("%s: %s: saving the %s: %w", b.name, method, bl.What, err)
		}
		if st.Blobs == nil {
			st.Blobs = map[string][]byte{}
		}
		st.Blobs[bl.Key] = data
	}
	for _, p := range b.layout.Parts {
		if err := p.SaveState(st, view); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// LoadState replaces the optimizer's state with st: see Base. On error
// nothing changes.
func (b *Base) LoadState(params []Param, st *State) error { return b.load(params, st, false) }

// TakeState is LoadState that may keep st's buffers instead of copying
// them, so that resuming holds a large state (M-FAC's window) in memory
// once: st must not be used afterwards.
func (b *Base) TakeState(params []Param, st *State) error { return b.load(params, st, true) }

func (b *Base) load(params []Param, st *State, take bool) error {
	if err := b.BeginLoad(params, st); err != nil {
		return err
	}
	defer b.End()
	prefix := b.name + ": load state"
	if b.layout.Upgrade != nil {
		up, err := b.layout.Upgrade(st)
		if err != nil {
			return fmt.Errorf("%s: %w", prefix, err)
		}
		st = up
	}
	if st.Params != nil {
		if err := CheckParamList(prefix, params, st.Params); err != nil {
			return err
		}
	}
	h := b.Hyper
	if err := h.ImportGroups(st); err != nil {
		return fmt.Errorf("%s: %w", prefix, err)
	}
	bufs, err := b.bufs.imported(prefix, params, st, take)
	if err != nil {
		return err
	}
	if err := b.checkBlobs(prefix, st); err != nil {
		return err
	}
	restores := make([]func(), 0, len(b.layout.Parts))
	for _, p := range b.layout.Parts {
		r, err := p.PrepareLoad(params, st, take)
		if err != nil {
			return err
		}
		restores = append(restores, r)
	}
	if err := b.loadBlobs(prefix, st); err != nil {
		return err
	}
	// Everything checked: install the state.
	b.Hyper, b.bufs, b.step = h, bufs, st.Step
	for _, r := range restores {
		r()
	}
	for _, f := range b.layout.OnLoad {
		f()
	}
	return nil
}

// checkBlobs verifies, changing nothing, that every blob of st is declared
// and that each declared blob can be restored: a state holding a blob needs
// an object that restores one, and a state after step 0 without it is
// refused when the object has a state (it would differ after resuming).
func (b *Base) checkBlobs(prefix string, st *State) error {
	for key := range st.Blobs {
		known := false
		for _, bl := range b.layout.Blobs {
			known = known || bl.Key == key
		}
		if !known {
			return fmt.Errorf("%s: the state holds a %q state, which %s does not keep (another configuration's state?)", prefix, key, b.name)
		}
	}
	for _, bl := range b.layout.Blobs {
		_, has := st.Blobs[bl.Key]
		_, canLoad := bl.Of.(encoding.BinaryUnmarshaler)
		switch {
		case has && !canLoad:
			return fmt.Errorf("%s: the state holds a %s state (Blobs[%q]) but this optimizer's %s (%T) cannot restore one", prefix, bl.What, bl.Key, bl.What, bl.Of)
		case !has && canLoad && st.Step > 0:
			return fmt.Errorf("%s: the state has no %s state (Blobs[%q]), so the %s after resuming would differ", prefix, bl.What, bl.Key, bl.What)
		}
	}
	return nil
}

// loadBlobs restores the blobs of st (after checkBlobs). If one fails, the
// ones restored before it are put back, so that nothing changes.
func (b *Base) loadBlobs(prefix string, st *State) error {
	var undo []func()
	for _, bl := range b.layout.Blobs {
		data, ok := st.Blobs[bl.Key]
		if !ok {
			continue
		}
		u := bl.Of.(encoding.BinaryUnmarshaler)
		if m, ok := bl.Of.(encoding.BinaryMarshaler); ok {
			if old, err := m.MarshalBinary(); err == nil {
				undo = append(undo, func() { _ = u.UnmarshalBinary(old) })
			}
		}
		if err := u.UnmarshalBinary(data); err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
			return fmt.Errorf("%s: %s state: %w", prefix, bl.What, err)
		}
	}
	return nil
}

// ParamInfo is one entry of the parameter list a State records: the name,
// dtype and shape of a parameter the state was exported for.
type ParamInfo struct {
	Name  string
	Dtype string // "float32" or "float64"
	Shape []int
}

// CheckParamList compares params with the parameter list recorded in a
// state and returns an error naming the first difference (the count, a
// name, a shape or a dtype).
func CheckParamList(prefix string, params []Param, list []ParamInfo) error {
	if len(params) != len(list) {
		return fmt.Errorf("%s: the state is for %d parameters, got %d", prefix, len(list), len(params))
	}
	for i, p := range params {
		want := list[i]
		switch {
		case p.Name != want.Name:
			return fmt.Errorf("%s: parameter %d is %q, but the state is for %q", prefix, i, p.Name, want.Name)
		case !p.Value.Shape().Eq(tensor.Shape(want.Shape)) || len(want.Shape) != p.Value.Dims():
			return fmt.Errorf("%s: param %q has shape %v, but the state is for shape %v", prefix, p.Name, p.Value.Shape(), want.Shape)
		case p.Value.Dtype().String() != want.Dtype:
			return fmt.Errorf("%s: param %q has dtype %v, but the state is for dtype %q", prefix, p.Name, p.Value.Dtype(), want.Dtype)
		}
	}
	return nil
}
