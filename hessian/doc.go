// Package hessian is the curvature engine on a Gorgonia graph — of an
// nn.Model (New) or one the user built (NewGraph):
// loss and gradient, exact Hessian-vector products by double backprop,
// Hutchinson's diagonal estimate, the sampled-label (Gauss-Newton-Bartlett)
// gradient of Sophia, a finite-difference HVP as a cross-check, and
// evaluation (predictions, accuracy) on any batch size.
//
// # Graphs
//
// An Engine compiles, per training batch size, one graph and up to three
// machines over it (vm.Machine, package hessian/internal/vm: each
// intermediate's buffer is reused once its last reader has run), building
// only what the optimizer's optim.Needs require:
//
//	gradient:         forward (training mode) → L → ∇L            always
//	HVP:              … → ∇L → H·v = ∇(⟨∇L, v⟩)                    Needs.HVP
//	sampled gradient: forward → ŷ ~ softmax(z) → ∇L(ŷ)             Needs.SampledGrad
//
// Before the HVP graph is built, nn.AuditSecondOrder refuses any op not known
// to be correct under double differentiation, so an HVP is never silently
// wrong. WithGNBBatch(n) makes the sampled gradient use only the first n
// rows of each batch, as Sophia's paper does (SophiaG's bs is then n); an
// engine from New compiles a separate n-row graph for it, once. Evaluation uses a separate forward-only graph per batch size, with
// batch norm in evaluation mode (running statistics), compiled once and
// cached.
//
// The model's parameter tensors are bound to the graphs by reference: the
// Value of each optim.Param returned by Params is the tensor the graph reads,
// so an optimizer's in-place update is seen by the next query. Gradients are
// copied into Param.Grad, which the engine owns.
//
// # A training loop
//
//	model, _ := nn.New(nn.MLP(784, []int{128}, 10), tensor.Float32, rand.New(rand.NewPCG(1, 2)), 0)
//	eng, _ := hessian.New(model, opt.Needs(), hessian.WithRand(rng))
//	defer eng.Close()
//	for x, labels := range batches {
//		if err := eng.SetBatch(x, labels); err != nil { … }  // x [N, …], labels in [0, classes)
//		res, err := train.Step(eng, opt, 0)                  // loss, gradient (and H·z) in one run, then opt.Step
//		…
//	}
//	acc, err := eng.Accuracy(xTest, yTest)                     // evaluation mode, any batch size
//
// The engine knows nothing of optimizers: the step's choreography lives in
// train.Step. An optimizer that knows before the gradient what curvature it
// needs (optim.Requester: AdaHessian and SophiaH want H·z for their probe z)
// gets it from LossGradHVP(z, out), which computes loss, gradient and H·z in
// one run of the graph; the answer is handed over as data. Every other query
// (HVP, SampledGrad) runs the graph at the parameters of the moment it is
// made, so a query after an in-place update sees the updated parameters:
// nothing is cached between queries. Logits returns the last training run's
// logits, Correct how many of its rows are classified right; SampledLabels
// the labels drawn by the last SampledGrad.
//
// Graphs are cached per batch size, at most WithGraphCache (default
// DefaultGraphCache) batch sizes each for training and for evaluation; the
// least recently used is released when a new size comes. An Engine is not
// safe for concurrent use: a second goroutine's call gets ErrConcurrentUse,
// and any call after Close gets ErrClosed.
//
// # Your own graph
//
// NewGraph wraps a Gorgonia graph the user built for one batch size, given
// its input, logits, optional targets and loss (a scalar of the user's
// own, such as Gorgonia's log-likelihood, is accepted; the logits are then
// found as its softmax's input), and its parameter nodes with their tensors
// (GraphSpec). The graph may use stock Gorgonia ops: package nn/stock
// rewrites them into nn's twice-differentiable ops first (docs/gorgonia.md
// lists what is rewritten and what is refused). The engine adds the
// gradient, HVP and sampled-gradient graphs that the optimizer's Needs ask
// for; evaluation takes any number of rows. See ExampleNewGraph:
//
//	eng, _ := hessian.NewGraph(g, hessian.GraphSpec{Input: x, Logits: logits,
//		Params: []hessian.GraphParam{{Node: w1}, {Node: b1}, {Node: w2}, {Node: b2}}}, opt.Needs())
//	eng.SetBatch(xs, labels)
//	res, err := train.Step(eng, opt, 0)
//
// An engine is an optim.Provider: Provides returns the Needs it was built
// for, and an optimizer whose queries it lacks refuses it at its first Step
// (optim.CheckOracle) with an error wrapping optim.ErrNotProvided.
//
// # Flat interface
//
// Dim, ParamBlocks and HVPFlat (and GradFlat, FiniteDiffHVP) work on the
// concatenation of all parameters, each flattened row-major, in model order;
// hessian/spectrum builds on them.
//
// # Sequence models
//
// A model may give several rows of logits per example (a GPT's [N·T, vocab]
// from nn.New with nn.GPT, or a user graph whose logits have a multiple of the
// input's batch rows): SetBatch then takes one label per row, the loss is
// the mean cross-entropy over all rows, and SampledGrad draws a label for
// every row (every position), as Sophia does for GPT-2.
//
// Errors: a non-finite loss, gradient or product is an error naming it (and
// which parameter), never a propagated NaN; bad shapes, dtypes or labels
// given to SetBatch or the oracle methods are errors naming what is wrong.
// Queries the engine was not built for return optim.ErrNotProvided.
package hessian
