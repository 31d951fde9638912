package nn

import (
	"fmt"
	"math/rand/v2"

	"gorgonia.org/gorgonia"
)

// DropoutState decides the masks of the Dropout ops of a model: the mask of
// the op with id k at step t is a pure function of (seed, k, t). Every run of
// a graph within one step (the gradient, the Hessian-vector product, the
// sampled-label gradient) therefore sees the same mask, so they are
// derivatives of one function; Next moves to the next step's masks.
//
// In a data-parallel run a process computes rows [lo, hi) of a global
// batch (SetRows): each op then draws the global batch's whole mask up to
// row hi and keeps rows [lo, hi), so the ranks' masks, concatenated, are the
// mask one process draws for the global batch.
type DropoutState struct {
	seed, step uint64
	lo, hi     int // the process's rows of the global batch; hi == 0: all rows
}

// NewDropoutState returns the dropout masks of seed, at step 0.
func NewDropoutState(seed uint64) *DropoutState { return &DropoutState{seed: seed} }

// Next switches to the next step's masks.
func (s *DropoutState) Next() { s.step++ }

// Step returns the current step (for checkpoints).
func (s *DropoutState) Step() uint64 { return s.step }

// SetStep sets the current step (when resuming).
func (s *DropoutState) SetStep(t uint64) { s.step = t }

// SetRows makes the masks those of rows [lo, hi) of a global batch (a
// data-parallel process's share, see DropoutState); SetRows(0, 0) restores
// a whole batch. Each op's first dimension must then hold whole rows:
// its size divided by hi − lo is one row's share.
func (s *DropoutState) SetRows(lo, hi int) error {
	if lo < 0 || hi < lo || (hi == lo && hi != 0) {
		return fmt.Errorf("nn: DropoutState.SetRows(%d, %d): want 0 <= lo < hi, or 0, 0", lo, hi)
	}
	s.lo, s.hi = lo, hi
	return nil
}

// dropoutOp computes y = x⊙m, m[i] ∈ {0, 1/(1−p)} drawn with probability p
// of 0 from (state, id, step). It is linear in x, and its derivative is the
// same op (same mask) applied to G.
type dropoutOp struct {
	base
	p     float64
	id    uint64
	state *DropoutState
	mask  []float64
	drawn bool
	at    uint64
	rows  [2]int // the state's rows when the mask was drawn
}

// Dropout returns x with each entry zeroed with probability p and the rest
// scaled by 1/(1−p), the mask taken from state for the op identified by id
// (distinct ids give independent masks). Use it only in training graphs:
// evaluation graphs simply leave it out.
func Dropout(x *gorgonia.Node, p float64, state *DropoutState, id uint64) (*gorgonia.Node, error) {
	if !(p >= 0 && p < 1) {
		return nil, fmt.Errorf("nn: Dropout: probability %v, want [0, 1)", p)
	}
	if state == nil {
		return nil, fmt.Errorf("nn: Dropout: nil state")
	}
	op := &dropoutOp{base: newBase(fmt.Sprintf("Dropout(%g,#%d)", p, id), dtypeOf(x), shapeOf(x), shapeOf(x)), p: p, id: id, state: state,
		mask: make([]float64, shapeOf(x).TotalSize())}
	return apply(op, x)
}

func (op *dropoutOp) twiceDifferentiable() {}

// fillMask redraws the mask when the state's step or rows changed. With
// rows [lo, hi) set, the generator first steps over the draws of rows
// [0, lo) of the global batch.
func (op *dropoutOp) fillMask() error {
	st := op.state
	if op.drawn && op.at == st.step && op.rows == [2]int{st.lo, st.hi} {
		return nil
	}
	r := rand.New(rand.NewPCG(st.seed^0x9e3779b97f4a7c15*(op.id+1), st.step))
	if st.hi > 0 {
		rows := st.hi - st.lo
		if len(op.mask)%rows != 0 {
			return fmt.Errorf("nn: %s: %d values are not %d whole rows of the global batch (DropoutState.SetRows(%d, %d))", op.name, len(op.mask), rows, st.lo, st.hi)
		}
		for range st.lo * (len(op.mask) / rows) {
			r.Float64()
		}
	}
	keep := 1 / (1 - op.p)
	for i := range op.mask {
		if r.Float64() < op.p {
			op.mask[i] = 0
		} else {
			op.mask[i] = keep
		}
	}
	op.drawn, op.at, op.rows = true, st.step, [2]int{st.lo, st.hi}
	return nil
}

func (op *dropoutOp) Do(vs ...gorgonia.Value) (gorgonia.Value, error) {
	if err := op.fillMask(); err != nil {
		return nil, err
	}
	return run(&op.base, vs,
		func(in [][]float64, out []float64) { dropoutK(in[0], op.mask, out) },
		func(in [][]float32, out []float32) { dropoutK(in[0], op.mask, out) })
}

func dropoutK[T Float](x []T, m []float64, y []T) {
	for i, v := range x {
		y[i] = v * T(m[i])
	}
}

func (op *dropoutOp) DiffWRT(int) []bool { return []bool{true} }

func (op *dropoutOp) SymDiff(_ gorgonia.Nodes, _, g *gorgonia.Node) (gorgonia.Nodes, error) {
	d, err := Dropout(g, op.p, op.state, op.id)
	if err != nil {
		return nil, err
	}
	return gorgonia.Nodes{d}, nil
}
