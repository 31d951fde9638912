package hessian_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/curvopt/curvopt/hessian"
	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/optim/adahessian"
	"github.com/curvopt/curvopt/optim/adam"
	"github.com/curvopt/curvopt/optim/mfac"
	"github.com/curvopt/curvopt/optim/sgd"
	"github.com/curvopt/curvopt/optim/sophia"
	"github.com/curvopt/curvopt/train"
	"github.com/stretchr/testify/require"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func must(n *G.Node, err error) *G.Node {
	if err != nil {
		panic(err)
	}
	return n
}

// stockMLP is an MLP written with stock Gorgonia ops (G.Mul, G.BroadcastAdd,
// G.Tanh, G.SoftMax and the scalar log-likelihood), batch n, initialised
// from rng.
func stockMLP(n int, rng *rand.Rand) (*G.ExprGraph, hessian.GraphSpec) {
	const in, hid, classes = 6, 16, 3
	g := G.NewGraph()
	x := G.NewMatrix(g, tensor.Float64, G.WithShape(n, in), G.WithName("x"))
	y := G.NewMatrix(g, tensor.Float64, G.WithShape(n, classes), G.WithName("y"))
	p := func(name string, shape ...int) *G.Node {
		d := tensor.New(tensor.WithShape(shape...), tensor.Of(tensor.Float64))
		for i := range d.Float64s() {
			d.Float64s()[i] = rng.NormFloat64() / math.Sqrt(float64(shape[0]))
		}
		return G.NewTensor(g, tensor.Float64, len(shape), G.WithShape(shape...), G.WithName(name), G.WithValue(d))
	}
	w1, b1, w2, b2 := p("w1", in, hid), p("b1", hid), p("w2", hid, classes), p("b2", classes)
	h := must(G.Tanh(must(G.BroadcastAdd(must(G.Mul(x, w1)), b1, nil, []byte{0}))))
	z := must(G.BroadcastAdd(must(G.Mul(h, w2)), b2, nil, []byte{0}))
	cost := must(G.Neg(must(G.Mean(must(G.Sum(must(G.HadamardProd(must(G.Log(must(G.SoftMax(z)))), y)), 1))))))
	return g, hessian.GraphSpec{Input: x, Targets: y, Loss: cost,
		Params: []hessian.GraphParam{{Node: w1}, {Node: b1}, {Node: w2}, {Node: b2}}}
}

// teacher labels rows by the arg-max of a fixed linear map.
func teacher(rows int, rng *rand.Rand) (*tensor.Dense, []int) {
	x := tensor.New(tensor.WithShape(rows, 6), tensor.Of(tensor.Float64))
	labels := make([]int, rows)
	for r := 0; r < rows; r++ {
		best, bv := 0, math.Inf(-1)
		for c := 0; c < 3; c++ {
			s := 0.0
			for j := 0; j < 6; j++ {
				v := rng.NormFloat64()
				if c == 0 {
					x.Float64s()[r*6+j] = v
				}
				v = x.Float64s()[r*6+j]
				s += v * math.Sin(float64(1+c*6+j))
			}
			if s > bv {
				best, bv = c, s
			}
		}
		labels[r] = best
	}
	return x, labels
}

