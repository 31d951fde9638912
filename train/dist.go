package train

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/curvopt/curvopt/internal/num"
	"github.com/curvopt/curvopt/nn"
	"github.com/curvopt/curvopt/optim"
	"gorgonia.org/tensor"
)

// Comm is the communicator of a data-parallel run (Config.Comm): the ranks
// of one job, each training on its contiguous share of every global batch,
// with the sums that make their results one. mpi.World implements it over
// MPI (build tag mpi); a nil Comm, or one of Size 1, is a single process.
//
// Every rank must make the same calls in the same order (they are
// collectives); a rank that fails cannot tell the others, so a command
// ends the job on an error (mpi.World.Abort) instead of returning.
type Comm interface {
	// Rank is this process's rank in [0, Size()); Size the number of ranks.
	Rank() int
	Size() int
	// AllreduceFloat32 and AllreduceFloat64 replace buf by its elementwise
	// sum over the ranks, the same on every rank.
	AllreduceFloat32(buf []float32) error
	AllreduceFloat64(buf []float64) error
	// AllgatherFloat32 and AllgatherFloat64 concatenate every rank's send,
	// of counts[rank] values, into recv in rank order.
	AllgatherFloat32(send, recv []float32, counts []int) error
	AllgatherFloat64(send, recv []float64, counts []int) error
	// GatherFloat32 and GatherFloat64 are the all-gathers with the result
	// on root alone (the others' recv is unused).
	GatherFloat32(send, recv []float32, counts []int, root int) error
	GatherFloat64(send, recv []float64, counts []int, root int) error
}

// Share returns the contiguous rows [off, off+n) of a global batch of rows
// rows that rank takes among size ranks: rows/size each, one more for the
// first rows%size ranks, in rank order (so the ranks' shares, concatenated,
// are the batch).
func Share(rows, size, rank int) (off, n int) {
	q, r := rows/size, rows%size
	n = q
	if rank < r {
		n++
	}
	return rank*q + min(rank, r), n
}

// dist is a data-parallel run's view of the engine: an Oracle whose every
// answer (loss, gradient, H·v, sampled-label gradient, the batch's correct
// predictions) is that of the whole global batch, on every rank.
//
// Each rank's engine answers for its own rows, a mean over its n rows; the
// rank scales it by n/B (B the global batch) and the ranks sum, so the sum is
// the mean over the global batch, whatever the split (uneven with B not a
// multiple of the ranks): the single-process answer, up to the order of the
// float sums (the engine's row sums split at the share boundaries, then the
// all-reduce's sum over ranks).
//
// Curvature probes: a Hutchinson probe z (AdaHessian, SophiaH) is drawn by
// the optimizer, whose state, seeded by Config.Seed and updated by the same
// steps, is the same on every rank, so z is shared and the summed z⊙(H·z)
// over the ranks' data is the single-process z⊙(H·z) (the all-reduce sums H·z
// before the optimizer multiplies by z, which is why z must be one: with a
// z per rank the product would be biased). The sampled labels of the GNB
// estimate are drawn per row: every rank's generator steps through the whole
// global batch, one uniform per row (rowSampler), and uses the uniforms of
// its own rows, so the union of the ranks' labels is the single process's
// draw and the generator's state (in the checkpoint) does not depend on the
// number of ranks. Dropout masks are drawn the same way: each rank's
// dropout ops step their generator over the rows of the global batch before
// its own (nn.DropoutState.SetRows), so every row gets the single process's
// mask.
type dist struct {
	eng     Oracle
	drop    *nn.DropoutState // the model's dropout masks (nil: none)
	comm    Comm
	sampler *rowSampler
	params  []optim.Param
	rows    int     // global batch rows of the current step
	off, n  int     // this rank's rows
	w       float64 // n / rows
	per     int     // labels (logit rows) per row
	// With Config.GNBBatch G > 0 the sampled-label gradient is the mean
	// over the first G rows of the global batch, gnbLocal of them this
	// rank's first rows (possibly none).
	gnbRows, gnbLocal int
	buf32             []float32
	buf64             []float64
	ts                []*tensor.Dense // the gradients, then the tensors reduced with them
	scalars           [2]float64      // loss·w, correct rows
	commT             time.Duration   // time in all-reduces since the step began
	commB             int64           // bytes all-reduced since the step began
	correct           int             // the global batch's correct predictions
	syncedBN          bool            // Config.SyncBN: the running statistics agree already
	// the local batch of the last slice call, reused while the global
	// batch's backing and the share are the same
	lx      *tensor.Dense
	lxFrom  any // the global batch's first value (its address)
	lxShare [2]int
}

