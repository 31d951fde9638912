package hessian

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/curvopt/curvopt/nn"
	"github.com/curvopt/curvopt/optim"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Block locates one parameter inside the flat vector used by Dim, HVPFlat
// and the spectrum tools: the concatenation of all parameters, each
// flattened row-major, in model order.
type Block struct {
	Name   string
	Offset int
	Size   int
	Shape  []int
}

// Option configures an Engine.
type Option func(*config) error

type config struct {
	probes   optim.ProbeSource
	sampler  nn.LabelSampler
	gnbBatch int
}

// WithProbes sets the probe source Hutchinson draws z from (default:
// Rademacher probes seeded with 1).
func WithProbes(src optim.ProbeSource) Option {
	return func(c *config) error {
		if src == nil {
			return errors.New("hessian: WithProbes(nil)")
		}
		c.probes = src
		return nil
	}
}

// WithSampler sets the sampler that draws labels from the model's softmax
// for SampledGrad (default: RandSampler seeded with 1).
func WithSampler(s nn.LabelSampler) Option {
	return func(c *config) error {
		if s == nil {
			return errors.New("hessian: WithSampler(nil)")
		}
		c.sampler = s
		return nil
	}
}

// WithRand makes SampledGrad draw labels with r (a RandSampler).
func WithRand(r *rand.Rand) Option {
	return func(c *config) error {
		if r == nil {
			return errors.New("hessian: WithRand(nil)")
		}
		c.sampler = RandSampler{R: r}
		return nil
	}
}

// WithGNBBatch makes SampledGrad use only the first n rows of the current
// batch, as Sophia's paper computes the Gauss-Newton-Bartlett estimate on a
// sub-batch: the result is then the gradient of the mean cross-entropy over
// those n rows against labels sampled from their softmax, and SophiaG's
// BatchSize (bs) should be n, not the training batch size. The sampler sees
// n rows. Every batch given to SetBatch must have at least n rows.
//
// On an engine from New the sampled gradient runs on its own graph of n
// rows, compiled once at the first SetBatch, so it costs a forward and a
// backward pass over n rows only (with batch norm, its statistics are those
// of the n rows). On an engine from NewGraph, whose one graph has a fixed
// batch size, the first n rows of the logits are selected inside that graph:
// the estimate is the same for a graph whose rows do not interact, but the
// pass still runs over the whole batch.
func WithGNBBatch(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("hessian: WithGNBBatch(%d): want n ≥ 1", n)
		}
		c.gnbBatch = n
		return nil
	}
}

// Engine is the curvature engine of one model. It compiles, per batch size,
// one Gorgonia graph holding the training-mode forward pass, the loss and
// its gradient, and — only where the declared optim.Needs ask for them —
// the Hessian-vector product (double backprop) and the gradient against
// labels sampled from the model's softmax, and reuses it for every batch of
// that size. It implements optim.Oracle for the current batch at the current
// parameter values: the tensors in Params()[i].Value are the values bound to
// the graph's parameter nodes, so in-place updates by an optimizer are seen
// by the next query. It implements optim.Provider, so an optimizer whose
// Needs the engine was not built for refuses it at its first Step.
//
// An engine made by New builds its graphs from an nn.Model, for any batch
// size; one made by NewGraph wraps a single user-built graph of a fixed
// batch size.
//
// An Engine is not safe for concurrent use.
type Engine struct {
	model   *nn.Model // nil for a NewGraph engine
	needs   optim.Needs
	cfg     config
	dt      tensor.Dtype
	classes int
	example []int // shape of one input example
	// rows is the number of logit rows (and labels) per example: 1, or T
	// for a sequence model with logits [N·T, classes].
	rows   int
	params []optim.Param
	grads  []*tensor.Dense // Params()[i].Grad
	blocks []Block
	dim    int

	fixed *trainProg         // NewGraph: the one graph
	progs map[int]*trainProg // New: per batch size
	evals map[int]*evalProg
	gnb   *trainProg // New with WithGNBBatch: the sampled gradient's graph
	cur   *trainProg
	// labels of the current batch
	labels []int
	// lastGNB: the graph part of the last SampledGrad (for SampledLabels).
	lastGNB *gnbPart

	// hvCache: the last mHVP run was for these probe tensors (by identity).
	hvFor  []*tensor.Dense
	hvOK   bool
	logits *tensor.Dense
	ran    bool
	zbuf   []*tensor.Dense
	// scratch for HVPFlat, gradFlatNow and Loss
	fv, fo, ftmp []*tensor.Dense
	flat         []float64
	xsave        *tensor.Dense
}

// trainProg is one compiled training-mode graph and its machines.
type trainProg struct {
	n      int
	g      *gorgonia.ExprGraph
	net    *nn.Net // New engines only (running statistics)
	logitN *gorgonia.Node
	x, y   *tensor.Dense
	loss   *gorgonia.Node
	grads  []*gorgonia.Node
	v      []*tensor.Dense
	hv     []*gorgonia.Node
	gnb    *gnbPart
	mGrad  gorgonia.VM
	mHVP   gorgonia.VM
	mEval  gorgonia.VM // NewGraph: forward only, compiled by the first EvalLogits
}

