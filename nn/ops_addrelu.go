package nn

import "gorgonia.org/gorgonia"

// addReLUOp is y = ReLU(a + b) in one pass (a residual block's sum and
// activation). Its derivative for both inputs is MaskMul(y, G): y > 0
// exactly where a + b > 0, and the ReLU's mask has no curvature.
type addReLUOp struct{ base }

// AddReLU returns max(a + b, 0) (MaskMul's convention: a positive NaN
// passes).
func AddReLU(a, b *gorgonia.Node) (*gorgonia.Node, error) {
	if err := sameShapes("AddReLU", a, b); err != nil {
		return nil, err
	}
	if err := checkFloat(dtypeOf(a)); err != nil {
		return nil, err
	}
	op := &addReLUOp{base: newBase("AddReLU", dtypeOf(a), shapeOf(a), shapeOf(a), shapeOf(a))}
	return apply(op, a, b)
}

func (op *addReLUOp) twiceDifferentiable() {}

func (op *addReLUOp) Do(vs ...gorgonia.Value) (gorgonia.Value, error) {
	return run(&op.base, vs, addReLU[float64], addReLU[float32])
}

func addReLU[T Float](in [][]T, out []T) {
	a, b := in[0], in[1]
	forEach(len(out), func(lo, hi int) {
		for c0 := lo; c0 < hi; c0 += 4096 { // a chunk stays in L1 between the two kernels
			c1 := min(c0+4096, hi)
			vecAdd(a[c0:c1], b[c0:c1], out[c0:c1])
			reluInPlace(out[c0:c1])
		}
	})
}

func (op *addReLUOp) DiffWRT(int) []bool { return []bool{true, true} }

func (op *addReLUOp) SymDiff(_ gorgonia.Nodes, out, g *gorgonia.Node) (gorgonia.Nodes, error) {
	d, err := MaskMul(out, g)
	if err != nil {
		return nil, err
	}
	return gorgonia.Nodes{d, d}, nil
}
