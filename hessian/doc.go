// Package hessian is the curvature engine on a Gorgonia graph of an nn.Model:
// loss and gradient, exact Hessian-vector products by double backprop,
// Hutchinson's diagonal estimate, the sampled-label (Gauss-Newton-Bartlett)
// gradient of Sophia, finite-difference cross-checks and evaluation.
//
// An Engine compiles, per batch size, one graph and up to three tape
// machines over it — gradient; gradient plus H·v; forward plus sampled-label
// gradient — building only those the optimizer's optim.Needs require. The
// parameter tensors of the model are bound to the graph by reference, so an
// optimizer's in-place updates are seen by the next query. The Engine
// implements optim.Oracle.
//
// A training step:
//
//	eng, err := hessian.New(model, opt.Needs(), hessian.WithRand(rng))
//	...
//	for each batch {
//		err = eng.SetBatch(x, labels)      // x [N, ...], labels in [0, classes)
//		loss, err := eng.Prepare(opt)      // loss, Params()[i].Grad (and H·z for a Prober)
//		err = opt.Step(eng.Params(), eng)  // the optimizer queries HVP / SampledGrad
//	}
//	acc, err := eng.Accuracy(xTest, yTest) // evaluation mode, any batch size
//
// For spectrum analysis the flat interface Dim, HVPFlat and ParamBlocks
// works on the concatenation of all parameters in model order.
package hessian
