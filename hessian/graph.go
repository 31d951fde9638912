package hessian

import (
	"errors"
	"fmt"

	"github.com/curvopt/curvopt/optim"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// GraphSpec names the nodes of a user-built Gorgonia graph for NewGraph.
// The graph is built for one batch size N, and every op between the
// parameters and the loss must be differentiable by nn.Backprop; for
// Needs.HVP it must also pass nn.AuditSecondOrder, which in practice means
// building the network from the nn package's ops (nn.MatMul, nn.BiasAdd,
// nn.Conv2d, nn.ReLU, nn.Tanh, nn.MaxPool2d, nn.CrossEntropy, …).
type GraphSpec struct {
	// Input is the input node [N, …]. The engine binds its own tensor to it
	// and fills it from SetBatch's x.
	Input *gorgonia.Node
	// Logits is the output [N, classes]: the softmax of its rows is what
	// SampledGrad samples labels from, and its arg-max is Predict's class.
	Logits *gorgonia.Node
	// Targets is the one-hot label node [N, classes]. The engine binds its
	// own tensor to it and fills it from SetBatch's labels. It may be nil
	// only when Loss is nil: the engine then adds the node itself.
	Targets *gorgonia.Node
	// Loss is the training loss, a [1]-shaped node that depends on Targets
	// (for example nn.CrossEntropy(Logits, Targets) plus a penalty). Nil
	// means nn.CrossEntropy(Logits, Targets). SampledGrad always uses the
	// mean cross-entropy of Logits against sampled labels, whatever Loss is.
	Loss *gorgonia.Node
	// Params are the trainable parameters, in the order of Params() and of
	// the flat vector.
	Params []GraphParam
}

// GraphParam is one trainable parameter of a user graph.
type GraphParam struct {
	// Node is the parameter's input node.
	Node *gorgonia.Node
	// Name defaults to Node.Name().
	Name string
	// Value is the tensor bound to Node (by reference: the optimizer
	// updates it in place and the next run reads it). Nil means the value
	// already bound to Node (gorgonia.WithValue), which must be a
	// *tensor.Dense.
	Value *tensor.Dense
}

// NewGraph returns an engine for a user's own Gorgonia graph g, described by
// spec: loss, gradient (nn.Backprop) and, as needs require, the
// Hessian-vector product (double backprop, after nn.AuditSecondOrder, which
// refuses for example a stock gorgonia.SoftMax node with an error naming the
// op and the node) and the sampled-label gradient from the logits are added
// to g and compiled once, for g's batch size. Each parameter's Value is
// bound to its node by reference and is Params()[i].Value, so optimizers'
// in-place updates are seen by the next query.
//
// The engine then works as one from New, except that every batch must have
// the graph's batch size, EvalLogits, Predict and Accuracy run g's own
// forward pass (there is no separate evaluation mode), Model returns nil and
// there are no running statistics to update. g must not be changed or run
// by others while the engine is in use.
func NewGraph(g *gorgonia.ExprGraph, spec GraphSpec, needs optim.Needs, opts ...Option) (*Engine, error) {
	if g == nil {
		return nil, errors.New("hessian: NewGraph: nil graph")
	}
	in, names, values, err := checkGraphSpec(g, spec)
	if err != nil {
		return nil, fmt.Errorf("hessian: NewGraph: %w", err)
	}
	e, err := newBaseEngine(in.logits.Dtype(), needs, names, values, opts)
	if err != nil {
		return nil, err
	}
	ls := in.logits.Shape()
	e.classes, e.example = ls[1], append([]int{}, in.x.Shape()[1:]...)
	e.rows = ls[0] / in.n
	if k := e.cfg.gnbBatch; needs.SampledGrad && k > in.n {
		return nil, fmt.Errorf("hessian: NewGraph: WithGNBBatch(%d) is larger than the graph's batch %d", k, in.n)
	}
	for i, pn := range in.params {
		if err := gorgonia.Let(pn, values[i]); err != nil {
			return nil, fmt.Errorf("hessian: NewGraph: binding parameter %q: %w", names[i], err)
		}
	}
	p, err := e.compile(in, parts{grad: true, hvp: needs.HVP, gnb: needs.SampledGrad, gnbRows: e.cfg.gnbBatch * e.rows})
	if err != nil {
		return nil, fmt.Errorf("hessian: NewGraph: %w", err)
	}
	e.fixed = p
	return e, nil
}

// checkGraphSpec validates spec against g and returns the graph for compile
// with the parameters' names and values.
func checkGraphSpec(g *gorgonia.ExprGraph, spec GraphSpec) (graphIn, []string, []*tensor.Dense, error) {
	in := graphIn{g: g, x: spec.Input, logits: spec.Logits, targets: spec.Targets, loss: spec.Loss}
	node := func(n *gorgonia.Node, what string) error {
		if n == nil {
			return fmt.Errorf("%s node is nil", what)
		}
		if n.Graph() != g {
			return fmt.Errorf("%s node %q is not in the graph", what, n.Name())
		}
		return nil
	}
	if err := node(spec.Input, "Input"); err != nil {
		return in, nil, nil, err
	}
	if err := node(spec.Logits, "Logits"); err != nil {
		return in, nil, nil, err
	}
	dt := spec.Logits.Dtype()
	if dt != tensor.Float64 && dt != tensor.Float32 {
		return in, nil, nil, fmt.Errorf("logits dtype %v, want float32 or float64", dt)
	}
	ls := spec.Logits.Shape()
	if ls.Dims() != 2 || ls[0] < 1 || ls[1] < 1 {
		return in, nil, nil, fmt.Errorf("logits %q have shape %v, want [N, classes]", spec.Logits.Name(), ls)
	}
	xs := spec.Input.Shape()
	if xs.Dims() < 2 || xs[0] < 1 || ls[0]%xs[0] != 0 || spec.Input.Dtype() != dt {
		return in, nil, nil, fmt.Errorf("input %q is %v %v, want [N, …] %v with N dividing the %d logit rows", spec.Input.Name(), spec.Input.Dtype(), xs, dt, ls[0])
	}
	in.n = xs[0]
	if spec.Targets == nil && spec.Loss != nil {
		return in, nil, nil, errors.New("a Loss needs its Targets node (SetBatch fills it with the labels)")
	}
	if spec.Targets != nil {
		if err := node(spec.Targets, "Targets"); err != nil {
			return in, nil, nil, err
		}
		if !spec.Targets.Shape().Eq(ls) || spec.Targets.Dtype() != dt {
			return in, nil, nil, fmt.Errorf("targets %q are %v %v, want %v %v like the logits", spec.Targets.Name(), spec.Targets.Dtype(), spec.Targets.Shape(), dt, ls)
		}
	}
	if spec.Loss != nil {
		if err := node(spec.Loss, "Loss"); err != nil {
			return in, nil, nil, err
		}
		if !spec.Loss.Shape().Eq(tensor.Shape{1}) || spec.Loss.Dtype() != dt {
			return in, nil, nil, fmt.Errorf("loss %q is %v %v, want %v (1)", spec.Loss.Name(), spec.Loss.Dtype(), spec.Loss.Shape(), dt)
		}
	}
	if len(spec.Params) == 0 {
		return in, nil, nil, errors.New("no parameters")
	}
	names := make([]string, len(spec.Params))
	values := make([]*tensor.Dense, len(spec.Params))
	seenNode, seenName := map[*gorgonia.Node]bool{}, map[string]bool{}
	for i, gp := range spec.Params {
		if err := node(gp.Node, fmt.Sprintf("parameter %d", i)); err != nil {
			return in, nil, nil, err
		}
		name := gp.Name
		if name == "" {
			name = gp.Node.Name()
		}
		if name == "" || seenName[name] {
			return in, nil, nil, fmt.Errorf("parameter %d: name %q is empty or used twice", i, name)
		}
		if seenNode[gp.Node] {
			return in, nil, nil, fmt.Errorf("parameter %q: node given twice", name)
		}
		seenName[name], seenNode[gp.Node] = true, true
		if gp.Node.Op() != nil {
			return in, nil, nil, fmt.Errorf("parameter %q: node is computed by %v, want an input node", name, gp.Node.Op())
		}
		v := gp.Value
		if v == nil {
			d, ok := gp.Node.Value().(*tensor.Dense)
			if !ok {
				return in, nil, nil, fmt.Errorf("parameter %q: no Value given and none bound to its node", name)
			}
			v = d
		}
		if v.Dtype() != dt || !v.Shape().Eq(gp.Node.Shape()) {
			return in, nil, nil, fmt.Errorf("parameter %q: value is %v %v, want %v %v", name, v.Dtype(), v.Shape(), dt, gp.Node.Shape())
		}
		if !v.IsNativelyAccessible() || v.RequiresIterator() {
			return in, nil, nil, fmt.Errorf("parameter %q: value must be a dense, contiguous tensor", name)
		}
		names[i], values[i] = name, v
		in.params = append(in.params, gp.Node)
	}
	return in, names, values, nil
}
