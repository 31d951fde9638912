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
	// The global tensors (M-FAC's), then the slots, in the order of the
	// first piece's.
	var slots []string
	byKey := map[[2]string]*optim.StateTensor{}
	for i := range st.Tensors {
		t := &st.Tensors[i]
		if t.Param == "" {
			g, err := s.gatherGlobal(st.Optimizer, t)
			if err != nil {
				return nil, err
			}
			if root {
				full.Tensors = append(full.Tensors, g)
			}
			continue
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

// Kinds of a global state tensor (one not of a parameter) of a sharded
// optimizer: M-FAC's window split by coordinates (its columns, the
// vector's values this rank holds) and its m×m matrices, the same on every
// rank.
const (
	globalColumns = iota + 1
	globalReplicated
)

// globalKind returns how the global state tensor slot of the named
// optimizer is sharded, or 0 for one that cannot be.
func globalKind(optimizer, slot string) int {
	if optimizer != "mfac" {
		return 0
	}
	switch slot {
	case "window":
		return globalColumns
	case "gram", "factor":
		return globalReplicated
	}
	return 0
}

// gatherGlobal returns the whole optimizer's global state tensor t on rank
// 0 (elsewhere, an empty one): a replicated one as it is, M-FAC's window
// ([rows, this rank's columns]) gathered row by row into [rows, D].
func (s *shardedOpt) gatherGlobal(optimizer string, t *optim.StateTensor) (optim.StateTensor, error) {
	root := s.comm.Rank() == 0
	switch globalKind(optimizer, t.Slot) {
	case globalReplicated:
		return *t, nil
	case globalColumns:
		lo, hi := s.lay.cuts[s.comm.Rank()], s.lay.cuts[s.comm.Rank()+1]
		if len(t.Shape) != 2 || t.Shape[1] != hi-lo || t.Len() != t.Shape[0]*t.Shape[1] {
			return optim.StateTensor{}, fmt.Errorf("shard: %s's %s is %v, want [rows, %d]", optimizer, t.Slot, t.Shape, hi-lo)
		}
		counts := make([]int, s.comm.Size())
		for r := range counts {
			counts[r] = s.lay.cuts[r+1] - s.lay.cuts[r]
		}
		rows, n := t.Shape[0], s.lay.size
		out := optim.StateTensor{Slot: t.Slot, Dtype: t.Dtype, Shape: []int{rows, n}}
		var err error
		if t.F32 != nil || t.Dtype == "float32" {
			if root {
				out.F32 = make([]float32, rows*n)
			}
			err = gatherRows(s.comm.GatherFloat32, t.F32, out.F32, rows, n, counts)
		} else {
			if root {
				out.F64 = make([]float64, rows*n)
			}
			err = gatherRows(s.comm.GatherFloat64, t.F64, out.F64, rows, n, counts)
		}
		if err != nil {
			return optim.StateTensor{}, fmt.Errorf("shard: gathering %s's %s: %w", optimizer, t.Slot, err)
		}
		return out, nil
	}
	return optim.StateTensor{}, fmt.Errorf("shard: %s holds a global state tensor %q, which cannot be sharded", optimizer, t.Slot)
}

// gatherRows gathers on rank 0 the rows of a [rows, n] matrix whose columns
// the ranks hold (counts[r] each, in rank order) into whole (nil
// elsewhere), one row at a time.
func gatherRows[T num.Float](gather func(send, recv []T, counts []int, root int) error, mine, whole []T, rows, n int, counts []int) error {
	k := len(mine) / max(rows, 1)
	for i := range rows {
		var recv []T
		if whole != nil {
			recv = whole[i*n : (i+1)*n]
		}
		if err := gather(mine[i*k:(i+1)*k], recv, counts, 0); err != nil {
			return fmt.Errorf("row %d: %w", i, err)
		}
	}
	return nil
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
	own := StateBytes(st)
	if s.comm.Rank() != 0 {
		for _, t := range st.Tensors { // the same on every rank: counted once
			if t.Param == "" && globalKind(st.Optimizer, t.Slot) == globalReplicated {
				own -= StateBytes(&optim.State{Tensors: []optim.StateTensor{t}})
			}
		}
	}
	n := [1]float64{float64(own)}
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
		if t.Param == "" {
			u, err := s.sliceGlobal(st.Optimizer, &t)
			if err != nil {
				return err
			}
			part.Tensors = append(part.Tensors, u)
			continue
		}
		i, ok := index[t.Param]
		if !ok {
			return fmt.Errorf("shard: the state's %s tensor for %q: no such parameter", t.Slot, t.Param)
		}
		for j, pc := range s.lay.pieces {
			if pc.i != i {
				continue
			}
			if t.Len() != s.lay.full[i].Value.Shape().TotalSize() {
				return fmt.Errorf("shard: the state's %s of %s holds %d values for %d", t.Slot, t.Param, t.Len(), s.lay.full[i].Value.Shape().TotalSize())
			}
			u := optim.StateTensor{Param: t.Param, Slot: t.Slot, Dtype: t.Dtype, Shape: s.lay.shard[j].Value.Shape().Clone()}
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

// sliceGlobal returns this rank's part of a whole optimizer's global state
// tensor t: a replicated one whole, M-FAC's window ([rows, D]) as its
// columns [rows, this rank's columns].
func (s *shardedOpt) sliceGlobal(optimizer string, t *optim.StateTensor) (optim.StateTensor, error) {
	switch globalKind(optimizer, t.Slot) {
	case globalReplicated:
		return *t, nil
	case globalColumns:
		n := s.lay.size
		if len(t.Shape) != 2 || t.Shape[1] != n || t.Len() != t.Shape[0]*n {
			return optim.StateTensor{}, fmt.Errorf("shard: the state's %s %s is %v, want [rows, %d] (the parameters' values)", optimizer, t.Slot, t.Shape, n)
		}
		lo, hi := s.lay.cuts[s.comm.Rank()], s.lay.cuts[s.comm.Rank()+1]
		rows := t.Shape[0]
		u := optim.StateTensor{Slot: t.Slot, Dtype: t.Dtype, Shape: []int{rows, hi - lo}}
		if t.F32 != nil {
			u.F32 = sliceColumns(t.F32, rows, n, lo, hi)
		} else {
			u.F64 = sliceColumns(t.F64, rows, n, lo, hi)
		}
		return u, nil
	}
	return optim.StateTensor{}, fmt.Errorf("shard: the state's global tensor %q of %s cannot be sharded", t.Slot, optimizer)
}

// sliceColumns copies columns [lo, hi) of a [rows, n] matrix.
func sliceColumns[T num.Float](x []T, rows, n, lo, hi int) []T {
	out := make([]T, 0, rows*(hi-lo))
	for i := range rows {
		out = append(out, x[i*n+lo:i*n+hi]...)
	}
	return out
}