func newDist(eng Oracle, comm Comm, sampler *rowSampler) *dist {
	return &dist{eng: eng, comm: comm, sampler: sampler, params: eng.Params()}
}

// slice sets the step's global batch (x with rows rows, labels with
// labelsPerRow per row) and returns this rank's rows of it, without a copy
// (the local x aliases x).
func (d *dist) slice(x *tensor.Dense, labels []int) (*tensor.Dense, []int, error) {
	rows := x.Shape()[0]
	off, n := Share(rows, d.comm.Size(), d.comm.Rank())
	if n == 0 {
		return nil, nil, fmt.Errorf("a batch of %d rows cannot be split over %d ranks: every rank needs a row", rows, d.comm.Size())
	}
	if len(labels)%rows != 0 {
		return nil, nil, fmt.Errorf("%d labels for %d rows", len(labels), rows)
	}
	per := len(labels) / rows
	d.rows, d.off, d.n, d.w, d.per = rows, off, n, float64(n)/float64(rows), per
	if d.drop != nil { // the global batch's masks, this rank's rows of them
		if err := d.drop.SetRows(off, off+n); err != nil {
			return nil, nil, fmt.Errorf("dropout: %w", err)
		}
	}
	if d.sampler != nil {
		d.sampler.before, d.sampler.after = off*per, (rows-off-n)*per
		if d.gnbRows > 0 { // only the first gnbRows rows are drawn
			d.sampler.after = (d.gnbRows - off - d.gnbLocal) * per
		}
	}
	var first any // a pointer: no allocation
	switch x.Dtype() {
	case tensor.Float32:
		first = &num.Slice[float32](x)[0]
	case tensor.Float64:
		first = &num.Slice[float64](x)[0]
	default:
		return nil, nil, fmt.Errorf("input dtype %v: want float32 or float64", x.Dtype())
	}
	if d.lx == nil || d.lxFrom != first || d.lxShare != [2]int{off, n} {
		rowLen := x.Shape().TotalSize() / rows
		a, b := off*rowLen, (off+n)*rowLen
		var back any
		if x.Dtype() == tensor.Float32 {
			back = num.Slice[float32](x)[a:b]
		} else {
			back = num.Slice[float64](x)[a:b]
		}
		shape := append([]int{n}, x.Shape()[1:]...)
		d.lx, d.lxFrom, d.lxShare = tensor.New(tensor.WithShape(shape...), tensor.WithBacking(back)), first, [2]int{off, n}
	}
	return d.lx, labels[off*per : (off+n)*per], nil
}

// Params returns the engine's parameters.
func (d *dist) Params() []optim.Param { return d.params }

// Provides forwards the engine's queries (optim.CheckOracle).
func (d *dist) Provides() optim.Needs {
	if p, ok := d.eng.(optim.Provider); ok {
		return p.Provides()
	}
	return optim.Needs{HVP: true, SampledGrad: true}
}

// Correct returns the global batch's correct predictions of the last
// LossGrad or LossGradHVP.
func (d *dist) Correct() int { return d.correct }

// LossGrad returns the global batch's mean loss and leaves its gradient in
// the parameters' Grad, on every rank.
func (d *dist) LossGrad() (float64, error) {
	loss, err := d.eng.LossGrad()
	if err != nil {
		return loss, err
	}
	return d.reduceLoss(loss, d.grads(nil))
}

