package nn

import (
	"fmt"

	"gorgonia.org/gorgonia"
)

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

// diffWRT returns which inputs of n are differentiable; ok is false when n's
// op is not an SDOp or misbehaves (some stock backward ops panic here).
func diffWRT(n *gorgonia.Node, nc int) (d []bool, ok bool) {
	op, isSD := n.Op().(gorgonia.SDOp)
	if !isSD {
		return nil, false
	}
	defer func() {
		if r := recover(); r != nil {
			d, ok = nil, false
		}
	}()
	d = op.DiffWRT(nc)
	if len(d) != nc {
		return nil, false
	}
	return d, true
}

// symDiff calls op.SymDiff, turning a panic into an error.
func symDiff(op gorgonia.SDOp, ch gorgonia.Nodes, n, g *gorgonia.Node) (grads gorgonia.Nodes, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return op.SymDiff(ch, n, g)
}

// activeSet returns the nodes through which derivatives of outputs flow to
// wrt: nodes that are reached from an output through differentiable inputs
// and that depend differentiably on some wrt node, in the sorted order
// (outputs first) of the graph.
func activeSet(outputs, wrt []*gorgonia.Node) ([]*gorgonia.Node, map[*gorgonia.Node]bool, error) {
	if len(outputs) == 0 || len(wrt) == 0 {
		return nil, nil, fmt.Errorf("nn: differentiation needs outputs and inputs")
	}
	g := outputs[0].Graph()
	for _, n := range append(append([]*gorgonia.Node{}, outputs...), wrt...) {
		if n == nil || n.Graph() != g {
			return nil, nil, fmt.Errorf("nn: differentiation: nodes are not all in one graph")
		}
	}
	sorted, err := gorgonia.Sort(g)
	if err != nil {
		return nil, nil, fmt.Errorf("nn: sorting graph: %w", err)
	}
	// depends: node depends differentiably on a wrt node (leaves first).
	depends := make(map[*gorgonia.Node]bool)
	for _, n := range wrt {
		depends[n] = true
	}
	for i := len(sorted) - 1; i >= 0; i-- {
		n := sorted[i]
		if depends[n] || n.Op() == nil {
			continue
		}
		cs := children(n)
		d, ok := diffWRT(n, len(cs))
		for j, c := range cs {
			if depends[c] && (!ok || d[j]) {
				// A node that is not an SDOp but depends on wrt is kept so
				// that it can be reported.
				depends[n] = true
				break
			}
		}
	}
	reached := make(map[*gorgonia.Node]bool)
	for _, n := range outputs {
		reached[n] = true
	}
	var order []*gorgonia.Node
	active := make(map[*gorgonia.Node]bool)
	for _, n := range sorted {
		if !reached[n] || !depends[n] {
			continue
		}
		active[n] = true
		order = append(order, n)
		if n.Op() == nil {
			continue
		}
		cs := children(n)
		d, ok := diffWRT(n, len(cs))
		for j, c := range cs {
			if !ok || d[j] {
				reached[c] = true
			}
		}
	}
	return order, active, nil
}

