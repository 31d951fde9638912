// Command mlp trains a multilayer perceptron written with stock Gorgonia
// ops (G.Mul, G.Add through G.BroadcastAdd, G.Tanh, G.SoftMax and the
// log-likelihood loss) in a stock Gorgonia loop, with any curvopt optimizer
// as its gorgonia.Solver:
//
//	go run ./examples/mlp -optimizer sophiah
//	go run ./examples/mlp -optimizer adahessian -data "synthetic train=2000 test=500"
//
// Switching optimizer changes the line that makes the solver (newSolver);
// the curvature optimizers get the curvature engine over the same graph.
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
	steps     int
	batch     int
	hidden    int
	seed      uint64
	data      string // data.Load spec
	every     int    // print the cost every so many steps (0: never)
	out       io.Writer
}

type result struct {
	costs    []float64 // the cost of every step, before its update
	accuracy float64   // on the whole test split
	elapsed  time.Duration
}

func main() {
	var c config
	flag.StringVar(&c.optimizer, "optimizer", "sophiah", "a curvopt optimizer: "+fmt.Sprint(train.Optimizers()))
	flag.Float64Var(&c.lr, "lr", 0, "learning rate (0: the optimizer's default)")
	flag.IntVar(&c.steps, "steps", 500, "training steps")
	flag.IntVar(&c.batch, "batchsize", 64, "batch size")
	flag.IntVar(&c.hidden, "hidden", 100, "hidden units")
	flag.Uint64Var(&c.seed, "seed", 1, "seed of the initial weights, the data order and the probes")
	flag.StringVar(&c.data, "data", "fashion-mnist", "data set (a data.Load spec: fashion-mnist, synthetic, cifar10 DIR, …)")
	flag.IntVar(&c.every, "every", 50, "print the cost every so many steps")
	flag.Parse()
	c.out = os.Stdout
	r, err := run(c)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("done: %d steps of %s in %v, test accuracy %.2f%%\n", len(r.costs), c.optimizer, r.elapsed.Round(time.Millisecond), 100*r.accuracy)
}

// mlp is x → Tanh(x·w0 + b0) → SoftMax(h·w1 + b1), in stock Gorgonia ops.
type mlp struct {
	w0, b0, w1, b1 *G.Node
	out            *G.Node
}

func newMLP(g *G.ExprGraph, rng *rand.Rand, in, hidden, classes int, ws []*tensor.Dense) *mlp {
	shapes := [][]int{{in, hidden}, {hidden}, {hidden, classes}, {classes}}
	names := []string{"w0", "b0", "w1", "b1"}
	nodes := make([]*G.Node, 4)
	for i, s := range shapes {
		var v *tensor.Dense
		if ws != nil {
			v = ws[i]
		} else {
			v = tensor.New(tensor.Of(tensor.Float64), tensor.WithShape(s...))
			if len(s) == 2 { // Glorot normal; biases start at 0
				std := math.Sqrt(2 / float64(s[0]+s[1]))
				for j := range v.Float64s() {
					v.Float64s()[j] = std * rng.NormFloat64()
				}
			}
		}
		nodes[i] = G.NewTensor(g, tensor.Float64, len(s), G.WithShape(s...), G.WithName(names[i]), G.WithValue(v))
	}
	return &mlp{w0: nodes[0], b0: nodes[1], w1: nodes[2], b1: nodes[3]}
}

func (m *mlp) learnables() G.Nodes { return G.Nodes{m.w0, m.b0, m.w1, m.b1} }

func (m *mlp) fwd(x *G.Node) error {
	xw, err := G.Mul(x, m.w0)
	if err != nil {
		return err
	}
	z0, err := G.BroadcastAdd(xw, m.b0, nil, []byte{0}) // G.Add after broadcasting b0 over the rows
	if err != nil {
		return err
	}
	h, err := G.Tanh(z0)
	if err != nil {
		return err
	}
	hw, err := G.Mul(h, m.w1)
	if err != nil {
		return err
	}
	z1, err := G.BroadcastAdd(hw, m.b1, nil, []byte{0})
	if err != nil {
		return err
	}
	m.out, err = G.SoftMax(z1)
	return err
}