// TestStockMLPTrainsWithEveryOptimizer trains a stock Gorgonia MLP through
// the public API (hessian.NewGraph, train.Step) with each of the seven
// optimizers and checks that the evaluation loss falls.
func TestStockMLPTrainsWithEveryOptimizer(t *testing.T) {
	const batch, steps = 32, 80
	mk := func(name string) optim.Optimizer {
		var (
			o   optim.Optimizer
			err error
		)
		switch name {
		case "sgd":
			c := sgd.Default()
			o, err = sgd.New(c)
		case "adam":
			c := adam.Default()
			c.LR = 0.02
			o, err = adam.New(c)
		case "adamw":
			c := adam.DefaultW()
			c.LR = 0.02
			o, err = adam.New(c)
		case "sophiag":
			c := sophia.DefaultG()
			c.LR = 0.01
			o, err = sophia.New(c)
		case "sophiah":
			c := sophia.DefaultH()
			c.LR = 0.01
			o, err = sophia.New(c)
		case "adahessian":
			o, err = adahessian.New(adahessian.Default())
		case "mfac":
			c := mfac.Default()
			c.NGrads, c.LR, c.Damp = 16, 0.01, 1e-2
			o, err = mfac.New(c)
		}
		require.NoError(t, err, name)
		return o
	}
	xTest, yTest := teacher(100, rand.New(rand.NewPCG(9, 9)))
	for _, name := range []string{"sgd", "adam", "adamw", "sophiag", "sophiah", "adahessian", "mfac"} {
		t.Run(name, func(t *testing.T) {
			opt := mk(name)
			g, spec := stockMLP(batch, rand.New(rand.NewPCG(1, 2)))
			eng, err := hessian.NewGraph(g, spec, opt.Needs())
			require.NoError(t, err)
			defer eng.Close()
			before, _, err := eng.EvalLoss(xTest, yTest) // 100 rows on a graph of 32
			require.NoError(t, err)
			rng := rand.New(rand.NewPCG(3, 4))
			for s := 0; s < steps; s++ {
				x, labels := teacher(batch, rng)
				require.NoError(t, eng.SetBatch(x, labels))
				_, err := train.Step(eng, opt, 0)
				require.NoError(t, err, "step %d", s)
			}
			after, _, err := eng.EvalLoss(xTest, yTest)
			require.NoError(t, err)
			acc, err := eng.Accuracy(xTest, yTest)
			require.NoError(t, err)
			t.Logf("%s: evaluation loss %.4f → %.4f, accuracy %.2f", name, before, after, acc)
			require.Less(t, after, 0.9*before, "the loss falls")
		})
	}
}

// stockConvNet is Gorgonia's examples/convnet at a small size: Conv2d,
// Rectify, MaxPool2D, Dropout (twice), Reshape, Dropout, Mul, Rectify,
// Dropout, Mul, SoftMax and the log-likelihood, on 8×8 images.
func stockConvNet(n int, rng *rand.Rand) (*G.ExprGraph, hessian.GraphSpec) {
	const classes = 3
	g := G.NewGraph()
	x := G.NewTensor(g, tensor.Float64, 4, G.WithShape(n, 1, 8, 8), G.WithName("x"))
	y := G.NewMatrix(g, tensor.Float64, G.WithShape(n, classes), G.WithName("y"))
	p := func(name string, fanIn int, shape ...int) *G.Node {
		d := tensor.New(tensor.WithShape(shape...), tensor.Of(tensor.Float64))
		for i := range d.Float64s() {
			d.Float64s()[i] = rng.NormFloat64() * math.Sqrt(2/float64(fanIn))
		}
		return G.NewTensor(g, tensor.Float64, len(shape), G.WithShape(shape...), G.WithName(name), G.WithValue(d))
	}
	w0, w1 := p("w0", 9, 4, 1, 3, 3), p("w1", 36, 8, 4, 3, 3)
	w3, w4 := p("w3", 32, 8*2*2, 16), p("w4", 16, 16, classes)
	layer := func(in, w *G.Node, drop float64) *G.Node {
		c := must(G.Conv2d(in, w, tensor.Shape{3, 3}, []int{1, 1}, []int{1, 1}, []int{1, 1}))
		m := must(G.MaxPool2D(must(G.Rectify(c)), tensor.Shape{2, 2}, []int{0, 0}, []int{2, 2}))
		return must(G.Dropout(m, drop))
	}
	l1 := layer(layer(x, w0, 0.1), w1, 0.1)
	s := l1.Shape()
	r := must(G.Dropout(must(G.Reshape(l1, tensor.Shape{s[0], s[1] * s[2] * s[3]})), 0.1))
	a3 := must(G.Dropout(must(G.Rectify(must(G.Mul(r, w3)))), 0.2))
	out := must(G.SoftMax(must(G.Mul(a3, w4))))
	cost := must(G.Neg(must(G.Mean(must(G.Sum(must(G.HadamardProd(must(G.Log(out)), y)), 1))))))
	return g, hessian.GraphSpec{Input: x, Targets: y, Loss: cost, DropoutSeed: 5,
		Params: []hessian.GraphParam{{Node: w0}, {Node: w1}, {Node: w3}, {Node: w4}}}
}

