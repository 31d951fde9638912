package nn

// The hooks an executor with a memory plan uses: where an op of this
// package writes its result, and which nodes of a training net are read
// after a run.

import (
	"fmt"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// outputter is implemented by every op of this package (through base).
type outputter interface {
	setOutput(t *tensor.Dense) error
	outputSpec() (tensor.Dtype, int)
}

func (b *base) setOutput(t *tensor.Dense) error {
	if t == nil {
		return fmt.Errorf("%s: nil output buffer", b.name)
	}
	if t.Dtype() != b.dt {
		return fmt.Errorf("%s: output buffer of dtype %v, want %v", b.name, t.Dtype(), b.dt)
	}
	if n, want := t.Shape().TotalSize(), b.shape.TotalSize(); n != want {
		return fmt.Errorf("%s: output buffer of %d values (shape %v), want %d (shape %v)", b.name, n, t.Shape(), want, b.shape)
	}
	b.out = t
	return nil
}

func (b *base) outputSpec() (tensor.Dtype, int) { return b.dt, b.shape.TotalSize() }

// WritesOutput reports whether op is one of this package's ops, whose
// result is written into a buffer SetOutput can choose, and if so the
// dtype and number of values of that result. Such an op's Do writes every
// value of its output (it never reads what the buffer held before) and
// returns the buffer itself, never an input or a view of one.
func WritesOutput(op gorgonia.Op) (dt tensor.Dtype, size int, ok bool) {
	o, ok := op.(outputter)
	if !ok {
		return tensor.Dtype{}, 0, false
	}
	dt, size = o.outputSpec()
	return dt, size, true
}

// SetOutput makes op (one of this package's ops, see WritesOutput) write
// the results of its next runs into t, which must have the op's dtype and
// number of values, and return t from Do. The op holds t until it is given
// another buffer; an op never given one allocates its own at its first run.
func SetOutput(op gorgonia.Op, t *tensor.Dense) error {
	o, ok := op.(outputter)
	if !ok {
		return fmt.Errorf("nn: SetOutput: %v is not an op of package nn", op)
	}
	return o.setOutput(t)
}

// StatNodes returns the nodes whose values Model.UpdateRunningStats reads
// after a run of a training-mode net (each batch-norm layer's batch mean
// and variance), nil for a net without batch norm. An executor that frees
// intermediates must keep these.
func (n *Net) StatNodes() []*gorgonia.Node {
	var out []*gorgonia.Node
	for _, st := range n.bnStats {
		if st.moments != nil {
			out = append(out, st.moments)
			continue
		}
		out = append(out, st.mean, st.vari)
	}
	return out
}
