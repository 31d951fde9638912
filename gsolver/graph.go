package gsolver

import (
	"errors"
	"fmt"

	"github.com/curvopt/curvopt/hessian"
	"github.com/curvopt/curvopt/optim"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// ForGraph returns a Solver stepping opt for a stock Gorgonia graph g: x is
// its input node, y its one-hot target node, cost its scalar loss and
// learnables the trained parameters (what goes to gorgonia.Grad). For an
// optimizer that asks for curvature it builds the curvature engine over g
// (hessian.NewGraph with opt.Needs() and engOpts; stock ops are rewritten
// into nn's) and feeds it from x and y (WithEngine); for the others it is
// New(opt). So one line switches a stock loop to any optimizer:
//
//	solver, err := gsolver.ForGraph(opt, g, x, y, cost, learnables)
//	defer solver.Close() // the optimizer and the engine
//
// Call it after making the graph's TapeMachine: the engine adds its nodes
// to g, and a machine compiled afterwards would run them too. Bind the
// batch with gorgonia.Let before every run, as Gorgonia's examples do, or
// bind a buffer once and refill it in place: the solver hands the engine
// whatever x and y hold at each Step (a Step before any batch was bound is
// refused). The engine binds its own tensors only during its own runs and
// gives the nodes their values back.
func ForGraph(opt optim.Optimizer, g *gorgonia.ExprGraph, x, y, cost *gorgonia.Node, learnables gorgonia.Nodes, engOpts ...hessian.Option) (*Solver, error) {
	if opt == nil {
		return nil, errors.New("gsolver: nil optimizer")
	}
	if n := opt.Needs(); !n.HVP && !n.SampledGrad {
		return New(opt)
	}
	params := make([]hessian.GraphParam, len(learnables))
	for i, n := range learnables {
		params[i] = hessian.GraphParam{Node: n}
	}
	bound := x.Value() != nil
	eng, err := hessian.NewGraph(g, hessian.GraphSpec{Input: x, Targets: y, Loss: cost, Params: params}, opt.Needs(), engOpts...)
	if err != nil {
		return nil, fmt.Errorf("gsolver: %s needs the curvature engine over the graph: %w", opt.Name(), err)
	}
	s, err := New(opt, WithEngine(eng, x, y))
	if err != nil {
		return nil, errors.Join(err, eng.Close())
	}
	s.engine = eng
	// NewGraph gives x and y back the values they had; where x had none,
	// it is left bound to the engine's own tensor, and a step that finds it
	// still there never had a batch bound (feed refuses).
	if !bound {
		s.engX, _ = x.Value().(*tensor.Dense)
	}
	return s, nil
}
