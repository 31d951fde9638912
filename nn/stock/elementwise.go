package stock

// Element-wise, linear-algebra and reduction ops.

import (
	"fmt"
	"math"
	"sort"

	"github.com/curvopt/curvopt/nn"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func isComparison(k kind) bool { return k >= kLt && k <= kNe }

// binary rewrites an element-wise binary op a ∘ b.
func (r *Rewriter) binary(n *gorgonia.Node, k kind, a, b *gorgonia.Node) (*gorgonia.Node, error) {
	if k == kMul {
		if out, ok, err := r.mask(n, a, b); ok || err != nil {
			return out, err
		}
	}
	if isComparison(k) {
		return nil, r.refuse(n, "a comparison is piecewise constant (its derivative is zero almost everywhere); it is rewritten only as gorgonia.Rectify's mask, x ⊙ (x >= 0)", "nn.ReLU or nn.MaskMul")
	}
	if k == kAdd {
		if err := r.stabilisedLogLikelihood(n, a, b); err != nil {
			return nil, err
		}
	}
	ca, aConst := r.constVal(a)
	cb, bConst := r.constVal(b)
	switch {
	case bConst:
		t, err := r.node(a)
		if err != nil {
			return nil, err
		}
		return r.withConst(n, k, t, cb, false)
	case aConst:
		t, err := r.node(b)
		if err != nil {
			return nil, err
		}
		return r.withConst(n, k, t, ca, true)
	}
	if k == kPow {
		return nil, r.refuse(n, "a power with an exponent that is not a constant number", "nn.Exp(nn.Mul(b, nn.Log(a))) for a > 0")
	}
	ta, err := r.operand(n, a)
	if err != nil {
		return nil, err
	}
	tb, err := r.operand(n, b)
	if err != nil {
		return nil, err
	}
	s := scalarShape(n.Shape())
	for _, t := range []**gorgonia.Node{&ta, &tb} {
		switch {
		case sameShape((*t).Shape(), s):
		case (*t).Shape().TotalSize() == s.TotalSize():
			if *t, err = asShape(*t, s); err != nil {
				return nil, err
			}
		case (*t).Shape().TotalSize() == 1:
			if *t, err = broadcastTo(*t, s); err != nil {
				return nil, err
			}
		default:
			return nil, r.refuse(n, fmt.Sprintf("operand shapes %v and %v", a.Shape(), b.Shape()), "operands of one shape (gorgonia.Broadcast* for broadcasting)")
		}
	}
	switch k {
	case kAdd:
		return nn.AddN(ta, tb)
	case kSub:
		return nn.Sub(ta, tb)
	case kMul:
		return nn.Mul(ta, tb)
	case kDiv:
		rb, err := nn.Reciprocal(tb)
		if err != nil {
			return nil, err
		}
		return nn.Mul(ta, rb)
	}
	return nil, r.refuse(n, "unexpected element-wise op", "nn's element-wise ops")
}

// stabilisedLogLikelihood refuses log_softmax(z) + log(y) with y a fixed
// input: what Gorgonia's stabilisation makes of Log(HadamardProd(SoftMax(z),
// y)), the loss of Gorgonia's examples/convnet. The stabilisation also
// turns the SoftMax node itself into a log-softmax. log(y) is −Inf wherever
// the one-hot y is 0, so the loss is +Inf and its gradient (that of
// log_softmax alone) does not depend on the labels.
func (r *Rewriter) stabilisedLogLikelihood(n, a, b *gorgonia.Node) error {
	for _, pair := range [][2]*gorgonia.Node{{a, b}, {b, a}} {
		sm, lg := pair[0], pair[1]
		if sm.Op() == nil || lg.Op() == nil || r.cat.kindOf(sm.Op()) != kSoftmax || r.cat.kindOf(lg.Op()) != kLn || r.isLive(lg) {
			continue
		}
		if isLog, _ := boolField(sm.Op(), "isLog"); !isLog {
			continue
		}
		return r.refuse(n, fmt.Sprintf("Gorgonia's stabilisation rewrote log(softmax(z) ⊙ y) as log_softmax(z) + log(y) (and made the SoftMax node %q a log-softmax): log(y) is -Inf wherever y is 0, so the loss is +Inf and its gradient ignores the labels", sm.Name()),
			"the log-likelihood Neg(Mean(Sum(HadamardProd(Log(SoftMax(z)), y), 1))), or give the logits z as GraphSpec.Logits and leave Loss nil (nn.CrossEntropy)")
	}
	return nil
}

// withConst rewrites t ∘ c (or c ∘ t when left) for a constant number c.
func (r *Rewriter) withConst(n *gorgonia.Node, k kind, t *gorgonia.Node, c float64, left bool) (*gorgonia.Node, error) {
	s := scalarShape(n.Shape())
	var err error
	if !sameShape(t.Shape(), s) {
		if t.Shape().TotalSize() == 1 && s.TotalSize() != 1 {
			t, err = broadcastTo(t, s)
		} else {
			t, err = asShape(t, s)
		}
		if err != nil {
			return nil, err
		}
	}
	switch k {
	case kAdd:
		if c == 0 {
			return t, nil
		}
		return nn.AddN(t, r.fill(n.Dtype(), s, c))
	case kSub:
		if !left {
			if c == 0 {
				return t, nil
			}
			return nn.AddN(t, r.fill(n.Dtype(), s, -c))
		}
		neg, err := nn.Scale(t, -1)
		if err != nil || c == 0 {
			return neg, err
		}
		return nn.AddN(r.fill(n.Dtype(), s, c), neg)
	case kMul:
		return nn.Scale(t, c)
	case kDiv:
		if !left {
			return nn.Scale(t, 1/c)
		}
		rt, err := nn.Reciprocal(t)
		if err != nil {
			return nil, err
		}
		return nn.Scale(rt, c)
	case kPow:
		if left {
			if !(c > 0) {
				return nil, r.refuse(n, fmt.Sprintf("a power %g^x with base ≤ 0", c), "a positive base")
			}
			lt, err := nn.Scale(t, math.Log(c))
			if err != nil {
				return nil, err
			}
			return nn.Exp(lt)
		}
		switch c {
		case 1:
			return t, nil
		case 2:
			return nn.Mul(t, t)
		case 3:
			sq, err := nn.Mul(t, t)
			if err != nil {
				return nil, err
			}
			return nn.Mul(sq, t)
		case 0.5:
			return nn.Sqrt(t)
		case -1:
			return nn.Reciprocal(t)
		case -0.5:
			return nn.Rsqrt(t, 0)
		}
		return nil, r.refuse(n, fmt.Sprintf("a power x^%g (exponents 1, 2, 3, 0.5, -1 and -0.5 are rewritten)", c), "nn.Exp(nn.Scale(nn.Log(x), p)) for x > 0")
	}
	return nil, r.refuse(n, "a comparison with a constant", "nn.ReLU or nn.MaskMul")
}

// mask recognises y ⊙ cmp(x, 0) with cmp a stock comparison returning the
// input's dtype: gorgonia.Rectify's x ⊙ (x >= 0) is nn.ReLU(x), y ⊙ (x > 0)
// is nn.MaskMul(x, y), and x ⊙ (x < 0) (or <=) is x − ReLU(x), as
// gorgonia.LeakyRelu builds it. ok is false when the pattern does not
// apply.
func (r *Rewriter) mask(n, a, b *gorgonia.Node) (*gorgonia.Node, bool, error) {
	for _, pair := range [][2]*gorgonia.Node{{a, b}, {b, a}} {
		y, m := pair[0], pair[1]
		if m.Op() == nil {
			continue
		}
		k := r.cat.kindOf(m.Op())
		if k != kGte && k != kGt && k != kLt && k != kLte {
			continue
		}
		mk := children(m)
		if len(mk) != 2 {
			continue
		}
		if z, ok := r.constVal(mk[1]); !ok || z != 0 {
			continue
		}
		x := mk[0]
		if !sameShape(x.Shape(), n.Shape()) || !sameShape(y.Shape(), n.Shape()) {
			continue
		}
		tx, err := r.operand(n, x)
		if err != nil {
			return nil, true, err
		}
		switch {
		case (k == kGte || k == kGt) && y == x:
			out, err := nn.ReLU(tx)
			return out, true, err
		case k == kGt:
			ty, err := r.operand(n, y)
			if err != nil {
				return nil, true, err
			}
			out, err := nn.MaskMul(tx, ty)
			return out, true, err
		case y == x: // x ⊙ (x < 0) = x − ReLU(x)
			relu, err := nn.ReLU(tx)
			if err != nil {
				return nil, true, err
			}
			out, err := nn.Sub(tx, relu)
			return out, true, err
		}
	}
	return nil, false, nil
}

// unary rewrites an element-wise unary op.
func (r *Rewriter) unary(n *gorgonia.Node, k kind, a *gorgonia.Node) (*gorgonia.Node, error) {
	t, err := r.node(a)
	if err != nil {
		return nil, err
	}
	switch k {
	case kExp:
		return nn.Exp(t)
	case kLn:
		return nn.Log(t)
	case kLog2:
		l, err := nn.Log(t)
		if err != nil {
			return nil, err
		}
		return nn.Scale(l, 1/math.Ln2)
	case kNeg:
		return nn.Scale(t, -1)
	case kSquare:
		return nn.Mul(t, t)
	case kCube:
		sq, err := nn.Mul(t, t)
		if err != nil {
			return nil, err
		}
		return nn.Mul(sq, t)
	case kSqrt:
		return nn.Sqrt(t)
	case kInverse:
		return nn.Reciprocal(t)
	case kInverseSqrt:
		return nn.Rsqrt(t, 0)
	case kTanh:
		return nn.Tanh(t)
	case kSigmoid:
		return nn.Sigmoid(t)
	case kSoftplus:
		return nn.Softplus(t)
	case kLog1p:
		return nn.Log1p(t)
	case kExpm1:
		return nn.Expm1(t)
	case kSin:
		return nn.Sin(t)
	case kCos:
		return nn.Cos(t)
	case kAbs: // |x| = ReLU(x) + ReLU(−x)
		p, err := nn.ReLU(t)
		if err != nil {
			return nil, err
		}
		m, err := nn.Scale(t, -1)
		if err != nil {
			return nil, err
		}
		if m, err = nn.ReLU(m); err != nil {
			return nil, err
		}
		return nn.AddN(p, m)
	}
	return nil, r.refuse(n, "a piecewise-constant function (its derivative is zero almost everywhere)", "compute it outside the graph, from the values")
}

// linalg rewrites the products of gorgonia.Mul, OuterProd and
// BatchedMatMul.
func (r *Rewriter) linalg(n *gorgonia.Node, k kind, kids []*gorgonia.Node) (*gorgonia.Node, error) {
	if len(kids) != 2 {
		return nil, r.refuse(n, fmt.Sprintf("%d inputs, want 2", len(kids)), "two inputs")
	}
	ta, err := r.operand(n, kids[0])
	if err != nil {
		return nil, err
	}
	tb, err := r.operand(n, kids[1])
	if err != nil {
		return nil, err
	}
	tA, _ := boolField(n.Op(), "transA")
	tB, _ := boolField(n.Op(), "transB")
	sa, sb := kids[0].Shape(), kids[1].Shape()
	var out *gorgonia.Node
	switch k {
	case kMatMul:
		out, err = nn.MatMul(ta, tb, tA, tB)
	case kMatVec: // matrix · vector (transA: vector · matrix, given as matrix, vector)
		var v *gorgonia.Node
		if v, err = nn.Reshape(tb, tensor.Shape{sb[0], 1}); err == nil {
			out, err = nn.MatMul(ta, v, tA, false)
		}
	case kVecDot:
		var u, v *gorgonia.Node
		if u, err = nn.Reshape(ta, tensor.Shape{1, sa[0]}); err == nil {
			if v, err = nn.Reshape(tb, tensor.Shape{sb[0], 1}); err == nil {
				out, err = nn.MatMul(u, v, false, false)
			}
		}
	case kOuter:
		var u, v *gorgonia.Node
		if u, err = nn.Reshape(ta, tensor.Shape{sa.TotalSize(), 1}); err == nil {
			if v, err = nn.Reshape(tb, tensor.Shape{1, sb.TotalSize()}); err == nil {
				out, err = nn.MatMul(u, v, false, false)
			}
		}
	case kBatchedMatMul:
		if sa.Dims() != 3 || sb.Dims() != 3 {
			return nil, r.refuse(n, fmt.Sprintf("operands of shapes %v and %v (nn.BatchMatMul takes [B, m, k] and [B, k, n])", sa, sb), "three-dimensional operands")
		}
		out, err = nn.BatchMatMul(ta, tb, tA, tB)
	}
	if err != nil {
		return nil, fmt.Errorf("stock: rewriting %s at node %q: %w", words[k], n.Name(), err)
	}
	return asShape(out, n.Shape())
}

// sum rewrites gorgonia.Sum over its axes (and so gorgonia.Mean, a sum
// divided by a constant count).
func (r *Rewriter) sum(n, a *gorgonia.Node) (*gorgonia.Node, error) {
	t, err := r.node(a)
	if err != nil {
		return nil, err
	}
	along, ok := intsField(n.Op(), "along")
	if !ok {
		return nil, r.refuse(n, "cannot read the summed axes", "nn.AxisSum")
	}
	axes := append([]int{}, along...)
	sort.Sort(sort.Reverse(sort.IntSlice(axes)))
	t, err = asShape(t, a.Shape())
	if err != nil {
		return nil, err
	}
	for i, ax := range axes {
		if ax < 0 || ax >= a.Shape().Dims() || (i > 0 && ax == axes[i-1]) {
			return nil, r.refuse(n, fmt.Sprintf("axes %v for shape %v", along, a.Shape()), "distinct axes of the input")
		}
		if t, err = nn.AxisSum(t, ax); err != nil {
			return nil, err
		}
	}
	return asShape(t, n.Shape())
}

// repeat rewrites the repeat op of gorgonia.Broadcast* (an axis of size 1
// repeated to the other operand's size) as nn.AxisBcast.
func (r *Rewriter) repeat(n, a *gorgonia.Node) (*gorgonia.Node, error) {
	along, ok := intField(n.Op(), "along")
	in, out := a.Shape(), n.Shape()
	if !ok || along < 0 || along >= in.Dims() || in.Dims() != out.Dims() || in[along] != 1 {
		return nil, r.refuse(n, fmt.Sprintf("a repeat from %v to %v that is not a broadcast of an axis of size 1", in, out), "gorgonia.Broadcast* on axes of size 1, or nn.AxisBcast")
	}
	t, err := r.node(a)
	if err != nil {
		return nil, err
	}
	return nn.AxisBcast(t, out.Clone(), along)
}

// softmax rewrites gorgonia.SoftMax and LogSoftMax (also the log-softmax
// Gorgonia's stabilisation makes of Log(SoftMax(x))).
func (r *Rewriter) softmax(n, a *gorgonia.Node) (*gorgonia.Node, error) {
	t, err := r.node(a)
	if err != nil {
		return nil, err
	}
	axis, ok := intField(n.Op(), "axis")
	isLog, ok2 := boolField(n.Op(), "isLog")
	if !ok || !ok2 {
		return nil, r.refuse(n, "cannot read its axis", "nn.Softmax or nn.LogSoftmax")
	}
	if isLog {
		return nn.LogSoftmax(t, axis)
	}
	return nn.Softmax(t, axis)
}
