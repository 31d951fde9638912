package nn

// Memory estimates: the bytes a model's graphs take at a batch size,
// computed from the shapes Check infers, before any tensor is allocated.

import (
	"fmt"

	"github.com/curvopt/curvopt/internal/meminfo"
	"gorgonia.org/tensor"
)

// GraphKind selects the graph a memory estimate is for: the graphs the
// curvature engine (package hessian) compiles per batch size.
type GraphKind int

const (
	// EvalGraph is the forward-only evaluation graph (batch norm with
	// running statistics, no dropout).
	EvalGraph GraphKind = iota
	// GradGraph is the training graph with the loss and its gradient.
	GradGraph
	// HVPGraph is GradGraph with the Hessian-vector product by double
	// backprop (optimizers that ask for H·v, sharpness tracking, analysis).
	HVPGraph
)

func (g GraphKind) String() string {
	switch g {
	case EvalGraph:
		return "forward-only"
	case GradGraph:
		return "gradient"
	case HVPGraph:
		return "gradient and H·v"
	}
	return fmt.Sprintf("GraphKind(%d)", int(g))
}

// MemoryEstimate is the memory a model needs for one graph at one batch
// size, in bytes (see DAG.Memory). All sums saturate at math.MaxInt64.
type MemoryEstimate struct {
	Graph GraphKind
	Batch int
	// Params is what the engine holds once whatever its graphs: the
	// parameter values and their gradient, and with H·v the direction and
	// the product.
	Params int64
	// Activations is what the graph of this batch size holds: every op's
	// output buffer and side buffers (max-pool indices, dropout masks),
	// the adjoints the derivative passes add, convolution column caches
	// and per-worker scratch, parameter-shaped derivative nodes, and the
	// input and target tensors.
	Activations int64
	// Total is Params + Activations.
	Total int64
	// Largest names the layer (or DAG node) whose buffers are the largest
	// part of Activations, e.g. `layer 0 (conv2d "c1")`; LargestBytes is
	// that part.
	Largest      string
	LargestBytes int64
}

// String summarises the estimate for messages.
func (m MemoryEstimate) String() string {
	return fmt.Sprintf("the %s graph for a batch of %d needs %s (parameters %s, activations %s; largest: %s, %s)",
		m.Graph, m.Batch, meminfo.Bytes(m.Total), meminfo.Bytes(m.Params), meminfo.Bytes(m.Activations), m.Largest, meminfo.Bytes(m.LargestBytes))
}

// Multipliers of the estimate, derived from how the engine builds its
// graphs (hessian/compile.go) and runs them (hessian/internal/vm): the
// machine gives each op output of this package a pooled buffer that the
// next output of the same dtype and size reuses once the last reader has
// run; only the roots (loss, logits, gradients, H·v) and the batch-norm
// statistics keep theirs. Side buffers (max-pool indices, dropout masks,
// column caches, scratch) stay with their ops for the graph's lifetime.
//
//   - Forward buffers F: the outputs and side buffers of the ops Build
//     emits for each layer (counted per layer type below).
//   - The gradient graph holds at most 3F nodes (nn.Backprop gives every
//     forward node on a path to a parameter an adjoint, at most 2F with
//     the bilinear ops' two products and AddN accumulations), but the
//     backward pass reads most forward outputs while adjoints die one
//     layer after they are made: the estimate takes 1.75F.
//   - H·v differentiates the 3F gradient graph once more (at most 9F
//     nodes); the forward outputs, their tangents and the gradient
//     pass's intermediates that the second pass reads are alive at once:
//     the estimate takes 4.5F.
//   - The evaluation graph's outputs die one layer later; the estimate
//     takes F, with a layer norm counted as two full-size buffers and
//     attention as two [T, D] and one [H, T, T] (their temporaries die
//     inside the layer).
//   - Convolution im2col column caches are shared by the ops of one family
//     (the forward op and its weight gradient); the second differentiation
//     adds one more family per convolution (hence 2); an evaluation graph's
//     convolution is a family of one and keeps no cache (0: its columns
//     are built per sample in the worker's scratch). 3×3 convolutions with
//     stride 1 and padding 1 and the stride-2 geometries of
//     convGeom.implicit (the implicit-GEMM path) keep none in any graph
//     (their weight gradient reads the input), and per-worker
//     scratch (backward-input columns, weight-gradient accumulators, GEMM
//     packing) belongs to each conv op: 1 in evaluation, 3 with the
//     gradient, 9 with H·v (nodes of the graph).
//   - Each layer's ops, nodes and machine steps, whatever the batch size:
//     layerOverhead bytes per layer, times the factor of F.
//   - Parameter-shaped derivative nodes (weight gradients, their
//     accumulations, the H·v direction and product nodes, GEMM packing of
//     at most a weight's size): 1, 3 and 9 times the parameters.
//
// Measured on the CNN, ResNet-8 and a one-block GPT at batch sizes 16 and
// 48 (live heap after one run), the estimate is above reality by
// 1.1–3.3×, never below (TestMemoryEstimateBoundsReality in package train
// checks this); with the tape machine, which kept every output, the
// factors were 1.25F, 3F and 9F. Batch norm counts its composed ops (four
// full-size buffers), which data-parallel training graphs hold; a
// single-process training graph's fused batch norm holds one, which is
// most of the ResNet's margin.
type memFactors struct {
	fwd4                      int64 // factor of F, in quarters
	cols, convOps, paramNodes int64
	train                     bool // dropout active
}

