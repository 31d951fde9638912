package stock

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func TestLayerOps(t *testing.T) {
	cases := []struct {
		name  string
		f     func(g *G.ExprGraph) (*G.Node, []*G.Node)
		stock int
	}{
		{"Conv2dPad1", func(g *G.ExprGraph) (*G.Node, []*G.Node) {
			x := input(g, "x", tensor.Shape{2, 2, 5, 5}, 0.1)
			w := param(g, "w", tensor.Shape{3, 2, 3, 3}, 0.2)
			return must(G.Conv2d(x, w, tensor.Shape{3, 3}, []int{1, 1}, []int{1, 1}, []int{1, 1})), []*G.Node{w}
		}, stockGrad},
		{"Conv2dStride2", func(g *G.ExprGraph) (*G.Node, []*G.Node) {
			x := input(g, "x", tensor.Shape{2, 2, 6, 6}, 0.1)
			w := param(g, "w", tensor.Shape{3, 2, 2, 2}, 0.2)
			return must(G.Conv2d(x, w, tensor.Shape{2, 2}, []int{0, 0}, []int{2, 2}, []int{1, 1})), []*G.Node{w}
		}, stockGrad},
		{"Conv2dOfConv", func(g *G.ExprGraph) (*G.Node, []*G.Node) {
			// The input of the second convolution depends on a parameter:
			// stock Gorgonia's second derivative crashes here.
			x := input(g, "x", tensor.Shape{2, 1, 5, 5}, 0.1)
			w0 := param(g, "w0", tensor.Shape{2, 1, 3, 3}, 0.2)
			w1 := param(g, "w1", tensor.Shape{2, 2, 3, 3}, 0.3)
			h := must(G.Tanh(must(G.Conv2d(x, w0, tensor.Shape{3, 3}, []int{1, 1}, []int{1, 1}, []int{1, 1}))))
			return must(G.Conv2d(h, w1, tensor.Shape{3, 3}, []int{1, 1}, []int{1, 1}, []int{1, 1})), []*G.Node{w0, w1}
		}, stockGrad},
		{"MaxPool2D", func(g *G.ExprGraph) (*G.Node, []*G.Node) {
			w := param(g, "w", tensor.Shape{2, 2, 4, 4}, 0.1)
			return must(G.MaxPool2D(must(G.Tanh(w)), tensor.Shape{2, 2}, []int{0, 0}, []int{2, 2})), []*G.Node{w}
		}, stockGrad},
		{"BatchNorm4D", func(g *G.ExprGraph) (*G.Node, []*G.Node) {
			w := param(g, "w", tensor.Shape{3, 2, 2, 2}, 0.1)
			scale := param(g, "scale", tensor.Shape{1, 2, 1, 1}, 0.2)
			bias := param(g, "bias", tensor.Shape{1, 2, 1, 1}, 0.3)
			y, _, _, _, err := G.BatchNorm(must(G.Tanh(w)), scale, bias, 0.9, 1e-5)
			if err != nil {
				panic(err)
			}
			return y, []*G.Node{w, scale, bias}
		}, stockLoss}, // stock BatchNorm's gradient ignores the batch statistics' dependence (docs/gorgonia.md)
		{"BatchNorm2D", func(g *G.ExprGraph) (*G.Node, []*G.Node) {
			w := param(g, "w", tensor.Shape{4, 3}, 0.1)
			y, _, _, _, err := G.BatchNorm(must(G.Tanh(w)), param(g, "scale", tensor.Shape{1, 3}, 0.2), param(g, "bias", tensor.Shape{1, 3}, 0.3), 0.9, 1e-5)
			if err != nil {
				panic(err)
			}
			return y, []*G.Node{w, g.ByName("scale")[0], g.ByName("bias")[0]}
		}, stockLoss},
		{"Slice", func(g *G.ExprGraph) (*G.Node, []*G.Node) {
			w := param(g, "w", tensor.Shape{4, 5, 3}, 0.1)
			return must(G.Slice(must(G.Tanh(w)), nil, G.S(1, 4))), []*G.Node{w}
		}, stockLoss}, // stock Slice's second derivative is wrong (docs/gorgonia.md)
		{"SliceIndex", func(g *G.ExprGraph) (*G.Node, []*G.Node) {
			w := param(g, "w", tensor.Shape{4, 5}, 0.1)
			return must(G.Slice(must(G.Tanh(w)), G.S(2))), []*G.Node{w}
		}, stockLoss},
		{"SliceTwoAxes", func(g *G.ExprGraph) (*G.Node, []*G.Node) {
			w := param(g, "w", tensor.Shape{4, 5}, 0.1)
			return must(G.Slice(must(G.Tanh(w)), G.S(1, 3), G.S(0, 2))), []*G.Node{w}
		}, stockLoss},
		{"Concat", func(g *G.ExprGraph) (*G.Node, []*G.Node) {
			a, b := param(g, "a", tensor.Shape{2, 3}, 0.1), param(g, "b", tensor.Shape{2, 2}, 0.2)
			x := input(g, "x", tensor.Shape{2, 1}, 0.3)
			return must(G.Concat(1, must(G.Tanh(a)), x, b)), []*G.Node{a, b}
		}, stockLoss},
		{"Dropout", func(g *G.ExprGraph) (*G.Node, []*G.Node) {
			w := param(g, "w", tensor.Shape{4, 5}, 0.1)
			return must(G.Dropout(must(G.Tanh(w)), 0.4)), []*G.Node{w}
		}, stockNone}, // stock dropout draws a new mask at every run
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := func(t *testing.T, g *G.ExprGraph) (*G.Node, []*G.Node) {
				out, ps := c.f(g)
				return readout(g, out), ps
			}
			checkModel(t, b, c.stock)
		})
	}
}