// blobs draws 8×8 images with a bright 3×3 blob whose horizontal third is
// the label.
func blobs(rows int, rng *rand.Rand) (*tensor.Dense, []int) {
	x := tensor.New(tensor.WithShape(rows, 1, 8, 8), tensor.Of(tensor.Float64))
	labels := make([]int, rows)
	d := x.Float64s()
	for r := 0; r < rows; r++ {
		l := rng.IntN(3)
		labels[r] = l
		col, row := []int{0, 3, 5}[l], rng.IntN(6)
		for i := 0; i < 64; i++ {
			d[r*64+i] = 0.3 * rng.NormFloat64()
		}
		for i := 0; i < 3; i++ {
			for j := 0; j < 3; j++ {
				d[r*64+(row+i)*8+col+j] += 1.5
			}
		}
	}
	return x, labels
}

// TestStockConvNetTrainsWithEveryOptimizer trains the stock convnet with
// each optimizer and checks that the evaluation loss falls.
func TestStockConvNetTrainsWithEveryOptimizer(t *testing.T) {
	const batch, steps = 16, 60
	cfgs := map[string]func() (optim.Optimizer, error){
		"sgd":  func() (optim.Optimizer, error) { c := sgd.Default(); c.LR = 0.05; return sgd.New(c) },
		"adam": func() (optim.Optimizer, error) { c := adam.Default(); c.LR = 0.01; return adam.New(c) },
		"adamw": func() (optim.Optimizer, error) {
			c := adam.DefaultW()
			c.LR = 0.01
			return adam.New(c)
		},
		"sophiag": func() (optim.Optimizer, error) { c := sophia.DefaultG(); c.LR = 0.01; return sophia.New(c) },
		"sophiah": func() (optim.Optimizer, error) { c := sophia.DefaultH(); c.LR = 0.01; return sophia.New(c) },
		"adahessian": func() (optim.Optimizer, error) {
			c := adahessian.Default()
			c.LR = 0.05
			return adahessian.New(c)
		},
		"mfac": func() (optim.Optimizer, error) {
			c := mfac.Default()
			c.NGrads, c.LR, c.Damp = 16, 0.01, 1e-2
			return mfac.New(c)
		},
	}
	xTest, yTest := blobs(50, rand.New(rand.NewPCG(9, 9)))
	for _, name := range []string{"sgd", "adam", "adamw", "sophiag", "sophiah", "adahessian", "mfac"} {
		t.Run(name, func(t *testing.T) {
			opt, err := cfgs[name]()
			require.NoError(t, err)
			g, spec := stockConvNet(batch, rand.New(rand.NewPCG(1, 2)))
			eng, err := hessian.NewGraph(g, spec, opt.Needs())
			require.NoError(t, err)
			defer eng.Close()
			before, _, err := eng.EvalLoss(xTest, yTest) // 50 rows on a graph of 16
			require.NoError(t, err)
			rng := rand.New(rand.NewPCG(3, 4))
			for s := 0; s < steps; s++ {
				x, labels := blobs(batch, rng)
				require.NoError(t, eng.SetBatch(x, labels))
				_, err := train.Step(eng, opt, 0)
				require.NoError(t, err, "step %d", s)
			}
			after, _, err := eng.EvalLoss(xTest, yTest)
			require.NoError(t, err)
			acc, err := eng.Accuracy(xTest, yTest)
			require.NoError(t, err)
			t.Logf("%s: evaluation loss %.4f → %.4f, accuracy %.2f", name, before, after, acc)
			require.Less(t, after, 0.9*before, "the loss falls")
		})
	}
}
