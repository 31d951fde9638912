package hessian

// Evaluation: logits, loss, predictions and accuracy in evaluation mode at
// any batch size.

import (
	"fmt"

	"github.com/curvopt/curvopt/hessian/internal/vm"
	"github.com/curvopt/curvopt/nn"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// evalProg is the forward-only evaluation graph of one batch size, with
// the mean cross-entropy of its logits against one-hot targets y.
type evalProg struct {
	x, y *tensor.Dense
	net  *nn.Net
	ce   *gorgonia.Node
	m    gorgonia.VM // logits only
	mCE  gorgonia.VM // logits and cross-entropy
}

func (e *Engine) evalProg(n int) (*evalProg, error) {
	if p, ok := e.evals.get(n); ok {
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
	ls := net.Logits.Shape()
	p.y = tensor.New(tensor.Of(e.dt), tensor.WithShape(ls...))
	tn := gorgonia.NewTensor(g, e.dt, 2, gorgonia.WithShape(ls...), gorgonia.WithName("hessian.targets"), gorgonia.WithValue(p.y))
	if p.ce, err = nn.CrossEntropy(net.Logits, tn); err != nil {
		return nil, err
	}
	a := vm.NewArena()
	a.Keep(net.Logits, p.ce)
	if p.m, err = e.machine(a, []*gorgonia.Node{net.Logits}); err != nil {
		return nil, err
	}
	if p.mCE, err = e.machine(a, []*gorgonia.Node{net.Logits, p.ce}); err != nil {
		p.m.Close()
		return nil, err
	}
	e.evals.put(n, p, func(p *evalProg) { p.m.Close(); p.mCE.Close() })
	return p, nil
}

// EvalLogits runs the model in evaluation mode (batch norm with running
// statistics) on x [N, input_shape...] of any batch size and returns the
// logits [N, classes] (a new tensor). The forward-only graph of each batch
// size is compiled once and cached. On an engine from NewGraph, N must be
// the graph's batch size and the forward pass is that of the user's graph
// (it has no separate evaluation mode); the current batch is kept.
func (e *Engine) EvalLogits(x *tensor.Dense) (out *tensor.Dense, err error) {
	if err := e.enter(); err != nil {
		return nil, err
	}
	defer e.exit()
	n, err := e.checkInput(x, "EvalLogits")
	if err != nil {
		return nil, err
	}
	if e.fixed != nil {
		return e.evalUserLogits(x, n, "EvalLogits")
	}
	v, _, err := e.evalRun(x, nil, n, "EvalLogits")
	if err != nil {
		return nil, err
	}
	out = tensor.New(tensor.Of(e.dt), tensor.WithShape(v.Shape().Clone()...))
	if err := copyDense(out, v); err != nil {
		return nil, err
	}
	return out, nil
}

// EvalLoss runs the model in evaluation mode on x, like EvalLogits, and
// returns the mean cross-entropy of the logits against labels (one per row
// of the logits), computed by the graph, and the number of rows whose
// arg-max class is the label. A non-finite loss is an error wrapping
// optim.ErrNonFinite.
func (e *Engine) EvalLoss(x *tensor.Dense, labels []int) (loss float64, correct int, err error) {
	if err := e.enter(); err != nil {
		return 0, 0, err
	}
	defer e.exit()
	n, err := e.checkInput(x, "EvalLoss")
	if err != nil {
		return 0, 0, err
	}
	if e.fixed != nil {
		return e.evalUserLoss(x, labels, n)
	}
	v, ce, err := e.evalRun(x, labels, n, "EvalLoss")
	if err != nil {
		return 0, 0, err
	}
	if loss, err = lossValue(ce, "evaluation loss"); err != nil {
		return loss, 0, err
	}
	return loss, countCorrect(v, labels), nil
}

// evalRun runs the evaluation graph on x; with labels it also computes the
// cross-entropy node, which it returns.
func (e *Engine) evalRun(x *tensor.Dense, labels []int, n int, what string) (*tensor.Dense, *gorgonia.Node, error) {
	var (
		vm         gorgonia.VM
		xin, y     *tensor.Dense
		logits, ce *gorgonia.Node
	)
	p, err := e.evalProg(n)
	if err != nil {
		return nil, nil, fmt.Errorf("hessian: compiling evaluation graph for batch size %d: %w", n, err)
	}
	vm, xin, y, logits, ce = p.m, p.x, p.y, p.net.Logits, p.ce
	if labels != nil {
		vm = p.mCE
	}
	if labels != nil {
		if err := e.checkLabels(labels, y.Shape()[0], n, what); err != nil {
			return nil, nil, err
		}
	}
	if err := copyDense(xin, x); err != nil {
		return nil, nil, err
	}
	if labels != nil {
		e.setTargets(y, labels)
	}
	if err := runVM(vm); err != nil {
		return nil, nil, err
	}
	v, ok := logits.Value().(*tensor.Dense)
	if !ok {
		return nil, nil, fmt.Errorf("hessian: %s: logits not computed", what)
	}
	return v, ce, nil
}

// Correct returns the number of rows of the last LossGrad (or LossGradHVP)
// run's logits whose arg-max class is the current batch's label: the
// training batch's accuracy without another pass (0 before the first run).
func (e *Engine) Correct() int {
	if !e.ran || e.logits == nil {
		return 0
	}
	return countCorrect(e.logits, e.labels)
}

// countCorrect counts the rows of logits z whose arg-max is the label.
func countCorrect(z *tensor.Dense, labels []int) int {
	rows := len(labels)
	if rows == 0 {
		return 0
	}
	c := z.Shape().TotalSize() / rows
	switch z.Dtype() {
	case tensor.Float64:
		return correctRows(z.Float64s(), c, labels)
	case tensor.Float32:
		return correctRows(z.Float32s(), c, labels)
	}
	return 0
}

func correctRows[T nn.Float](z []T, c int, labels []int) int {
	ok := 0
	for r, l := range labels {
		if argmax(z[r*c:(r+1)*c]) == l {
			ok++
		}
	}
	return ok
}

func argmax[T nn.Float](row []T) int {
	best := 0
	for j, v := range row {
		if v > row[best] {
			best = j
		}
	}
	return best
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
		out[r] = argmax(z[r*c : (r+1)*c])
	}
}
