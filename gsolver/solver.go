package gsolver

import (
	"errors"
	"fmt"

	"github.com/curvopt/curvopt/hessian"
	"github.com/curvopt/curvopt/internal/num"
	"github.com/curvopt/curvopt/optim"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Engine is what a solver needs from a curvature engine to feed it the
// batch by itself (WithEngine): the optimizer's queries (optim.Oracle) and
// the batch they are asked on. *hessian.Engine implements it.
type Engine interface {
	optim.Oracle
	SetBatch(x *tensor.Dense, labels []int) error
}

// paramLister is an oracle that knows its parameters (hessian.Engine): its
// answers come in the order of Params(), which the solver then follows.
type paramLister interface {
	Params() []optim.Param
}

// Option configures a Solver.
type Option func(*Solver)

// WithOracle makes o answer the optimizer's curvature queries (H·v,
// sampled-label gradient), on the batch the caller set on it before Step
// (hessian.Engine.SetBatch). An oracle that lists its parameters
// (hessian.Engine.Params) fixes the solver's parameter order, and each of
// its parameter tensors must be the value of one of the ValueGrads given
// to Step (build the engine over the same nodes).
func WithOracle(o optim.Oracle) Option {
	return func(s *Solver) { s.oracle = o }
}

// WithEngine is WithOracle(eng) with the batch fed by the solver: before
// each optimizer step it hands eng the values bound to the graph's input
// node x and one-hot target node y (what gorgonia.Let bound before the
// machine ran), y's rows turned into class labels. The training loop then
// stays the stock one. A target row that is not one-hot is an error.
func WithEngine(eng Engine, x, y *gorgonia.Node) Option {
	return func(s *Solver) { s.oracle, s.eng, s.x, s.y = eng, eng, x, y }
}

// KeepGradients leaves the gradients as they are after a step. By default
// the solver zeroes them after every successful step, as Gorgonia's own
// solvers do: a gorgonia.TapeMachine run with BindDualValues adds each
// run's gradient to the one already bound, so without zeroing the next
// step would see the sum.
func KeepGradients() Option {
	return func(s *Solver) { s.keep = true }
}

// Solver is a curvopt optimizer behind Gorgonia's Solver interface: a
// training loop written for gorgonia.NewRMSPropSolver or NewAdamSolver
// switches to any curvopt optimizer by the line that makes the solver.
//
// Step takes the ValueGrads of the learnables (gorgonia.NodesToValueGrads),
// names each parameter after its node (gorgonia.Namer; "#i" for an
// unnamed one), and updates the values in place. The parameter list is
// fixed at the first successful Step: the same names in the same order
// must come at every later Step. A Solver is not safe for concurrent use.
type Solver struct {
	opt    optim.Optimizer
	oracle optim.Oracle // nil: no curvature queries
	eng    Engine       // non-nil with WithEngine
	x, y   *gorgonia.Node
	keep   bool
	engine *hessian.Engine // built by ForGraph, closed by Close
	engX   *tensor.Dense   // ForGraph: the tensor NewGraph bound to x

	started bool
	names   []string      // per ValueGrad index, fixed at the first step
	anon    []bool        // names[i] is "#i": the node has no name
	perm    []int         // perm[i]: position in params of ValueGrad i
	params  []optim.Param // in the oracle's order (or the ValueGrads')
	labels  []int         // scratch: y's rows as class labels
}

var _ gorgonia.Solver = (*Solver)(nil)

// New returns a Solver stepping opt. An optimizer that asks for curvature
// (opt.Needs(): AdaHessian, SophiaH, SophiaG) needs an oracle answering it,
// given by WithEngine or WithOracle (hessian.NewGraph over the user's graph
// with opt.Needs()); an oracle that declares what it provides is checked
// against those needs here.
func New(opt optim.Optimizer, opts ...Option) (*Solver, error) {
	if opt == nil {
		return nil, errors.New("gsolver: nil optimizer")
	}
	s := &Solver{opt: opt}
	for _, o := range opts {
		o(s)
	}
	needs := opt.Needs()
	if s.eng != nil && (s.x == nil) != (s.y == nil) {
		return nil, errors.New("gsolver: WithEngine: give both the input and the target node, or neither (and call SetBatch yourself)")
	}
	if (needs.HVP || needs.SampledGrad) && s.oracle == nil {
		return nil, fmt.Errorf("gsolver: %s asks for curvature (%s): give it the curvature engine over your graph, "+
			"gsolver.WithEngine(eng, x, y) with eng from hessian.NewGraph(g, spec, opt.Needs())", opt.Name(), needsText(needs))
	}
	if s.oracle != nil {
		if err := optim.CheckOracle("gsolver: "+opt.Name(), needs, s.oracle); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func needsText(n optim.Needs) string {
	switch {
	case n.HVP && n.SampledGrad:
		return "Hessian-vector products and sampled-label gradients"
	case n.HVP:
		return "Hessian-vector products"
	default:
		return "sampled-label gradients"
	}
}

// Optimizer returns the optimizer the solver steps (for SetLR, State,
// Diagnostics).
func (s *Solver) Optimizer() optim.Optimizer { return s.opt }

// Params returns the parameter list of the last successful Step (nil
// before): what Optimizer().LoadState takes. Its tensors are the nodes'.
func (s *Solver) Params() []optim.Param {
	if !s.started {
		return nil
	}
	return s.params
}

// Close closes the optimizer (M-FAC releases its window) and the engine
// ForGraph built; an engine given by WithEngine or WithOracle is the
// caller's to close.
func (s *Solver) Close() error {
	err := s.opt.Close()
	if s.engine != nil {
		err = errors.Join(err, s.engine.Close())
	}
	return err
}

// Step updates every value in place from its gradient, asking the oracle
// (if any) for the curvature the optimizer needs, then zeroes the gradients
// (unless KeepGradients). It returns an error, and changes nothing, for a
// value or gradient that is not a *tensor.Dense, a gradient of another
// dtype or shape than its value, a parameter list that differs from the
// first Step's, a value that is not the oracle's parameter tensor, and
// whatever the optimizer refuses (a NaN gradient, for one).
func (s *Solver) Step(vgs []gorgonia.ValueGrad) error {
	if err := s.bind(vgs); err != nil {
		return fmt.Errorf("gsolver: %s: %w", s.opt.Name(), err)
	}
	if s.x != nil {
		if err := s.feed(); err != nil {
			return fmt.Errorf("gsolver: %s: feeding the engine: %w", s.opt.Name(), err)
		}
	}
	if err := s.opt.Step(s.params, s.oracle); err != nil {
		return fmt.Errorf("gsolver: %w", err)
	}
	if !s.keep {
		for _, p := range s.params {
			zero(p.Grad)
		}
	}
	return nil
}

// bind checks vgs and fills s.params from them. The first successful call
// fixes the names and the order.
func (s *Solver) bind(vgs []gorgonia.ValueGrad) error {
	if len(vgs) == 0 {
		return errors.New("no parameters")
	}
	if !s.started {
		if err := s.setup(vgs); err != nil {
			return err
		}
	} else if len(vgs) != len(s.names) {
		return fmt.Errorf("%d parameters, but the first step had %d: the parameter set changed", len(vgs), len(s.names))
	}
	var owned []optim.Param
	if pl, ok := s.oracle.(paramLister); ok {
		owned = pl.Params()
	}
	for i, vg := range vgs {
		name := s.names[i]
		if isNil(vg) {
			return fmt.Errorf("parameter %d (%q at the first step): nil ValueGrad", i, name)
		}
		if got := nodeName(vg); got != name && !(got == "" && s.anon[i]) {
			return fmt.Errorf("parameter %d is %q, but it was %q at the first step: the parameter set changed", i, got, name)
		}
		v, ok := vg.Value().(*tensor.Dense)
		if !ok {
			return fmt.Errorf("parameter %q: value is %T, want a *tensor.Dense (a scalar node's value is not one: make it a tensor of shape (1))", name, vg.Value())
		}
		gv, err := vg.Grad()
		if err != nil {
			return fmt.Errorf("parameter %q: no gradient (run gorgonia.Grad on the cost and a TapeMachine with BindDualValues first): %w", name, err)
		}
		g, ok := gv.(*tensor.Dense)
		if !ok {
			return fmt.Errorf("parameter %q: gradient is %T, want a *tensor.Dense", name, gv)
		}
		if v.Dtype() != g.Dtype() {
			return fmt.Errorf("parameter %q: value is %v but its gradient is %v", name, v.Dtype(), g.Dtype())
		}
		if v.Dtype() != tensor.Float64 && v.Dtype() != tensor.Float32 {
			return fmt.Errorf("parameter %q: dtype %v, want float32 or float64", name, v.Dtype())
		}
		if !v.Shape().Eq(g.Shape()) {
			return fmt.Errorf("parameter %q: value has shape %v but its gradient %v", name, v.Shape(), g.Shape())
		}
		j := s.perm[i]
		if owned != nil && owned[j].Value != v {
			return fmt.Errorf("parameter %q: its value is not the tensor the curvature engine's parameter %q holds (was it rebound by gorgonia.Let after the engine was built?)", name, owned[j].Name)
		}
		if s.started {
			if p := s.params[j]; p.Value.Dtype() != v.Dtype() || !p.Value.Shape().Eq(v.Shape()) {
				return fmt.Errorf("parameter %q is %v %v, but it was %v %v at the first step", name, v.Dtype(), v.Shape(), p.Value.Dtype(), p.Value.Shape())
			}
		}
	}
	// All checked: fill the list.
	for i, vg := range vgs {
		v := vg.Value().(*tensor.Dense)
		gv, _ := vg.Grad()
		s.params[s.perm[i]] = optim.Param{Name: s.names[i], Value: v, Grad: gv.(*tensor.Dense)}
	}
	s.started = true
	return nil
}

// setup fixes the names and the order from the first step's vgs.
func (s *Solver) setup(vgs []gorgonia.ValueGrad) error {
	names, anon := make([]string, len(vgs)), make([]bool, len(vgs))
	seen := make(map[string]int, len(vgs))
	for i, vg := range vgs {
		if isNil(vg) {
			return fmt.Errorf("parameter %d: nil ValueGrad", i)
		}
		n := nodeName(vg)
		if n == "" {
			n, anon[i] = fmt.Sprintf("#%d", i), true
		}
		if j, dup := seen[n]; dup {
			return fmt.Errorf("parameters %d and %d are both named %q: optimizer state goes by name (gorgonia.WithName)", j, i, n)
		}
		seen[n], names[i] = i, n
	}
	perm := make([]int, len(vgs))
	for i := range perm {
		perm[i] = i
	}
	if pl, ok := s.oracle.(paramLister); ok {
		owned := pl.Params()
		if len(owned) != len(vgs) {
			return fmt.Errorf("%d parameters, but the curvature engine has %d (%s): give it the same learnables", len(vgs), len(owned), paramNames(owned))
		}
		at := make(map[*tensor.Dense]int, len(owned))
		for j, p := range owned {
			at[p.Value] = j
		}
		used := make([]bool, len(owned))
		for i, vg := range vgs {
			v, _ := vg.Value().(*tensor.Dense)
			j, ok := at[v]
			if !ok || v == nil {
				return fmt.Errorf("parameter %q: its value is none of the curvature engine's parameter tensors (%s): build the engine over the same nodes", names[i], paramNames(owned))
			}
			if used[j] {
				return fmt.Errorf("parameter %q: its value is also another parameter's", names[i])
			}
			used[j], perm[i] = true, j
		}
	}
	s.names, s.anon, s.perm = names, anon, perm
	s.params = make([]optim.Param, len(vgs))
	return nil
}

// feed hands the engine the batch bound to the input and target nodes.
func (s *Solver) feed() error {
	x, ok := s.x.Value().(*tensor.Dense)
	if !ok {
		return fmt.Errorf("input node %q holds %T, want a *tensor.Dense (gorgonia.Let it before the run)", s.x.Name(), s.x.Value())
	}
	if x == s.engX && x != nil {
		return fmt.Errorf("input node %q has had no batch bound (it still holds the curvature engine's own tensor): bind the batch with gorgonia.Let before the run", s.x.Name())
	}
	y, ok := s.y.Value().(*tensor.Dense)
	if !ok {
		return fmt.Errorf("target node %q holds %T, want a *tensor.Dense (gorgonia.Let it before the run)", s.y.Name(), s.y.Value())
	}
	if y.Dims() != 2 || x.RequiresIterator() || y.RequiresIterator() {
		return fmt.Errorf("target node %q is %v, want contiguous one-hot rows [N, classes]", s.y.Name(), y.Shape())
	}
	rows, classes := y.Shape()[0], y.Shape()[1]
	if cap(s.labels) < rows {
		s.labels = make([]int, rows)
	}
	s.labels = s.labels[:rows]
	var r int
	switch y.Dtype() {
	case tensor.Float64:
		r = oneHotLabels(num.Slice[float64](y), classes, s.labels)
	case tensor.Float32:
		r = oneHotLabels(num.Slice[float32](y), classes, s.labels)
	default:
		return fmt.Errorf("target node %q is %v, want float32 or float64", s.y.Name(), y.Dtype())
	}
	if r >= 0 {
		return fmt.Errorf("row %d of target node %q is not one-hot (the engine takes one class per row)", r, s.y.Name())
	}
	return s.eng.SetBatch(x, s.labels)
}

// oneHotLabels writes the class of every one-hot row of y into labels and
// returns -1, or the first row that is not one-hot.
func oneHotLabels[T num.Float](y []T, classes int, labels []int) int {
	for r := range labels {
		row := y[r*classes : (r+1)*classes]
		at := -1
		for c, v := range row {
			switch {
			case v == 0:
			case v == 1 && at < 0:
				at = c
			default:
				return r
			}
		}
		if at < 0 {
			return r
		}
		labels[r] = at
	}
	return -1
}

func zero(t *tensor.Dense) {
	switch t.Dtype() {
	case tensor.Float64:
		clear(num.Slice[float64](t))
	case tensor.Float32:
		clear(num.Slice[float32](t))
	}
}

func nodeName(vg gorgonia.ValueGrad) string {
	if n, ok := vg.(gorgonia.Namer); ok {
		return n.Name()
	}
	return ""
}

// isNil reports whether vg is nil or a nil *gorgonia.Node (whose methods
// would panic).
func isNil(vg gorgonia.ValueGrad) bool {
	if vg == nil {
		return true
	}
	n, ok := vg.(*gorgonia.Node)
	return ok && n == nil
}

func paramNames(ps []optim.Param) string {
	s := ""
	for i, p := range ps {
		if i > 0 {
			s += ", "
		}
		s += p.Name
	}
	return s
}
