package hessian

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"

	"github.com/curvopt/curvopt/hessian/spectrum"
	"github.com/curvopt/curvopt/nn"
	"github.com/curvopt/curvopt/optim"
	"gorgonia.org/tensor"
)

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
// An Engine is not safe for concurrent use: a call made while another is
// running (from another goroutine) returns ErrConcurrentUse instead of
// corrupting the graphs, and any call after Close returns ErrClosed.
//
// The engine's parts live in files by job: compile.go (graphs and their
// machines, cached per batch size), oracle.go (the batch oracle: SetBatch,
// LossGrad, LossGradHVP, HVP, SampledGrad), flat.go (the flat-vector
// operator for hessian/spectrum) and eval.go (evaluation at any batch
// size).
type Engine struct {
	guard
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
	blocks []spectrum.Block
	dim    int

	fixed *trainProg              // NewGraph: the one graph
	user  *userGraph              // NewGraph: dropout masks and evaluation (graph_eval.go)
	progs *graphCache[*trainProg] // New: per training batch size
	evals *graphCache[*evalProg]  // New: per evaluation batch size
	gnb   *trainProg              // New with WithGNBBatch: the sampled gradient's graph
	cur   *trainProg
	// labels of the current batch
	labels []int
	// lastGNB: the graph part of the last SampledGrad (for SampledLabels).
	lastGNB *gnbPart

	logits *tensor.Dense
	ran    bool
	// hutch is the Hutchinson estimator of Hutchinson (its probe and H·z
	// scratch), made at the first call; hutchCalls counts its estimates.
	hutch      *optim.Hutchinson
	hutchCalls int64
	// scratch for HVPFlat, gradFlatNow and Loss
	fv, fo, ftmp []*tensor.Dense
	flat         []float64
	xsave, ysave *tensor.Dense
}

// ErrClosed is wrapped by the error of an engine's method called after
// Close. It is optim.ErrClosed, the one sentinel shared with the
// optimizers.
var ErrClosed = optim.ErrClosed

// ErrConcurrentUse is wrapped by the error of an engine's method called
// while another of its methods is running: an Engine is not safe for
// concurrent use (its machines share one graph's buffers), so a second
// goroutine is refused rather than allowed to corrupt the first one's
// results. It is optim.ErrConcurrentUse, the one sentinel shared with the
// optimizers.
var ErrConcurrentUse = optim.ErrConcurrentUse

// The guard's errors, made once (so that a refusal does not allocate).
var (
	errClosed = fmt.Errorf("hessian: engine %w", ErrClosed)
	errBusy   = fmt.Errorf("hessian: engine %w", ErrConcurrentUse)
)

// guard refuses use after Close and concurrent use.
type guard struct {
	busy   atomic.Bool
	closed bool // written and read only while busy is held
}

// enter claims the engine for one call; exit releases it.
func (g *guard) enter() error {
	if !g.busy.CompareAndSwap(false, true) {
		return errBusy
	}
	if g.closed {
		g.busy.Store(false)
		return errClosed
	}
	return nil
}

func (g *guard) exit() { g.busy.Store(false) }

// newBaseEngine applies the options and records the parameters.
func newBaseEngine(dt tensor.Dtype, needs optim.Needs, names []string, values []*tensor.Dense, opts []Option) (*Engine, error) {
	cfg := config{probes: optim.NewRandomProbes(optim.Rademacher, 1), graphs: DefaultGraphCache}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if cfg.sampler == nil {
		cfg.sampler = RandSampler{R: rand.New(rand.NewPCG(1, 2))}
	}
	e := &Engine{needs: needs, cfg: cfg, dt: dt, rows: 1, progs: newGraphCache[*trainProg](cfg.graphs), evals: newGraphCache[*evalProg](cfg.graphs)}
	off := 0
	for i, v := range values {
		sh := v.Shape().Clone()
		g := tensor.New(tensor.Of(dt), tensor.WithShape(sh...))
		e.params = append(e.params, optim.Param{Name: names[i], Value: v, Grad: g})
		e.grads = append(e.grads, g)
		e.blocks = append(e.blocks, spectrum.Block{Name: names[i], Offset: off, Size: sh.TotalSize(), Shape: []int(sh)})
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

// Params returns the parameters in model order: Value is the model's tensor
// (bound to the graphs), Grad is filled by LossGrad. The slice is shared.
func (e *Engine) Params() []optim.Param { return e.params }

// Dim returns the total number of scalar parameters.
func (e *Engine) Dim() int { return e.dim }

// ParamBlocks returns where each parameter lies in the flat vector.
func (e *Engine) ParamBlocks() []spectrum.Block {
	out := make([]spectrum.Block, len(e.blocks))
	for i, b := range e.blocks {
		out[i] = b
		out[i].Shape = append([]int{}, b.Shape...)
	}
	return out
}

// Close releases the compiled machines. Later calls return ErrClosed;
// closing twice is not an error.
func (e *Engine) Close() error {
	if !e.busy.CompareAndSwap(false, true) {
		return errBusy
	}
	defer e.exit()
	if e.closed {
		return nil
	}
	e.closed = true
	for _, p := range []*trainProg{e.fixed, e.gnb} {
		if p != nil {
			p.close()
		}
	}
	e.progs.clear()
	e.evals.clear()
	if e.user != nil {
		e.user.close()
	}
	e.cur, e.fixed, e.gnb, e.lastGNB = nil, nil, nil, nil
	return nil
}

var (
	_ optim.Oracle   = (*Engine)(nil)
	_ optim.Provider = (*Engine)(nil)
)
