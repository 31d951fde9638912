package stock

// Questions about a user's graph that the engine asks before rewriting it:
// where its logits are, whether a node outputs probabilities, and whether
// its rows can be evaluated independently.

import (
	"fmt"
	"strings"

	"github.com/curvopt/curvopt/nn"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Probabilities returns the op ("gorgonia.SoftMax", "gorgonia.Sigmoid",
// "nn.Softmax", "nn.Sigmoid") when n is the output of a softmax or a
// sigmoid, so holds probabilities rather than logits, and "" otherwise. A
// log-softmax output is not reported: its softmax is the softmax of the
// logits.
func (r *Rewriter) Probabilities(n *gorgonia.Node) string {
	if n == nil || n.Op() == nil {
		return ""
	}
	switch r.cat.kindOf(n.Op()) {
	case kSoftmax:
		if isLog, _ := boolField(n.Op(), "isLog"); !isLog {
			return "gorgonia.SoftMax"
		}
	case kSigmoid:
		return "gorgonia.Sigmoid"
	}
	if p := nn.OutputsProbabilities(n.Op()); p == "Softmax" || p == "Sigmoid" {
		return "nn." + p
	}
	return ""
}

// FindLogits returns the logits of a cost built by the user: the input of
// the softmax (gorgonia.SoftMax or LogSoftMax, nn.Softmax or LogSoftmax)
// among the cost's ancestors whose output has the given shape (the
// targets' [N, classes]). It returns nil when there is none, and an error
// naming them when there are several different ones.
func (r *Rewriter) FindLogits(cost *gorgonia.Node, shape tensor.Shape) (*gorgonia.Node, error) {
	seen := map[*gorgonia.Node]bool{}
	var found []*gorgonia.Node
	var walk func(n *gorgonia.Node)
	walk = func(n *gorgonia.Node) {
		if seen[n] {
			return
		}
		seen[n] = true
		kids := children(n)
		if n.Op() != nil && len(kids) == 1 && sameShape(n.Shape(), shape) {
			isSoftmax := r.cat.kindOf(n.Op()) == kSoftmax
			if p := nn.OutputsProbabilities(n.Op()); p == "Softmax" || p == "LogSoftmax" {
				isSoftmax = true
			}
			if isSoftmax && !containsNode(found, kids[0]) {
				found = append(found, kids[0])
			}
		}
		for _, c := range kids {
			walk(c)
		}
	}
	walk(cost)
	switch len(found) {
	case 0:
		return nil, nil
	case 1:
		return found[0], nil
	}
	names := make([]string, len(found))
	for i, n := range found {
		names[i] = fmt.Sprintf("%q", n.Name())
	}
	return nil, fmt.Errorf("stock: the cost %q has %d softmax nodes of shape %v, with inputs %s: which are the logits is ambiguous", cost.Name(), len(found), shape, strings.Join(names, ", "))
}

func containsNode(ns []*gorgonia.Node, n *gorgonia.Node) bool {
	for _, m := range ns {
		if m == n {
			return true
		}
	}
	return false
}

// rowKind says how a node's rows depend on the input's rows.
type rowKind int

const (
	rowsStatic rowKind = iota // does not depend on the input
	rowsOwn                   // row i (axis 0) depends only on input row i
	rowsMixed                 // rows depend on other rows (or unknown)
)

// RowCoupling returns nil when every row (axis 0) of out depends only on
// the same row of the input in, so that a batch can be evaluated in parts
// padded with zero rows; otherwise it returns the first node found that
// mixes rows (a batch norm over the batch, a sum or softmax over axis 0, a
// reshape that moves the batch axis, or an op it does not know).
func (r *Rewriter) RowCoupling(out, in *gorgonia.Node) *gorgonia.Node {
	memo := map[*gorgonia.Node]rowKind{}
	var culprit *gorgonia.Node
	var kindOf func(n *gorgonia.Node) rowKind
	kindOf = func(n *gorgonia.Node) rowKind {
		if k, ok := memo[n]; ok {
			return k
		}
		k := r.rowKind(n, in, kindOf)
		if k == rowsMixed && culprit == nil {
			culprit = n
		}
		memo[n] = k
		return k
	}
	if kindOf(out) == rowsMixed {
		return culprit
	}
	return nil
}

func (r *Rewriter) rowKind(n, in *gorgonia.Node, kindOf func(*gorgonia.Node) rowKind) rowKind {
	if n == in {
		return rowsOwn
	}
	if n.Op() == nil {
		return rowsStatic
	}
	if k := r.cat.kindOf(n.Op()); k == kSize || k == kConstant {
		return rowsStatic // fixed when the graph is built
	}
	if x, w, _, ok := r.matchConv(n); ok {
		// gorgonia.Conv2d: per image, whatever its inner reshapes do
		if kx, kw := kindOf(x), kindOf(w); kx != rowsMixed && kw == rowsStatic {
			return kx
		}
		return rowsMixed
	}
	kids := children(n)
	worst := rowsStatic
	for _, c := range kids {
		if k := kindOf(c); k > worst {
			worst = k
		}
	}
	if worst != rowsOwn {
		return worst
	}
	if nn.IsOwnOp(n.Op()) {
		rows, ok := nn.RowLocal(n.Op())
		if !ok || len(rows) != len(kids) {
			return rowsMixed
		}
		for i, c := range kids {
			if kindOf(c) == rowsOwn && (!rows[i] || c.Shape().Dims() == 0 || c.Shape()[0] != n.Shape()[0]) {
				return rowsMixed
			}
		}
		return rowsOwn
	}
	own := func(i int) bool { return i < len(kids) && kindOf(kids[i]) == rowsOwn }
	static := func(i int) bool { return i < len(kids) && kindOf(kids[i]) == rowsStatic }
	batch := in.Shape()[0]
	switch k := r.cat.kindOf(n.Op()); {
	case k >= kAdd && k <= kSoftplus, k == kDropout, k == kMaxPool, k == kIm2Col:
		// element-wise (a scalar operand computed from the input would
		// mix rows: it is not rowsOwn with the batch axis)
		for _, c := range kids {
			if kindOf(c) == rowsOwn && (c.Shape().Dims() == 0 || c.Shape()[0] != n.Shape()[0]) {
				return rowsMixed
			}
		}
		return rowsOwn
	case k == kMatMul || k == kMatVec:
		if ta, _ := boolField(n.Op(), "transA"); !ta && own(0) && static(1) {
			return rowsOwn
		}
	case k == kSum:
		if along, ok := intsField(n.Op(), "along"); ok && !containsInt(along, 0) {
			return rowsOwn
		}
	case k == kReshape:
		from := kids[0].Shape()
		if to := n.Shape(); from.Dims() > 0 && to.Dims() > 0 && from[0] == to[0] && from[0] == batch {
			return rowsOwn
		}
	case k == kTranspose:
		if p, ok := intsField(n.Op(), "pattern"); ok && len(p) > 0 && p[0] == 0 {
			return rowsOwn
		}
	case k == kRepeat:
		if along, ok := intField(n.Op(), "along"); ok && along != 0 {
			return rowsOwn
		}
	case k == kSoftmax:
		axis, _ := intField(n.Op(), "axis")
		if axis < 0 {
			axis += n.Shape().Dims()
		}
		if axis != 0 {
			return rowsOwn
		}
	}
	return rowsMixed
}

func containsInt(xs []int, v int) bool {
	for _, x := range xs {
		if x == v {
			return true
		}
	}
	return false
}