// gnbPart is the sampled-label gradient inside a trainProg.
type gnbPart struct {
	rows   int
	tgt    *gorgonia.Node
	loss   *gorgonia.Node
	grads  []*gorgonia.Node
	m      gorgonia.VM
	labels []int // the sampled labels, shared with the sampling op
}

type evalProg struct {
	x   *tensor.Dense
	net *nn.Net
	m   gorgonia.VM
}

// newBaseEngine applies the options and records the parameters.
func newBaseEngine(dt tensor.Dtype, needs optim.Needs, names []string, values []*tensor.Dense, opts []Option) (*Engine, error) {
	cfg := config{probes: optim.NewRandomProbes(optim.Rademacher, 1)}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if cfg.sampler == nil {
		cfg.sampler = RandSampler{R: rand.New(rand.NewPCG(1, 2))}
	}
	e := &Engine{needs: needs, cfg: cfg, dt: dt, rows: 1, progs: map[int]*trainProg{}, evals: map[int]*evalProg{}}
	off := 0
	for i, v := range values {
		sh := v.Shape().Clone()
		g := tensor.New(tensor.Of(dt), tensor.WithShape(sh...))
		e.params = append(e.params, optim.Param{Name: names[i], Value: v, Grad: g})
		e.grads = append(e.grads, g)
		e.blocks = append(e.blocks, Block{Name: names[i], Offset: off, Size: sh.TotalSize(), Shape: []int(sh)})
		off += sh.TotalSize()
	}
	e.dim = off
	return e, nil
}

// New returns an engine for model that provides the curvature queries of
// needs (an engine built for optim.Needs{} answers loss and gradient only).
// Graphs are compiled lazily, per batch size, at the first SetBatch of that
// size.
func New(model *nn.Model, needs optim.Needs, opts ...Option) (*Engine, error) {
	if model == nil {
		return nil, errors.New("hessian: nil model")
	}
	var names []string
	var values []*tensor.Dense
	for _, p := range model.Params() {
		names, values = append(names, p.Name), append(values, p.Value)
	}
	e, err := newBaseEngine(model.Dtype(), needs, names, values, opts)
	if err != nil {
		return nil, err
	}
	e.model, e.classes, e.example = model, model.Classes(), model.InputShape()
	e.rows = model.RowsPerExample()
	return e, nil
}

// Model returns the engine's model (nil for an engine made by NewGraph).
func (e *Engine) Model() *nn.Model { return e.model }

// Provides returns the curvature queries the engine answers: those of the
// optim.Needs it was built for. It implements optim.Provider, so
// optim.CheckOracle (called by the optimizers at every Step) refuses an
// engine that lacks the optimizer's query before anything changes.
func (e *Engine) Provides() optim.Needs { return e.needs }

// Needs returns the curvature queries the engine was built for; it is the
// same as Provides, kept for existing callers.
func (e *Engine) Needs() optim.Needs { return e.needs }

// Params returns the parameters in model order: Value is the model's tensor
// (bound to the graphs), Grad is filled by LossGrad. The slice is shared.
func (e *Engine) Params() []optim.Param { return e.params }

// Dim returns the total number of scalar parameters.
func (e *Engine) Dim() int { return e.dim }

// ParamBlocks returns where each parameter lies in the flat vector.
func (e *Engine) ParamBlocks() []Block {
	out := make([]Block, len(e.blocks))
	for i, b := range e.blocks {
		out[i] = b
		out[i].Shape = append([]int{}, b.Shape...)
	}
	return out
}

// graphIn is one graph for compile: its nodes and, for New engines, the
// nn.Net they came from.
type graphIn struct {
	g       *gorgonia.ExprGraph
	n       int
	x       *gorgonia.Node
	targets *gorgonia.Node // nil: compile adds one
	logits  *gorgonia.Node
	loss    *gorgonia.Node // nil: nn.CrossEntropy(logits, targets)
	params  []*gorgonia.Node
	net     *nn.Net
}

// parts selects what compile builds.
type parts struct {
	grad, hvp, gnb bool
	gnbRows        int // rows of the sampled loss (≤ n); 0 means n
}