// LossGradHVP is LossGrad with the global batch's H·v in out.
func (d *dist) LossGradHVP(v, out []*tensor.Dense) (float64, error) {
	loss, err := d.eng.LossGradHVP(v, out)
	if err != nil {
		return loss, err
	}
	return d.reduceLoss(loss, d.grads(out))
}

// HVP sets out to the global batch's H·v.
func (d *dist) HVP(v, out []*tensor.Dense) error {
	if err := d.eng.HVP(v, out); err != nil {
		return err
	}
	return d.reduce(out)
}

// SampledGrad sets out to the global batch's sampled-label gradient, the
// labels of every row drawn as one process draws them.
func (d *dist) SampledGrad(out []*tensor.Dense) error {
	if d.gnbRows == 0 {
		if err := d.eng.SampledGrad(out); err != nil {
			return err
		}
		return d.reduce(out)
	}
	if d.gnbLocal > 0 {
		if err := d.eng.SampledGrad(out); err != nil {
			return err
		}
	} else { // no GNB rows here: a zero share, the generator stepped as the others'
		for _, t := range out {
			t.Zero()
		}
		if d.sampler != nil {
			for range d.gnbRows * d.per {
				d.sampler.r.Float64()
			}
		}
	}
	return d.reduceWeighted(out, float64(d.gnbLocal)/float64(d.gnbRows))
}

// grads returns the gradients followed by extra (in a slice reused by
// every step).
func (d *dist) grads(extra []*tensor.Dense) []*tensor.Dense {
	d.ts = d.ts[:0]
	for _, p := range d.params {
		d.ts = append(d.ts, p.Grad)
	}
	d.ts = append(d.ts, extra...)
	return d.ts
}

// syncStats replaces every batch-norm running statistic by the ranks'
// weighted mean (weights n/B). The running means then equal one process's
// (each rank's batch mean weighted by its rows is the global batch's mean);
// the running variances are the weighted mean of the ranks' batch
// variances, which leaves out the spread of the ranks' means: with
// per-rank batch statistics (the default, as torch DDP's) a run with batch
// norm is not the single-process run, but its ranks stay identical.
//
// With synchronised batch norm (Config.SyncBN) every rank updated its
// running statistics from the global batch's, the single process's update,
// so they are left as they are.
func (d *dist) syncStats(stats []*tensor.Dense) error {
	if len(stats) == 0 || d.syncedBN {
		return nil
	}
	if err := d.reduce(stats); err != nil {
		return fmt.Errorf("batch-norm running statistics: %w", err)
	}
	return nil
}

// reduceLoss all-reduces ts (weighted) and the loss and correct count.
func (d *dist) reduceLoss(loss float64, ts []*tensor.Dense) (float64, error) {
	if err := d.reduce(ts); err != nil {
		return loss, err
	}
	c := 0
	if k, ok := d.eng.(interface{ Correct() int }); ok {
		c = k.Correct()
	}
	d.scalars = [2]float64{loss * d.w, float64(c)}
	t0 := time.Now()
	err := d.comm.AllreduceFloat64(d.scalars[:])
	d.commT += time.Since(t0)
	d.commB += 16
	if err != nil {
		return loss, fmt.Errorf("data parallel: the loss's all-reduce: %w", err)
	}
	d.correct = int(d.scalars[1])
	return d.scalars[0], nil
}

// reduce replaces every tensor of ts by the sum over the ranks of its
// values times the rank's weight n/B, in one all-reduce.
func (d *dist) reduce(ts []*tensor.Dense) error { return d.reduceWeighted(ts, d.w) }

