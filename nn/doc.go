// Package nn provides neural-network layers as pieces of a Gorgonia graph
// whose first and second derivatives are exact, and builds models from one
// description, a DAG.
//
// Stock Gorgonia v0.9.18 cannot be differentiated twice beyond simple MLPs
// (its pooling, convolution, softmax and batch-norm backward ops are wrong or
// crash under a second Grad, and its Backpropagate skips nodes whose
// derivative is already set). This package therefore owns every op it uses.
// Each op implements gorgonia.Op and gorgonia.SDOp; its SymDiff emits
// backward ops that are themselves SDOps with correct SymDiffs, so a second
// reverse pass (Backprop applied to gradient nodes) yields exact
// Hessian-vector products. Most families are closed under differentiation:
//
//	MatMul(a, b, tA, tB)           bilinear: derivatives are MatMuls
//	Conv2d / its two adjoints      trilinear form ⟨G, conv(x, W)⟩: each
//	                               derivative is one of the three
//	Conv2dBias                     Conv2d + per-channel bias in one pass
//	MaxPool2d, gather, scatter     linear maps selected by the argmax
//	ReLUMaxPool2d                  MaxPool2d(ReLU(x)) fused (same family;
//	                               windows the ReLU zeroes route nothing)
//	ReLU = MaskMul(x, x)           zero curvature, derivative MaskMul(x, G)
//	BiasAdd, ChanSum, ChanBcast    linear
//	Tanh, Rsqrt, Mul, Scale, AddN  with explicit backward ops
//	CrossEntropy                   fused softmax cross-entropy
//	Exp, Log, Sigmoid, GELU,       f⁽ʲ⁾(x) whose derivative is G⊙f⁽ʲ⁺¹⁾(x)
//	GELUTanh                       (derivatives given to third order)
//	AxisSum, AxisBcast             linear, each the other's derivative
//	Softmax(axis), LayerNorm       composed of the above (closed)
//	Embedding / its scatter-add    linear gather at float-held token ids
//	BatchMatMul, Transpose         bilinear / linear (SplitHeads, MergeHeads)
//	CausalMask, AvgPool2d,         linear (GlobalAvgPool composed)
//	Dropout                        linear, mask fixed per DropoutState step
//	CrossMean                      linear: weighted all-reduce over processes
//	                               (synchronised batch norm), its own derivative
//	Reciprocal, Sqrt, Softplus,    f⁽ʲ⁾ families, as Exp (for nn/stock's
//	Log1p, Expm1, Sin, Cos         rewrites of stock Gorgonia graphs)
//	LogSoftmax                     x − log Σ eˣ; derivative from Softmax
//	Slice, Pad (Concat composed)   linear, each the other's derivative
//
// Backprop is the reverse-mode driver (it replaces gorgonia.Grad, which cannot
// be used twice on one graph), and AuditSecondOrder refuses, before a second
// differentiation, any op not known to be correct under it (for example a
// stock gorgonia.SoftMax node).
//
// Kernels are generic over float32 and float64, work on the tensors'
// backing slices, write into buffers each op allocates once, and split large
// loops (im2col, pooling, element-wise) over GOMAXPROCS goroutines.
// Convolutions of one family on the same input node share a whole-batch
// im2col cache, reused only when the input is bitwise unchanged, so the
// weight gradient reuses the forward pass's columns. Model.Build fuses
// conv+bias (Conv2dBias) and ReLU→MaxPool2d (ReLUMaxPool2d).
//
// Matrix products: in the default build, an AVX/FMA assembly micro-kernel
// (4×16 float32, 4×8 float64) with packed operands where the CPU has AVX and
// FMA, else gonum's pure-Go BLAS (also with the purego tag); OpenBLAS when
// built with the openblas tag (CGO_LDFLAGS=-lopenblas).
//
// Models: a DAG (JSON-tagged: nodes naming their inputs) is the one model
// description. A layer list (Spec, the curvature golden files' format) is a
// shorthand that converts to one (Spec.DAG: the same parameter names, order
// and initialisation); ParseModel reads either format. MLP, CNN, ResNet
// (He et al.'s CIFAR ResNets) and GPT (gpt-tiny) return DAGs. New builds a
// Model (torch-default initialisation from an injected *rand.Rand) and
// Model.Build adds its forward graph for one batch size in training or
// evaluation mode; DAG.Memory estimates what that graph holds. A sequence
// model's logits have RowsPerExample rows per example. The hessian package
// compiles and runs these graphs.
package nn