func factorsOf(g GraphKind) (memFactors, error) {
	switch g {
	case EvalGraph:
		return memFactors{fwd4: 4, cols: 0, convOps: 1, paramNodes: 1}, nil
	case GradGraph:
		return memFactors{fwd4: 7, cols: 1, convOps: 3, paramNodes: 3, train: true}, nil
	case HVPGraph:
		return memFactors{fwd4: 18, cols: 2, convOps: 9, paramNodes: 9, train: true}, nil
	}
	return memFactors{}, fmt.Errorf("nn: memory estimate: unknown graph kind %d", int(g))
}

// layerOverhead is the batch-independent cost of one layer's forward ops
// (Gorgonia nodes, op structs, machine instructions; a layer norm emits
// fourteen ops), rounded up from the batch-independent heap measured on
// the test models (about 10 kB per layer).
const layerOverhead = 32 << 10

// layerCost is one layer's share of a graph, in elements of the dtype.
type layerCost struct {
	name string
	// fwd: forward buffers per example (outputs and side buffers).
	fwd int64
	// cols: im2col cache per example of a convolution (a copy of its
	// input and the columns [C·K·K, OH·OW]).
	cols int64
	// scratch: per-worker buffers of one convolution op.
	scratch int64
	// plain: per-example buffers that the derivative passes do not
	// multiply (the input batch).
	plain int64
	// out: the layer's output per example; last: the index (in the plan)
	// of the last layer that reads it (evaluation's liveness bound).
	out  int64
	last int
}

// memoryPlan is what Memory needs from Spec or DAG: the per-layer costs
// and the model's size.
type memoryPlan struct {
	layers  []layerCost
	live    bool  // layers carry out and last: evaluation takes the liveness bound
	params  int64 // parameter count
	rows    int64 // logit rows per example
	classes int64
}

