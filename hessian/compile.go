package hessian

// Graph compilation: the training-mode graph of one batch size with the
// derivative graphs the engine's Needs ask for, and the machines that run
// them (hessian/internal/vm), which share one arena of buffers per graph.

import (
	"fmt"

	"github.com/curvopt/curvopt/hessian/internal/vm"
	"github.com/curvopt/curvopt/nn"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// trainProg is one compiled training-mode graph and its machines.
type trainProg struct {
	n     int
	g     *gorgonia.ExprGraph
	arena *vm.Arena // the buffers its machines share
	// xN and yN are the input and target nodes bound to x and y. A
	// NewGraph engine shares them with the user's own machine, whose
	// gorgonia.Let may rebind them between the engine's runs: every run
	// binds x and y again and gives the user's bindings back afterwards.
	xN, yN *gorgonia.Node
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
	mHV    gorgonia.VM    // loss and H·v only: none of the gradient's own products
	ce     *gorgonia.Node // mean cross-entropy of the logits against the targets
	mEval  gorgonia.VM    // NewGraph: forward only, compiled by the first evaluation
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
	gnbRows        int // logit rows of the sampled loss (≤ the logits' rows); 0 means all
}

// compile binds the engine's input and target tensors to the graph, adds
// the derivative graphs that what asks for and compiles their machines.
// The nodes get back the values a user bound to them before (each run
// binds the engine's tensors again: trainProg.run).
func (e *Engine) compile(in graphIn, what parts) (p *trainProg, err error) {
	var saved bindings
	if in.net == nil { // a user's graph: its nodes may carry the user's batch
		saved.save(in.x)
		saved.save(in.targets)
		defer func() {
			if err == nil {
				err = saved.restore()
			}
		}()
	}
	g, n := in.g, in.n
	p = &trainProg{n: n, g: g, net: in.net, logitN: in.logits, arena: vm.NewArena()}
	if in.net != nil {
		// read by Model.UpdateRunningStats after a training run
		p.arena.Keep(in.net.StatNodes()...)
	}
	p.x = tensor.New(tensor.Of(e.dt), tensor.WithShape(in.x.Shape().Clone()...))
	if err := gorgonia.Let(in.x, p.x); err != nil {
		return nil, fmt.Errorf("binding input: %w", err)
	}
	p.xN = in.x
	one := tensor.New(tensor.Of(e.dt), tensor.WithShape(1))
	fillConst(one, 1)
	seed := gorgonia.NewTensor(g, e.dt, 1, gorgonia.WithShape(1), gorgonia.WithName("hessian.one"), gorgonia.WithValue(one))
	if what.grad {
		ln, err := e.lossNode(in, p)
		if err != nil {
			return nil, err
		}
		p.loss = ln
		if p.grads, err = nn.Backprop([]*gorgonia.Node{ln}, []*gorgonia.Node{seed}, in.params); err != nil {
			return nil, fmt.Errorf("gradient graph: %w", err)
		}
		roots := append(nonNil([]*gorgonia.Node{ln, in.logits}), nonNil(p.grads)...)
		if p.mGrad, err = e.machine(p.arena, roots); err != nil {
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
			if p.mHVP, err = e.machine(p.arena, append(roots, nonNil(p.hv)...)); err != nil {
				return nil, err
			}
			// HVP alone leaves out the gradient's outputs: on the CNN, 10
			// convolution products instead of 13.
			if p.mHV, err = e.machine(p.arena, append([]*gorgonia.Node{ln}, nonNil(p.hv)...)); err != nil {
				return nil, err
			}
		}
	}
	if what.gnb {
		if p.gnb, err = e.gnbGraph(in, p.arena, seed, what.gnbRows); err != nil {
			return nil, fmt.Errorf("sampled-gradient graph: %w", err)
		}
	}
	return p, nil
}

// lossNode returns the training loss of in, binding the engine's one-hot
// target tensor p.y, one row per row of the logits, to the targets node
// (added when in has none), and sets p.ce to the mean cross-entropy of the
// logits (the loss itself unless in has its own).
func (e *Engine) lossNode(in graphIn, p *trainProg) (*gorgonia.Node, error) {
	tn := in.targets
	if in.logits == nil { // a user's cost without logits (NewGraph): no cross-entropy
		p.y = tensor.New(tensor.Of(e.dt), tensor.WithShape(tn.Shape().Clone()...))
		if err := gorgonia.Let(tn, p.y); err != nil {
			return nil, fmt.Errorf("binding targets: %w", err)
		}
		p.yN = tn
		return in.loss, nil
	}
	rows := in.logits.Shape()[0]
	p.y = tensor.New(tensor.Of(e.dt), tensor.WithShape(rows, e.classes))
	if tn == nil {
		tn = gorgonia.NewTensor(in.g, e.dt, 2, gorgonia.WithShape(rows, e.classes), gorgonia.WithName("hessian.targets"))
	}
	if err := gorgonia.Let(tn, p.y); err != nil {
		return nil, fmt.Errorf("binding targets: %w", err)
	}
	p.yN = tn
	ce, err := nn.CrossEntropy(in.logits, tn)
	if err != nil {
		return nil, err
	}
	p.ce = ce
	if in.loss != nil {
		return in.loss, nil
	}
	return ce, nil
}

// gnbGraph adds the sampled-label cross-entropy of the first rows rows of
// the logits and its gradient.
func (e *Engine) gnbGraph(in graphIn, a *vm.Arena, seed *gorgonia.Node, rows int) (*gnbPart, error) {
	all := in.logits.Shape()[0] // rows of the logits (one per label)
	if rows == 0 {
		rows = all
	}
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
	if s.m, err = e.machine(a, append([]*gorgonia.Node{s.loss}, nonNil(s.grads)...)); err != nil {
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
	if p, ok := e.progs.get(n); ok {
		return p, nil
	}
	p, err := e.buildModel(n, parts{grad: true, hvp: e.needs.HVP, gnb: e.needs.SampledGrad && e.cfg.gnbBatch == 0})
	if err != nil {
		return nil, fmt.Errorf("compiling graphs for batch size %d: %w", n, err)
	}
	e.progs.put(n, p, func(old *trainProg) {
		if old == e.cur {
			e.cur = nil
		}
		old.close()
	})
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

// machine returns the machine that computes roots, with buffers from a
// (vm.Machine: intermediates freed after their last reader), or gorgonia's
// tape machine when the engine was built with withTapeMachine (tests).
func (e *Engine) machine(a *vm.Arena, roots []*gorgonia.Node) (m gorgonia.VM, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("hessian: compiling graph: %v", r)
		}
	}()
	if e.cfg.tape {
		return gorgonia.NewTapeMachine(roots[0].Graph().SubgraphRoots(roots...)), nil
	}
	a.Keep(roots...)
	var opts []vm.Option
	if e.cfg.poison {
		opts = append(opts, vm.WithPoison())
	}
	m, err = vm.New(a, roots, opts...)
	if err != nil {
		return nil, fmt.Errorf("hessian: compiling graph: %w", err)
	}
	return m, nil
}

// run runs vm, one of p's machines, with p's input and target tensors
// bound to their nodes, and afterwards gives back whatever values those
// nodes had before (a user's machine sharing a NewGraph engine's graph
// binds its own batch with gorgonia.Let: the engine must neither read that
// batch nor leave the user's nodes bound to its tensors).
func (p *trainProg) run(vm gorgonia.VM) (err error) {
	var saved bindings
	defer func() {
		if rerr := saved.restore(); rerr != nil && err == nil {
			err = rerr
		}
	}()
	for _, b := range [2]struct {
		n *gorgonia.Node
		t *tensor.Dense
	}{{p.xN, p.x}, {p.yN, p.y}} {
		if b.n == nil || b.t == nil || b.n.Value() == gorgonia.Value(b.t) {
			continue
		}
		saved.save(b.n)
		if err := gorgonia.Let(b.n, b.t); err != nil {
			return fmt.Errorf("hessian: binding %q: %w", b.n.Name(), err)
		}
	}
	return runVM(vm)
}

// bindings records the values bound to up to two nodes (input and
// targets) so that they can be given back.
type bindings struct {
	n [2]*gorgonia.Node
	v [2]gorgonia.Value
	k int
}

// save records n's value; a nil node or a node with no value is skipped.
func (b *bindings) save(n *gorgonia.Node) {
	if n == nil || n.Value() == nil {
		return
	}
	b.n[b.k], b.v[b.k] = n, n.Value()
	b.k++
}

// restore binds the recorded values again.
func (b *bindings) restore() error {
	for i := range b.k {
		if err := gorgonia.Let(b.n[i], b.v[i]); err != nil {
			return fmt.Errorf("hessian: giving %q its value back: %w", b.n[i].Name(), err)
		}
	}
	return nil
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

// close releases the machines of p.
func (p *trainProg) close() {
	ms := []gorgonia.VM{p.mGrad, p.mHVP, p.mHV, p.mEval}
	if p.gnb != nil {
		ms = append(ms, p.gnb.m)
	}
	for _, m := range ms {
		if m != nil {
			m.Close()
		}
	}
}

// graphCache holds compiled graphs by batch size, at most max of them: a
// new batch size beyond that evicts the least recently used one (its
// machines are released), so a run with many batch sizes holds a bounded
// amount of memory. Each graph costs about as much memory as the
// activations and derivatives of one batch of its size.
type graphCache[T any] struct {
	max   int
	order []int // batch sizes, least recently used first
	byN   map[int]T
	free  map[int]func(T)
}

func newGraphCache[T any](max int) *graphCache[T] {
	return &graphCache[T]{max: max, byN: map[int]T{}, free: map[int]func(T){}}
}

// get returns the graph for batch size n and marks it as most recently used.
func (c *graphCache[T]) get(n int) (T, bool) {
	v, ok := c.byN[n]
	if ok {
		c.touch(n)
	}
	return v, ok
}

func (c *graphCache[T]) touch(n int) {
	for i, k := range c.order {
		if k == n {
			copy(c.order[i:], c.order[i+1:])
			c.order[len(c.order)-1] = n
			return
		}
	}
	c.order = append(c.order, n)
}

// put stores v for n, evicting the least recently used graph when the
// cache is full; free releases a graph when it is evicted or cleared.
func (c *graphCache[T]) put(n int, v T, free func(T)) {
	for len(c.order) >= c.max {
		old := c.order[0]
		c.order = c.order[1:]
		c.free[old](c.byN[old])
		delete(c.byN, old)
		delete(c.free, old)
	}
	c.byN[n], c.free[n] = v, free
	c.order = append(c.order, n)
}

// len returns the number of cached graphs.
func (c *graphCache[T]) len() int { return len(c.order) }

// clear releases every graph.
func (c *graphCache[T]) clear() {
	for _, n := range c.order {
		c.free[n](c.byN[n])
	}
	c.order, c.byN, c.free = nil, map[int]T{}, map[int]func(T){}
}