// compile binds the engine's input and target tensors to the graph, adds
// the derivative graphs that what asks for and compiles their machines.
func (e *Engine) compile(in graphIn, what parts) (*trainProg, error) {
	g, n := in.g, in.n
	p := &trainProg{n: n, g: g, net: in.net, logitN: in.logits}
	p.x = tensor.New(tensor.Of(e.dt), tensor.WithShape(in.x.Shape().Clone()...))
	if err := gorgonia.Let(in.x, p.x); err != nil {
		return nil, fmt.Errorf("binding input: %w", err)
	}
	one := tensor.New(tensor.Of(e.dt), tensor.WithShape(1))
	fillConst(one, 1)
	seed := gorgonia.NewTensor(g, e.dt, 1, gorgonia.WithShape(1), gorgonia.WithName("hessian.one"), gorgonia.WithValue(one))
	var err error
	if what.grad {
		ln, err := e.lossNode(in, p)
		if err != nil {
			return nil, err
		}
		p.loss = ln
		if p.grads, err = nn.Backprop([]*gorgonia.Node{ln}, []*gorgonia.Node{seed}, in.params); err != nil {
			return nil, fmt.Errorf("gradient graph: %w", err)
		}
		roots := append([]*gorgonia.Node{ln, in.logits}, nonNil(p.grads)...)
		if p.mGrad, err = machine(g, roots); err != nil {
			return nil, err
		}
		if what.hvp {
			outs, vs := []*gorgonia.Node{}, []*gorgonia.Node{}
			p.v = make([]*tensor.Dense, len(in.params))
			for i, pn := range in.params {
				p.v[i] = tensor.New(tensor.Of(e.dt), tensor.WithShape(pn.Shape().Clone()...))
				if p.grads[i] == nil {
					continue
				}
				vn := gorgonia.NewTensor(g, e.dt, pn.Dims(), gorgonia.WithShape(pn.Shape().Clone()...), gorgonia.WithName("hessian.v:"+e.params[i].Name), gorgonia.WithValue(p.v[i]))
				outs, vs = append(outs, p.grads[i]), append(vs, vn)
			}
			// The forward graph first, so that a refused op is named as the
			// user wrote it (SoftMax rather than its backward op).
			if err := nn.AuditSecondOrder([]*gorgonia.Node{ln}, in.params); err != nil {
				return nil, fmt.Errorf("HVP graph: %w", err)
			}
			if err := nn.AuditSecondOrder(outs, in.params); err != nil {
				return nil, fmt.Errorf("HVP graph: %w", err)
			}
			if p.hv, err = nn.Backprop(outs, vs, in.params); err != nil {
				return nil, fmt.Errorf("HVP graph: %w", err)
			}
			if p.mHVP, err = machine(g, append(roots, nonNil(p.hv)...)); err != nil {
				return nil, err
			}
		}
	}
	if what.gnb {
		if p.gnb, err = e.gnbGraph(in, seed, what.gnbRows); err != nil {
			return nil, fmt.Errorf("sampled-gradient graph: %w", err)
		}
	}
	return p, nil
}

// lossNode returns the training loss of in, binding the engine's one-hot
// target tensor p.y to the targets node (added when in has none).
func (e *Engine) lossNode(in graphIn, p *trainProg) (*gorgonia.Node, error) {
	p.y = tensor.New(tensor.Of(e.dt), tensor.WithShape(in.n*e.rows, e.classes))
	tn := in.targets
	if tn == nil {
		tn = gorgonia.NewTensor(in.g, e.dt, 2, gorgonia.WithShape(in.n*e.rows, e.classes), gorgonia.WithName("hessian.targets"))
	}
	if err := gorgonia.Let(tn, p.y); err != nil {
		return nil, fmt.Errorf("binding targets: %w", err)
	}
	if in.loss != nil {
		return in.loss, nil
	}
	return nn.CrossEntropy(in.logits, tn)
}

// gnbGraph adds the sampled-label cross-entropy of the first rows rows of
// the logits and its gradient.
func (e *Engine) gnbGraph(in graphIn, seed *gorgonia.Node, rows int) (*gnbPart, error) {
	if rows == 0 {
		rows = in.n
	}
	// Examples to logit rows (T rows per example for sequence models).
	rows *= e.rows
	all := in.n * e.rows
	z := in.logits
	if rows < all {
		// z[:rows] = S·z with S = [I_rows 0]: exact (products by 1, sums with 0).
		sel := tensor.New(tensor.Of(e.dt), tensor.WithShape(rows, all))
		for r := 0; r < rows; r++ {
			if e.dt == tensor.Float64 {
				sel.Float64s()[r*all+r] = 1
			} else {
				sel.Float32s()[r*all+r] = 1
			}
		}
		sn := gorgonia.NewTensor(in.g, e.dt, 2, gorgonia.WithShape(rows, all), gorgonia.WithName("hessian.gnb_rows"), gorgonia.WithValue(sel))
		var err error
		if z, err = nn.MatMul(sn, z, false, false); err != nil {
			return nil, err
		}
	}
	s := &gnbPart{rows: rows}
	var err error
	if s.tgt, err = nn.SampledTargets(z, e.cfg.sampler); err != nil {
		return nil, err
	}
	if s.labels, err = nn.SampledLabels(s.tgt); err != nil {
		return nil, err
	}
	if s.loss, err = nn.CrossEntropy(z, s.tgt); err != nil {
		return nil, err
	}
	if s.grads, err = nn.Backprop([]*gorgonia.Node{s.loss}, []*gorgonia.Node{seed}, in.params); err != nil {
		return nil, err
	}
	if s.m, err = machine(in.g, append([]*gorgonia.Node{s.loss}, nonNil(s.grads)...)); err != nil {
		return nil, err
	}
	return s, nil
}

// buildModel compiles the training graph of the model for batch size n.
func (e *Engine) buildModel(n int, what parts) (*trainProg, error) {
	g := gorgonia.NewGraph()
	net, err := e.model.Build(g, n, true)
	if err != nil {
		return nil, err
	}
	return e.compile(graphIn{g: g, n: n, x: net.X, logits: net.Logits, params: net.Params, net: net}, what)
}

