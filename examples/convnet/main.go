// Command convnet is Gorgonia's examples/convnet (gorgonia.org/gorgonia
// v0.9.18) — the same model, loss and training loop, written with stock
// Gorgonia ops — trained on Fashion-MNIST with any curvopt optimizer. Only
// the lines that make the solver differ from Gorgonia's (newSolver below);
// the rest is Gorgonia's program, less its progress bar, profiling and
// signal handling, plus a test-set evaluation at the end.
//
//	go run ./examples/convnet -optimizer adahessian -lr 0.01 -steps 300
//	go run ./examples/convnet -optimizer sophiah -steps 300
//	go run ./examples/convnet -optimizer rmsprop   # Gorgonia's own solver, as in its example
//
// The loss is the one Gorgonia's example marks as correct,
// Mean(HadamardProd(Neg(Log(SoftMax(z))), y)). The one its example runs,
// Neg(Mean(Log(HadamardProd(SoftMax(z), y)))), is +Inf whenever a row of y
// has a zero: Gorgonia's stabilisation rewrites Log(HadamardProd(SoftMax(z),
// y)) into LogSoftMax(z) + Log(y), so Log(0) enters the mean and the
// gradient no longer depends on the labels (examples/convnet's own comment
// says that line tests the stabilisation). -loss gorgonia selects it anyway.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"time"

	"github.com/curvopt/curvopt/data"
	"github.com/curvopt/curvopt/gsolver"
	"github.com/curvopt/curvopt/train"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

type config struct {
	optimizer string
	lr        float64 // 0: the optimizer's default
	ngrads    int     // M-FAC's window rows (0: its default, 1024)
	steps     int
	batch     int
	eval      int // test images evaluated at the end (0: none)
	seed      uint64
	dtype     tensor.Dtype
	data      string // data.Load spec
	loss      string // "nll" or "gorgonia"
	every     int    // log the cost every so many steps (0: never)
	out       io.Writer
}

type result struct {
	costs    []float64 // the cost of every step, before its update
	accuracy float64   // on the first eval test images (NaN without)
	elapsed  time.Duration
}

func main() {
	var c config
	var dt string
	flag.StringVar(&c.optimizer, "optimizer", "adahessian", "rmsprop (Gorgonia's) or a curvopt optimizer: "+fmt.Sprint(train.Optimizers()))
	flag.Float64Var(&c.lr, "lr", 0, "learning rate (0: the optimizer's default; AdaHessian's, 0.15, diverges here: use 0.01)")
	flag.IntVar(&c.ngrads, "ngrads", 0, "M-FAC's window rows (0: its default, 1024; the window holds rows × the convnet's 0.83M parameters, 6.8 GB in float64 at 1024)")
	flag.IntVar(&c.steps, "steps", 300, "training steps")
	flag.IntVar(&c.batch, "batchsize", 32, "batch size")
	flag.IntVar(&c.eval, "eval", 2000, "test images to evaluate at the end")
	flag.Uint64Var(&c.seed, "seed", 1337, "seed of the initial weights, the data order and the probes")
	flag.StringVar(&dt, "dtype", "float64", "float64 or float32")
	flag.StringVar(&c.data, "data", "fashion-mnist", "data set (data.Load spec: fashion-mnist [DIR], mnist DIR)")
	flag.StringVar(&c.loss, "loss", "nll", "nll (the loss Gorgonia's example marks correct) or gorgonia (the one it runs: +Inf)")
	flag.IntVar(&c.every, "every", 20, "print the cost every so many steps")
	flag.Parse()
	switch dt {
	case "float64":
		c.dtype = tensor.Float64
	case "float32":
		c.dtype = tensor.Float32
	default:
		log.Fatalf("unknown dtype %q", dt)
	}
	c.out = os.Stdout
	r, err := run(c)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("done: %d steps of %s in %v, mean cost of the last 20 steps %.4f, test accuracy %.2f%% (%d images)\n",
		len(r.costs), c.optimizer, r.elapsed.Round(time.Second), tailMean(r.costs, 20), 100*r.accuracy, c.eval)
}

// convnet is Gorgonia's: three 3×3 convolutions (32, 64, 128 filters) with
// ReLU, 2×2 max-pooling and dropout, a dense layer of 625 with ReLU and
// dropout, and a dense output layer of 10 with softmax.
type convnet struct {
	g                  *G.ExprGraph
	w0, w1, w2, w3, w4 *G.Node
	d0, d1, d2, d3     float64
	out                *G.Node
}