// Backprop builds the reverse-mode derivative graph: for each node in wrt it
// returns a node holding Σₖ Jₖᵀ·seeds[k], where Jₖ is the Jacobian of
// outputs[k] with respect to that wrt node (seeds[k] has outputs[k]'s shape).
// With a single [1]-shaped loss and a ones seed this is the gradient; with
// the gradient nodes as outputs and a direction v as seeds it is the
// Hessian-vector product H·v (double backprop, H symmetric).
//
// A wrt node that does not affect the outputs gets a nil entry (its
// derivative is zero); it is an error if none does. Contributions to a node
// are summed with AddN. Every op on the way must be
// a gorgonia.SDOp whose SymDiff is correct; use AuditSecondOrder before
// differentiating a graph that is itself a derivative.
func Backprop(outputs, seeds, wrt []*gorgonia.Node) ([]*gorgonia.Node, error) {
	if len(outputs) != len(seeds) {
		return nil, fmt.Errorf("nn: Backprop: %d outputs but %d seeds", len(outputs), len(seeds))
	}
	for i, o := range outputs {
		if !shapeOf(o).Eq(shapeOf(seeds[i])) {
			return nil, fmt.Errorf("nn: Backprop: output %v has shape %v but its seed %v", o, shapeOf(o), shapeOf(seeds[i]))
		}
	}
	order, active, err := activeSet(outputs, wrt)
	if err != nil {
		return nil, err
	}
	contrib := make(map[*gorgonia.Node][]*gorgonia.Node)
	for i, o := range outputs {
		contrib[o] = append(contrib[o], seeds[i])
	}
	total := make(map[*gorgonia.Node]*gorgonia.Node)
	for _, n := range order {
		cs := contrib[n]
		if len(cs) == 0 {
			continue
		}
		sum, err := AddN(cs...)
		if err != nil {
			return nil, fmt.Errorf("nn: summing gradients of %v: %w", n, err)
		}
		total[n] = sum
		if n.Op() == nil {
			continue
		}
		op, ok := n.Op().(gorgonia.SDOp)
		ch := children(n)
		d, dok := diffWRT(n, len(ch))
		if !ok || !dok {
			return nil, fmt.Errorf("nn: op %v (%T) of node %q is not differentiable", n.Op(), n.Op(), n.Name())
		}
		grads, err := symDiff(op, ch, n, sum)
		if err != nil {
			return nil, fmt.Errorf("nn: differentiating op %v of node %q: %w", n.Op(), n.Name(), err)
		}
		if len(grads) != len(ch) {
			return nil, fmt.Errorf("nn: op %v returned %d derivatives for %d inputs", n.Op(), len(grads), len(ch))
		}
		for j, c := range ch {
			if !d[j] || !active[c] {
				continue
			}
			if grads[j] == nil {
				return nil, fmt.Errorf("nn: op %v gave no derivative for its input %d", n.Op(), j)
			}
			contrib[c] = append(contrib[c], grads[j])
		}
	}
	out := make([]*gorgonia.Node, len(wrt))
	found := false
	for i, w := range wrt {
		out[i] = total[w]
		found = found || out[i] != nil
	}
	if !found {
		return nil, fmt.Errorf("nn: Backprop: no input affects the outputs")
	}
	return out, nil
}

// stockSecondOrderSafe reports whether a stock Gorgonia op (by its String
// form) is accepted by AuditSecondOrder: element-wise ops whose SymDiff emits
// ops that are correct under a second differentiation by Backprop (which
// does not share Gorgonia's Backpropagate defect of skipping nodes whose
// derivative is already set). Stock ops known to break (SoftMax, MaxPool2D,
// Conv2d, BatchNorm, Slice, Reshape, InverseSqrt, Mean) are absent.
func stockSecondOrderSafe(name string) bool {
	switch name {
	case "+", "-", "⊙", "tanh", "exp", "ln", "neg":
		return true
	}
	return false
}

// AuditSecondOrder checks, before a derivative graph is differentiated
// again, that every op through which Backprop(outputs, ·, wrt) would
// propagate is known to be correct under double differentiation: the ops of
// this package (except the few that only appear in second-derivative graphs)
// and a short list of stock element-wise ops. The error names the first
// refused op and its node, so an HVP is never silently wrong.
func AuditSecondOrder(outputs, wrt []*gorgonia.Node) error {
	order, _, err := activeSet(outputs, wrt)
	if err != nil {
		return err
	}
	for _, n := range order {
		op := n.Op()
		if op == nil {
			continue
		}
		if _, ok := op.(secondOrderSafe); ok {
			continue
		}
		if _, ok := op.(gorgonia.SDOp); ok && stockSecondOrderSafe(op.String()) {
			continue
		}
		return fmt.Errorf("nn: second-order audit: op %v (%T) at node %q (id %d) is not verified for double differentiation", op, op, n.Name(), n.ID())
	}
	return nil
}
