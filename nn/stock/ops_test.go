package stock

import (
	"testing"

	"github.com/stretchr/testify/require"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// must panics on err: test models only.
func must(n *G.Node, err error) *G.Node {
	if err != nil {
		panic(err)
	}
	return n
}

// readout is the cost Σ c ⊙ out² + Σ d ⊙ out (c, d fixed): H·v is not
// zero for linear ops and sees the curvature of non-linear ones, and the
// linear term makes the cost change with out's sign.
func readout(g *G.ExprGraph, out *G.Node) *G.Node {
	if out.Dims() == 0 {
		return must(G.Add(must(G.Square(out)), must(G.HadamardProd(out, G.NewConstant(0.7)))))
	}
	c := G.NewTensor(g, G.Float64, out.Dims(), G.WithShape(out.Shape().Clone()...), G.WithName("c"),
		G.WithValue(sinTensor(out.Shape(), 1.7, 0.3, 1)))
	d := G.NewTensor(g, G.Float64, out.Dims(), G.WithShape(out.Shape().Clone()...), G.WithName("d"),
		G.WithValue(sinTensor(out.Shape(), 0.9, 1.3, 1)))
	return must(G.Add(must(G.Sum(must(G.HadamardProd(must(G.Square(out)), c)))), must(G.Sum(must(G.HadamardProd(out, d))))))
}

// input adds a fixed input tensor.
func input(g *G.ExprGraph, name string, shape tensor.Shape, seed float64) *G.Node {
	return G.NewTensor(g, G.Float64, shape.Dims(), G.WithShape(shape...), G.WithName(name), G.WithValue(sinTensor(shape, 0.53, seed, 1)))
}

// unaryCase is a stock function of one parameter tensor w [3, 4].
type unaryCase struct {
	name  string
	f     func(g *G.ExprGraph, w *G.Node) *G.Node
	stock int // comparison level with stock Gorgonia (stockNone, stockLoss, stockGrad)
}

func one() *G.Node { return G.NewConstant(1.0) }

func TestElementwiseOps(t *testing.T) {
	pos := func(w *G.Node) *G.Node { return must(G.Add(must(G.Square(w)), one())) } // w² + 1 > 0
	cases := []unaryCase{
		{"Exp", func(_ *G.ExprGraph, w *G.Node) *G.Node { return must(G.Exp(w)) }, stockGrad},
		{"Log", func(_ *G.ExprGraph, w *G.Node) *G.Node { return must(G.Log(pos(w))) }, stockGrad},
		{"Log2", func(_ *G.ExprGraph, w *G.Node) *G.Node { return must(G.Log2(pos(w))) }, stockLoss}, // stock gradient is wrong (relative error 1.08; ours matches finite differences)
		{"Sqrt", func(_ *G.ExprGraph, w *G.Node) *G.Node { return must(G.Sqrt(pos(w))) }, stockGrad},
		{"Square", func(_ *G.ExprGraph, w *G.Node) *G.Node { return must(G.Square(w)) }, stockGrad},
		{"Cube", func(_ *G.ExprGraph, w *G.Node) *G.Node { return must(G.Cube(w)) }, stockGrad},
		{"Inverse", func(_ *G.ExprGraph, w *G.Node) *G.Node { return must(G.Inverse(pos(w))) }, stockGrad},
		{"InverseSqrt", func(_ *G.ExprGraph, w *G.Node) *G.Node { return must(G.InverseSqrt(pos(w))) }, stockLoss}, // stock gradient is wrong (docs/gorgonia.md)
		{"Neg", func(_ *G.ExprGraph, w *G.Node) *G.Node { return must(G.Neg(w)) }, stockGrad},
		{"Tanh", func(_ *G.ExprGraph, w *G.Node) *G.Node { return must(G.Tanh(w)) }, stockGrad},
		{"Sigmoid", func(_ *G.ExprGraph, w *G.Node) *G.Node { return must(G.Sigmoid(w)) }, stockGrad},
		{"Softplus", func(_ *G.ExprGraph, w *G.Node) *G.Node { return must(G.Softplus(w)) }, stockGrad},
		{"Log1p", func(_ *G.ExprGraph, w *G.Node) *G.Node { return must(G.Log1p(must(G.Square(w)))) }, stockGrad},
		{"Expm1", func(_ *G.ExprGraph, w *G.Node) *G.Node { return must(G.Expm1(w)) }, stockGrad},
		{"Sin", func(_ *G.ExprGraph, w *G.Node) *G.Node { return must(G.Sin(w)) }, stockGrad},
		{"Cos", func(_ *G.ExprGraph, w *G.Node) *G.Node { return must(G.Cos(w)) }, stockGrad},
		{"Abs", func(_ *G.ExprGraph, w *G.Node) *G.Node { return must(G.Abs(w)) }, stockGrad},
		{"Rectify", func(_ *G.ExprGraph, w *G.Node) *G.Node { return must(G.Rectify(w)) }, stockGrad},
		{"LeakyRelu", func(_ *G.ExprGraph, w *G.Node) *G.Node { return must(G.LeakyRelu(w, 0.1)) }, stockGrad},
		{"Add", func(g *G.ExprGraph, w *G.Node) *G.Node { return must(G.Add(w, input(g, "x", w.Shape(), 1))) }, stockGrad},
		{"Sub", func(g *G.ExprGraph, w *G.Node) *G.Node { return must(G.Sub(input(g, "x", w.Shape(), 1), w)) }, stockGrad},
		{"HadamardProd", func(g *G.ExprGraph, w *G.Node) *G.Node { return must(G.HadamardProd(w, must(G.Tanh(w)))) }, stockGrad},
		{"HadamardDiv", func(g *G.ExprGraph, w *G.Node) *G.Node { return must(G.HadamardDiv(w, pos(w))) }, stockGrad},
		{"PowConst", func(_ *G.ExprGraph, w *G.Node) *G.Node { return must(G.Pow(w, G.NewConstant(3.0))) }, stockGrad},
		{"ScalarMul", func(_ *G.ExprGraph, w *G.Node) *G.Node { return must(G.HadamardProd(G.NewConstant(2.5), w)) }, stockGrad},
		{"ScalarDiv", func(_ *G.ExprGraph, w *G.Node) *G.Node { return must(G.HadamardDiv(w, G.NewConstant(4.0))) }, stockGrad},
		{"ScalarSubLeft", func(_ *G.ExprGraph, w *G.Node) *G.Node { return must(G.Sub(G.NewConstant(2.0), w)) }, stockGrad},
		{"ScalarSubRight", func(_ *G.ExprGraph, w *G.Node) *G.Node { return must(G.Sub(w, G.NewConstant(2.0))) }, stockGrad},
		{"ScalarAddRight", func(_ *G.ExprGraph, w *G.Node) *G.Node { return must(G.Add(w, G.NewConstant(1.5))) }, stockGrad},
		{"ScalarDivLeft", func(_ *G.ExprGraph, w *G.Node) *G.Node { return must(G.HadamardDiv(G.NewConstant(2.0), pos(w))) }, stockGrad},
		{"BroadcastAddRow", func(g *G.ExprGraph, w *G.Node) *G.Node {
			b := param(g, "b", tensor.Shape{4}, 0.2)
			return must(G.BroadcastAdd(w, b, nil, []byte{0}))
		}, stockGrad},
		{"BroadcastProdCol", func(g *G.ExprGraph, w *G.Node) *G.Node {
			b := param(g, "b", tensor.Shape{3, 1}, 0.2)
			return must(G.BroadcastHadamardProd(w, b, nil, []byte{1}))
		}, stockGrad},
		{"ScalarFromParam", func(g *G.ExprGraph, w *G.Node) *G.Node {
			return must(G.HadamardProd(w, must(G.Tanh(must(G.Sum(must(G.Sigmoid(w))))))))
		}, stockGrad},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := func(t *testing.T, g *G.ExprGraph) (*G.Node, []*G.Node) {
				w := param(g, "w", tensor.Shape{3, 4}, 0.1)
				out := c.f(g, w)
				var ps []*G.Node
				for _, n := range []string{"w", "b"} {
					if p := g.ByName(n); len(p) == 1 {
						ps = append(ps, p[0])
					}
				}
				return readout(g, out), ps
			}
			checkModel(t, b, c.stock)
		})
	}
}