// prog returns the compiled training graph for batch size n.
func (e *Engine) prog(n int) (*trainProg, error) {
	if e.fixed != nil {
		if n != e.fixed.n {
			return nil, fmt.Errorf("batch of %d rows, but the graph was built for %d", n, e.fixed.n)
		}
		return e.fixed, nil
	}
	if k := e.cfg.gnbBatch; e.needs.SampledGrad && k > 0 && e.gnb == nil {
		p, err := e.buildModel(k, parts{gnb: true})
		if err != nil {
			return nil, fmt.Errorf("compiling the sampled-gradient graph for %d rows: %w", k, err)
		}
		e.gnb = p
	}
	if p, ok := e.progs[n]; ok {
		return p, nil
	}
	p, err := e.buildModel(n, parts{grad: true, hvp: e.needs.HVP, gnb: e.needs.SampledGrad && e.cfg.gnbBatch == 0})
	if err != nil {
		return nil, fmt.Errorf("compiling graphs for batch size %d: %w", n, err)
	}
	e.progs[n] = p
	return p, nil
}

func nonNil(ns []*gorgonia.Node) []*gorgonia.Node {
	var out []*gorgonia.Node
	for _, n := range ns {
		if n != nil {
			out = append(out, n)
		}
	}
	return out
}

func machine(g *gorgonia.ExprGraph, roots []*gorgonia.Node) (vm gorgonia.VM, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("hessian: compiling graph: %v", r)
		}
	}()
	return gorgonia.NewTapeMachine(g.SubgraphRoots(roots...)), nil
}

func runVM(vm gorgonia.VM) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("hessian: running graph: %v", r)
		}
	}()
	vm.Reset()
	if err := vm.RunAll(); err != nil {
		return fmt.Errorf("hessian: running graph: %w", err)
	}
	return nil
}

// checkInput checks that x is a batch [N, example...] (or [N, Π example])
// of the engine's dtype and returns N.
func (e *Engine) checkInput(x *tensor.Dense, what string) (int, error) {
	if x == nil {
		return 0, fmt.Errorf("hessian: %s: nil input", what)
	}
	if x.Dtype() != e.dt {
		return 0, fmt.Errorf("hessian: %s: input dtype %v, model dtype %v", what, x.Dtype(), e.dt)
	}
	xs := x.Shape()
	per := 1
	for _, d := range e.example {
		per *= d
	}
	if xs.Dims() < 2 || xs[0] < 1 || xs.TotalSize() != xs[0]*per {
		return 0, fmt.Errorf("hessian: %s: input shape %v, want [N %v]", what, xs, e.example)
	}
	return xs[0], nil
}

// SetBatch makes (x, labels) the current batch. x has shape [N,
// input_shape...] (or [N, Π input_shape]) and the model's dtype; labels has N
// entries (N·T for a sequence model with T logit rows per example, sample by
// sample) in [0, classes). Both are copied. On an engine from New, the first
// batch of each size N compiles that size's graphs; on one from NewGraph, N
// must be the graph's batch size.
func (e *Engine) SetBatch(x *tensor.Dense, labels []int) error {
	n, err := e.checkInput(x, "SetBatch")
	if err != nil {
		return err
	}
	if len(labels) != n*e.rows {
		return fmt.Errorf("hessian: SetBatch: %d labels for a batch of %d with %d logit rows each", len(labels), n, e.rows)
	}
	c := e.classes
	for i, l := range labels {
		if l < 0 || l >= c {
			return fmt.Errorf("hessian: SetBatch: label %d at row %d out of range [0, %d)", l, i, c)
		}
	}
	if k := e.cfg.gnbBatch; e.needs.SampledGrad && n < k {
		return fmt.Errorf("hessian: SetBatch: batch of %d rows is smaller than the sampled-gradient batch %d (WithGNBBatch)", n, k)
	}
	p, err := e.prog(n)
	if err != nil {
		return fmt.Errorf("hessian: SetBatch: %w", err)
	}
	if err := copyDense(p.x, x); err != nil {
		return fmt.Errorf("hessian: SetBatch: %w", err)
	}
	if e.dt == tensor.Float64 {
		oneHot(p.y.Float64s(), labels, c)
	} else {
		oneHot(p.y.Float32s(), labels, c)
	}
	if e.model != nil && e.model.DropoutState() != nil {
		e.model.DropoutState().Next() // new dropout masks for the new batch
	}
	e.cur = p
	e.labels = append(e.labels[:0], labels...)
	e.hvOK, e.ran = false, false
	return nil
}

func oneHot[T nn.Float](y []T, labels []int, c int) {
	clear(y)
	for r, l := range labels {
		y[r*c+l] = 1
	}
}

func (e *Engine) current() (*trainProg, error) {
	if e.cur == nil {
		return nil, errors.New("hessian: no batch set (call SetBatch first)")
	}
	return e.cur, nil
}

// lossValue reads the scalar loss node and checks it is finite.
func lossValue(n *gorgonia.Node, what string) (float64, error) {
	d, ok := n.Value().(*tensor.Dense)
	if !ok {
		return 0, fmt.Errorf("hessian: %s not computed", what)
	}
	l := first(d)
	if math.IsNaN(l) || math.IsInf(l, 0) {
		return l, fmt.Errorf("hessian: %s is %v: %w", what, l, optim.ErrNonFinite)
	}
	return l, nil
}

