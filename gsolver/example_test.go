package gsolver_test

import (
	"fmt"

	"github.com/curvopt/curvopt/gsolver"
	"github.com/curvopt/curvopt/optim/adahessian"
	"github.com/curvopt/curvopt/optim/adam"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// A stock Gorgonia loop with Adam as its solver: only the two lines that
// make the solver are curvopt's.
func Example() {
	g := G.NewGraph()
	x := G.NewMatrix(g, tensor.Float64, G.WithShape(4, 2), G.WithName("x"),
		G.WithValue(tensor.New(tensor.WithShape(4, 2), tensor.WithBacking([]float64{0, 0, 0, 1, 1, 0, 1, 1}))))
	y := G.NewMatrix(g, tensor.Float64, G.WithShape(4, 2), G.WithName("y"),
		G.WithValue(tensor.New(tensor.WithShape(4, 2), tensor.WithBacking([]float64{1, 0, 0, 1, 0, 1, 0, 1}))))
	w := G.NewMatrix(g, tensor.Float64, G.WithShape(2, 2), G.WithName("w"),
		G.WithValue(tensor.New(tensor.WithShape(2, 2), tensor.WithBacking([]float64{0.1, -0.2, 0.3, 0.1}))))
	b := G.NewVector(g, tensor.Float64, G.WithShape(2), G.WithName("b"), G.WithInit(G.Zeroes()))
	out := G.Must(G.SoftMax(G.Must(G.BroadcastAdd(G.Must(G.Mul(x, w)), b, nil, []byte{0}))))
	cost := G.Must(G.Mean(G.Must(G.HadamardProd(G.Must(G.Neg(G.Must(G.Log(out)))), y))))
	learnables := G.Nodes{w, b}
	if _, err := G.Grad(cost, learnables...); err != nil {
		panic(err)
	}
	vm := G.NewTapeMachine(g, G.BindDualValues(learnables...))
	defer vm.Close()

	opt, err := adam.New(adam.Config{LR: 0.1, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8})
	if err != nil {
		panic(err)
	}
	solver, err := gsolver.New(opt) // was: G.NewAdamSolver(...)
	if err != nil {
		panic(err)
	}
	defer solver.Close()

	for step := 1; step <= 30; step++ {
		if err := vm.RunAll(); err != nil {
			panic(err)
		}
		if step%10 == 0 {
			fmt.Printf("step %d: cost %.4f\n", step, cost.Value().Data())
		}
		if err := solver.Step(G.NodesToValueGrads(learnables)); err != nil {
			panic(err)
		}
		vm.Reset()
	}
	// Output:
	// step 10: cost 0.1929
	// step 20: cost 0.1132
	// step 30: cost 0.0695
}

// ForGraph makes the solver of a curvature optimizer for a stock graph: it
// builds the curvature engine over the graph, and the loop is unchanged.
func ExampleForGraph() {
	g := G.NewGraph()
	x := G.NewMatrix(g, tensor.Float64, G.WithShape(4, 2), G.WithName("x"))
	y := G.NewMatrix(g, tensor.Float64, G.WithShape(4, 2), G.WithName("y"))
	w := G.NewMatrix(g, tensor.Float64, G.WithShape(2, 2), G.WithName("w"),
		G.WithValue(tensor.New(tensor.WithShape(2, 2), tensor.WithBacking([]float64{0.1, -0.2, 0.3, 0.1}))))
	b := G.NewVector(g, tensor.Float64, G.WithShape(2), G.WithName("b"), G.WithInit(G.Zeroes()))
	out := G.Must(G.SoftMax(G.Must(G.BroadcastAdd(G.Must(G.Tanh(G.Must(G.Mul(x, w)))), b, nil, []byte{0}))))
	cost := G.Must(G.Mean(G.Must(G.HadamardProd(G.Must(G.Neg(G.Must(G.Log(out)))), y))))
	learnables := G.Nodes{w, b}
	if _, err := G.Grad(cost, learnables...); err != nil {
		panic(err)
	}
	vm := G.NewTapeMachine(g, G.BindDualValues(learnables...))
	defer vm.Close()

	opt, err := adahessian.New(adahessian.Default())
	if err != nil {
		panic(err)
	}
	solver, err := gsolver.ForGraph(opt, g, x, y, cost, learnables) // after the machine
	if err != nil {
		panic(err)
	}
	defer solver.Close()

	xs := tensor.New(tensor.WithShape(4, 2), tensor.WithBacking([]float64{0, 0, 0, 1, 1, 0, 1, 1}))
	ys := tensor.New(tensor.WithShape(4, 2), tensor.WithBacking([]float64{1, 0, 0, 1, 0, 1, 0, 1}))
	for step := 1; step <= 30; step++ {
		if err := G.Let(x, xs); err != nil {
			panic(err)
		}
		if err := G.Let(y, ys); err != nil {
			panic(err)
		}
		if err := vm.RunAll(); err != nil {
			panic(err)
		}
		if step%10 == 0 {
			fmt.Printf("step %d: cost %.4f\n", step, cost.Value().Data())
		}
		if err := solver.Step(G.NodesToValueGrads(learnables)); err != nil {
			panic(err)
		}
		vm.Reset()
	}
	// Output:
	// step 10: cost 0.1585
	// step 20: cost 0.1361
	// step 30: cost 0.1355
}