func TestLinearAndShapeOps(t *testing.T) {
	cases := []struct {
		name  string
		f     func(g *G.ExprGraph) (*G.Node, []*G.Node)
		stock int
	}{
		{"MatMul", func(g *G.ExprGraph) (*G.Node, []*G.Node) {
			a, b := param(g, "a", tensor.Shape{3, 4}, 0.1), param(g, "b", tensor.Shape{4, 2}, 0.2)
			return must(G.Mul(a, b)), []*G.Node{a, b}
		}, stockGrad},
		{"MatVec", func(g *G.ExprGraph) (*G.Node, []*G.Node) {
			a, v := param(g, "a", tensor.Shape{3, 4}, 0.1), param(g, "v", tensor.Shape{4}, 0.2)
			return must(G.Mul(a, v)), []*G.Node{a, v}
		}, stockGrad},
		{"VecMat", func(g *G.ExprGraph) (*G.Node, []*G.Node) {
			a, v := param(g, "a", tensor.Shape{3, 4}, 0.1), param(g, "v", tensor.Shape{3}, 0.2)
			return must(G.Mul(v, a)), []*G.Node{a, v}
		}, stockGrad},
		{"VecDot", func(g *G.ExprGraph) (*G.Node, []*G.Node) {
			u, v := param(g, "u", tensor.Shape{4}, 0.1), param(g, "v", tensor.Shape{4}, 0.2)
			return must(G.Mul(u, v)), []*G.Node{u, v}
		}, stockGrad},
		{"Outer", func(g *G.ExprGraph) (*G.Node, []*G.Node) {
			u, v := param(g, "u", tensor.Shape{3}, 0.1), param(g, "v", tensor.Shape{4}, 0.2)
			return must(G.OuterProd(u, v)), []*G.Node{u, v}
		}, stockLoss}, // gorgonia.Grad of OuterProd fails: "Shape mismatch. Expected 3. Got (4)"
		{"BatchedMatMul", func(g *G.ExprGraph) (*G.Node, []*G.Node) {
			a, b := param(g, "a", tensor.Shape{2, 3, 4}, 0.1), param(g, "b", tensor.Shape{2, 4, 2}, 0.2)
			return must(G.BatchedMatMul(a, b)), []*G.Node{a, b}
		}, stockGrad},
		{"BatchedMatMulTransA", func(g *G.ExprGraph) (*G.Node, []*G.Node) {
			a, b := param(g, "a", tensor.Shape{2, 4, 3}, 0.1), param(g, "b", tensor.Shape{2, 4, 2}, 0.2)
			return must(G.BatchedMatMul(a, b, true, false)), []*G.Node{a, b}
		}, stockLoss},
		{"SumAxis", func(g *G.ExprGraph) (*G.Node, []*G.Node) {
			a := param(g, "a", tensor.Shape{2, 3, 4}, 0.1)
			return must(G.Sum(must(G.Tanh(a)), 1)), []*G.Node{a}
		}, stockGrad},
		{"SumAxes", func(g *G.ExprGraph) (*G.Node, []*G.Node) {
			a := param(g, "a", tensor.Shape{2, 3, 4}, 0.1)
			return must(G.Sum(must(G.Tanh(a)), 0, 2)), []*G.Node{a}
		}, stockGrad},
		{"MeanAll", func(g *G.ExprGraph) (*G.Node, []*G.Node) {
			a := param(g, "a", tensor.Shape{2, 3}, 0.1)
			return must(G.Mean(must(G.Tanh(a)))), []*G.Node{a}
		}, stockGrad},
		{"MeanAxis", func(g *G.ExprGraph) (*G.Node, []*G.Node) {
			a := param(g, "a", tensor.Shape{2, 3}, 0.1)
			return must(G.Mean(must(G.Tanh(a)), 1)), []*G.Node{a}
		}, stockGrad},
		{"Reshape", func(g *G.ExprGraph) (*G.Node, []*G.Node) {
			a := param(g, "a", tensor.Shape{2, 6}, 0.1)
			return must(G.Reshape(must(G.Tanh(a)), tensor.Shape{3, 4})), []*G.Node{a}
		}, stockLoss}, // stock gradient is wrong here (relative error 1.18; ours matches finite differences)
		{"Transpose", func(g *G.ExprGraph) (*G.Node, []*G.Node) {
			a, b := param(g, "a", tensor.Shape{2, 3, 4}, 0.1), param(g, "b", tensor.Shape{4, 3, 2}, 0.2)
			return must(G.HadamardProd(must(G.Transpose(a, 2, 1, 0)), b)), []*G.Node{a, b}
		}, stockGrad},
		{"SoftMax", func(g *G.ExprGraph) (*G.Node, []*G.Node) {
			a := param(g, "a", tensor.Shape{3, 4}, 0.1)
			return must(G.SoftMax(a)), []*G.Node{a}
		}, stockGrad},
		{"LogSoftMax", func(g *G.ExprGraph) (*G.Node, []*G.Node) {
			a := param(g, "a", tensor.Shape{3, 4}, 0.1)
			return must(G.LogSoftMax(a)), []*G.Node{a}
		}, stockGrad},
		{"SoftMaxAxis0", func(g *G.ExprGraph) (*G.Node, []*G.Node) {
			a := param(g, "a", tensor.Shape{3, 4}, 0.1)
			return must(G.SoftMax(a, 0)), []*G.Node{a}
		}, stockGrad},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := func(t *testing.T, g *G.ExprGraph) (*G.Node, []*G.Node) {
				out, ps := c.f(g)
				return readout(g, out), ps
			}
			// Stock Gorgonia's softmax gradient is right; its other
			// first derivatives too (docs/gorgonia.md).
			checkModel(t, b, c.stock)
		})
	}
}

func TestRewriteKeepsNonLiveNodes(t *testing.T) {
	g := G.NewGraph()
	w := param(g, "w", tensor.Shape{2, 2}, 0.1)
	x := input(g, "x", tensor.Shape{2, 2}, 0.2)
	lx := must(G.Exp(x)) // depends on no parameter
	out := must(G.HadamardProd(w, lx))
	r, err := New(g, []*G.Node{w}, Options{})
	require.NoError(t, err)
	m, err := r.Rewrite(out)
	require.NoError(t, err)
	require.NotEqual(t, out, m)
	rl, err := r.Rewrite(lx)
	require.NoError(t, err)
	require.Equal(t, lx, rl, "a node no derivative flows through is kept")
	rw, err := r.Rewrite(w)
	require.NoError(t, err)
	require.Equal(t, w, rw, "a parameter is kept")
}