// readInto checks the node values for non-finite entries and copies them
// into out (nil nodes give zeros).
func (e *Engine) readInto(nodes []*gorgonia.Node, out []*tensor.Dense, what string) error {
	for i, n := range nodes {
		if n == nil {
			continue
		}
		d, ok := n.Value().(*tensor.Dense)
		if !ok {
			return fmt.Errorf("hessian: %s of %q not computed", what, e.params[i].Name)
		}
		if err := finite(d); err != nil {
			return fmt.Errorf("hessian: %s of %q: %w", what, e.params[i].Name, err)
		}
	}
	for i, n := range nodes {
		if n == nil {
			fillConst(out[i], 0)
			continue
		}
		if err := copyDense(out[i], n.Value().(*tensor.Dense)); err != nil {
			return fmt.Errorf("hessian: %s of %q: %w", what, e.params[i].Name, err)
		}
	}
	return nil
}

// LossGrad runs the forward and backward pass on the current batch at the
// current parameters, fills Params()[i].Grad with ∇L and returns the loss
// L = (1/N) Σₙ [log Σⱼ exp(zₙⱼ) − zₙ,labelₙ]. Batch-norm running statistics
// are updated. A non-finite loss or gradient is an error naming it, and then
// the gradients are left unchanged.
func (e *Engine) LossGrad() (float64, error) {
	p, err := e.current()
	if err != nil {
		return 0, err
	}
	return e.trainRun(p, p.mGrad)
}

func (e *Engine) trainRun(p *trainProg, vm gorgonia.VM) (float64, error) {
	e.hvOK = false
	if err := runVM(vm); err != nil {
		return 0, err
	}
	loss, err := lossValue(p.loss, "loss")
	if err != nil {
		return loss, err
	}
	if err := e.readInto(p.grads, e.grads, "gradient"); err != nil {
		return loss, err
	}
	if p.net != nil {
		if err := e.model.UpdateRunningStats(p.net); err != nil {
			return loss, fmt.Errorf("hessian: %w", err)
		}
	}
	if err := e.saveLogits(p); err != nil {
		return loss, err
	}
	e.ran = true
	return loss, nil
}

// LossGradHVP is LossGrad that also computes H·probe in the same run of the
// graph. A following HVP call whose v holds the same tensors as probe (by
// identity, with unchanged contents) is answered from this run without
// running the graph again. It needs an engine built with Needs.HVP.
func (e *Engine) LossGradHVP(probe []*tensor.Dense) (float64, error) {
	p, err := e.current()
	if err != nil {
		return 0, err
	}
	if p.mHVP == nil {
		return 0, fmt.Errorf("hessian: LossGradHVP: %w (engine built without Needs.HVP)", optim.ErrNotProvided)
	}
	if err := e.checkTensors(probe, "probe"); err != nil {
		return 0, err
	}
	for i := range probe {
		if err := copyDense(p.v[i], probe[i]); err != nil {
			return 0, err
		}
	}
	loss, err := e.trainRun(p, p.mHVP)
	if err != nil {
		return loss, err
	}
	e.hvFor = append(e.hvFor[:0], probe...)
	e.hvOK = true
	return loss, nil
}

// Prepare computes the loss and gradient for the step opt is about to take.
// When opt is an optim.Prober that wants a probe for this step (AdaHessian,
// SophiaH), it draws the probe first and computes loss, gradient and H·z in
// one run, so that opt's HVP call during Step is answered from that run.
func (e *Engine) Prepare(opt optim.Optimizer) (float64, error) {
	if pr, ok := opt.(optim.Prober); ok && e.needs.HVP {
		probe, err := pr.NextProbe(e.params)
		if err != nil {
			return 0, fmt.Errorf("hessian: drawing probe: %w", err)
		}
		if probe != nil {
			return e.LossGradHVP(probe)
		}
	}
	return e.LossGrad()
}

// TrainStep is one optimization step on the current batch: Prepare, then
// opt.Step(Params(), e). It returns the loss before the step.
func (e *Engine) TrainStep(opt optim.Optimizer) (float64, error) {
	loss, err := e.Prepare(opt)
	if err != nil {
		return loss, err
	}
	if err := opt.Step(e.params, e); err != nil {
		return loss, fmt.Errorf("hessian: %s step: %w", opt.Name(), err)
	}
	return loss, nil
}

// Logits returns the logits [N, classes] of the last LossGrad (or
// LossGradHVP) run, copied when that run finished; the tensor is owned by
// the engine and overwritten by the next such run. Nil before the first run.
func (e *Engine) Logits() *tensor.Dense {
	if !e.ran {
		return nil
	}
	return e.logits
}

// saveLogits copies the current run's logits.
func (e *Engine) saveLogits(p *trainProg) error {
	v, ok := p.logitN.Value().(*tensor.Dense)
	if !ok {
		return errors.New("hessian: logits not computed")
	}
	if e.logits == nil || !e.logits.Shape().Eq(v.Shape()) {
		e.logits = tensor.New(tensor.Of(e.dt), tensor.WithShape(v.Shape().Clone()...))
	}
	return copyDense(e.logits, v)
}