// stockMLP is an MLP as a Gorgonia user writes it: G.Mul, G.Add with a
// broadcast bias, G.Tanh, G.SoftMax and the log-likelihood against one-hot
// labels y, summed over classes and averaged over rows.
func stockMLP(t *testing.T, g *G.ExprGraph) (*G.Node, []*G.Node) {
	const n, in, hid, classes = 4, 5, 6, 3
	x := input(g, "x", tensor.Shape{n, in}, 0.1)
	y := oneHot(g, n, classes)
	w1, b1 := param(g, "w1", tensor.Shape{in, hid}, 0.2), param(g, "b1", tensor.Shape{hid}, 0.3)
	w2, b2 := param(g, "w2", tensor.Shape{hid, classes}, 0.4), param(g, "b2", tensor.Shape{classes}, 0.5)
	h := must(G.Tanh(must(G.BroadcastAdd(must(G.Mul(x, w1)), b1, nil, []byte{0}))))
	logits := must(G.BroadcastAdd(must(G.Mul(h, w2)), b2, nil, []byte{0}))
	prob := must(G.SoftMax(logits))
	ll := must(G.Sum(must(G.HadamardProd(must(G.Log(prob)), y)), 1))
	return must(G.Neg(must(G.Mean(ll)))), []*G.Node{w1, b1, w2, b2}
}

// oneHot adds labels r mod classes as a one-hot matrix.
func oneHot(g *G.ExprGraph, n, classes int) *G.Node {
	d := make([]float64, n*classes)
	for r := 0; r < n; r++ {
		d[r*classes+(r*2+1)%classes] = 1
	}
	return G.NewMatrix(g, G.Float64, G.WithShape(n, classes), G.WithName("y"), G.WithValue(tensor.New(tensor.WithShape(n, classes), tensor.WithBacking(d))))
}

// stockConvNet is Gorgonia's examples/convnet at a small size: conv 3×3
// pad 1, Rectify, MaxPool2D 2×2, Dropout, twice; Reshape, Dropout, Mul,
// Rectify, Dropout, Mul, SoftMax; the loss -mean(Σ_c y·log p).
func stockConvNet(t *testing.T, g *G.ExprGraph) (*G.Node, []*G.Node) {
	const n, classes = 2, 3
	x := input(g, "x", tensor.Shape{n, 1, 8, 8}, 0.1)
	y := oneHot(g, n, classes)
	w0 := param(g, "w0", tensor.Shape{2, 1, 3, 3}, 0.2)
	w1 := param(g, "w1", tensor.Shape{3, 2, 3, 3}, 0.3)
	w3 := param(g, "w3", tensor.Shape{3 * 2 * 2, 5}, 0.4)
	w4 := param(g, "w4", tensor.Shape{5, classes}, 0.5)
	layer := func(in, w *G.Node, p float64) *G.Node {
		c := must(G.Conv2d(in, w, tensor.Shape{3, 3}, []int{1, 1}, []int{1, 1}, []int{1, 1}))
		a := must(G.Rectify(c))
		m := must(G.MaxPool2D(a, tensor.Shape{2, 2}, []int{0, 0}, []int{2, 2}))
		return must(G.Dropout(m, p))
	}
	l1 := layer(layer(x, w0, 0.2), w1, 0.2)
	s := l1.Shape()
	r := must(G.Dropout(must(G.Reshape(l1, tensor.Shape{s[0], s[1] * s[2] * s[3]})), 0.2))
	a3 := must(G.Dropout(must(G.Rectify(must(G.Mul(r, w3)))), 0.55))
	out := must(G.SoftMax(must(G.Mul(a3, w4))))
	ll := must(G.Sum(must(G.HadamardProd(must(G.Log(out)), y)), 1))
	return must(G.Neg(must(G.Mean(ll)))), []*G.Node{w0, w1, w3, w4}
}

