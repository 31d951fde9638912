package hessian

// Evaluation of a user's graph (NewGraph) at any number of rows: its
// forward pass with dropout left out, run in parts of the graph's batch
// size, the last part padded with zero rows when the rows are independent.

import (
	"fmt"
	"math"

	"github.com/curvopt/curvopt/nn"
	"github.com/curvopt/curvopt/nn/stock"
	"github.com/curvopt/curvopt/optim"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// userGraph is what a NewGraph engine keeps beside its trainProg.
type userGraph struct {
	// drop decides the masks of the rewritten stock dropouts; SetBatch
	// moves it to the next batch's masks.
	drop *nn.DropoutState
	// logits is the evaluation-mode logits node (the training logits when
	// the graph has no dropout); nil when the graph has no logits.
	logits *gorgonia.Node
	g      *gorgonia.ExprGraph
	vm     gorgonia.VM // forward to logits, compiled by the first evaluation
	// mixer is the first node found whose rows depend on other rows of
	// the input (nil: rows are independent, so a partial part may be
	// padded).
	mixer *gorgonia.Node
}

// prepareEval rewrites the user's logits in evaluation mode (dropout left
// out) when the graph has dropouts, and finds whether its rows interact.
func (u *userGraph) prepareEval(train *stock.Rewriter, logits *gorgonia.Node, in *graphIn) error {
	u.g, u.logits = in.g, in.logits
	if train.Dropouts() > 0 {
		rw, err := stock.New(in.g, in.params, stock.Options{Eval: true})
		if err != nil {
			return err
		}
		if u.logits, err = rw.Rewrite(logits); err != nil {
			return fmt.Errorf("evaluation logits: %w", err)
		}
	}
	u.mixer = train.RowCoupling(logits, in.x)
	return nil
}

func (u *userGraph) close() {
	if u.vm != nil {
		u.vm.Close()
		u.vm = nil
	}
}

// evalUserLogits returns the evaluation logits of x (N rows, any N) on a
// NewGraph engine.
func (e *Engine) evalUserLogits(x *tensor.Dense, n int, what string) (*tensor.Dense, error) {
	u, p := e.user, e.fixed
	if u == nil || u.logits == nil {
		return nil, fmt.Errorf("hessian: %s: the graph has no logits (GraphSpec.Logits is nil and none were found among the loss's inputs)", what)
	}
	bs := p.n
	if n%bs != 0 && u.mixer != nil {
		return nil, fmt.Errorf("hessian: %s: %d rows are not a multiple of the graph's batch %d, and the graph's rows interact (node %q, %s), so a part padded with zero rows would change the others' results: evaluate a multiple of %d rows", what, n, bs, u.mixer.Name(), describeOp(u.mixer), bs)
	}
	if u.vm == nil {
		vm, err := e.machine(p.arena, []*gorgonia.Node{u.logits})
		if err != nil {
			return nil, err
		}
		u.vm = vm
	}
	// Keep the current training batch's input.
	if e.xsave == nil {
		e.xsave = tensor.New(tensor.Of(e.dt), tensor.WithShape(p.x.Shape().Clone()...))
	}
	if err := copyDense(e.xsave, p.x); err != nil {
		return nil, err
	}
	defer copyDense(p.x, e.xsave)    //nolint:errcheck // same shapes
	per := x.Shape().TotalSize() / n // input values per example
	outRow := e.rows * e.classes     // logit values per example
	out := tensor.New(tensor.Of(e.dt), tensor.WithShape(n*e.rows, e.classes))
	for off := 0; off < n; off += bs {
		m := min(bs, n-off)
		switch e.dt {
		case tensor.Float64:
			fillPart(p.x.Float64s(), x.Float64s()[off*per:(off+m)*per])
		case tensor.Float32:
			fillPart(p.x.Float32s(), x.Float32s()[off*per:(off+m)*per])
		}
		if err := p.run(u.vm); err != nil {
			return nil, err
		}
		v, ok := u.logits.Value().(*tensor.Dense)
		if !ok {
			return nil, fmt.Errorf("hessian: %s: logits not computed", what)
		}
		switch e.dt {
		case tensor.Float64:
			copy(out.Float64s()[off*outRow:(off+m)*outRow], v.Float64s()[:m*outRow])
		case tensor.Float32:
			copy(out.Float32s()[off*outRow:(off+m)*outRow], v.Float32s()[:m*outRow])
		}
	}
	return out, nil
}

// fillPart copies src to the front of dst and zeroes the rest.
func fillPart[T nn.Float](dst, src []T) {
	copy(dst, src)
	clear(dst[len(src):])
}

// describeOp says in words what computes n.
func describeOp(n *gorgonia.Node) string {
	if n.Op() == nil {
		return "an input"
	}
	return fmt.Sprintf("op %v", n.Op())
}

// evalUserLoss is EvalLoss on a NewGraph engine: the mean softmax
// cross-entropy of the evaluation logits against labels (computed from the
// logits in float64, as nn.CrossEntropy does) and the correct rows.
func (e *Engine) evalUserLoss(x *tensor.Dense, labels []int, n int) (float64, int, error) {
	if err := e.checkLabels(labels, n*e.rows, n, "EvalLoss"); err != nil {
		return 0, 0, err
	}
	z, err := e.evalUserLogits(x, n, "EvalLoss")
	if err != nil {
		return 0, 0, err
	}
	var loss float64
	switch e.dt {
	case tensor.Float64:
		loss = meanCE(z.Float64s(), labels, e.classes)
	case tensor.Float32:
		loss = meanCE(z.Float32s(), labels, e.classes)
	}
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return loss, 0, fmt.Errorf("hessian: evaluation loss is %v: %w", loss, optim.ErrNonFinite)
	}
	return loss, countCorrect(z, labels), nil
}

// meanCE is the mean over rows of log Σⱼ exp(zⱼ) − z_label.
func meanCE[T nn.Float](z []T, labels []int, c int) float64 {
	var sum float64
	for r, l := range labels {
		row := z[r*c : (r+1)*c]
		m := math.Inf(-1)
		for _, v := range row {
			m = math.Max(m, float64(v))
		}
		var s float64
		for _, v := range row {
			s += math.Exp(float64(v) - m)
		}
		sum += m + math.Log(s) - float64(row[l])
	}
	return sum / float64(len(labels))
}