// Labels returns the labels of the current batch (shared; do not modify).
func (e *Engine) Labels() []int { return e.labels }

func (e *Engine) checkTensors(ts []*tensor.Dense, what string) error {
	if len(ts) != len(e.params) {
		return fmt.Errorf("hessian: %d %s tensors for %d parameters", len(ts), what, len(e.params))
	}
	for i, t := range ts {
		p := e.params[i]
		if t == nil {
			return fmt.Errorf("hessian: %s for %q is nil", what, p.Name)
		}
		if t.Dtype() != e.dt || !t.Shape().Eq(p.Value.Shape()) {
			return fmt.Errorf("hessian: %s for %q has %v %v, want %v %v", what, p.Name, t.Dtype(), t.Shape(), e.dt, p.Value.Shape())
		}
	}
	return nil
}

// HVP sets out = H·v, H the Hessian of the current batch's loss at the
// current parameters, exactly (double backprop through the graph). It
// implements optim.Oracle; without Needs.HVP it returns optim.ErrNotProvided.
func (e *Engine) HVP(v, out []*tensor.Dense) error {
	p, err := e.current()
	if err != nil {
		return err
	}
	if p.mHVP == nil {
		return fmt.Errorf("hessian: HVP: %w (engine built without Needs.HVP)", optim.ErrNotProvided)
	}
	if err := e.checkTensors(v, "direction"); err != nil {
		return err
	}
	if err := e.checkTensors(out, "output"); err != nil {
		return err
	}
	if !e.cached(p, v) {
		for i := range v {
			if err := copyDense(p.v[i], v[i]); err != nil {
				return err
			}
		}
		e.hvOK = false
		if err := runVM(p.mHVP); err != nil {
			return err
		}
		if _, err := lossValue(p.loss, "loss"); err != nil {
			return err
		}
	}
	return e.readInto(p.hv, out, "Hessian-vector product")
}

func (e *Engine) cached(p *trainProg, v []*tensor.Dense) bool {
	if !e.hvOK || len(e.hvFor) != len(v) {
		return false
	}
	for i := range v {
		if v[i] != e.hvFor[i] || !equalDense(v[i], p.v[i]) {
			return false
		}
	}
	return true
}

// SampledGrad sets out to the gradient of the mean cross-entropy of the
// current batch against labels drawn from softmax(logits) at the current
// parameters (Sophia's Gauss-Newton-Bartlett ĝ), sampling and
// differentiating in one run. With WithGNBBatch(n) only the first n rows of
// the batch are used: ĝ is then the gradient of the mean cross-entropy over
// those n rows (set SophiaG's BatchSize to n). The run includes a forward
// pass, since the parameters usually changed since the last LossGrad
// (SophiaG queries after its update). It implements optim.Oracle; without
// Needs.SampledGrad it returns optim.ErrNotProvided.
func (e *Engine) SampledGrad(out []*tensor.Dense) error {
	p, err := e.current()
	if err != nil {
		return err
	}
	if !e.needs.SampledGrad {
		return fmt.Errorf("hessian: SampledGrad: %w (engine built without Needs.SampledGrad)", optim.ErrNotProvided)
	}
	if err := e.checkTensors(out, "output"); err != nil {
		return err
	}
	s := p.gnb
	if s == nil {
		// New with WithGNBBatch: the first rows of the batch on their own graph.
		s = e.gnb.gnb
		xs := e.gnb.x
		if err := copyPrefix(xs, p.x); err != nil {
			return fmt.Errorf("hessian: SampledGrad: %w", err)
		}
	}
	e.lastGNB = s
	if err := runVM(s.m); err != nil {
		return err
	}
	if _, err := lossValue(s.loss, "sampled-label loss"); err != nil {
		return err
	}
	return e.readInto(s.grads, out, "sampled gradient")
}

// SampledLabels returns the labels drawn by the last SampledGrad, one per
// row it used (shared, overwritten by the next call); nil if there was none.
func (e *Engine) SampledLabels() []int {
	if e.lastGNB == nil {
		return nil
	}
	return e.lastGNB.labels
}

// Hutchinson sets out = z⊙(H·z) for a probe z drawn from the engine's probe
// source (WithProbes), a one-sample unbiased estimate of diag(H) when z has
// independent entries of mean 0 and variance 1.
func (e *Engine) Hutchinson(out []*tensor.Dense) error {
	if err := e.checkTensors(out, "output"); err != nil {
		return err
	}
	if e.zbuf == nil {
		e.zbuf = optim.Like(e.params)
	}
	if err := e.cfg.probes.Fill(e.zbuf); err != nil {
		return fmt.Errorf("hessian: drawing probe: %w", err)
	}
	if err := e.HVP(e.zbuf, out); err != nil {
		return err
	}
	for i := range out {
		if e.dt == tensor.Float64 {
			mulInto(out[i].Float64s(), e.zbuf[i].Float64s())
		} else {
			mulInto(out[i].Float32s(), e.zbuf[i].Float32s())
		}
	}
	return nil
}

func mulInto[T nn.Float](o, z []T) {
	for i := range o {
		o[i] *= z[i]
	}
}