// estimate sums a plan for batch size batch.
func (p memoryPlan) estimate(batch int, dt tensor.Dtype, g GraphKind) (MemoryEstimate, error) {
	if batch < 1 {
		return MemoryEstimate{}, fmt.Errorf("nn: memory estimate: batch size %d < 1", batch)
	}
	if err := checkFloat(dt); err != nil {
		return MemoryEstimate{}, err
	}
	f, err := factorsOf(g)
	if err != nil {
		return MemoryEstimate{}, err
	}
	size := int64(dt.Size())
	n := int64(batch)
	workers := min(int64(numWorkers()), n)
	est := MemoryEstimate{Graph: g, Batch: batch}
	// The loss: the one-hot targets, the saved logits and the loss's
	// backward products, all [rows, classes] per example.
	loss := layerCost{name: "loss", fwd: meminfo.Mul(2, meminfo.Mul(p.rows, p.classes))}
	for _, l := range append(append([]layerCost{}, p.layers...), loss) {
		e := meminfo.Mul(n, meminfo.Add(meminfo.Mul(l.fwd, f.fwd4)/4, l.plain))
		e = meminfo.Add(e, meminfo.Mul(n, meminfo.Mul(l.cols, f.cols)))
		e = meminfo.Add(e, meminfo.Mul(workers, meminfo.Mul(l.scratch, f.convOps)))
		b := meminfo.Add(meminfo.Mul(e, size), meminfo.Mul(layerOverhead, f.fwd4)/4)
		est.Activations = meminfo.Add(est.Activations, b)
		if b > est.LargestBytes || est.Largest == "" {
			est.Largest, est.LargestBytes = l.name, b
		}
	}
	if g == EvalGraph && p.live {
		// Forward only, the machine frees each output after its last
		// reader and reuses its buffer for a later output of the same
		// size: what it holds is, per size, the most bytes of that size
		// alive at once. Count that instead of every layer's buffers.
		sum, peak := p.evalLive()
		est.Activations -= meminfo.Mul(meminfo.Mul(n, meminfo.Mul(sum, f.fwd4)/4), size)
		est.Activations = meminfo.Add(est.Activations, meminfo.Mul(meminfo.Mul(n, peak), size))
	}
	ps := meminfo.Mul(p.params, size)
	est.Activations = meminfo.Add(est.Activations, meminfo.Mul(ps, f.paramNodes))
	copies := int64(2) // values and gradient
	if g == HVPGraph {
		copies = 4 // and the direction v and the product H·v
	}
	est.Params = meminfo.Mul(ps, copies)
	est.Total = meminfo.Add(est.Params, est.Activations)
	return est, nil
}

// evalLive returns, per example, the sum of the layers' forward buffers
// and the bound on what a forward-only run holds at once: for each output
// size, the largest total of buffers of that size alive at one step (a
// layer's output lives from its layer to its last reader; its other
// buffers, side outputs and temporaries, only during its own layer,
// counted in the class of its output's size), summed over sizes.
func (p memoryPlan) evalLive() (sum, peak int64) {
	best := map[int64]int64{}
	for t := range p.layers {
		cur := map[int64]int64{}
		for i, l := range p.layers[:t+1] {
			switch {
			case i == t:
				cur[l.out] = meminfo.Add(cur[l.out], l.fwd)
			case l.last >= t:
				cur[l.out] = meminfo.Add(cur[l.out], min(l.out, l.fwd))
			}
		}
		for k, v := range cur {
			best[k] = max(best[k], v)
		}
	}
	for _, l := range p.layers {
		sum = meminfo.Add(sum, l.fwd)
	}
	for _, v := range best {
		peak = meminfo.Add(peak, v)
	}
	return sum, peak
}

