package hessian_test

import (
	"fmt"
	"math/rand/v2"

	"github.com/curvopt/curvopt/hessian"
	"github.com/curvopt/curvopt/nn"
	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/optim/adahessian"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Example builds a small MLP, computes loss and gradient on a batch, an
// exact Hessian-vector product, a Hutchinson diagonal estimate and a plain
// gradient-descent step, then predicts in evaluation mode.
func Example() {
	rng := rand.New(rand.NewPCG(1, 2))
	model, err := nn.New(nn.MLP(4, []int{8}, 3), tensor.Float64, rng, 0)
	if err != nil {
		panic(err)
	}
	eng, err := hessian.New(model, optim.Needs{HVP: true}, hessian.WithProbes(optim.NewRandomProbes(optim.Rademacher, 7)))
	if err != nil {
		panic(err)
	}
	defer eng.Close()

	x := tensor.New(tensor.WithShape(6, 4), tensor.WithBacking([]float64{
		1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0,
		0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 1, 1,
	}))
	labels := []int{0, 1, 2, 0, 1, 2}
	if err := eng.SetBatch(x, labels); err != nil {
		panic(err)
	}
	before, err := eng.LossGrad() // fills eng.Params()[i].Grad
	if err != nil {
		panic(err)
	}

	// H·v for v = the gradient itself: gᵀHg ≥ 0 near a convex region.
	v, hv := optim.Like(eng.Params()), optim.Like(eng.Params())
	for i, p := range eng.Params() {
		copy(v[i].Data().([]float64), p.Grad.Data().([]float64))
	}
	if err := eng.HVP(v, hv); err != nil {
		panic(err)
	}
	diag := optim.Like(eng.Params())
	if err := eng.Hutchinson(diag); err != nil {
		panic(err)
	}

	// One gradient-descent step, in place on the model's tensors.
	for _, p := range eng.Params() {
		w, g := p.Value.Data().([]float64), p.Grad.Data().([]float64)
		for i := range w {
			w[i] -= 0.5 * g[i]
		}
	}
	after, err := eng.LossGrad()
	if err != nil {
		panic(err)
	}
	pred, err := eng.Predict(x)
	if err != nil {
		panic(err)
	}
	fmt.Println("parameters:", eng.Dim(), "blocks:", len(eng.ParamBlocks()))
	fmt.Println("loss decreased:", after < before)
	fmt.Println("predictions:", len(pred))
	// Output:
	// parameters: 67 blocks: 4
	// loss decreased: true
	// predictions: 6
}

// ExampleNewGraph plugs a second-order optimizer into a user's own Gorgonia
// graph: a two-layer network built from nn's twice-differentiable ops on the
// user's parameter tensors, trained with AdaHessian.
func ExampleNewGraph() {
	const batch, in, hidden, classes = 6, 4, 8, 3
	rng := rand.New(rand.NewPCG(1, 2))
	param := func(shape ...int) *tensor.Dense {
		t := tensor.New(tensor.Of(tensor.Float64), tensor.WithShape(shape...))
		for i := range t.Float64s() {
			t.Float64s()[i] = 0.5 * rng.NormFloat64()
		}
		return t
	}

	// The user's graph: logits = tanh(x·W1 + b1)·W2 + b2.
	g := gorgonia.NewGraph()
	x := gorgonia.NewMatrix(g, tensor.Float64, gorgonia.WithShape(batch, in), gorgonia.WithName("x"))
	w1 := gorgonia.NewMatrix(g, tensor.Float64, gorgonia.WithName("w1"), gorgonia.WithValue(param(in, hidden)))
	b1 := gorgonia.NewVector(g, tensor.Float64, gorgonia.WithName("b1"), gorgonia.WithValue(param(hidden)))
	w2 := gorgonia.NewMatrix(g, tensor.Float64, gorgonia.WithName("w2"), gorgonia.WithValue(param(hidden, classes)))
	b2 := gorgonia.NewVector(g, tensor.Float64, gorgonia.WithName("b2"), gorgonia.WithValue(param(classes)))
	must := func(n *gorgonia.Node, err error) *gorgonia.Node {
		if err != nil {
			panic(err)
		}
		return n
	}
	h := must(nn.Tanh(must(nn.BiasAdd(must(nn.MatMul(x, w1, false, false)), b1))))
	logits := must(nn.BiasAdd(must(nn.MatMul(h, w2, false, false)), b2))

	// The optimizer declares what it needs; the engine builds just that.
	cfg := adahessian.Default()
	cfg.LR = 0.2
	opt, err := adahessian.New(cfg)
	if err != nil {
		panic(err)
	}
	eng, err := hessian.NewGraph(g, hessian.GraphSpec{
		Input:  x,
		Logits: logits, // loss: mean softmax cross-entropy against the labels
		Params: []hessian.GraphParam{{Node: w1}, {Node: b1}, {Node: w2}, {Node: b2}},
	}, opt.Needs())
	if err != nil {
		panic(err)
	}
	defer eng.Close()

	xs := tensor.New(tensor.WithShape(batch, in), tensor.WithBacking([]float64{
		1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0,
		0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 1, 1,
	}))
	labels := []int{0, 1, 2, 0, 1, 2}
	if err := eng.SetBatch(xs, labels); err != nil {
		panic(err)
	}
	var first, last float64
	for step := 0; step < 50; step++ {
		// One step (train.Step does this): the optimizer says what it wants
		// at the current θ, one graph run computes loss, gradient and H·z,
		// the answer is handed over as data, then the update.
		req, err := opt.Request(eng.Params())
		if err != nil {
			panic(err)
		}
		loss, err := eng.LossGradHVP(req.V, req.Out)
		if err != nil {
			panic(err)
		}
		req.Answer()
		if err := opt.Step(eng.Params(), eng); err != nil {
			panic(err)
		}
		if step == 0 {
			first = loss
		}
		last = loss
	}
	acc, err := eng.Accuracy(xs, labels)
	if err != nil {
		panic(err)
	}
	fmt.Println("loss decreased:", last < first/2)
	fmt.Println("accuracy:", acc)
	// Output:
	// loss decreased: true
	// accuracy: 1
}
