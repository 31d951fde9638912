package train

import (
	"fmt"

	"github.com/curvopt/curvopt/internal/num"
	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/optim/adahessian"
	"github.com/curvopt/curvopt/optim/mfac"
	"github.com/curvopt/curvopt/optim/sophia"
	"gorgonia.org/tensor"
)

// Sharded optimizer state (ZeRO stage 1, Config.Shard): the parameters,
// flattened in order into one vector of D values, are split into
// contiguous slices, rank r owning values [cuts[r], cuts[r+1]) (shardCuts:
// Share(D, ranks, r), each cut moved to the nearest boundary of a
// convolution kernel's window where it falls inside a weight of 3 or more
// dimensions). Each rank's optimizer sees only its slice (views of the
// parameters and their gradients, one per parameter the slice overlaps,
// under the parameter's name: 1-D, or [windows, 1, kernel dims...] for a
// convolution weight), so it holds the state of about D/ranks values;
// after its update the ranks all-gather the slices into the full
// parameters.
//
// This is exact for the optimizers whose update is elementwise given the
// gradient and the curvature estimate: SGD, Adam, AdamW, SophiaG, SophiaH;
// for AdaHessian, whose curvature is averaged over each convolution
// kernel's kh·kw window, because no slice splits a window and its piece's
// shape keeps the window (adahessian.BlockSize of the piece is the
// weight's); and for M-FAC, whose window is split by coordinates (every
// rank holds its columns of every row): the inner products of the window
// with the gradient, m values per step, are summed over the ranks inside
// M-FAC's update (mfac.Reducer, an all-reduce), the m×m Gram matrix and
// its factor are the same on every rank, and the rest of F⁻¹·g is
// per coordinate. M-FAC's sums are added in another order than one
// process adds them, so its sharded run equals the unsharded one within
// float64 round-off (amplified by F⁻¹'s cancellation), not bit for bit.
// Curvature queries are answered for the whole vector and sliced
// (shardOracle); Hutchinson probes are drawn for the whole vector by every
// rank, from the generator the unsharded optimizer would use, and sliced
// (shardProbes), so the probes, and the probe generator's saved state,
// are the unsharded run's.

// piece is one parameter's part of a rank's slice: values [a, b) of
// parameter i.
type piece struct{ i, a, b int }

// shardLayout is the split of a parameter list over the ranks.
type shardLayout struct {
	full    []optim.Param
	pieces  []piece
	shard   []optim.Param // views of the pieces
	parts   [][]int       // parts[i][r]: values of parameter i on rank r
	pieceOf []int         // the piece of parameter i on this rank (-1: none)
	cuts    []int         // rank r holds values [cuts[r], cuts[r+1]) of the vector
	size    int           // D
	dtype   tensor.Dtype
	comm    Comm
}

func newShardLayout(params []optim.Param, comm Comm) (*shardLayout, error) {
	l := &shardLayout{full: params, comm: comm}
	for _, p := range params {
		l.size += p.Value.Shape().TotalSize()
		if l.dtype == (tensor.Dtype{}) {
			l.dtype = p.Value.Dtype()
		} else if p.Value.Dtype() != l.dtype {
			return nil, fmt.Errorf("shard: %s is %v, the parameters before it %v", p.Name, p.Value.Dtype(), l.dtype)
		}
	}
	if l.size < comm.Size() {
		return nil, fmt.Errorf("shard: %d parameter values for %d ranks", l.size, comm.Size())
	}
	var err error
	if l.cuts, err = shardCuts(params, l.size, comm.Size()); err != nil {
		return nil, err
	}
	off := 0
	for _, p := range params {
		m := p.Value.Shape().TotalSize()
		part := make([]int, comm.Size())
		for r := range part {
			part[r] = max(0, min(l.cuts[r+1], off+m)-max(l.cuts[r], off))
		}
		l.parts = append(l.parts, part)
		off += m
	}
	lo, hi := l.cuts[comm.Rank()], l.cuts[comm.Rank()+1]
	off = 0
	for i, p := range params {
		m := p.Value.Shape().TotalSize()
		a, b := max(lo, off)-off, min(hi, off+m)-off
		off += m
		l.pieceOf = append(l.pieceOf, -1)
		if a >= b {
			continue
		}
		l.pieceOf[i] = len(l.pieces)
		shape := pieceShape(p.Value.Shape(), a, b)
		v, err := viewShaped(p.Value, a, b, shape)
		if err != nil {
			return nil, fmt.Errorf("shard: %s: %w", p.Name, err)
		}
		g, err := viewShaped(p.Grad, a, b, shape)
		if err != nil {
			return nil, fmt.Errorf("shard: %s's gradient: %w", p.Name, err)
		}
		l.pieces = append(l.pieces, piece{i, a, b})
		l.shard = append(l.shard, optim.Param{Name: p.Name, Value: v, Grad: g})
	}
	return l, nil
}

