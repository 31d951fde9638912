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
type DropoutState struct {
	seed, step uint64
}

// NewDropoutState returns the dropout masks of seed, at step 0.
func NewDropoutState(seed uint64) *DropoutState { return &DropoutState{seed: seed} }

// Next switches to the next step's masks.
func (s *DropoutState) Next() { s.step++ }

// Step returns the current step (for checkpoints).
func (s *DropoutState) Step() uint64 { return s.step }

// SetStep sets the current step (when resuming).
func (s *DropoutState) SetStep(t uint64) { s.step = t }

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

// fillMask redraws the mask when the state's step changed.
func (op *dropoutOp) fillMask() {
	if op.drawn && op.at == op.state.step {
		return
	}
	r := rand.New(rand.NewPCG(op.state.seed^0x9e3779b97f4a7c15*(op.id+1), op.state.step))
	keep := 1 / (1 - op.p)
	for i := range op.mask {
		if r.Float64() < op.p {
			op.mask[i] = 0
		} else {
			op.mask[i] = keep
		}
	}
	op.drawn, op.at = true, op.state.step
}

func (op *dropoutOp) Do(vs ...gorgonia.Value) (gorgonia.Value, error) {
	op.fillMask()
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
