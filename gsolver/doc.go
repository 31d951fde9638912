// Package gsolver puts every curvopt optimizer where a gorgonia.Solver goes,
// so that a stock Gorgonia training loop (a graph of stock ops,
// gorgonia.Grad, a TapeMachine with BindDualValues) switches optimizer by
// the line that makes the solver:
//
//	opt, err := adam.New(adam.Default())        // instead of G.NewRMSPropSolver(...)
//	solver, err := gsolver.New(opt)
//	for each batch {
//		G.Let(x, xs); G.Let(y, ys)
//		vm.RunAll()
//		solver.Step(G.NodesToValueGrads(learnables))
//		vm.Reset()
//	}
//
// The curvature optimizers (AdaHessian, SophiaH, SophiaG) also need the
// curvature of the loss: the curvature engine over the same graph answers
// their queries, and the solver feeds it the batch bound to the input and
// target nodes, so the loop stays the same:
//
//	opt, err := adahessian.New(adahessian.Default())
//	solver, err := gsolver.ForGraph(opt, g, x, y, cost, learnables) // builds the engine
//	defer solver.Close()
//
// or, with an engine of one's own,
//
//	eng, err := hessian.NewGraph(g, hessian.GraphSpec{Input: x, Targets: y, Loss: cost,
//		Params: []hessian.GraphParam{{Node: w0}, {Node: w1}}}, opt.Needs())
//	solver, err := gsolver.New(opt, gsolver.WithEngine(eng, x, y))
//
// Make the engine after the machine: the engine adds its nodes to g, and a
// machine compiled afterwards would run them too. Bind the batch with
// gorgonia.Let before every run, as Gorgonia's examples do, or bind a buffer
// once and refill it in place (hessian.NewGraph binds its own tensors to the
// input and target nodes only during its own runs). The gradient is the one
// the user's machine computed; the engine runs its
// own graph for H·v (double backprop on nn's exact ops) at the same
// parameter tensors, on the same batch. A graph with dropout draws its masks
// twice, once in the user's machine and once in the engine, so the gradient
// and the curvature of one step see different masks; hessian's own step
// (train.Step on the engine) shares them.
//
// After a successful step the solver zeroes the gradients, as Gorgonia's
// solvers do (a TapeMachine with BindDualValues adds each run's gradient to
// the bound one); KeepGradients turns that off.
package gsolver
