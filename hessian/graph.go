package hessian

import (
	"errors"
	"fmt"

	"github.com/curvopt/curvopt/nn"
	"github.com/curvopt/curvopt/nn/stock"
	"github.com/curvopt/curvopt/optim"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// GraphSpec names the nodes of a user-built Gorgonia graph for NewGraph.
// The graph is built for one batch size N. It may be written with stock
// Gorgonia ops (gorgonia.Mul, Add, Tanh, Conv2d, MaxPool2D, Dropout,
// SoftMax, Mean, …), with nn's ops, or both: every node between the
// parameters and the loss (or logits) that is a stock op is rewritten to
// nn's twice-differentiable counterpart before the derivative graphs are
// built (package nn/stock; docs/gorgonia.md lists what is rewritten and what
// is refused), and an op with no exact counterpart is refused with an error
// naming the node, its shape, the op and the replacement.
type GraphSpec struct {
	// Input is the input node [N, …]. The engine binds its own tensor to it
	// and fills it from SetBatch's x.
	Input *gorgonia.Node
	// Logits is the output [N·T, classes] (T = 1 for a classifier): the
	// softmax of its rows is what SampledGrad samples labels from, and its
	// arg-max is Predict's class. A softmax or sigmoid output (stock or
	// nn) is refused: it holds probabilities, and the engine would apply
	// softmax twice. Nil is allowed when Loss is given: the engine then
	// takes the input of the softmax (gorgonia.SoftMax or LogSoftMax,
	// nn.Softmax or LogSoftmax) of shape Targets among Loss's inputs, if
	// there is exactly one; with none, the engine answers gradients and
	// H·v, but SampledGrad (NewGraph refuses Needs.SampledGrad) and the
	// evaluation methods return an error.
	Logits *gorgonia.Node
	// Targets is the one-hot label node [N·T, classes]. The engine binds its
	// own tensor to it and fills it from SetBatch's labels. It may be nil
	// only when Loss is nil: the engine then adds the node itself.
	Targets *gorgonia.Node
	// Loss is the training loss, a scalar (shape (), as gorgonia.Mean
	// returns) or [1]-shaped node that depends on Targets: for example
	// Gorgonia's log-likelihood Neg(Mean(Sum(HadamardProd(Log(SoftMax(z)),
	// y), 1))), or nn.CrossEntropy(Logits, Targets) plus a penalty. Nil
	// means nn.CrossEntropy(Logits, Targets). SampledGrad always uses the
	// mean cross-entropy of Logits against sampled labels, whatever Loss is.
	Loss *gorgonia.Node
	// Params are the trainable parameters, in the order of Params() and of
	// the flat vector.
	Params []GraphParam
	// DropoutSeed seeds the masks of the graph's stock gorgonia.Dropout
	// nodes, which become nn.Dropout: one mask per node and per batch
	// (SetBatch draws the next), shared by the gradient, H·v and sampled
	// gradient of that batch. Evaluation leaves dropout out.
	DropoutSeed uint64
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
// spec. Stock Gorgonia ops between the parameters and the loss are first
// rewritten, in g, to nn's ops (see GraphSpec); then the loss, its gradient
// (nn.Backprop) and, as needs require, the Hessian-vector product (double
// backprop, after nn.AuditSecondOrder) and the sampled-label gradient from
// the logits are added to g and compiled once, for g's batch size. Each
// parameter's Value is bound to its node by reference and is
// Params()[i].Value, so optimizers' in-place updates are seen by the next
// query.
//
// The engine then works as one from New, except that every training batch
// must have the graph's batch size, Model returns nil and there are no
// running statistics to update. Evaluation (EvalLogits, EvalLoss, Predict,
// Accuracy) takes any number of rows: it runs the graph's forward pass with
// dropout left out, in parts of the graph's batch size, the last one padded
// with zero rows, which is exact when every row of the logits depends only
// on its own input row; a graph whose rows interact (a batch norm over the
// batch, a sum over axis 0) evaluates multiples of its batch size only,
// and refuses other sizes with an error naming the node that mixes rows.
// g must not be changed or run by others while the engine is in use.
func NewGraph(g *gorgonia.ExprGraph, spec GraphSpec, needs optim.Needs, opts ...Option) (*Engine, error) {
	if g == nil {
		return nil, errors.New("hessian: NewGraph: nil graph")
	}
	in, names, values, err := checkGraphSpec(g, spec)
	if err != nil {
		return nil, fmt.Errorf("hessian: NewGraph: %w", err)
	}
	u, err := rewriteUserGraph(&in, spec)
	if err != nil {
		return nil, fmt.Errorf("hessian: NewGraph: %w", err)
	}
	if in.logits == nil && needs.SampledGrad {
		return nil, fmt.Errorf("hessian: NewGraph: the sampled-label gradient needs logits, and none were found among the inputs of loss %q (a softmax of the targets' shape %v): set GraphSpec.Logits", spec.Loss.Name(), spec.Targets.Shape())
	}
	e, err := newBaseEngine(in.x.Dtype(), needs, names, values, opts)
	if err != nil {
		return nil, err
	}
	var ts tensor.Shape // the targets', or the logits' when there are none
	if in.targets != nil {
		ts = in.targets.Shape()
	} else {
		ts = in.logits.Shape()
	}
	e.classes, e.example = ts[1], append([]int{}, in.x.Shape()[1:]...)
	e.rows = ts[0] / in.n
	e.user = u
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

// rewriteUserGraph finds the logits when spec has none, refuses
// probabilities given as logits, rewrites the stock ops of the loss and
// logits into nn ops (in.loss and in.logits become the rewritten nodes)
// and prepares evaluation.
func rewriteUserGraph(in *graphIn, spec GraphSpec) (*userGraph, error) {
	u := &userGraph{drop: nn.NewDropoutState(spec.DropoutSeed)}
	rw, err := stock.New(in.g, in.params, stock.Options{Dropout: u.drop})
	if err != nil {
		return nil, err
	}
	logits := spec.Logits
	if logits == nil {
		if logits, err = rw.FindLogits(spec.Loss, spec.Targets.Shape()); err != nil {
			return nil, fmt.Errorf("%w: set GraphSpec.Logits", err)
		}
		if logits != nil {
			if err := checkLogits(logits, in); err != nil {
				return nil, fmt.Errorf("logits found as the softmax's input: %w", err)
			}
		}
	}
	if logits != nil {
		if p := rw.Probabilities(logits); p != "" {
			return nil, fmt.Errorf("logits %q (shape %v) are the output of %s, so they are probabilities, not logits: the engine would apply softmax twice; give the %s's input %q", logits.Name(), logits.Shape(), p, p, firstInput(logits))
		}
		if in.logits, err = rw.Rewrite(logits); err != nil {
			return nil, fmt.Errorf("logits: %w", err)
		}
	}
	if spec.Loss != nil {
		if in.loss, err = rw.Rewrite(spec.Loss); err != nil {
			return nil, fmt.Errorf("loss: %w", err)
		}
	}
	if logits != nil {
		if err := u.prepareEval(rw, logits, in); err != nil {
			return nil, err
		}
	}
	return u, nil
}

func firstInput(n *gorgonia.Node) string {
	it := n.Graph().From(n.ID())
	if it.Next() {
		return it.Node().(*gorgonia.Node).Name()
	}
	return ""
}

// checkLogits checks the logits' dtype and shape against the input and
// targets.
func checkLogits(l *gorgonia.Node, in *graphIn) error {
	ls := l.Shape()
	if ls.Dims() != 2 || ls[0] < 1 || ls[1] < 1 {
		return fmt.Errorf("logits %q have shape %v, want [N, classes]", l.Name(), ls)
	}
	if l.Dtype() != in.x.Dtype() {
		return fmt.Errorf("logits %q are %v, the input %v", l.Name(), l.Dtype(), in.x.Dtype())
	}
	if ls[0]%in.n != 0 {
		return fmt.Errorf("logits %q have %d rows, not a multiple of the batch %d", l.Name(), ls[0], in.n)
	}
	if in.targets != nil && !in.targets.Shape().Eq(ls) {
		return fmt.Errorf("targets %q are %v, want %v like the logits %q", in.targets.Name(), in.targets.Shape(), ls, l.Name())
	}
	return nil
}

// checkGraphSpec validates spec against g and returns the graph for compile
// with the parameters' names and values.
func checkGraphSpec(g *gorgonia.ExprGraph, spec GraphSpec) (graphIn, []string, []*tensor.Dense, error) {
	in := graphIn{g: g, x: spec.Input, targets: spec.Targets}
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
	dt := spec.Input.Dtype()
	if dt != tensor.Float64 && dt != tensor.Float32 {
		return in, nil, nil, fmt.Errorf("input dtype %v, want float32 or float64", dt)
	}
	xs := spec.Input.Shape()
	if xs.Dims() < 2 || xs[0] < 1 {
		return in, nil, nil, fmt.Errorf("input %q is %v, want [N, …]", spec.Input.Name(), xs)
	}
	in.n = xs[0]
	if spec.Targets == nil && spec.Loss != nil {
		return in, nil, nil, errors.New("a Loss needs its Targets node (SetBatch fills it with the labels)")
	}
	if spec.Logits == nil && spec.Loss == nil {
		return in, nil, nil, errors.New("Logits node is nil (it may be nil only when a Loss is given)")
	}
	if spec.Targets != nil {
		if err := node(spec.Targets, "Targets"); err != nil {
			return in, nil, nil, err
		}
		ts := spec.Targets.Shape()
		if ts.Dims() != 2 || ts[0]%in.n != 0 || ts[0] < 1 || ts[1] < 1 || spec.Targets.Dtype() != dt {
			return in, nil, nil, fmt.Errorf("targets %q are %v %v, want [N·T, classes] %v with N = %d", spec.Targets.Name(), spec.Targets.Dtype(), ts, dt, in.n)
		}
	}
	if spec.Logits != nil {
		if err := node(spec.Logits, "Logits"); err != nil {
			return in, nil, nil, err
		}
		if err := checkLogits(spec.Logits, &in); err != nil {
			return in, nil, nil, err
		}
	}
	if spec.Loss != nil {
		if err := node(spec.Loss, "Loss"); err != nil {
			return in, nil, nil, err
		}
		if ls := spec.Loss.Shape(); !(ls.Eq(tensor.Shape{1}) || ls.Dims() == 0) || spec.Loss.Dtype() != dt {
			return in, nil, nil, fmt.Errorf("loss %q is %v %v, want %v, a scalar () or of shape (1)", spec.Loss.Name(), spec.Loss.Dtype(), ls, dt)
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