// newConvNet makes the model's weights in g. Gorgonia's example initialises
// them with G.GlorotN(1.0), seeded by the clock; here the same Glorot normal
// draws come from rng, so a run can be repeated. With ws the weights are
// those tensors (an evaluation graph sharing the training graph's weights).
func newConvNet(g *G.ExprGraph, dt tensor.Dtype, rng *rand.Rand, ws []*tensor.Dense, dropout bool) *convnet {
	shapes := [][]int{{32, 1, 3, 3}, {64, 32, 3, 3}, {128, 64, 3, 3}, {128 * 3 * 3, 625}, {625, 10}}
	nodes := make([]*G.Node, len(shapes))
	for i, s := range shapes {
		var v *tensor.Dense
		if ws != nil {
			v = ws[i]
		} else {
			v = glorotN(rng, dt, s...)
		}
		nodes[i] = G.NewTensor(g, dt, len(s), G.WithShape(s...), G.WithName(fmt.Sprintf("w%d", i)), G.WithValue(v))
	}
	m := &convnet{g: g, w0: nodes[0], w1: nodes[1], w2: nodes[2], w3: nodes[3], w4: nodes[4]}
	if dropout {
		m.d0, m.d1, m.d2, m.d3 = 0.2, 0.2, 0.2, 0.55
	}
	return m
}

// glorotN draws Gorgonia's GlorotN(1.0) initialisation from rng.
func glorotN(rng *rand.Rand, dt tensor.Dtype, s ...int) *tensor.Dense {
	field := 1
	for _, v := range s[2:] {
		field *= v
	}
	std := math.Sqrt(2 / float64((s[0]+s[1])*field))
	t := tensor.New(tensor.Of(dt), tensor.WithShape(s...))
	switch dt {
	case tensor.Float64:
		for i := range t.Float64s() {
			t.Float64s()[i] = std * rng.NormFloat64()
		}
	case tensor.Float32:
		for i := range t.Float32s() {
			t.Float32s()[i] = float32(std * rng.NormFloat64())
		}
	}
	return t
}

func (m *convnet) learnables() G.Nodes {
	return G.Nodes{m.w0, m.w1, m.w2, m.w3, m.w4}
}

// fwd is Gorgonia's, error wrapping aside.
func (m *convnet) fwd(x *G.Node) (err error) {
	var c0, c1, c2, fc *G.Node
	var a0, a1, a2, a3 *G.Node
	var p0, p1, p2 *G.Node
	var l0, l1, l2, l3 *G.Node

	// LAYER 0
	if c0, err = G.Conv2d(x, m.w0, tensor.Shape{3, 3}, []int{1, 1}, []int{1, 1}, []int{1, 1}); err != nil {
		return fmt.Errorf("layer 0 convolution: %w", err)
	}
	if a0, err = G.Rectify(c0); err != nil {
		return fmt.Errorf("layer 0 activation: %w", err)
	}
	if p0, err = G.MaxPool2D(a0, tensor.Shape{2, 2}, []int{0, 0}, []int{2, 2}); err != nil {
		return fmt.Errorf("layer 0 max-pooling: %w", err)
	}
	if l0, err = G.Dropout(p0, m.d0); err != nil {
		return fmt.Errorf("layer 0 dropout: %w", err)
	}

	// Layer 1
	if c1, err = G.Conv2d(l0, m.w1, tensor.Shape{3, 3}, []int{1, 1}, []int{1, 1}, []int{1, 1}); err != nil {
		return fmt.Errorf("layer 1 convolution: %w", err)
	}
	if a1, err = G.Rectify(c1); err != nil {
		return fmt.Errorf("layer 1 activation: %w", err)
	}
	if p1, err = G.MaxPool2D(a1, tensor.Shape{2, 2}, []int{0, 0}, []int{2, 2}); err != nil {
		return fmt.Errorf("layer 1 max-pooling: %w", err)
	}
	if l1, err = G.Dropout(p1, m.d1); err != nil {
		return fmt.Errorf("layer 1 dropout: %w", err)
	}

	// Layer 2
	if c2, err = G.Conv2d(l1, m.w2, tensor.Shape{3, 3}, []int{1, 1}, []int{1, 1}, []int{1, 1}); err != nil {
		return fmt.Errorf("layer 2 convolution: %w", err)
	}
	if a2, err = G.Rectify(c2); err != nil {
		return fmt.Errorf("layer 2 activation: %w", err)
	}
	if p2, err = G.MaxPool2D(a2, tensor.Shape{2, 2}, []int{0, 0}, []int{2, 2}); err != nil {
		return fmt.Errorf("layer 2 max-pooling: %w", err)
	}

	var r2 *G.Node
	b, c, h, w := p2.Shape()[0], p2.Shape()[1], p2.Shape()[2], p2.Shape()[3]
	if r2, err = G.Reshape(p2, tensor.Shape{b, c * h * w}); err != nil {
		return fmt.Errorf("layer 2 reshape: %w", err)
	}
	if l2, err = G.Dropout(r2, m.d2); err != nil {
		return fmt.Errorf("layer 2 dropout: %w", err)
	}

	// Layer 3
	if fc, err = G.Mul(l2, m.w3); err != nil {
		return fmt.Errorf("layer 3 product: %w", err)
	}
	if a3, err = G.Rectify(fc); err != nil {
		return fmt.Errorf("layer 3 activation: %w", err)
	}
	if l3, err = G.Dropout(a3, m.d3); err != nil {
		return fmt.Errorf("layer 3 dropout: %w", err)
	}

	// output decode
	var out *G.Node
	if out, err = G.Mul(l3, m.w4); err != nil {
		return fmt.Errorf("output product: %w", err)
	}
	m.out, err = G.SoftMax(out)
	return err
}

