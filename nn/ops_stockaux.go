package nn

// Ops and queries added for nn/stock, the translator of stock Gorgonia
// graphs: element-wise functions stock Gorgonia has and nn lacked
// (Sqrt, Reciprocal, LogSoftmax), and the questions the translator asks
// about an op (is it one of this package's, does it output probabilities).

import (
	"fmt"
	"math"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

var (
	// 1/x: −1/x², 2/x³, −6/x⁴.
	recipFamily = &unaryFamily{name: "Reciprocal", deriv: []func(float64) float64{
		func(x float64) float64 { return 1 / x },
		func(x float64) float64 { return -1 / (x * x) },
		func(x float64) float64 { return 2 / (x * x * x) },
		func(x float64) float64 { return -6 / (x * x * x * x) },
	}}
	// √x: 1/(2√x), −1/(4x^{3/2}), 3/(8x^{5/2}).
	sqrtFamily = &unaryFamily{name: "Sqrt", deriv: []func(float64) float64{
		math.Sqrt,
		func(x float64) float64 { return 0.5 / math.Sqrt(x) },
		func(x float64) float64 { return -0.25 / (x * math.Sqrt(x)) },
		func(x float64) float64 { return 0.375 / (x * x * math.Sqrt(x)) },
	}}
)

// Reciprocal returns 1/x elementwise (±Inf at 0).
func Reciprocal(x *gorgonia.Node) (*gorgonia.Node, error) { return applyUnary(recipFamily, 0, x) }

// Sqrt returns √x elementwise (NaN where x < 0; its derivatives are
// infinite at 0).
func Sqrt(x *gorgonia.Node) (*gorgonia.Node, error) { return applyUnary(sqrtFamily, 0, x) }

// logSoftmaxOp computes y = x − log Σ exp(x) along one axis (max-shifted,
// in float64, so that it neither overflows nor underflows where
// Log(Softmax(x)) would). Its derivative is G − softmax(x)·ΣG, built from
// Softmax, Mul, AxisSum, AxisBcast and AddN, which are twice
// differentiable.
type logSoftmaxOp struct {
	base
	axisGeom
}

// LogSoftmax returns log(softmax(x)) along axis (negative counts from the
// end), as torch.log_softmax(x, dim=axis).
func LogSoftmax(x *gorgonia.Node, axis int) (*gorgonia.Node, error) {
	s := shapeOf(x)
	g, err := axisOf(s, axis)
	if err != nil {
		return nil, err
	}
	op := &logSoftmaxOp{base: newBase(fmt.Sprintf("LogSoftmax(%d)", g.axis), dtypeOf(x), s, s), axisGeom: g}
	return apply(op, x)
}

func (op *logSoftmaxOp) twiceDifferentiable() {}

func (op *logSoftmaxOp) Do(vs ...gorgonia.Value) (gorgonia.Value, error) {
	return run(&op.base, vs,
		func(in [][]float64, out []float64) { logSoftmaxAxis(in[0], out, op.outer, op.n, op.inner) },
		func(in [][]float32, out []float32) { logSoftmaxAxis(in[0], out, op.outer, op.n, op.inner) })
}

func logSoftmaxAxis[T Float](x, y []T, outer, n, inner int) {
	for r := 0; r < outer*inner; r++ {
		o, i := r/inner, r%inner
		b := o*n*inner + i
		m := math.Inf(-1)
		for k := 0; k < n; k++ {
			m = math.Max(m, float64(x[b+k*inner]))
		}
		var s float64
		for k := 0; k < n; k++ {
			s += math.Exp(float64(x[b+k*inner]) - m)
		}
		lse := m + math.Log(s)
		for k := 0; k < n; k++ {
			y[b+k*inner] = T(float64(x[b+k*inner]) - lse)
		}
	}
}

func (op *logSoftmaxOp) DiffWRT(int) []bool { return []bool{true} }

func (op *logSoftmaxOp) SymDiff(in gorgonia.Nodes, _, g *gorgonia.Node) (gorgonia.Nodes, error) {
	p, err := Softmax(in[0], op.axis)
	if err != nil {
		return nil, err
	}
	s, err := AxisSum(g, op.axis)
	if err != nil {
		return nil, err
	}
	sb, err := AxisBcast(s, op.shape, op.axis)
	if err != nil {
		return nil, err
	}
	psb, err := Mul(p, sb)
	if err != nil {
		return nil, err
	}
	d, err := Sub(g, psb)
	if err != nil {
		return nil, err
	}
	return gorgonia.Nodes{d}, nil
}

// IsOwnOp reports whether op is one of this package's ops (whose
// derivatives nn.Backprop builds itself).
func IsOwnOp(op gorgonia.Op) bool {
	_, ok := op.(interface {
		checkInputs([]gorgonia.Value) ([]*tensor.Dense, error)
	})
	return ok
}

// OutputsProbabilities returns the name of op ("Softmax", "LogSoftmax" or
// "Sigmoid") when op is one of this package's ops whose output is a
// probability (or its log) rather than a logit, and "" otherwise.
func OutputsProbabilities(op gorgonia.Op) string {
	switch o := op.(type) {
	case *softmaxOp:
		return "Softmax"
	case *logSoftmaxOp:
		return "LogSoftmax"
	case *unaryOp:
		if o.fam == sigmoidFamily && o.j == 0 {
			return "Sigmoid"
		}
	}
	return ""
}

// softplus is log(1 + eˣ) without overflow.
func softplus(x float64) float64 {
	if x > 0 {
		return x + math.Log1p(math.Exp(-x))
	}
	return math.Log1p(math.Exp(x))
}

var (
	// softplus′ = σ, softplus″ = σ(1−σ), softplus‴ = σ(1−σ)(1−2σ).
	softplusFamily = &unaryFamily{name: "Softplus", deriv: []func(float64) float64{
		softplus,
		sigmoid,
		func(x float64) float64 { s := sigmoid(x); return s * (1 - s) },
		func(x float64) float64 { s := sigmoid(x); return s * (1 - s) * (1 - 2*s) },
	}}
	// log(1+x): 1/(1+x), −1/(1+x)², 2/(1+x)³.
	log1pFamily = &unaryFamily{name: "Log1p", deriv: []func(float64) float64{
		math.Log1p,
		func(x float64) float64 { return 1 / (1 + x) },
		func(x float64) float64 { return -1 / ((1 + x) * (1 + x)) },
		func(x float64) float64 { return 2 / ((1 + x) * (1 + x) * (1 + x)) },
	}}
	expm1Family = &unaryFamily{name: "Expm1", deriv: []func(float64) float64{math.Expm1, math.Exp, math.Exp, math.Exp}}
	sinFamily   = &unaryFamily{name: "Sin", deriv: []func(float64) float64{
		math.Sin, math.Cos,
		func(x float64) float64 { return -math.Sin(x) },
		func(x float64) float64 { return -math.Cos(x) },
	}}
	cosFamily = &unaryFamily{name: "Cos", deriv: []func(float64) float64{
		math.Cos,
		func(x float64) float64 { return -math.Sin(x) },
		func(x float64) float64 { return -math.Cos(x) },
		math.Sin,
	}}
)

// Softplus returns log(1 + eˣ) elementwise (computed without overflow).
func Softplus(x *gorgonia.Node) (*gorgonia.Node, error) { return applyUnary(softplusFamily, 0, x) }

// Log1p returns log(1 + x) elementwise (accurate near 0).
func Log1p(x *gorgonia.Node) (*gorgonia.Node, error) { return applyUnary(log1pFamily, 0, x) }

// Expm1 returns eˣ − 1 elementwise (accurate near 0).
func Expm1(x *gorgonia.Node) (*gorgonia.Node, error) { return applyUnary(expm1Family, 0, x) }

// Sin returns sin x elementwise.
func Sin(x *gorgonia.Node) (*gorgonia.Node, error) { return applyUnary(sinFamily, 0, x) }

// Cos returns cos x elementwise.
func Cos(x *gorgonia.Node) (*gorgonia.Node, error) { return applyUnary(cosFamily, 0, x) }

// stockAuxFamilies lists this file's families for tests.
var stockAuxFamilies = []*unaryFamily{recipFamily, sqrtFamily, softplusFamily, log1pFamily, expm1Family, sinFamily, cosFamily}

// RowLocal reports, for one of this package's forward ops, which inputs
// may vary along the batch axis (axis 0) such that row i of the output
// depends only on row i of those inputs; the other inputs must not depend
// on the batch. ok is false for an op that mixes rows (a reduction over the
// batch, a cross-entropy, a batch statistic) or that it does not know.
func RowLocal(op gorgonia.Op) (rowInputs []bool, ok bool) {
	switch o := op.(type) {
	case *unaryOp, *tanhOp, *mulOp, *maskMulOp, *scaleOp, *addNOp, *dropoutOp, *chanMulOp, *chanBcastOp:
		rows := make([]bool, len(o.(interface{ inputShapes() []tensor.Shape }).inputShapes()))
		for i := range rows {
			rows[i] = true
		}
		return rows, true
	case *matMulOp:
		return []bool{true, false}, !o.tA
	case *biasAddOp:
		return []bool{true, false}, true
	case *convOp:
		if o.kind != convKindFwd {
			return nil, false
		}
		if o.bias {
			return []bool{true, false, false}, true
		}
		return []bool{true, false}, true
	case *poolOp:
		return []bool{true}, o.kind == poolKindFwd
	case *rangeOp:
		return []bool{true}, o.axis != 0
	case *softmaxOp:
		return []bool{true}, o.axis != 0
	case *logSoftmaxOp:
		return []bool{true}, o.axis != 0
	case *reshapeOp:
		return []bool{true}, o.shape.Dims() > 0 && o.ins[0].Dims() > 0 && o.shape[0] == o.ins[0][0]
	}
	return nil, false
}

// inputShapes returns the op's input shapes.
func (b *base) inputShapes() []tensor.Shape { return b.ins }
