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
// batch with gorgonia.Let before every run, as Gorgonia's examples do:
// hessian.NewGraph binds tensors of its own to x and y, so a buffer bound
// before ForGraph and refilled in place is no longer what the graph reads;
// a Step that finds x still bound to the engine's tensor is refused.
//
// The engine is internal to the solver: its evaluation methods read the x
// node, which the loop's gorgonia.Let rebinds, so evaluate with a graph of
// your own (as examples/convnet does).
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
	eng, err := hessian.NewGraph(g, hessian.GraphSpec{Input: x, Targets: y, Loss: cost, Params: params}, opt.Needs(), engOpts...)
	if err != nil {
		return nil, fmt.Errorf("gsolver: %s needs the curvature engine over the graph: %w", opt.Name(), err)
	}
	s, err := New(opt, WithEngine(eng, x, y))
	if err != nil {
		return nil, errors.Join(err, eng.Close())
	}
	s.engine = eng
	// NewGraph has just bound tensors of its own to x and y: a step that
	// finds x still bound to it never had the batch bound (feed refuses).
	s.engX, _ = x.Value().(*tensor.Dense)
	return s, nil
}