// reduceWeighted is reduce with the weight w.
func (d *dist) reduceWeighted(ts []*tensor.Dense, w float64) error {
	if len(ts) == 0 {
		return nil
	}
	if d.rows == 0 {
		return errors.New("data parallel: a query before the first batch")
	}
	var err error
	t0 := time.Now()
	defer func() { d.commT += time.Since(t0) }()
	switch ts[0].Dtype() {
	case tensor.Float32:
		d.buf32, err = reduceAs(d.comm.AllreduceFloat32, d.buf32, ts, float32(w))
		d.commB += 4 * int64(len(d.buf32))
	case tensor.Float64:
		d.buf64, err = reduceAs(d.comm.AllreduceFloat64, d.buf64, ts, w)
		d.commB += 8 * int64(len(d.buf64))
	default:
		err = fmt.Errorf("dtype %v: want float32 or float64", ts[0].Dtype())
	}
	if err != nil {
		return fmt.Errorf("data parallel: all-reduce: %w", err)
	}
	return nil
}

// reduceAs packs w·ts into buf (grown once to the largest size), sums it
// over the ranks and unpacks it.
func reduceAs[T num.Float](allreduce func([]T) error, buf []T, ts []*tensor.Dense, w T) ([]T, error) {
	size := 0
	for _, t := range ts {
		if t.Dtype() != ts[0].Dtype() {
			return buf, fmt.Errorf("mixed dtypes %v and %v", ts[0].Dtype(), t.Dtype())
		}
		size += t.Shape().TotalSize()
	}
	if cap(buf) < size {
		buf = make([]T, size)
	}
	buf = buf[:size]
	k := 0
	for _, t := range ts {
		for _, v := range num.Slice[T](t) {
			buf[k] = v * w
			k++
		}
	}
	if err := allreduce(buf); err != nil {
		return buf, err
	}
	k = 0
	for _, t := range ts {
		k += copy(num.Slice[T](t), buf[k:])
	}
	return buf, nil
}

// rowSampler draws sampled labels as hessian.RandSampler does (inverse-CDF
// sampling, one uniform per row), for this rank's rows of the global batch:
// it first draws the uniforms of the rows before them (before) and, after
// them, of the rows after (after), so the generator steps through the whole
// global batch on every rank and each row gets the uniform it gets in one
// process.
type rowSampler struct {
	r             *rand.Rand
	before, after int
}

// Sample implements nn.LabelSampler.
func (s *rowSampler) Sample(probs []float64, classes int, labels []int) error {
	if classes <= 0 || len(probs) != classes*len(labels) {
		return fmt.Errorf("train: row sampler: %d probabilities for %d rows of %d classes", len(probs), len(labels), classes)
	}
	for range s.before {
		s.r.Float64()
	}
	for r := range labels {
		u := s.r.Float64()
		l := classes - 1
		var c float64
		for j, v := range probs[r*classes : (r+1)*classes] {
			c += v
			if u < c {
				l = j
				break
			}
		}
		labels[r] = l
	}
	for range s.after {
		s.r.Float64()
	}
	return nil
}

// bnReducer is the nn.BatchReducer of synchronised batch norm
// (Config.SyncBN): the step's share of the global batch (dist.slice sets
// it before the engine runs), and all-reduces counted in the step's
// communication.
type bnReducer struct{ d *dist }

// Share returns this rank's rows and the global batch's (0, 0 before the
// first batch).
func (b *bnReducer) Share() (n, total int) {
	if b.d == nil {
		return 0, 0
	}
	return b.d.n, b.d.rows
}

// AllreduceFloat32 sums buf over the ranks.
func (b *bnReducer) AllreduceFloat32(buf []float32) error {
	if b.d == nil {
		return errors.New("data parallel: batch-norm statistics before the first batch")
	}
	t0 := time.Now()
	err := b.d.comm.AllreduceFloat32(buf)
	b.d.commT += time.Since(t0)
	b.d.commB += 4 * int64(len(buf))
	return err
}

// AllreduceFloat64 sums buf over the ranks.
func (b *bnReducer) AllreduceFloat64(buf []float64) error {
	if b.d == nil {
		return errors.New("data parallel: batch-norm statistics before the first batch")
	}
	t0 := time.Now()
	err := b.d.comm.AllreduceFloat64(buf)
	b.d.commT += time.Since(t0)
	b.d.commB += 8 * int64(len(buf))
	return err
}