// newSolver makes the solver: one line for a first-order optimizer; a
// curvature optimizer also gets the engine over the same graph.
func newSolver(c config, g *G.ExprGraph, x, y, cost *G.Node, learnables G.Nodes) (*gsolver.Solver, io.Closer, error) {
	h := train.Hyper{}
	if c.lr > 0 {
		h["lr"] = c.lr
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

func run(c config) (result, error) {
	res := result{accuracy: math.NaN()}
	trainSet, testSet, err := data.Load(c.data)
	if err != nil {
		return res, err
	}
	in, classes, bs := trainSet.ImageSize(), trainSet.Classes, c.batch
	rng := rand.New(rand.NewPCG(c.seed, 0))

	g := G.NewGraph()
	x := G.NewMatrix(g, tensor.Float64, G.WithShape(bs, in), G.WithName("x"))
	y := G.NewMatrix(g, tensor.Float64, G.WithShape(bs, classes), G.WithName("y"))
	m := newMLP(g, rng, in, c.hidden, classes, nil)
	if err := m.fwd(x); err != nil {
		return res, err
	}
	cost := G.Must(G.Mean(G.Must(G.HadamardProd(G.Must(G.Neg(G.Must(G.Log(m.out)))), y))))
	var costVal G.Value
	G.Read(cost, &costVal)
	if _, err := G.Grad(cost, m.learnables()...); err != nil {
		return res, err
	}
	vm := G.NewTapeMachine(g, G.BindDualValues(m.learnables()...))
	defer vm.Close()
	solver, closer, err := newSolver(c, g, x, y, cost, m.learnables())
	if err != nil {
		return res, err
	}
	defer closer.Close()

	stats := trainSet.Stats()
	it, err := data.NewIterator(trainSet, data.IterConfig{BatchSize: bs, Shuffle: true, DropLast: true, Seed: c.seed, Dtype: tensor.Float64, Norm: &stats})
	if err != nil {
		return res, err
	}
	yVal := tensor.New(tensor.Of(tensor.Float64), tensor.WithShape(bs, classes))
	start := time.Now()
	for step := 0; step < c.steps; step++ {
		if !it.Next() {
			it.Next() // a new epoch
		}
		b := it.Batch()
		oneHot(yVal, b.Labels)
		if err := G.Let(x, b.Flat); err != nil {
			return res, err
		}
		if err := G.Let(y, yVal); err != nil {
			return res, err
		}
		if err := vm.RunAll(); err != nil {
			return res, fmt.Errorf("step %d: %w", step, err)
		}
		if err := solver.Step(G.NodesToValueGrads(m.learnables())); err != nil {
			return res, fmt.Errorf("step %d: %w", step, err)
		}
		vm.Reset()
		res.costs = append(res.costs, costVal.Data().(float64))
		if c.every > 0 && c.out != nil && (step+1)%c.every == 0 {
			fmt.Fprintf(c.out, "step %d | cost %.4f\n", step+1, res.costs[step])
		}
	}
	res.elapsed = time.Since(start)
	res.accuracy, err = evaluate(testSet, &stats, m, c.hidden)
	return res, err
}

// evaluate returns the accuracy on the whole test split, by a graph of the
// same model, of the split's size, whose weights are the trained tensors.
func evaluate(testSet *data.Dataset, stats *data.Stats, trained *mlp, hidden int) (float64, error) {
	n := testSet.Len()
	it, err := data.NewIterator(testSet, data.IterConfig{BatchSize: n, Dtype: tensor.Float64, Norm: stats})
	if err != nil {
		return 0, err
	}
	it.Next()
	b := it.Batch()
	g := G.NewGraph()
	x := G.NewMatrix(g, tensor.Float64, G.WithShape(n, testSet.ImageSize()), G.WithName("x"), G.WithValue(b.Flat))
	var ws []*tensor.Dense
	for _, w := range trained.learnables() {
		ws = append(ws, w.Value().(*tensor.Dense))
	}
	m := newMLP(g, nil, testSet.ImageSize(), hidden, testSet.Classes, ws)
	if err := m.fwd(x); err != nil {
		return 0, err
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		return 0, err
	}
	out := m.out.Value().(*tensor.Dense).Float64s()
	correct := 0
	for r, l := range b.Labels {
		row := out[r*testSet.Classes : (r+1)*testSet.Classes]
		best := 0
		for j, v := range row {
			if v > row[best] {
				best = j
			}
		}
		if best == l {
			correct++
		}
	}
	return float64(correct) / float64(n), nil
}

func oneHot(y *tensor.Dense, labels []int) {
	classes := y.Shape()[1]
	d := y.Float64s()
	clear(d)
	for r, l := range labels {
		d[r*classes+l] = 1
	}
}
