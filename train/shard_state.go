package train

import (
	"fmt"

	"github.com/curvopt/curvopt/internal/num"
	"github.com/curvopt/curvopt/optim"
	"gorgonia.org/tensor"
)

// State gathers the ranks' states of their slices into the state of the
// whole optimizer on rank 0, as the unsharded optimizer exports it (the
// checkpoint's format does not change with -shard): per slot, the ranks'
// pieces are gathered into one tensor per parameter. Every rank must call
// it; on the others it returns the state of their slice.
func (s *shardedOpt) State() (*optim.State, error) {
	st, err := s.sliceState()
	if err != nil {
		return nil, err
	}
	root := s.comm.Rank() == 0
	full := &optim.State{Optimizer: st.Optimizer, Step: st.Step, Scalars: st.Scalars, Blobs: st.Blobs, Groups: s.groups}
	if len(st.Params) > 0 {
		for _, p := range s.lay.full {
			full.Params = append(full.Params, optim.ParamInfo{Name: p.Name, Dtype: p.Value.Dtype().String(), Shape: p.Value.Shape().Clone()})
		}
	}
	// The slots, in the order of the first piece's.
	var slots []string
	byKey := map[[2]string]*optim.StateTensor{}
	for i := range st.Tensors {
		t := &st.Tensors[i]
		if t.Param == "" {
			return nil, fmt.Errorf("shard: %s holds a global state tensor %q, which cannot be sharded", st.Optimizer, t.Slot)
		}
		if t.Param == s.lay.shard[0].Name {
			slots = append(slots, t.Slot)
		}
		byKey[[2]string{t.Param, t.Slot}] = t
	}
	for _, slot := range slots {
		mine := make([]*tensor.Dense, len(s.lay.shard))
		for j, p := range s.lay.shard {
			t, ok := byKey[[2]string{p.Name, slot}]
			if !ok {
				return nil, fmt.Errorf("shard: %s's state has no %s for %s", st.Optimizer, slot, p.Name)
			}
			if mine[j], err = stateDense(t); err != nil {
				return nil, err
			}
		}
		whole := make([]*tensor.Dense, len(s.lay.full))
		if root {
			whole = s.lay.likeFull()
		}
		if err := s.g.gather(mine, whole, 0); err != nil {
			return nil, fmt.Errorf("shard: gathering %s: %w", slot, err)
		}
		if !root {
			continue
		}
		for i, p := range s.lay.full {
			t := optim.StateTensor{Param: p.Name, Slot: slot, Dtype: p.Value.Dtype().String(), Shape: p.Value.Shape().Clone()}
			if p.Value.Dtype() == tensor.Float32 {
				t.F32 = num.Slice[float32](whole[i])
			} else {
				t.F64 = num.Slice[float64](whole[i])
			}
			full.Tensors = append(full.Tensors, t)
		}
	}
	if !root {
		return st, nil
	}
	return full, nil
}

// sliceState is the inner optimizer's state, a view of its buffers where it
// offers one (no copy: the gathered state is copied on rank 0 anyway).
func (s *shardedOpt) sliceState() (*optim.State, error) {
	if v, ok := s.inner.(stateViewer); ok {
		return v.StateView()
	}
	return s.inner.State()
}

// StateBytes is the size of the whole optimizer's state, the sum of the
// ranks' slices (an all-reduce; every rank must call it), without
// gathering it.
func (s *shardedOpt) StateBytes() (int64, error) {
	st, err := s.sliceState()
	if err != nil {
		return 0, err
	}
	n := [1]float64{float64(StateBytes(st))}
	if err := s.comm.AllreduceFloat64(n[:]); err != nil {
		return 0, fmt.Errorf("shard: state size: %w", err)
	}
	return int64(n[0]), nil
}

// LoadState gives the inner optimizer the slice of st (a whole optimizer's
// state, saved with or without -shard and any number of ranks).
func (s *shardedOpt) LoadState(params []optim.Param, st *optim.State) error {
	if st == nil {
		return s.inner.LoadState(s.lay.shard, nil)
	}
	part := &optim.State{Optimizer: st.Optimizer, Step: st.Step, Scalars: st.Scalars, Blobs: st.Blobs, Groups: s.shardGroups(st.Groups)}
	if len(st.Params) > 0 {
		if err := optim.CheckParamList("shard", params, st.Params); err != nil {
			return fmt.Errorf("shard: %w", err)
		}
		for _, p := range s.lay.shard {
			part.Params = append(part.Params, optim.ParamInfo{Name: p.Name, Dtype: p.Value.Dtype().String(), Shape: p.Value.Shape().Clone()})
		}
	}
	index := map[string]int{}
	for i, p := range s.lay.full {
		index[p.Name] = i
	}
	for _, t := range st.Tensors {
		i, ok := index[t.Param]
		if !ok {
			return fmt.Errorf("shard: the state's %s tensor for %q: no such parameter", t.Slot, t.Param)
		}
		for _, pc := range s.lay.pieces {
			if pc.i != i {
				continue
			}
			if t.Len() != s.lay.full[i].Value.Shape().TotalSize() {
				return fmt.Errorf("shard: the state's %s of %s holds %d values for %d", t.Slot, t.Param, t.Len(), s.lay.full[i].Value.Shape().TotalSize())
			}
			u := optim.StateTensor{Param: t.Param, Slot: t.Slot, Dtype: t.Dtype, Shape: []int{pc.b - pc.a}}
			if t.F32 != nil {
				u.F32 = append([]float32(nil), t.F32[pc.a:pc.b]...)
			} else {
				u.F64 = append([]float64(nil), t.F64[pc.a:pc.b]...)
			}
			part.Tensors = append(part.Tensors, u)
		}
	}
	return s.inner.LoadState(s.lay.shard, part)
}

// stateDense returns a state tensor's values as a tensor sharing them.
func stateDense(t *optim.StateTensor) (*tensor.Dense, error) {
	switch {
	case t.F32 != nil:
		return tensor.New(tensor.WithShape(len(t.F32)), tensor.WithBacking(t.F32)), nil
	case t.F64 != nil:
		return tensor.New(tensor.WithShape(len(t.F64)), tensor.WithBacking(t.F64)), nil
	}
	return nil, fmt.Errorf("shard: %s of %s holds no values", t.Slot, t.Param)
}
