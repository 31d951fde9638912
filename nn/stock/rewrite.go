package stock

import (
	"fmt"
	"strings"

	"github.com/curvopt/curvopt/nn"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Options configures a Rewriter.
type Options struct {
	// Dropout decides the masks of the stock Dropout nodes (training
	// mode): the node with id k gets nn.Dropout's mask k of the state's
	// current step, so every run of one step (gradient, H·v, sampled
	// gradient) sees the same mask and the caller moves to new masks with
	// Dropout.Next. Required when the graph has a dropout in training mode
	// and Eval is false.
	Dropout *nn.DropoutState
	// Eval rewrites for evaluation: dropout nodes become the identity.
	// Batch normalisation keeps its batch statistics (a user graph has
	// no running statistics; docs/gorgonia.md).
	Eval bool
}

// Rewriter rewrites the nodes of one stock Gorgonia graph, in that graph,
// into nn's twice-differentiable ops. Only the nodes that depend on a
// parameter (or on a dropout, whose mask must be fixed per step) are
// rewritten; the rest run as the user wrote them, since no derivative
// flows through them. Parameters and other input nodes are kept: the
// rewritten graph reads the same tensors.
type Rewriter struct {
	g      *gorgonia.ExprGraph
	cat    *catalog
	opts   Options
	params map[*gorgonia.Node]bool
	memo   map[*gorgonia.Node]*gorgonia.Node
	live   map[*gorgonia.Node]bool
	nconst int
	drops  int // nn.Dropout nodes made
}

// New returns a Rewriter for graph g whose parameters (the nodes
// derivatives are taken with respect to) are params.
func New(g *gorgonia.ExprGraph, params []*gorgonia.Node, opts Options) (*Rewriter, error) {
	if g == nil {
		return nil, fmt.Errorf("stock: nil graph")
	}
	cat, err := newCatalog()
	if err != nil {
		return nil, err
	}
	r := &Rewriter{g: g, cat: cat, opts: opts, params: map[*gorgonia.Node]bool{},
		memo: map[*gorgonia.Node]*gorgonia.Node{}, live: map[*gorgonia.Node]bool{}}
	for _, p := range params {
		if p == nil || p.Graph() != g {
			return nil, fmt.Errorf("stock: a parameter is nil or not in the graph")
		}
		r.params[p] = true
	}
	return r, nil
}

// Rewrite returns a node of nn ops, in the same graph, computing what n
// computes; a scalar n (shape ()) becomes a node of shape [1]. An op that
// has no exact nn counterpart is refused with a *RefusedError naming the
// node. Nodes are rewritten once: later calls, for n or nodes sharing
// inputs with it, reuse the rewritten inputs.
func (r *Rewriter) Rewrite(n *gorgonia.Node) (*gorgonia.Node, error) {
	if n == nil || n.Graph() != r.g {
		return nil, fmt.Errorf("stock: node is nil or not in the rewriter's graph")
	}
	return r.node(n)
}

// Dropouts returns the number of nn.Dropout nodes the rewrites so far have
// made (0 in evaluation mode).
func (r *Rewriter) Dropouts() int { return r.drops }

// Kind returns, in plain words, the stock operation that computes n ("" for
// an input node or an op the catalog does not know).
func (r *Rewriter) Kind(n *gorgonia.Node) string {
	if n == nil || n.Op() == nil {
		return ""
	}
	return words[r.cat.kindOf(n.Op())]
}

// RefusedError is the error for a stock op with no exact nn counterpart.
type RefusedError struct {
	Node   string       // the user's node: its name
	ID     int64        // its id in the graph
	Shape  tensor.Shape // its shape
	Inputs []string     // the names of its inputs
	Op     string       // the operation, in plain words
	Reason string       // why it cannot be rewritten
	Use    string       // what to use instead
}

func (e *RefusedError) Error() string {
	in := ""
	if len(e.Inputs) > 0 {
		q := make([]string, len(e.Inputs))
		for i, s := range e.Inputs {
			q[i] = fmt.Sprintf("%q", s)
		}
		in = ", inputs " + strings.Join(q, ", ")
	}
	return fmt.Sprintf("stock: node %q (id %d, shape %v%s): %s: %s; use %s", e.Node, e.ID, e.Shape, in, e.Op, e.Reason, e.Use)
}

// refuse returns the RefusedError of n.
func (r *Rewriter) refuse(n *gorgonia.Node, reason, use string) error {
	return r.refuseAs(n, "", reason, use)
}

// refuseAs is refuse with the operation in words given (op "" : n's op).
func (r *Rewriter) refuseAs(n *gorgonia.Node, op, reason, use string) error {
	e := &RefusedError{Node: n.Name(), ID: n.ID(), Shape: n.Shape().Clone(), Op: op, Reason: reason, Use: use}
	for _, c := range children(n) {
		e.Inputs = append(e.Inputs, c.Name())
	}
	if n.Op() != nil && e.Op == "" {
		e.Op = words[r.cat.kindOf(n.Op())]
		if e.Op == "" {
			e.Op = fmt.Sprintf("op %v (%T), not one the rewriter knows", n.Op(), n.Op())
		}
	}
	return e
}

// children returns n's inputs in order.
func children(n *gorgonia.Node) []*gorgonia.Node {
	g := n.Graph()
	if g == nil {
		return nil
	}
	it := g.From(n.ID())
	var cs []*gorgonia.Node
	for it.Next() {
		cs = append(cs, it.Node().(*gorgonia.Node))
	}
	return cs
}

// isLive reports whether n depends on a parameter or on a dropout in
// training mode: the nodes that must be rewritten.
func (r *Rewriter) isLive(n *gorgonia.Node) bool {
	if v, ok := r.live[n]; ok {
		return v
	}
	r.live[n] = false // cycles cannot occur; this only guards recursion
	live := false
	switch {
	case n.Op() == nil:
		live = r.params[n]
	default:
		switch k := r.cat.kindOf(n.Op()); k {
		case kSize, kConstant:
		default:
			if k == kDropout && dropoutActive(n.Op()) {
				live = true
			}
			for _, c := range children(n) {
				if r.isLive(c) {
					live = true
				}
			}
		}
	}
	r.live[n] = live
	return live
}

// dropoutActive reports whether a stock dropout op changes its input.
func dropoutActive(op gorgonia.Op) bool {
	p, _ := floatField(op, "probability")
	train, ok := boolField(op, "isTraining")
	return p > 0 && (train || !ok)
}

func (r *Rewriter) node(n *gorgonia.Node) (*gorgonia.Node, error) {
	if m, ok := r.memo[n]; ok {
		return m, nil
	}
	m, err := r.translate(n)
	if err != nil {
		return nil, err
	}
	r.memo[n] = m
	return m, nil
}

// scalarShape is the shape a rewritten node has for the stock shape s: s
// itself, or [1] for a scalar.
func scalarShape(s tensor.Shape) tensor.Shape {
	if s.Dims() == 0 {
		return tensor.Shape{1}
	}
	return s.Clone()
}

// sameShape reports whether a and b are the same shape, axis by axis
// (tensor.Shape.Eq takes a (1, n) row for an (n) vector).
func sameShape(a, b tensor.Shape) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// asShape reshapes t to s when its shape differs.
func asShape(t *gorgonia.Node, s tensor.Shape) (*gorgonia.Node, error) {
	s = scalarShape(s)
	if sameShape(t.Shape(), s) {
		return t, nil
	}
	return nn.Reshape(t, s)
}

func (r *Rewriter) translate(n *gorgonia.Node) (*gorgonia.Node, error) {
	if !r.isLive(n) {
		return n, nil
	}
	op := n.Op()
	if op == nil { // a parameter
		return n, nil
	}
	kids := children(n)
	if nn.IsOwnOp(op) {
		same := true
		ts := make([]*gorgonia.Node, len(kids))
		for i, c := range kids {
			t, err := r.node(c)
			if err != nil {
				return nil, err
			}
			if ts[i] = t; t != c {
				same = false
			}
		}
		if same {
			return n, nil
		}
		out, err := gorgonia.ApplyOp(op, ts...)
		if err != nil {
			return nil, fmt.Errorf("stock: re-applying %v at node %q to rewritten inputs: %w", op, n.Name(), err)
		}
		return out, nil
	}
	k := r.cat.kindOf(op)
	if len(kids) == 0 {
		return nil, r.refuse(n, "an op without inputs that depends on a parameter", "an input node or a constant")
	}
	switch {
	case k >= kAdd && k <= kNe:
		if len(kids) != 2 {
			return nil, r.refuse(n, fmt.Sprintf("%d inputs, want 2", len(kids)), "two inputs")
		}
		return r.binary(n, k, kids[0], kids[1])
	case k >= kAbs && k <= kSoftplus:
		return r.unary(n, k, kids[0])
	case k >= kMatMul && k <= kBatchedMatMul:
		return r.linalg(n, k, kids)
	}
	switch k {
	case kSum:
		return r.sum(n, kids[0])
	case kReshape:
		t, err := r.node(kids[0])
		if err != nil {
			return nil, err
		}
		return nn.Reshape(t, scalarShape(n.Shape()))
	case kTranspose:
		return r.transpose(n, kids[0])
	case kRepeat:
		return r.repeat(n, kids[0])
	case kSoftmax:
		return r.softmax(n, kids[0])
	case kDropout:
		return r.dropout(n, kids[0])
	case kMaxPool:
		return r.maxPool(n, kids[0])
	case kBatchNorm:
		return r.batchNorm(n, kids[0])
	case kIm2Col:
		return nil, r.refuse(n, "im2col alone has no nn counterpart (it is rewritten only as part of gorgonia.Conv2d's composition: im2col, reshape, matrix product, reshape, transpose)", "gorgonia.Conv2d, or nn.Conv2d")
	case kMax:
		return nil, r.refuse(n, "a maximum over axes has no nn counterpart", "nn.MaxPool2d for pooling, or nn.LogSoftmax / nn.CrossEntropy where the maximum only stabilises a softmax")
	case kConcat:
		return r.concat(n, kids)
	case kSlice:
		return r.slice(n, kids[0])
	case kGlobalAvgPool:
		return nil, r.refuse(n, "its backward op is not differentiable", "nn.GlobalAvgPool")
	}
	return nil, r.refuse(n, "no nn counterpart is known for this op", "the nn op that computes it (see the nn package's list of ops)")
}

// operand returns the rewritten a, or a itself when no derivative flows
// through it (it must then hold a tensor: nn's ops read *tensor.Dense
// values).
func (r *Rewriter) operand(n, a *gorgonia.Node) (*gorgonia.Node, error) {
	if r.isLive(a) {
		return r.node(a)
	}
	if a.Shape().Dims() == 0 {
		return nil, r.refuse(n, fmt.Sprintf("its scalar input %q is neither a constant nor computed from the parameters", a.Name()), "gorgonia.NewConstant for a fixed number, or a tensor of shape (1)")
	}
	return a, nil
}

// constVal returns the value of a scalar that is fixed when the graph is
// built: a constant, the size of an axis, or arithmetic on those (as
// gorgonia.Mean divides by a product of SizeOf nodes).
func (r *Rewriter) constVal(n *gorgonia.Node) (float64, bool) {
	if n.Shape().Dims() != 0 || n.Op() == nil {
		return 0, false
	}
	kids := children(n)
	switch k := r.cat.kindOf(n.Op()); k {
	case kConstant:
		if n.Value() == nil {
			return 0, false
		}
		switch v := n.Value().Data().(type) {
		case float64:
			return v, true
		case float32:
			return float64(v), true
		case int:
			return float64(v), true
		}
	case kSize:
		if v, ok := intField(n.Op(), "val"); ok && v != 0 {
			return float64(v), true
		}
		ax, ok := intField(n.Op(), "axis")
		if !ok || len(kids) != 1 || ax < 0 || ax >= kids[0].Shape().Dims() {
			return 0, false
		}
		return float64(kids[0].Shape()[ax]), true
	case kAdd, kSub, kMul, kDiv:
		if len(kids) != 2 {
			return 0, false
		}
		a, okA := r.constVal(kids[0])
		b, okB := r.constVal(kids[1])
		if !okA || !okB {
			return 0, false
		}
		switch k {
		case kAdd:
			return a + b, true
		case kSub:
			return a - b, true
		case kMul:
			return a * b, true
		case kDiv:
			return a / b, true
		}
	case kNeg:
		if v, ok := r.constVal(kids[0]); ok {
			return -v, true
		}
	}
	return 0, false
}

// fill returns a new input node of shape s holding c everywhere.
func (r *Rewriter) fill(dt tensor.Dtype, s tensor.Shape, c float64) *gorgonia.Node {
	d := tensor.New(tensor.Of(dt), tensor.WithShape(s.Clone()...))
	switch dt {
	case tensor.Float64:
		for i := range d.Float64s() {
			d.Float64s()[i] = c
		}
	case tensor.Float32:
		for i := range d.Float32s() {
			d.Float32s()[i] = float32(c)
		}
	}
	r.nconst++
	return gorgonia.NewTensor(r.g, dt, s.Dims(), gorgonia.WithShape(s.Clone()...), gorgonia.WithValue(d),
		gorgonia.WithName(fmt.Sprintf("stock.const%d(%g)", r.nconst, c)))
}

// broadcastTo repeats t (one element, from a scalar) to shape s.
func broadcastTo(t *gorgonia.Node, s tensor.Shape) (*gorgonia.Node, error) {
	s = scalarShape(s)
	if t.Shape().TotalSize() != 1 {
		return nil, fmt.Errorf("stock: broadcasting %v, want one element", t.Shape())
	}
	t1, err := asShape(t, tensor.Shape{1})
	if err != nil {
		return nil, err
	}
	b, err := nn.AxisBcast(t1, tensor.Shape{s.TotalSize()}, 0)
	if err != nil {
		return nil, err
	}
	return asShape(b, s)
}