func TestStockMLP(t *testing.T) { checkModel(t, stockMLP, stockGrad) }

func TestStockConvNet(t *testing.T) { checkModel(t, stockConvNet, stockNone) }

// TestStockConvNetWithoutDropout compares the convnet with stock
// Gorgonia's loss and gradient (its dropout masks are random per run).
func TestStockConvNetWithoutDropout(t *testing.T) {
	noDrop := func(t *testing.T, g *G.ExprGraph) (*G.Node, []*G.Node) {
		const n, classes = 2, 3
		x := input(g, "x", tensor.Shape{n, 1, 6, 6}, 0.1)
		y := oneHot(g, n, classes)
		w0 := param(g, "w0", tensor.Shape{2, 1, 3, 3}, 0.2)
		w3 := param(g, "w3", tensor.Shape{2 * 3 * 3, classes}, 0.4)
		c := must(G.Rectify(must(G.Conv2d(x, w0, tensor.Shape{3, 3}, []int{1, 1}, []int{1, 1}, []int{1, 1}))))
		m := must(G.MaxPool2D(c, tensor.Shape{2, 2}, []int{0, 0}, []int{2, 2}))
		s := m.Shape()
		out := must(G.SoftMax(must(G.Mul(must(G.Reshape(m, tensor.Shape{s[0], s[1] * s[2] * s[3]})), w3))))
		ll := must(G.Sum(must(G.HadamardProd(must(G.Log(out)), y)), 1))
		return must(G.Neg(must(G.Mean(ll)))), []*G.Node{w0, w3}
	}
	checkModel(t, noDrop, stockGrad)
}

// TestDropoutMaskPerStep checks that one step's runs share the mask and
// that Next changes it.
func TestDropoutMaskPerStep(t *testing.T) {
	b := func(t *testing.T, g *G.ExprGraph) (*G.Node, []*G.Node) {
		w := param(g, "w", tensor.Shape{6, 5}, 0.1)
		return readout(g, must(G.Dropout(w, 0.5))), []*G.Node{w}
	}
	rw := rewrite(t, b)
	l1, g1 := rw.gradAt(t)
	l2, g2 := rw.gradAt(t)
	require.Equal(t, l1, l2)
	require.Equal(t, g1, g2)
	rw.dropout.Next()
	l3, _ := rw.gradAt(t)
	require.NotEqual(t, l1, l3, "a new step draws a new mask")
}