// newSolver is what replaces Gorgonia's
//
//	solver := G.NewRMSPropSolver(G.WithBatchSize(float64(bs)))
//
// by the optimizer and gsolver.ForGraph, which for a curvature optimizer
// also builds the curvature engine over the same graph and feeds it the
// batch bound to x and y.
func newSolver(c config, g *G.ExprGraph, x, y, cost *G.Node, learnables G.Nodes) (G.Solver, io.Closer, error) {
	if c.optimizer == "rmsprop" {
		return G.NewRMSPropSolver(G.WithBatchSize(float64(c.batch))), noClose{}, nil
	}
	h := train.Hyper{}
	if c.lr > 0 {
		h["lr"] = c.lr
	}
	if c.ngrads > 0 && c.optimizer == "mfac" {
		h["ngrads"] = c.ngrads
	}
	opt, err := train.NewOptimizer(c.optimizer, h, c.batch, c.seed)
	if err != nil {
		return nil, nil, err
	}
	// One line for any optimizer; a curvature one gets the engine over g too.
	s, err := gsolver.ForGraph(opt, g, x, y, cost, learnables)
	if err != nil {
		return nil, nil, errors.Join(err, opt.Close())
	}
	return s, s, nil
}

// noClose is the io.Closer of Gorgonia's solver, which holds nothing.
type noClose struct{}

func (noClose) Close() error { return nil }

func run(c config) (result, error) {
	res := result{accuracy: math.NaN()}
	trainSet, testSet, err := data.Load(c.data)
	if err != nil {
		return res, err
	}
	if trainSet.C != 1 || trainSet.H != 28 || trainSet.W != 28 || trainSet.Classes != 10 {
		return res, fmt.Errorf("%s: images %d×%d×%d in %d classes, but Gorgonia's convnet takes 1×28×28 in 10", trainSet.Name, trainSet.C, trainSet.H, trainSet.W, trainSet.Classes)
	}
	rng := rand.New(rand.NewPCG(c.seed, 0))
	bs := c.batch

	g := G.NewGraph()
	x := G.NewTensor(g, c.dtype, 4, G.WithShape(bs, 1, 28, 28), G.WithName("x"))
	y := G.NewMatrix(g, c.dtype, G.WithShape(bs, 10), G.WithName("y"))
	m := newConvNet(g, c.dtype, rng, nil, true)
	if err = m.fwd(x); err != nil {
		return res, err
	}
	var cost *G.Node
	switch c.loss {
	case "nll":
		losses := G.Must(G.HadamardProd(G.Must(G.Neg(G.Must(G.Log(m.out)))), y))
		cost = G.Must(G.Mean(losses))
	case "gorgonia":
		losses := G.Must(G.Log(G.Must(G.HadamardProd(m.out, y))))
		cost = G.Must(G.Neg(G.Must(G.Mean(losses))))
	default:
		return res, fmt.Errorf("unknown loss %q (nll or gorgonia)", c.loss)
	}
	var costVal G.Value
	G.Read(cost, &costVal)
	if _, err = G.Grad(cost, m.learnables()...); err != nil {
		return res, err
	}
	prog, locMap, err := G.Compile(g)
	if err != nil {
		return res, err
	}
	vm := G.NewTapeMachine(g, G.WithPrecompiled(prog, locMap), G.BindDualValues(m.learnables()...))
	defer vm.Close()

	solver, closer, err := newSolver(c, g, x, y, cost, m.learnables())
	if err != nil {
		return res, err
	}
	defer closer.Close()

	it, err := data.NewIterator(trainSet, data.IterConfig{BatchSize: bs, Shuffle: true, DropLast: true, Seed: c.seed, Dtype: c.dtype})
	if err != nil {
		return res, err
	}
	yVal := tensor.New(tensor.Of(c.dtype), tensor.WithShape(bs, 10))
	start := time.Now()
	for step := 0; step < c.steps; step++ {
		if !it.Next() {
			it.Next() // a new epoch
		}
		b := it.Batch()
		oneHot(yVal, b.Labels)
		if err = G.Let(x, b.X); err != nil {
			return res, err
		}
		if err = G.Let(y, yVal); err != nil {
			return res, err
		}
		if err = vm.RunAll(); err != nil {
			return res, fmt.Errorf("step %d: %w", step, err)
		}
		if err = solver.Step(G.NodesToValueGrads(m.learnables())); err != nil {
			return res, fmt.Errorf("step %d: %w", step, err)
		}
		vm.Reset()
		cv := scalar(costVal)
		res.costs = append(res.costs, cv)
		if c.every > 0 && (step+1)%c.every == 0 && c.out != nil {
			fmt.Fprintf(c.out, "step %d | cost %.4f (mean of the last %d: %.4f) | %v\n", step+1, cv, c.every, tailMean(res.costs, c.every), time.Since(start).Round(time.Millisecond))
		}
	}
	res.elapsed = time.Since(start)
	if c.eval > 0 {
		if res.accuracy, err = evaluate(c, testSet, m); err != nil {
			return res, err
		}
	}
	return res, nil
}

