// Package stock rewrites graphs built from stock Gorgonia ops into nn's
// twice-differentiable ops, so that a model written the way Gorgonia's own
// examples write it (gorgonia.Mul, Add, Tanh, Conv2d, MaxPool2D, Dropout,
// SoftMax, Mean, …) gets exact gradients and Hessian-vector products from
// nn.Backprop. Stock Gorgonia v0.9.18 differentiates most of these ops
// only once correctly (docs/gorgonia.md).
//
// A Rewriter walks back from a node (a cost, or logits) and rebuilds, in
// the same graph, every node that depends on a parameter; parameters and
// inputs are kept, so the rewritten graph reads the user's own tensors and
// an optimizer's in-place updates reach it. Nodes no derivative flows
// through (the targets side of a loss, say) run as the user wrote them.
// Stock ops are identified by comparing their Go type and operator with
// reference ops the package builds from Gorgonia's own functions, and
// their parameters (axes, shapes, kernel, padding, stride, probability)
// are read from the ops' fields; an op that cannot be identified or
// rewritten exactly is refused with a *RefusedError naming the user's
// node, its shape and inputs, the op in plain words and the replacement.
//
// The list of rewritten and refused ops is in docs/gorgonia.md, section
// "Stock graphs: what is rewritten".
package stock