func TestRefusals(t *testing.T) {
	cases := []struct {
		name string
		f    func(g *G.ExprGraph, w *G.Node) *G.Node
		want []string
	}{
		{"Comparison", func(g *G.ExprGraph, w *G.Node) *G.Node {
			return must(G.Gt(w, input(g, "x", w.Shape(), 1), true))
		}, []string{"comparison x > y (gorgonia.Gt)", "nn.ReLU or nn.MaskMul"}},
		{"Max", func(_ *G.ExprGraph, w *G.Node) *G.Node { return must(G.Max(w, 1)) }, []string{"maximum over axes (gorgonia.Max)"}},
		{"Floor", func(_ *G.ExprGraph, w *G.Node) *G.Node { return must(G.Floor(w)) }, []string{"floor (gorgonia.Floor)", "piecewise-constant"}},
		{"Pow", func(g *G.ExprGraph, w *G.Node) *G.Node { return must(G.Pow(w, w)) }, []string{"element-wise power (gorgonia.Pow)", "nn.Exp"}},
		{"SliceStep", func(g *G.ExprGraph, w *G.Node) *G.Node { return must(G.Slice(w, G.S(0, 4, 2))) }, []string{"slice (gorgonia.Slice)", "step 2"}},
		{"MaxPoolPadded", func(g *G.ExprGraph, w *G.Node) *G.Node {
			w4 := must(G.Reshape(w, tensor.Shape{1, 1, 4, 4}))
			return must(G.MaxPool2D(w4, tensor.Shape{2, 2}, []int{1, 1}, []int{2, 2}))
		}, []string{"max pooling (gorgonia.MaxPool2D)", "padding (1, 1, 1, 1)"}},
		{"ConvDilated", func(g *G.ExprGraph, w *G.Node) *G.Node {
			x := input(g, "x", tensor.Shape{1, 1, 6, 6}, 0.1)
			k := must(G.Reshape(w, tensor.Shape{1, 1, 4, 4}))
			return must(G.Conv2d(x, k, tensor.Shape{4, 4}, []int{0, 0}, []int{1, 1}, []int{2, 2}))
		}, []string{"convolution (gorgonia.Conv2d): a convolution with kernel 4×4", "dilation (2, 2)", "nn.Conv2d takes"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := G.NewGraph()
			w := param(g, "w", tensor.Shape{4, 4}, 0.1)
			out := c.f(g, w)
			r, err := New(g, []*G.Node{w}, Options{})
			require.NoError(t, err)
			_, err = r.Rewrite(readout(g, out))
			require.Error(t, err)
			var re *RefusedError
			require.True(t, errors.As(err, &re), "%v", err)
			msg := err.Error()
			require.Contains(t, msg, "node \""+out.Name()+"\"", "the error names the user's node")
			require.Contains(t, msg, fmt.Sprintf("shape %v", out.Shape()))
			for _, s := range c.want {
				require.Contains(t, msg, s)
			}
			require.False(t, strings.Contains(msg, " false(") && !strings.Contains(msg, "node \""), "plain words")
		})
	}
}

// TestConvNetExampleLoss: the loss of Gorgonia's examples/convnet,
// Neg(Mean(Log(HadamardProd(SoftMax(z), y)))), is +Inf once Gorgonia's
// stabilisation has rewritten it; the refusal says so and names the node.
func TestConvNetExampleLoss(t *testing.T) {
	g := G.NewGraph()
	w := param(g, "w", tensor.Shape{3, 4}, 0.1)
	x := input(g, "x", tensor.Shape{2, 3}, 0.2)
	y := oneHot(g, 2, 4)
	out := must(G.SoftMax(must(G.Mul(x, w))))
	losses := must(G.Log(must(G.HadamardProd(out, y))))
	cost := must(G.Neg(must(G.Mean(losses))))
	r, err := New(g, []*G.Node{w}, Options{})
	require.NoError(t, err)
	_, err = r.Rewrite(cost)
	require.Error(t, err)
	require.Contains(t, err.Error(), "node \""+losses.Name()+"\"")
	require.Contains(t, err.Error(), "loss is +Inf")
	require.Contains(t, err.Error(), "GraphSpec.Logits")
}

// stockMLPAdd is an MLP with G.Mul, G.Add and G.Tanh only: the bias row
// b [1, h] is spread over the batch by a product with a column of ones
// (G.Add wants equal shapes), and the loss is the mean squared error.
func stockMLPAdd(t *testing.T, g *G.ExprGraph) (*G.Node, []*G.Node) {
	const n, in, hid, out = 4, 3, 5, 2
	x := input(g, "x", tensor.Shape{n, in}, 0.1)
	y := input(g, "y", tensor.Shape{n, out}, 0.7)
	ones := G.NewMatrix(g, G.Float64, G.WithShape(n, 1), G.WithName("ones"), G.WithValue(tensor.New(tensor.WithShape(n, 1), tensor.WithBacking([]float64{1, 1, 1, 1}))))
	w1, b1 := param(g, "w1", tensor.Shape{in, hid}, 0.2), param(g, "b1", tensor.Shape{1, hid}, 0.3)
	w2 := param(g, "w2", tensor.Shape{hid, out}, 0.4)
	h := must(G.Tanh(must(G.Add(must(G.Mul(x, w1)), must(G.Mul(ones, b1))))))
	d := must(G.Sub(must(G.Mul(h, w2)), y))
	return must(G.Mean(must(G.Square(d)))), []*G.Node{w1, b1, w2}
}

func TestStockMLPAdd(t *testing.T) { checkModel(t, stockMLPAdd, stockGrad) }