// Memory estimates, from shapes alone, the bytes the engine's graph of
// kind g holds for a batch of batch examples with parameters of dtype dt,
// and the parameters' own buffers (see MemoryEstimate and the multipliers
// documented at memFactors), node by node as Model.Build builds them. It
// validates the DAG first. The per-worker scratch of convolutions counts
// min(GOMAXPROCS, batch) workers.
func (d DAG) Memory(batch int, dt tensor.Dtype, g GraphKind) (MemoryEstimate, error) {
	info, err := d.check()
	if err != nil {
		return MemoryEstimate{}, err
	}
	f, err := factorsOf(g)
	if err != nil {
		return MemoryEstimate{}, err
	}
	p := memoryPlan{rows: int64(info.rows), classes: int64(info.classes)}
	for _, pi := range info.params {
		p.params = meminfo.Add(p.params, count(pi.Shape))
	}
	p.layers = append(p.layers, layerCost{name: "input", plain: meminfo.Mul(2, count(d.InputShape))})
	p.live = true
	at := map[string]int{} // node name → its index in p.layers
	for i, n := range d.Nodes {
		at[n.Name] = i + 1
	}
	size := int64(dt.Size())
	fused := d.fusedReLUPools()
	for i, n := range d.Nodes {
		xs := info.shapes[n.Inputs[0]]
		os := info.shapes[n.Name]
		out := count(os)
		c := layerCost{name: fmt.Sprintf("node %d (%s %q)", i, n.Op, n.Name), out: out, last: len(d.Nodes) + 1}
		switch n.Op {
		case OpConv2d: // Conv2d or Conv2dBias
			c.fwd = out
			c.cols, c.scratch = convCost(xs, os, n.Kernel, n.stride(), n.Pad)
		case OpBatchNorm2d:
			c.fwd = meminfo.Add(meminfo.Mul(4, out), meminfo.Mul(16, int64(os[0])))
		case OpLinear: // MatMul, BiasAdd
			c.fwd = out
			if !n.NoBias {
				c.fwd = meminfo.Mul(2, out)
			}
		case OpLayerNorm:
			// Nine full-size ops (three broadcasts, Sub's Scale and AddN,
			// three Mul, BiasAdd) and five per row.
			// Forward only, the machine frees each temporary after its
			// reader: two full-size buffers at once.
			full := int64(9)
			if !f.train {
				full = 2
			}
			c.fwd = meminfo.Add(meminfo.Mul(full, out), meminfo.Mul(5, out/int64(os[len(os)-1])))
		case OpReLU:
			if !fused[i] { // else fused into the pool that follows (ReLUMaxPool2d)
				c.fwd = out
			}
		case OpEmbedding, OpAdd, OpTanh, OpSigmoid, OpGELU, OpGELUTanh, OpAvgPool2d, OpFlatten:
			c.fwd = out
		case OpPosEmbedding: // positions, gathered rows, sum
			c.fwd = meminfo.Add(meminfo.Mul(2, out), int64(os[0]))
		case OpAttention:
			// SplitHeads of q, k and v, the merged output and the product
			// with v ([T, D] each); scores, scaled, masked and softmax
			// ([H, T, T] each).
			t := int64(os[0])
			sq := 3
			if !n.NoCausal {
				sq = 4
			}
			// Forward only: two [T, D] and one [H, T, T] at once.
			td := int64(5)
			if !f.train {
				td, sq = 2, 1
			}
			c.fwd = meminfo.Add(meminfo.Mul(td, out), meminfo.Mul(int64(sq), meminfo.Mul(int64(n.Heads), meminfo.Mul(t, t))))
		case OpDropout:
			if f.train && n.P > 0 { // output and a float64 mask
				c.fwd = meminfo.Add(out, meminfo.Mul(out, max(1, 8/size)))
			}
		case OpMaxPool2d: // output and arg-max indices
			c.fwd = meminfo.Mul(2, out)
		case OpGlobalAvgPool: // a reshaped copy of the input, sum, mean
			c.fwd = meminfo.Add(count(xs), meminfo.Mul(2, out))
		}
		p.layers = append(p.layers, c)
	}
	// Each layer's last reader; a layer nobody reads (the logits) lives
	// to the end.
	readers := make([]int, len(p.layers))
	for i, n := range d.Nodes {
		for _, in := range n.Inputs {
			if j, ok := at[in]; ok {
				readers[j] = max(readers[j], i+1)
			}
		}
	}
	for j := 1; j < len(p.layers); j++ {
		if readers[j] > 0 {
			p.layers[j].last = readers[j]
		}
	}
	return p.estimate(batch, dt, g)
}

// convCost returns a convolution's per-example column cache (a copy of its
// input [C, H, W] and the columns [C·K·K, OH·OW]) and one op's per-worker
// scratch: backward-input columns, the weight-gradient accumulator [O,
// C·K·K], a transposed output gradient [OH·OW, O] and GEMM packing of at
// most one more columns-sized and output-sized buffer.
//
// A convolution the implicit-GEMM path computes (kernel 3, stride 1,
// padding 1, and the stride-2 geometries of convGeom.implicit) keeps no
// column cache: its scratch is implicitScratch.
func convCost(in, out []int, k, stride, pad int) (cols, scratch int64) {
	if (convGeom{k: k, s: stride, p: pad}).implicit() {
		return 0, implicitScratch(in, out, k, stride, pad)
	}
	ckk := meminfo.Mul(int64(in[0]), meminfo.Mul(int64(k), int64(k)))
	pix := meminfo.Mul(int64(out[1]), int64(out[2]))
	o := int64(out[0])
	colN := meminfo.Mul(ckk, pix)
	cols = meminfo.Add(count(in), colN)
	scratch = meminfo.Add(meminfo.Mul(2, colN), meminfo.Add(meminfo.Mul(o, ckk), meminfo.Mul(2, meminfo.Mul(pix, o))))
	return cols, scratch
}

