package nn

import (
	"fmt"
	"math"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// embedOp gathers rows of a table E [V, D] at integer indices held in a
// float tensor idx (any shape, R entries): y[r] = E[idx[r]], y [R, D]
// (torch.nn.functional.embedding). It is linear in E; its derivative is the
// scatter-add embedScatterOp, whose derivative is this gather again. The
// indices are data (not differentiated); a non-integer or out-of-range index
// is an error naming its position.
type embedOp struct {
	base
	v, d int
	// scatter: the op is the adjoint, [R, D] → [V, D].
	scatter bool
}

// Embedding returns table[idx] of shape [R, D], R the number of entries of
// idx (a float tensor of token ids, so the engine's input path is unchanged).
func Embedding(table, idx *gorgonia.Node) (*gorgonia.Node, error) {
	ts := shapeOf(table)
	if ts.Dims() != 2 {
		return nil, fmt.Errorf("nn: Embedding: table %q has shape %v, want [V, D]", table.Name(), ts)
	}
	if dtypeOf(table) != dtypeOf(idx) {
		return nil, fmt.Errorf("nn: Embedding: table dtype %v, index dtype %v differ", dtypeOf(table), dtypeOf(idx))
	}
	r := shapeOf(idx).TotalSize()
	op := &embedOp{base: newBase(fmt.Sprintf("Embedding[%d,%d]", ts[0], ts[1]), dtypeOf(table), tensor.Shape{r, ts[1]}, ts, shapeOf(idx)), v: ts[0], d: ts[1]}
	return apply(op, table, idx)
}

func embedScatter(g, idx *gorgonia.Node, v int) (*gorgonia.Node, error) {
	gs := shapeOf(g)
	op := &embedOp{base: newBase(fmt.Sprintf("EmbeddingScatter[%d,%d]", v, gs[1]), dtypeOf(g), tensor.Shape{v, gs[1]}, gs, shapeOf(idx)), v: v, d: gs[1], scatter: true}
	return apply(op, g, idx)
}

func (op *embedOp) twiceDifferentiable() {}

func (op *embedOp) Do(vs ...gorgonia.Value) (gorgonia.Value, error) {
	var kerr error
	v, err := run(&op.base, vs,
		func(in [][]float64, out []float64) { kerr = embedK(op, in[0], in[1], out) },
		func(in [][]float32, out []float32) { kerr = embedK(op, in[0], in[1], out) })
	if err != nil {
		return nil, err
	}
	if kerr != nil {
		return nil, kerr
	}
	return v, nil
}

func embedK[T Float](op *embedOp, a, idx, out []T) error {
	if op.scatter {
		clear(out)
	}
	d := op.d
	for r, f := range idx {
		i := int(f)
		if float64(i) != float64(f) || i < 0 || i >= op.v || math.IsNaN(float64(f)) {
			return fmt.Errorf("nn: %s: index %v at position %d is not an integer in [0, %d)", op.name, f, r, op.v)
		}
		if op.scatter {
			addTo(out[i*d:(i+1)*d], a[r*d:(r+1)*d])
		} else {
			copy(out[r*d:(r+1)*d], a[i*d:(i+1)*d])
		}
	}
	return nil
}

func (op *embedOp) DiffWRT(int) []bool { return []bool{true, false} }

func (op *embedOp) SymDiff(in gorgonia.Nodes, _, g *gorgonia.Node) (gorgonia.Nodes, error) {
	var d *gorgonia.Node
	var err error
	if op.scatter {
		d, err = Embedding(g, in[1])
	} else {
		d, err = embedScatter(g, in[1], op.v)
	}
	if err != nil {
		return nil, err
	}
	return gorgonia.Nodes{d, nil}, nil
}