// HVPFlat sets out = H·v over the flat parameter vector (length Dim(), the
// concatenation of all parameters in model order; see ParamBlocks). Values
// are converted to and from the model's dtype.
func (e *Engine) HVPFlat(v, out []float64) error {
	if len(v) != e.dim || len(out) != e.dim {
		return fmt.Errorf("hessian: HVPFlat: lengths %d and %d, want Dim() = %d", len(v), len(out), e.dim)
	}
	if e.fv == nil {
		e.fv, e.fo = optim.Like(e.params), optim.Like(e.params)
	}
	e.unflatten(v, e.fv)
	if err := e.HVP(e.fv, e.fo); err != nil {
		return err
	}
	e.flatten(e.fo, out)
	return nil
}

// GradFlat copies the gradient of the last LossGrad into out (length Dim()).
func (e *Engine) GradFlat(out []float64) error {
	if len(out) != e.dim {
		return fmt.Errorf("hessian: GradFlat: length %d, want Dim() = %d", len(out), e.dim)
	}
	e.flatten(e.grads, out)
	return nil
}

func (e *Engine) flatten(ts []*tensor.Dense, out []float64) {
	for i, b := range e.blocks {
		dst := out[b.Offset : b.Offset+b.Size]
		if ts[i].Dtype() == tensor.Float64 {
			copy(dst, ts[i].Float64s())
			continue
		}
		for j, x := range ts[i].Float32s() {
			dst[j] = float64(x)
		}
	}
}

func (e *Engine) unflatten(v []float64, ts []*tensor.Dense) {
	for i, b := range e.blocks {
		src := v[b.Offset : b.Offset+b.Size]
		if ts[i].Dtype() == tensor.Float64 {
			copy(ts[i].Float64s(), src)
			continue
		}
		d := ts[i].Float32s()
		for j, x := range src {
			d[j] = float32(x)
		}
	}
}

// gradFlatNow runs the gradient graph at the current parameters and
// flattens ∇L into out without touching Params' gradients or running stats.
func (e *Engine) gradFlatNow(out []float64) (float64, error) {
	p, err := e.current()
	if err != nil {
		return 0, err
	}
	e.hvOK = false
	if err := runVM(p.mGrad); err != nil {
		return 0, err
	}
	loss, err := lossValue(p.loss, "loss")
	if err != nil {
		return loss, err
	}
	if e.ftmp == nil {
		e.ftmp = optim.Like(e.params)
	}
	if err := e.readInto(p.grads, e.ftmp, "gradient"); err != nil {
		return loss, err
	}
	e.flatten(e.ftmp, out)
	return loss, nil
}

// FiniteDiffHVP sets out ≈ H·v by central differences of the gradient,
// (∇L(θ + εv) − ∇L(θ − εv)) / 2ε, restoring θ afterwards. It is a
// cross-check for HVP, meaningful in float64 (ε ≈ 1e-5 gives ~1e-8 relative
// error); batch-norm running statistics are not updated.
func (e *Engine) FiniteDiffHVP(v, out []float64, eps float64) error {
	if len(v) != e.dim || len(out) != e.dim {
		return fmt.Errorf("hessian: FiniteDiffHVP: lengths %d and %d, want Dim() = %d", len(v), len(out), e.dim)
	}
	if !(eps > 0) {
		return fmt.Errorf("hessian: FiniteDiffHVP: step %v must be positive", eps)
	}
	theta := make([]float64, e.dim)
	vals := make([]*tensor.Dense, len(e.params))
	for i, p := range e.params {
		vals[i] = p.Value
	}
	e.flatten(vals, theta)
	defer e.unflatten(theta, vals)
	shifted := make([]float64, e.dim)
	gp, gm := make([]float64, e.dim), make([]float64, e.dim)
	for i := range shifted {
		shifted[i] = theta[i] + eps*v[i]
	}
	e.unflatten(shifted, vals)
	if _, err := e.gradFlatNow(gp); err != nil {
		return err
	}
	for i := range shifted {
		shifted[i] = theta[i] - eps*v[i]
	}
	e.unflatten(shifted, vals)
	if _, err := e.gradFlatNow(gm); err != nil {
		return err
	}
	for i := range out {
		out[i] = (gp[i] - gm[i]) / (2 * eps)
	}
	return nil
}

// Loss evaluates the training-mode loss of the current batch at the current
// parameters without computing or storing anything else of note (batch-norm
// running statistics are not updated).
func (e *Engine) Loss() (float64, error) {
	if e.flat == nil {
		e.flat = make([]float64, e.dim)
	}
	return e.gradFlatNow(e.flat)
}

func (e *Engine) evalProg(n int) (*evalProg, error) {
	if p, ok := e.evals[n]; ok {
		return p, nil
	}
	g := gorgonia.NewGraph()
	net, err := e.model.Build(g, n, false)
	if err != nil {
		return nil, err
	}
	p := &evalProg{net: net, x: tensor.New(tensor.Of(e.dt), tensor.WithShape(net.X.Shape()...))}
	if err := gorgonia.Let(net.X, p.x); err != nil {
		return nil, fmt.Errorf("binding input: %w", err)
	}
	if p.m, err = machine(g, []*gorgonia.Node{net.Logits}); err != nil {
		return nil, err
	}
	e.evals[n] = p
	return p, nil
}

