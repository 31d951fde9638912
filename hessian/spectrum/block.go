package spectrum

import (
	"fmt"
	"math"
)

// BlockOperator is the diagonal block H_bb of an operator H for one
// parameter block b: H_bb·v_b = (H·[0 … v_b … 0])_b. It lets every analysis
// in this package (eigenvalues, trace, density) run per layer.
//
// Cost: each product is one full product with the wrapped operator (one full
// Hessian-vector product over all parameters), so a per-block analysis of all
// blocks costs as many full HVPs as the analyses of each block together. A
// BlockOperator holds two work vectors of the full dimension and is not safe
// for concurrent use.
type BlockOperator struct {
	op      Operator
	block   Block
	in, out []float64
}

// NewBlockOperator returns the restriction of op to block b. The block must
// lie inside [0, op.Dim()) and have Size > 0.
func NewBlockOperator(op Operator, b Block) (*BlockOperator, error) {
	d, err := checkOperator(op)
	if err != nil {
		return nil, err
	}
	if err := checkBlock(b, d); err != nil {
		return nil, err
	}
	return &BlockOperator{op: op, block: b, in: make([]float64, d), out: make([]float64, d)}, nil
}

func checkBlock(b Block, d int) error {
	if b.Size <= 0 || b.Offset < 0 || b.Offset+b.Size > d {
		return invalidf("block %q [%d, %d) outside [0, %d) or empty", b.Name, b.Offset, b.Offset+b.Size, d)
	}
	return nil
}

// Block returns the block this operator restricts to.
func (o *BlockOperator) Block() Block { return o.block }

// Dim returns the block size.
func (o *BlockOperator) Dim() int { return o.block.Size }

// HVPFlat sets out = H_bb·v.
func (o *BlockOperator) HVPFlat(v, out []float64) error {
	if len(v) != o.block.Size || len(out) != o.block.Size {
		return invalidf("block %q: vectors of length %d and %d, want %d", o.block.Name, len(v), len(out), o.block.Size)
	}
	clear(o.in)
	copy(o.in[o.block.Offset:], v)
	if err := o.op.HVPFlat(o.in, o.out); err != nil {
		return fmt.Errorf("block %q: %w", o.block.Name, err)
	}
	copy(out, o.out[o.block.Offset:o.block.Offset+o.block.Size])
	return nil
}

// BlockOperators returns one [BlockOperator] per block, in order.
func BlockOperators(op Operator, blocks []Block) ([]*BlockOperator, error) {
	if len(blocks) == 0 {
		return nil, invalidf("no blocks")
	}
	ops := make([]*BlockOperator, len(blocks))
	for i, b := range blocks {
		o, err := NewBlockOperator(op, b)
		if err != nil {
			return nil, err
		}
		ops[i] = o
	}
	return ops, nil
}

// Weighted is one term of a dataset-level operator: the Hessian of one batch
// and its weight (usually the batch size).
type Weighted struct {
	// Op answers H_b·v for batch b.
	Op Operator
	// Weight is the batch's weight n_b > 0.
	Weight float64
}

func checkWeight(w float64) error {
	if !(w > 0) || math.IsInf(w, 0) {
		return invalidf("batch weight %v, want finite and > 0", w)
	}
	return nil
}

// Average is the dataset-level Hessian H = Σ_b n_b·H_b / Σ_b n_b over a
// fixed list of batch operators (PyHessian's dataloader mode). Products are
// accumulated in float64. Each product costs one product per batch. An
// Average is not safe for concurrent use.
type Average struct {
	terms []Weighted
	total float64
	d     int
	buf   []float64
}

// NewAverage returns the weighted average of the terms' operators. All must
// have the same dimension and positive, finite weights.
func NewAverage(terms ...Weighted) (*Average, error) {
	if len(terms) == 0 {
		return nil, invalidf("no batches to average")
	}
	d := 0
	var total float64
	for i, t := range terms {
		di, err := checkOperator(t.Op)
		if err != nil {
			return nil, fmt.Errorf("batch %d: %w", i, err)
		}
		if i == 0 {
			d = di
		} else if di != d {
			return nil, invalidf("batch %d has dimension %d, batch 0 has %d", i, di, d)
		}
		if err := checkWeight(t.Weight); err != nil {
			return nil, fmt.Errorf("batch %d: %w", i, err)
		}
		total += t.Weight
	}
	return &Average{terms: append([]Weighted(nil), terms...), total: total, d: d, buf: make([]float64, d)}, nil
}

// Dim returns the common dimension.
func (a *Average) Dim() int { return a.d }

// HVPFlat sets out = Σ_b n_b·H_b·v / Σ_b n_b.
func (a *Average) HVPFlat(v, out []float64) error {
	if len(v) != a.d || len(out) != a.d {
		return invalidf("vectors of length %d and %d, want %d", len(v), len(out), a.d)
	}
	clear(out)
	for i, t := range a.terms {
		if err := apply(t.Op, v, a.buf); err != nil {
			return fmt.Errorf("batch %d: %w", i, err)
		}
		axpy(t.Weight, a.buf, out)
	}
	scal(1/a.total, out)
	return nil
}

// BatchSetter moves a single operator to batch i (0 ≤ i < n), for example
// by binding that batch's inputs to the engine's graph, and returns the
// batch's weight (usually its size).
type BatchSetter func(i int) (weight float64, err error)

// Sweep is the dataset-level Hessian of one operator that is moved from
// batch to batch by a [BatchSetter]: each product visits all n batches in
// order, H·v = Σ_i n_i·H_i·v / Σ_i n_i, accumulated in float64. It costs n
// batch switches and n HVPs per product. The operator is left at batch n−1.
// A Sweep is not safe for concurrent use.
type Sweep struct {
	op  Operator
	n   int
	set BatchSetter
	d   int
	buf []float64
}

// NewSweep returns the dataset-level operator over n ≥ 1 batches.
func NewSweep(op Operator, n int, set BatchSetter) (*Sweep, error) {
	d, err := checkOperator(op)
	if err != nil {
		return nil, err
	}
	if n <= 0 {
		return nil, invalidf("%d batches, want > 0", n)
	}
	if set == nil {
		return nil, invalidf("nil batch setter")
	}
	return &Sweep{op: op, n: n, set: set, d: d, buf: make([]float64, d)}, nil
}

// Dim returns the operator's dimension.
func (s *Sweep) Dim() int { return s.d }

// HVPFlat sets out = Σ_i n_i·H_i·v / Σ_i n_i.
func (s *Sweep) HVPFlat(v, out []float64) error {
	if len(v) != s.d || len(out) != s.d {
		return invalidf("vectors of length %d and %d, want %d", len(v), len(out), s.d)
	}
	clear(out)
	var total float64
	for i := 0; i < s.n; i++ {
		w, err := s.set(i)
		if err != nil {
			return fmt.Errorf("spectrum: setting batch %d: %w", i, err)
		}
		if err := checkWeight(w); err != nil {
			return fmt.Errorf("batch %d: %w", i, err)
		}
		if err := apply(s.op, v, s.buf); err != nil {
			return fmt.Errorf("batch %d: %w", i, err)
		}
		axpy(w, s.buf, out)
		total += w
	}
	scal(1/total, out)
	return nil
}
