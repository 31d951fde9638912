package train

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"

	"github.com/curvopt/curvopt/internal/num"
	"github.com/curvopt/curvopt/optim"

	"github.com/curvopt/curvopt/nn"
	"gorgonia.org/tensor"
)

// distributed reports whether cfg makes a data-parallel run (a Comm of
// more than one rank).
func distributed(cfg Config) bool {
	return cfg.Comm != nil && !isNil(cfg.Comm) && cfg.Comm.Size() > 1
}

// writer reports whether this process writes the run's files: always in a
// single process, rank 0's alone in a data-parallel run.
func writer(cfg Config) bool {
	return !distributed(cfg) || cfg.Comm.Rank() == 0
}

// shard replaces the run's optimizer by one whose state is split over the
// ranks (Config.Shard).
func (r *run) shard(predictions int) error {
	lay, err := newShardLayout(r.eng.Params(), r.cfg.Comm)
	if err != nil {
		return err
	}
	inner, err := newShardInner(r.cfg.Optimizer, r.cfg.Hyper, predictions, r.cfg.Seed, lay)
	if err != nil {
		return err
	}
	r.opt.Close()
	r.opt = newShardedOpt(inner, lay, r.cfg.Comm)
	return nil
}

// stopped returns ctx's error when the run is to stop before its next
// step. In a data-parallel run the ranks agree (a signal reaches them at
// different moments): all stop when any was cancelled, at the same step,
// so that the checkpoint's collectives match.
func (r *run) stopped(ctx context.Context) error {
	err := ctx.Err()
	if r.dist == nil {
		return err
	}
	r.stop[0] = 0
	if err != nil {
		r.stop[0] = 1
	}
	if rerr := r.cfg.Comm.AllreduceFloat64(r.stop[:]); rerr != nil {
		return errors.Join(err, fmt.Errorf("train: agreeing to stop: %w", rerr))
	}
	if err == nil && r.stop[0] > 0 {
		err = fmt.Errorf("train: stopped with the other ranks (one was cancelled): %w", context.Canceled)
	}
	return err
}

// stoppedTogether returns err once every rank has passed the checkpoint
// of the stop (rank 0 wrote it), so that no rank's exit ends the job
// while rank 0 writes.
func (r *run) stoppedTogether(err error) error {
	if r.dist == nil {
		return err
	}
	r.stop[0] = 0
	if rerr := r.cfg.Comm.AllreduceFloat64(r.stop[:]); rerr != nil {
		return errors.Join(err, fmt.Errorf("train: after the checkpoint: %w", rerr))
	}
	return err
}

// checkDistributed refuses what a data-parallel run does not do (yet),
// naming the setting.
func checkDistributed(cfg Config) error {
	size := cfg.Comm.Size()
	switch {
	case cfg.BatchSize < size:
		return &SettingError{"batch_size", cfg.BatchSize, fmt.Sprintf("must be at least the number of ranks, %d, in a data-parallel run (every rank needs a row)", size)}
	case cfg.SyncBN && cfg.GNBBatch > 0:
		return &SettingError{"gnb_batch", cfg.GNBBatch, "must be 0 with synchronised batch norm (sync_bn): the ranks without GNB rows would not join the statistics' all-reduces"}
	}
	return nil
}

// localGNB is the number of this rank's rows among the first GNBBatch
// rows of the global batch (with DropLast every batch has BatchSize rows):
// the GNB rows of a data-parallel run are the single process's, so they
// sit on the first ranks. It is GNBBatch in a single process.
func localGNB(cfg Config) int {
	if !distributed(cfg) || cfg.GNBBatch <= 0 {
		return cfg.GNBBatch
	}
	off, n := Share(cfg.BatchSize, cfg.Comm.Size(), cfg.Comm.Rank())
	return max(0, min(off+n, cfg.GNBBatch)-off)
}

// flatDist is the global batch's Hessian as a spectrum.Operator, for
// sharpness tracking (Config.HessianEvery) in a data-parallel run: each
// rank's H·v over its rows, weighted by n/B and all-reduced. The vectors
// Lanczos and Hutchinson draw come from the run's generator, the same on
// every rank, and the answers are identical on every rank, so every rank
// takes the same iterations (the collectives match) and records the same
// values.
type flatDist struct {
	eng interface {
		Dim() int
		HVPFlat(v, out []float64) error
	}
	d *dist
}

// Dim is the number of parameters.
func (f *flatDist) Dim() int { return f.eng.Dim() }

// HVPFlat sets out to the global batch's H·v.
func (f *flatDist) HVPFlat(v, out []float64) error {
	if err := f.eng.HVPFlat(v, out); err != nil {
		return err
	}
	for i := range out {
		out[i] *= f.d.w
	}
	if err := f.d.comm.AllreduceFloat64(out); err != nil {
		return fmt.Errorf("data parallel: H·v all-reduce: %w", err)
	}
	return nil
}

// checkLastShare refuses a data-parallel run whose epochs end in a batch
// of fewer rows than ranks (unless it is dropped): a rank would have no rows.
func checkLastShare(cfg Config, rows int) error {
	if !distributed(cfg) || cfg.DropLast || cfg.BatchSize <= 0 {
		return nil
	}
	if last := rows % cfg.BatchSize; last != 0 && last < cfg.Comm.Size() {
		return &SettingError{"drop_last", false, fmt.Sprintf("an epoch of %d rows ends in a batch of %d, fewer than the %d ranks: drop it (drop_last) or change the batch size", rows, last, cfg.Comm.Size())}
	}
	return nil
}

// runningStats returns the model's batch-norm running means and
// variances, the tensors a data-parallel run keeps equal on every rank.
func runningStats(m *nn.Model) []*tensor.Dense {
	var ts []*tensor.Dense
	for _, name := range m.BatchNormNames() {
		mean, vari, err := m.RunningStats(name)
		if err == nil {
			ts = append(ts, mean, vari)
		}
	}
	return ts
}

// paramsDigest is Result.ParamsDigest: SHA-256 over the values' bytes
// (little-endian, in their dtype) of the parameters, then of stats.
func paramsDigest(params []optim.Param, stats []*tensor.Dense) string {
	h := sha256.New()
	var b [8]byte
	put := func(t *tensor.Dense) {
		switch t.Dtype() {
		case tensor.Float32:
			for _, v := range num.Slice[float32](t) {
				bits := math.Float32bits(v)
				binary.LittleEndian.PutUint32(b[:4], bits)
				h.Write(b[:4])
			}
		case tensor.Float64:
			for _, v := range num.Slice[float64](t) {
				binary.LittleEndian.PutUint64(b[:], math.Float64bits(v))
				h.Write(b[:])
			}
		}
	}
	for _, p := range params {
		put(p.Value)
	}
	for _, t := range stats {
		put(t)
	}
	return hex.EncodeToString(h.Sum(nil))
}