// EvalLogits runs the model in evaluation mode (batch norm with running
// statistics) on x [N, input_shape...] of any batch size and returns the
// logits [N, classes] (a new tensor). The forward-only graph of each batch
// size is compiled once and cached. On an engine from NewGraph, N must be
// the graph's batch size and the forward pass is that of the user's graph
// (it has no separate evaluation mode); the current batch is kept.
func (e *Engine) EvalLogits(x *tensor.Dense) (*tensor.Dense, error) {
	n, err := e.checkInput(x, "EvalLogits")
	if err != nil {
		return nil, err
	}
	var v *tensor.Dense
	if e.fixed != nil {
		v, err = e.evalFixed(x, n)
	} else {
		v, err = e.evalModel(x, n)
	}
	if err != nil {
		return nil, err
	}
	out := tensor.New(tensor.Of(e.dt), tensor.WithShape(v.Shape().Clone()...))
	if err := copyDense(out, v); err != nil {
		return nil, err
	}
	return out, nil
}

func (e *Engine) evalModel(x *tensor.Dense, n int) (*tensor.Dense, error) {
	p, err := e.evalProg(n)
	if err != nil {
		return nil, fmt.Errorf("hessian: compiling evaluation graph for batch size %d: %w", n, err)
	}
	if err := copyDense(p.x, x); err != nil {
		return nil, err
	}
	if err := runVM(p.m); err != nil {
		return nil, err
	}
	v, ok := p.net.Logits.Value().(*tensor.Dense)
	if !ok {
		return nil, errors.New("hessian: EvalLogits: logits not computed")
	}
	return v, nil
}

// evalFixed runs the forward pass of a NewGraph engine's graph on x,
// restoring the current batch's input afterwards.
func (e *Engine) evalFixed(x *tensor.Dense, n int) (*tensor.Dense, error) {
	p := e.fixed
	if n != p.n {
		return nil, fmt.Errorf("hessian: EvalLogits: batch of %d rows, but the graph was built for %d", n, p.n)
	}
	if p.mEval == nil {
		m, err := machine(p.g, []*gorgonia.Node{p.logitN})
		if err != nil {
			return nil, err
		}
		p.mEval = m
	}
	if e.xsave == nil {
		e.xsave = tensor.New(tensor.Of(e.dt), tensor.WithShape(p.x.Shape().Clone()...))
	}
	if err := copyDense(e.xsave, p.x); err != nil {
		return nil, err
	}
	defer copyDense(p.x, e.xsave) //nolint:errcheck // same shapes
	if err := copyDense(p.x, x); err != nil {
		return nil, err
	}
	e.hvOK = false
	if err := runVM(p.mEval); err != nil {
		return nil, err
	}
	v, ok := p.logitN.Value().(*tensor.Dense)
	if !ok {
		return nil, errors.New("hessian: EvalLogits: logits not computed")
	}
	return v, nil
}

// Predict returns the arg-max class of each row of EvalLogits(x).
func (e *Engine) Predict(x *tensor.Dense) ([]int, error) {
	z, err := e.EvalLogits(x)
	if err != nil {
		return nil, err
	}
	n, c := z.Shape()[0], z.Shape()[1]
	out := make([]int, n)
	switch d := z.Data().(type) {
	case []float64:
		argmaxRows(d, c, out)
	case []float32:
		argmaxRows(d, c, out)
	}
	return out, nil
}

// Accuracy returns the fraction of rows of x whose predicted class equals
// the label.
func (e *Engine) Accuracy(x *tensor.Dense, labels []int) (float64, error) {
	pred, err := e.Predict(x)
	if err != nil {
		return 0, err
	}
	if len(labels) != len(pred) {
		return 0, fmt.Errorf("hessian: Accuracy: %d labels for %d rows", len(labels), len(pred))
	}
	ok := 0
	for i, p := range pred {
		if p == labels[i] {
			ok++
		}
	}
	return float64(ok) / float64(len(pred)), nil
}

func argmaxRows[T nn.Float](z []T, c int, out []int) {
	for r := range out {
		row := z[r*c : (r+1)*c]
		best := 0
		for j, v := range row {
			if v > row[best] {
				best = j
			}
		}
		out[r] = best
	}
}

// Close releases the compiled machines.
func (e *Engine) Close() error {
	progs := []*trainProg{e.fixed, e.gnb}
	for _, p := range e.progs {
		progs = append(progs, p)
	}
	for _, p := range progs {
		if p == nil {
			continue
		}
		ms := []gorgonia.VM{p.mGrad, p.mHVP, p.mEval}
		if p.gnb != nil {
			ms = append(ms, p.gnb.m)
		}
		for _, m := range ms {
			if m != nil {
				m.Close()
			}
		}
	}
	for _, p := range e.evals {
		p.m.Close()
	}
	e.progs, e.evals, e.cur, e.fixed, e.gnb, e.lastGNB = map[int]*trainProg{}, map[int]*evalProg{}, nil, nil, nil, nil
	return nil
}

var (
	_ optim.Oracle   = (*Engine)(nil)
	_ optim.Provider = (*Engine)(nil)
)