// shardCuts returns the ranks' boundaries in the parameter vector of size
// values: Share's, each moved to the nearest multiple of the kernel window
// (adahessian.BlockSize) of the parameter it falls inside, so that no
// slice splits a convolution kernel's window. A rank left without values
// (a vector of few, large windows) is an error.
func shardCuts(params []optim.Param, size, ranks int) ([]int, error) {
	cuts := make([]int, ranks+1)
	cuts[ranks] = size
	for r := 1; r < ranks; r++ {
		c, _ := Share(size, ranks, r)
		off := 0
		for _, p := range params {
			m := p.Value.Shape().TotalSize()
			if c > off && c < off+m {
				if blk := adahessian.BlockSize(p.Value.Shape()); blk > 1 && m%blk == 0 {
					c = off + (c-off+blk/2)/blk*blk
				}
				break
			}
			off += m
		}
		cuts[r] = max(c, cuts[r-1])
	}
	for r := range ranks {
		if cuts[r+1] <= cuts[r] {
			return nil, fmt.Errorf("shard: rank %d of %d would hold no parameter values once the cuts keep every convolution kernel window whole (%d values): run with fewer ranks or without -shard", r, ranks, size)
		}
	}
	return cuts, nil
}

// pieceShape is the shape of values [a, b) of a parameter of shape s: for
// a weight of 3 or more dimensions whose piece holds whole kernel windows,
// [windows, 1, s[2:]...], whose adahessian.BlockSize is s's; otherwise 1-D.
func pieceShape(s tensor.Shape, a, b int) []int {
	blk := adahessian.BlockSize(s)
	if len(s) < 3 || blk <= 1 || a%blk != 0 || b%blk != 0 {
		return []int{b - a}
	}
	return append([]int{(b - a) / blk, 1}, s[2:]...)
}

// viewShaped returns values [a, b) of t's backing as a tensor of the given
// shape sharing its memory.
func viewShaped(t *tensor.Dense, a, b int, shape []int) (*tensor.Dense, error) {
	switch t.Dtype() {
	case tensor.Float32:
		return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(num.Slice[float32](t)[a:b])), nil
	case tensor.Float64:
		return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(num.Slice[float64](t)[a:b])), nil
	}
	return nil, fmt.Errorf("dtype %v: want float32 or float64", t.Dtype())
}

// viewRange returns values [a, b) of t's backing as a 1-D tensor sharing
// its memory.
func viewRange(t *tensor.Dense, a, b int) (*tensor.Dense, error) {
	switch t.Dtype() {
	case tensor.Float32:
		return tensor.New(tensor.WithShape(b-a), tensor.WithBacking(num.Slice[float32](t)[a:b])), nil
	case tensor.Float64:
		return tensor.New(tensor.WithShape(b-a), tensor.WithBacking(num.Slice[float64](t)[a:b])), nil
	}
	return nil, fmt.Errorf("dtype %v: want float32 or float64", t.Dtype())
}

// gatherer gathers the ranks' pieces of full-size tensors, parameter by
// parameter, straight into the full tensors (no buffer of the whole
// vector: that would cost as much memory as sharding saves).
type gatherer struct {
	comm Comm
	lay  *shardLayout
}

// gather sets every tensor of full (one per parameter, of its size) to
// the concatenation of the ranks' pieces, this rank's being mine (one per
// piece), on every rank (root < 0) or on root alone (the others' full may
// hold nils).
func (g *gatherer) gather(mine, full []*tensor.Dense, root int) error {
	switch g.lay.dtype {
	case tensor.Float32:
		return gatherAs(g, g.comm.AllgatherFloat32, g.comm.GatherFloat32, mine, full, root)
	case tensor.Float64:
		return gatherAs(g, g.comm.AllgatherFloat64, g.comm.GatherFloat64, mine, full, root)
	}
	return fmt.Errorf("shard: dtype %v: want float32 or float64", g.lay.dtype)
}