// evaluate returns the accuracy on the first n test images, by a graph of
// the same model without dropout whose weights are the trained tensors.
func evaluate(c config, testSet *data.Dataset, trained *convnet) (float64, error) {
	n := min(c.eval, testSet.Len())
	bs := min(100, n)
	g := G.NewGraph()
	ws := make([]*tensor.Dense, 0, 5)
	for _, w := range trained.learnables() {
		ws = append(ws, w.Value().(*tensor.Dense))
	}
	x := G.NewTensor(g, c.dtype, 4, G.WithShape(bs, 1, 28, 28), G.WithName("x"))
	m := newConvNet(g, c.dtype, nil, ws, false)
	if err := m.fwd(x); err != nil {
		return 0, err
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	it, err := data.NewIterator(testSet, data.IterConfig{BatchSize: bs, DropLast: true, Dtype: c.dtype})
	if err != nil {
		return 0, err
	}
	correct, seen := 0, 0
	for seen+bs <= n && it.Next() {
		b := it.Batch()
		if err := G.Let(x, b.X); err != nil {
			return 0, err
		}
		if err := vm.RunAll(); err != nil {
			return 0, err
		}
		out := m.out.Value().(*tensor.Dense)
		for r, l := range b.Labels {
			if argmax(out, r) == l {
				correct++
			}
		}
		seen += bs
		vm.Reset()
	}
	if seen == 0 {
		return math.NaN(), nil
	}
	return float64(correct) / float64(seen), nil
}

func oneHot(y *tensor.Dense, labels []int) {
	classes := y.Shape()[1]
	switch y.Dtype() {
	case tensor.Float64:
		d := y.Float64s()
		clear(d)
		for r, l := range labels {
			d[r*classes+l] = 1
		}
	case tensor.Float32:
		d := y.Float32s()
		clear(d)
		for r, l := range labels {
			d[r*classes+l] = 1
		}
	}
}

func argmax(t *tensor.Dense, row int) int {
	c := t.Shape()[1]
	best := 0
	for j := 1; j < c; j++ {
		if at(t, row*c+j) > at(t, row*c+best) {
			best = j
		}
	}
	return best
}

func at(t *tensor.Dense, i int) float64 {
	if t.Dtype() == tensor.Float32 {
		return float64(t.Float32s()[i])
	}
	return t.Float64s()[i]
}

func scalar(v G.Value) float64 {
	switch s := v.Data().(type) {
	case float64:
		return s
	case float32:
		return float64(s)
	}
	return math.NaN()
}

func tailMean(xs []float64, k int) float64 {
	k = min(k, len(xs))
	if k == 0 {
		return math.NaN()
	}
	s := 0.0
	for _, v := range xs[len(xs)-k:] {
		s += v
	}
	return s / float64(k)
}
