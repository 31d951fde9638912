package nn

// Synchronised batch norm: the batch statistics of a global batch split
// over the processes of a data-parallel run.

import (
	"fmt"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// BatchReducer joins the processes of a data-parallel run for batch norm
// (Model.SetBatchReducer): each process computes rows of one global batch,
// and batch norm's statistics become the global batch's. Every process must
// run the same graphs in the same order (the sums are collectives).
type BatchReducer interface {
	// Share returns this process's rows n of the current global batch of
	// total rows (0 < n <= total).
	Share() (n, total int)
	// AllreduceFloat32 and AllreduceFloat64 replace buf by its
	// elementwise sum over the processes, the same on every process.
	AllreduceFloat32(buf []float32) error
	AllreduceFloat64(buf []float64) error
}

// crossMeanOp computes y = Σ_r w_r·x_r over the processes r, w_r = n_r/B
// their shares of the global batch: the global batch's mean of per-process
// means x_r. A data-parallel run differentiates Σ_r w_r·L_r (each process
// its own L_r, the results weighted by w_r and summed), so the derivative
// of this op that a process must pass back, such that its weighted result
// is the single process's, is (1/w_s)·Σ_r w_r·w_s·g_r = Σ_r w_r·g_r: the
// same op applied to G. It is linear, and its own derivative (in the H·v
// pass, which differentiates Σ_r w_r·(g_r·v) in the same way) is again
// itself, so the gradient and H·v of every order are the single process's.
type crossMeanOp struct {
	base
	red BatchReducer
}

// CrossMean returns Σ_r (n_r/B)·x_r over the processes of red (see
// BatchReducer): with x a per-process mean over its rows, the mean over
// the global batch, the same on every process.
func CrossMean(x *gorgonia.Node, red BatchReducer) (*gorgonia.Node, error) {
	if red == nil {
		return nil, fmt.Errorf("nn: CrossMean: nil reducer")
	}
	op := &crossMeanOp{base: newBase("CrossMean", dtypeOf(x), shapeOf(x), shapeOf(x)), red: red}
	return apply(op, x)
}

func (op *crossMeanOp) twiceDifferentiable() {}

func (op *crossMeanOp) Do(vs ...gorgonia.Value) (gorgonia.Value, error) {
	ds, err := op.checkInputs(vs)
	if err != nil {
		return nil, err
	}
	n, total := op.red.Share()
	if n <= 0 || total < n {
		return nil, fmt.Errorf("%s: this process's share of %d rows of a global batch of %d", op.name, n, total)
	}
	w := float64(n) / float64(total)
	if op.out == nil {
		op.out = tensor.New(tensor.Of(op.dt), tensor.WithShape(op.shape.Clone()...))
	}
	switch op.dt {
	case tensor.Float64:
		out := slice[float64](op.out)
		for i, v := range slice[float64](ds[0]) {
			out[i] = v * w
		}
		err = op.red.AllreduceFloat64(out)
	case tensor.Float32:
		out, w32 := slice[float32](op.out), float32(w)
		for i, v := range slice[float32](ds[0]) {
			out[i] = v * w32
		}
		err = op.red.AllreduceFloat32(out)
	default:
		return nil, fmt.Errorf("%s: unsupported dtype %v", op.name, op.dt)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: all-reduce: %w", op.name, err)
	}
	return op.out, nil
}

func (op *crossMeanOp) DiffWRT(int) []bool { return []bool{true} }

func (op *crossMeanOp) SymDiff(_ gorgonia.Nodes, _, g *gorgonia.Node) (gorgonia.Nodes, error) {
	d, err := CrossMean(g, op.red)
	if err != nil {
		return nil, err
	}
	return gorgonia.Nodes{d}, nil
}

// SetBatchReducer makes the batch norm of the training graphs Build makes
// from now on synchronised over red's processes: the batch mean and
// variance are the global batch's (each process's per-channel mean of x
// and of (x − μ)², weighted by its share and summed by CrossMean), in the
// forward pass and, through CrossMean's derivative, in the gradient and
// the H·v, so that a data-parallel run whose results are weighted by the
// shares and summed equals one process at the global batch; the running
// statistics are updated from the global statistics (the unbiased
// variance's factor counts the global batch). Nil (the default) keeps
// per-process statistics. Graphs built before the call are unchanged.
func (m *Model) SetBatchReducer(red BatchReducer) { m.sync = red }

// batchMean is CrossMean(x) with a reducer, x alone without.
func (m *Model) batchMean(x *gorgonia.Node) (*gorgonia.Node, error) {
	if m.sync == nil {
		return x, nil
	}
	return CrossMean(x, m.sync)
}

// globalCount returns the number of values per channel of the global batch
// of a batch-norm layer with count values per channel on this process.
func (st bnStat) globalCount() int {
	if st.sync == nil {
		return st.count
	}
	n, total := st.sync.Share()
	if n <= 0 {
		return st.count
	}
	return st.count / n * total
}