func gatherAs[T num.Float](g *gatherer, all func(send, recv []T, counts []int) error, to func(send, recv []T, counts []int, root int) error, mine, full []*tensor.Dense, root int) error {
	for i := range g.lay.full {
		var send, recv []T
		if j := g.lay.pieceOf[i]; j >= 0 {
			send = num.Slice[T](mine[j])
		}
		if full[i] != nil {
			recv = num.Slice[T](full[i])
		}
		var err error
		if root < 0 {
			err = all(send, recv, g.lay.parts[i])
		} else {
			err = to(send, recv, g.lay.parts[i], root)
		}
		if err != nil {
			return fmt.Errorf("shard: gathering %s: %w", g.lay.full[i].Name, err)
		}
	}
	return nil
}

// values returns the pieces' views of the parameter values.
func (l *shardLayout) values() []*tensor.Dense {
	ts := make([]*tensor.Dense, len(l.shard))
	for j, p := range l.shard {
		ts[j] = p.Value
	}
	return ts
}

// slice copies this rank's pieces of the full tensors into mine.
func (l *shardLayout) slice(full, mine []*tensor.Dense) error {
	for j, pc := range l.pieces {
		var src *tensor.Dense = full[pc.i]
		v, err := viewRange(src, pc.a, pc.b)
		if err != nil {
			return err
		}
		if err := copyDense(mine[j], v); err != nil {
			return err
		}
	}
	return nil
}

func copyDense(dst, src *tensor.Dense) error {
	switch {
	case dst.Dtype() != src.Dtype() || dst.Shape().TotalSize() != src.Shape().TotalSize():
		return fmt.Errorf("shard: copy of %v %v into %v %v", src.Dtype(), src.Shape(), dst.Dtype(), dst.Shape())
	case dst.Dtype() == tensor.Float32:
		copy(num.Slice[float32](dst), num.Slice[float32](src))
	default:
		copy(num.Slice[float64](dst), num.Slice[float64](src))
	}
	return nil
}

// likeFull allocates one tensor per parameter of its shape and dtype.
func (l *shardLayout) likeFull() []*tensor.Dense {
	ts := make([]*tensor.Dense, len(l.full))
	for i, p := range l.full {
		ts[i] = tensor.New(tensor.Of(p.Value.Dtype()), tensor.WithShape(p.Value.Shape().Clone()...))
	}
	return ts
}

// shardProbes draws every probe for the whole parameter list, as the
// unsharded optimizer's source does, and hands out this rank's pieces.
type shardProbes struct {
	src  *optim.RandomProbes
	lay  *shardLayout
	full []*tensor.Dense
}

// Fill implements optim.ProbeSource for the shard's pieces.
func (s *shardProbes) Fill(out []*tensor.Dense) error {
	if s.full == nil {
		s.full = s.lay.likeFull()
	}
	if err := s.src.Fill(s.full); err != nil {
		return err
	}
	return s.lay.slice(s.full, out)
}

// MarshalBinary saves the whole source's state (the unsharded one's).
func (s *shardProbes) MarshalBinary() ([]byte, error) { return s.src.MarshalBinary() }

// UnmarshalBinary restores it.
func (s *shardProbes) UnmarshalBinary(b []byte) error { return s.src.UnmarshalBinary(b) }

// newShardInner builds the named optimizer for the shard, its Hutchinson
// probes drawn by a shardProbes over the source the unsharded optimizer
// would make, and M-FAC's inner products summed over the ranks (see the
// comment at the top of this file).
func newShardInner(name string, h Hyper, predictions int, seed uint64, lay *shardLayout) (optim.Optimizer, error) {
	e, cfg, err := resolve(name, h, predictions, seed)
	if err != nil {
		return nil, err
	}
	switch c := cfg.(type) {
	case *sophia.Config:
		if c.Estimator == sophia.Hutchinson && c.Probes == nil {
			c.Probes = &shardProbes{src: optim.NewRandomProbes(c.Probe, c.Seed), lay: lay}
		}
	case *adahessian.Config:
		if !c.GNB && c.Probes == nil {
			c.Probes = &shardProbes{src: optim.NewRandomProbes(c.Probe, c.Seed), lay: lay}
		}
	}
	if err := e.validate(cfg); err != nil {
		return nil, err
	}
	o, err := e.build(cfg)
	if err != nil {
		return nil, err
	}
	if m, ok := o.(*mfac.MFAC); ok {
		m.SetReducer(commReducer{lay.comm})
	}
	return o, nil
}

// commReducer sums M-FAC's inner products over the ranks.
type commReducer struct{ c Comm }

// AllReduceSum implements mfac.Reducer.
func (r commReducer) AllReduceSum(buf []float64) error { return r.c.AllreduceFloat64(buf) }