// implicitScratch bounds the per-worker buffers of any one op of an
// implicit-GEMM convolution (conv_implicit.go; an op computes one of the
// three kinds) of kernel k at the given stride and padding, in elements:
// the most of the three, with the phase planes' L = OH·Wq and Pl(ch) =
// ch·F²·Hq·Wq + padSlack (convGeom.padDims; at stride 1 L = H·(W+2) and
// Pl(ch) = ch·(H+2)(W+2) + padSlack), T = K² taps,
//
//	forward:        Pl(C) + O·L + T·O·C (taps) + 4·T·C (packed taps)
//	input gradient: Pl(O) + C·L + T·O·C + 4·T·O (at stride 2, by phases:
//	                O·(OH+2E)(OW+2E) + padSlack + C·(OH+E)(OW+2E) + T·O·C
//	                + 4·T·O, E = (K−1)/2)
//	weight grad.:   Pl(C₄) + O·L + T·O·C₄ (accumulator) + 4·256 (A blocks)
//	                + ⌈M/32⌉·32·min(256, L), M = max(C, O) (B panels: the
//	                transposed shifted views, or the widened gradient's;
//	                C₄ = C rounded up to 4, the dot form's planes)
//
// and where the forward and input gradient take im2col with per-worker
// columns instead (output planes narrower than implicitMinW): T·C·OH·OW
// columns + 4·256 + ⌈OH·OW/32⌉·32·min(256, K), K = T·C (forward) or O
// (input gradient), the GEMM's packing of its ragged last panel.
func implicitScratch(in, out []int, k, stride, pad int) int64 {
	g := convGeom{c: in[0], h: in[1], w: in[2], o: out[0], oh: out[1], ow: out[2], k: k, s: stride, p: pad}
	c, o := int64(g.c), int64(g.o)
	wq, hq, f := int64(g.ow+(k-1)/stride), int64(g.oh+(k-1)/stride), int64(min(stride, k))
	l := meminfo.Mul(int64(g.oh), wq)
	t := int64(k * k)
	up32 := func(n int64) int64 { return meminfo.Mul((n+31)/32, 32) }
	pl := func(ch int64) int64 {
		return meminfo.Add(meminfo.Mul(ch, meminfo.Mul(f*f, meminfo.Mul(hq, wq))), padSlack)
	}
	sum := func(v ...int64) int64 {
		var s int64
		for _, x := range v {
			s = meminfo.Add(s, x)
		}
		return s
	}
	toc := meminfo.Mul(t, meminfo.Mul(o, c))
	fwd := sum(pl(c), meminfo.Mul(o, l), toc, meminfo.Mul(4*t, c))
	bwdX := sum(pl(o), meminfo.Mul(c, l), toc, meminfo.Mul(4*t, o))
	if e := int64((k - 1) / stride); stride > 1 {
		// by phases (convBwdXStrided): G padded by E, grids (OH+E)·(OW+2E)
		wg := int64(g.ow) + 2*e
		bwdX = sum(meminfo.Add(meminfo.Mul(o, meminfo.Mul(int64(g.oh)+2*e, wg)), padSlack),
			meminfo.Mul(c, meminfo.Mul(int64(g.oh)+e, wg)), toc, meminfo.Mul(4*t, o))
	}
	c4 := int64(dotChannels(g.c))
	bwdW := sum(pl(c4), meminfo.Mul(o, l), meminfo.Mul(t, meminfo.Mul(o, c4)), 4*256, meminfo.Mul(up32(max(c, o)), min(256, l)))
	pix := meminfo.Mul(int64(g.oh), int64(g.ow))
	cols, panels := meminfo.Mul(meminfo.Mul(t, c), pix), up32(pix)
	if !g.implicitFwd() {
		fwd = sum(cols, 4*256, meminfo.Mul(panels, min(256, meminfo.Mul(t, c))))
	}
	if !g.implicitBwdX() {
		bwdX = sum(cols, 4*256, meminfo.Mul(panels, min(256, o)))
	}
	return max(fwd, bwdX, bwdW)
}

// count is the number of elements of shape (checked by Check to be at most
// MaxTensorElements, saturating all the same).
func count(shape []int) int64 {
	n := int64(1)
	for _, d := range shape {
		n = meminfo.Mul(n, int64(d))
	}
	return n
}
