package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/curvopt/curvopt/data"
	"github.com/curvopt/curvopt/hessian"
	"github.com/curvopt/curvopt/hessian/spectrum"
	"github.com/curvopt/curvopt/nn"
	"github.com/curvopt/curvopt/optim"
	"gorgonia.org/tensor"
)

// Config describes one training run. The zero value of an optional field
// takes the default given in its comment.
type Config struct {
	// Model is the network's layer-list spec (nn.MLP, nn.CNN or a spec file).
	Model nn.Spec
	// DAG, when set, is the model instead of Model (nn.ResNet, nn.GPT or a
	// DAG file). A token model (DAG.Tokens > 0) trains on text windows
	// (data.KindText) with one next-character label per position.
	DAG *nn.DAG
	// Data selects the dataset; Train and Test, when set, are used instead
	// of loading it (a comparison reuses one loaded dataset for every run).
	Data        data.Spec
	Train, Test *data.Dataset

	// Optimizer is one of Optimizers(); Hyper overrides its defaults.
	Optimizer string
	Hyper     Hyper

	// Steps is the budget in optimizer steps; when 0, Epochs (default 1)
	// full epochs are run.
	Steps, Epochs int
	// BatchSize is the training batch size (default 128).
	BatchSize int
	// DropLast drops an epoch's incomplete last batch (by default it is
	// trained on, as torch's DataLoader does).
	DropLast bool
	// GNBBatch > 0 computes Sophia's sampled-label (GNB) gradient on the
	// first GNBBatch rows of each batch, as the Sophia paper does with a
	// sub-batch; SophiaG's bs then defaults to GNBBatch. It implies DropLast.
	GNBBatch int
	// EvalBatch is the evaluation batch size (default 500).
	EvalBatch int
	// Seed seeds the model initialisation, the data order and augmentation,
	// the optimizer's probes and the sampled labels.
	Seed uint64
	// Dtype is tensor.Float32 (default) or tensor.Float64.
	Dtype tensor.Dtype
	// Schedule multiplies the learning rate per step (default constant).
	// A cosine schedule's Total defaults to the run's total steps.
	Schedule Schedule
	// ClipNorm > 0 clips the gradient to this global norm before each step.
	ClipNorm float64
	// Normalize standardises each channel with the training split's mean
	// and standard deviation.
	Normalize bool
	// Augment configures training-time augmentation (off by default).
	Augment data.Augment

	// OutDir, when set, receives steps.{jsonl,csv}, epochs.{jsonl,csv},
	// config.json and checkpoint.gob.
	OutDir string
	// Resume continues from OutDir/checkpoint.gob up to the budget.
	Resume bool
	// CheckpointEvery saves a checkpoint every so many steps (0: at the end
	// of every epoch and of the run; negative: only at the end of the run).
	CheckpointEvery int
	// EvalEvery > 0 also evaluates on the test split every so many steps
	// (besides the end of every epoch and of the run); the record's
	// TrainLoss and TrainAcc then cover the steps since the last evaluation.
	EvalEvery int
	// HessianEvery > 0 measures the Hessian's top eigenvalue (Lanczos) and
	// trace (Hutchinson) on the current batch every so many steps.
	HessianEvery int

	// Progress receives progress output (nil: none). Terminal selects an
	// in-place progress bar instead of plain lines; LogEvery is the number
	// of steps between plain lines (default: ten lines an epoch).
	Progress io.Writer
	Terminal bool
	LogEvery int
}

// Result summarises a finished run.
type Result struct {
	Optimizer     string
	Steps, Epochs int
	FinalTestAcc  float64
	FinalTestLoss float64
	BestTestAcc   float64
	// TrainWall is the time spent in training steps (evaluation excluded).
	TrainWall time.Duration
	// MeanStepMS is the mean wall time of an optimizer step, including the
	// forward and backward passes and any curvature queries.
	MeanStepMS float64
	// StateBytes is the size of the optimizer's state.
	StateBytes int64
	// EpochLog holds one record per evaluation, StepLog one per step, of
	// this call only: a resumed run's earlier records are in OutDir's
	// epochs.jsonl and steps.jsonl.
	EpochLog []EpochRecord
	StepLog  []StepRecord
}

const checkpointFile = "checkpoint.gob"

// ErrDiverged is wrapped by the error Run returns when training stopped on a
// NaN or Inf loss, gradient or curvature estimate (errors.Is(err,
// ErrDiverged)); the last good checkpoint is kept.
var ErrDiverged = errors.New("training diverged")

// diverged wraps err with ErrDiverged when it reports a non-finite value.
func diverged(step int, err error) error {
	if errors.Is(err, optim.ErrNonFinite) {
		return fmt.Errorf("train: step %d: %w (%w; the last checkpoint is kept)", step, ErrDiverged, err)
	}
	return fmt.Errorf("train: step %d: %w", step, err)
}

// run holds a run's live pieces.
type run struct {
	cfg        Config
	model      *nn.Model
	text       bool      // token model on text windows
	tb         textBatch // its input and labels
	eng        *hessian.Engine
	opt        optim.Optimizer
	it         *data.Iterator
	test       *data.Dataset
	norm       *data.Stats
	samplerPCG *rand.PCG
	hessPCG    *rand.PCG
	modelKey   string
	total      int
	baseLR     float64

	step, epoch  int
	best, wall   float64
	epLoss       float64
	epAcc        float64
	epSteps      int
	steps        *metricsLog[StepRecord]
	epochs       *metricsLog[EpochRecord]
	res          *Result
	progress     *progress
	lastStepRecs []StepRecord
}

// Run trains a model as cfg describes and returns the summary. It stops
// early, with an error naming the step, if the loss or gradient becomes NaN
// or Inf, leaving the last checkpoint intact; ctx cancellation stops it after
// the current step with ctx's error, after writing a checkpoint.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	r, err := setup(cfg, true)
	if err != nil {
		return nil, err
	}
	defer r.close()
	return r.loop(ctx)
}

func (c *Config) defaults() {
	if c.BatchSize == 0 {
		c.BatchSize = 128
	}
	if c.EvalBatch == 0 {
		c.EvalBatch = 500
	}
	if c.Steps == 0 && c.Epochs == 0 {
		c.Epochs = 1
	}
	if c.Dtype == (tensor.Dtype{}) {
		c.Dtype = tensor.Float32
	}
	if c.Schedule.Kind == "" {
		c.Schedule.Kind = "constant"
	}
}

// Validate checks the configuration's own fields (the optimizer's
// hyperparameters are checked when it is built). Zero values stand for the
// defaults.
func (c Config) Validate() error {
	switch {
	case c.BatchSize < 0:
		return fmt.Errorf("train: batch size %d: must be >= 1 (0: the default)", c.BatchSize)
	case c.EvalBatch < 0:
		return fmt.Errorf("train: eval batch size %d: must be >= 1 (0: the default)", c.EvalBatch)
	case c.EvalEvery < 0:
		return fmt.Errorf("train: eval-every %d: must be >= 0", c.EvalEvery)
	case c.Steps < 0:
		return fmt.Errorf("train: steps %d: must be >= 0", c.Steps)
	case c.Epochs < 0:
		return fmt.Errorf("train: epochs %d: must be >= 0", c.Epochs)
	case c.ClipNorm < 0 || math.IsNaN(c.ClipNorm):
		return fmt.Errorf("train: clip norm %v: must be >= 0", c.ClipNorm)
	case c.GNBBatch < 0 || c.GNBBatch > c.BatchSize:
		return fmt.Errorf("train: GNB batch %d: must be in [0, batch size %d]", c.GNBBatch, c.BatchSize)
	case c.HessianEvery < 0:
		return fmt.Errorf("train: hessian-every %d: must be >= 0", c.HessianEvery)
	case c.Dtype != tensor.Float32 && c.Dtype != tensor.Float64:
		return fmt.Errorf("train: dtype %v: want float32 or float64", c.Dtype)
	case c.Resume && c.OutDir == "":
		return errors.New("train: resume needs an output directory holding the checkpoint")
	}
	return nil
}

// setup builds a run. logs opens the metrics files in OutDir (a resumed run
// keeps their records up to the checkpoint).
func setup(cfg Config, logs bool) (*run, error) {
	cfg.defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	trainDS, testDS := cfg.Train, cfg.Test
	if trainDS == nil || testDS == nil {
		var err error
		if trainDS, testDS, err = data.LoadSpec(cfg.Data); err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
	}
	model, text, err := newModel(cfg, rand.New(rand.NewPCG(cfg.Seed, 0x5eed)), trainDS)
	if err != nil {
		return nil, err
	}
	if text && cfg.Augment != (data.Augment{}) {
		return nil, errors.New("train: augmentation is for images, not text")
	}
	if model.Classes() < trainDS.Classes {
		return nil, fmt.Errorf("train: the model has %d outputs but %s has %d classes", model.Classes(), trainDS.Name, trainDS.Classes)
	}
	predictions := cfg.BatchSize
	engOpts := []hessian.Option{}
	if cfg.GNBBatch > 0 {
		predictions = cfg.GNBBatch
		cfg.DropLast = true // every batch must hold the GNB rows
		engOpts = append(engOpts, hessian.WithGNBBatch(cfg.GNBBatch))
	}
	opt, err := NewOptimizer(cfg.Optimizer, cfg.Hyper, predictions, cfg.Seed)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	r := &run{cfg: cfg, model: model, text: text, opt: opt, test: testDS, res: &Result{Optimizer: cfg.Optimizer}}
	r.samplerPCG = rand.NewPCG(cfg.Seed, 0x5a3b1e)
	r.hessPCG = rand.NewPCG(cfg.Seed, 0x4e55)
	needs := opt.Needs()
	if cfg.HessianEvery > 0 || !logs {
		needs.HVP = true // sharpness tracking and analysis use H·v
	}
	engOpts = append(engOpts, hessian.WithRand(rand.New(r.samplerPCG)))
	if r.eng, err = hessian.New(model, needs, engOpts...); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if cfg.Normalize {
		st := trainDS.Stats()
		r.norm = &st
	}
	r.it, err = data.NewIterator(trainDS, data.IterConfig{
		BatchSize: cfg.BatchSize, Shuffle: true, DropLast: cfg.DropLast, Seed: cfg.Seed,
		Dtype: cfg.Dtype, Norm: r.norm, Augment: cfg.Augment,
	})
	if err != nil {
		r.close()
		return nil, fmt.Errorf("train: %w", err)
	}
	perEpoch := r.it.BatchesPerEpoch()
	if perEpoch == 0 {
		r.close()
		return nil, fmt.Errorf("train: %s has %d images, fewer than one batch of %d", trainDS.Name, trainDS.Len(), cfg.BatchSize)
	}
	r.total = cfg.Steps
	if r.total == 0 {
		r.total = cfg.Epochs * perEpoch
	}
	if r.cfg.Schedule.Kind == "cosine" && r.cfg.Schedule.Total == 0 {
		r.cfg.Schedule.Total = r.total
	}
	if err := r.cfg.Schedule.Validate(); err != nil {
		r.close()
		return nil, fmt.Errorf("train: %w", err)
	}
	r.baseLR = BaseLR(cfg.Optimizer, cfg.Hyper)
	key, _ := json.Marshal(cfg.Model)
	if cfg.DAG != nil {
		key, _ = json.Marshal(cfg.DAG)
	}
	r.modelKey = string(key)

	keep := -1
	if cfg.Resume {
		if err := r.restore(); err != nil {
			r.close()
			return nil, err
		}
		keep = r.step
	}
	if cfg.OutDir != "" && logs {
		if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
			r.close()
			return nil, fmt.Errorf("train: %w", err)
		}
		if err := writeJSONAtomic(filepath.Join(cfg.OutDir, "config.json"), configSummary(r.cfg)); err != nil {
			r.close()
			return nil, err
		}
		if r.steps, err = openLog(cfg.OutDir, "steps", stepColumns, keep, func(s StepRecord) int { return s.Step }); err != nil {
			r.close()
			return nil, err
		}
		if r.epochs, err = openLog(cfg.OutDir, "epochs", epochColumns, keep, func(e EpochRecord) int { return e.Step }); err != nil {
			r.close()
			return nil, err
		}
	}
	if cfg.Progress != nil {
		r.progress = newProgress(cfg.Progress, cfg.Terminal, r.total, perEpoch, cfg.LogEvery)
	}
	return r, nil
}

func (r *run) close() {
	if r.steps != nil {
		r.steps.Close()
	}
	if r.epochs != nil {
		r.epochs.Close()
	}
	if r.eng != nil {
		r.eng.Close()
	}
}

func (r *run) loop(ctx context.Context) (*Result, error) {
	params := r.eng.Params()
	var stepTotal time.Duration
	stepsRun := 0
	for r.step < r.total {
		if err := ctx.Err(); err != nil {
			if cerr := r.checkpoint(); cerr != nil {
				return r.res, errors.Join(err, cerr)
			}
			return r.res, err
		}
		if !r.it.Next() {
			if err := r.endEpoch(); err != nil {
				return r.res, err
			}
			continue
		}
		b := r.it.Batch()
		x, labels := b.X, b.Labels
		if r.text {
			var err error
			if x, labels, err = r.tb.fill(r.it.Dataset(), b, r.cfg.Dtype); err != nil {
				return r.res, fmt.Errorf("train: step %d: %w", r.step+1, err)
			}
		}
		if err := r.eng.SetBatch(x, labels); err != nil {
			return r.res, fmt.Errorf("train: step %d: %w", r.step+1, err)
		}
		lr := r.baseLR * r.cfg.Schedule.Factor(r.step)
		if err := setLR(r.opt, lr); err != nil {
			return r.res, fmt.Errorf("train: step %d: %w", r.step+1, err)
		}
		t0 := time.Now()
		loss, err := r.eng.Prepare(r.opt)
		if err != nil {
			return r.res, diverged(r.step+1, err)
		}
		if !finite(loss) {
			return r.res, diverged(r.step+1, fmt.Errorf("the loss is %v: %w", loss, optim.ErrNonFinite))
		}
		gnorm := ClipGlobalNorm(params, r.cfg.ClipNorm)
		if !finite(gnorm) {
			return r.res, diverged(r.step+1, fmt.Errorf("the gradient norm is %v: %w", gnorm, optim.ErrNonFinite))
		}
		if err := r.opt.Step(params, r.eng); err != nil {
			return r.res, diverged(r.step+1, err)
		}
		dt := time.Since(t0)
		stepTotal += dt
		stepsRun++
		r.wall += dt.Seconds()
		r.step++

		acc := batchAccuracy(r.eng.Logits(), labels)
		rec := StepRecord{Step: r.step, Epoch: r.epoch + 1, Loss: loss, Acc: acc, LR: lr,
			StepMS: float64(dt.Microseconds()) / 1e3, GradNorm: gnorm}
		if d, ok := r.opt.(optim.Diagnostics); ok {
			rec.Diag = d.Diagnostics() // a fresh map each call
		}
		if r.cfg.HessianEvery > 0 && r.step%r.cfg.HessianEvery == 0 {
			top, tr, se, conv, err := r.sharpness()
			if err != nil {
				return r.res, fmt.Errorf("train: step %d: hessian: %w", r.step, err)
			}
			rec.HessTop, rec.HessTrace, rec.HessTraceSE, rec.HessConverged = &top, &tr, &se, &conv
		}
		r.epLoss += loss
		r.epAcc += acc
		r.epSteps++
		if err := r.record(rec); err != nil {
			return r.res, err
		}
		if r.cfg.EvalEvery > 0 && r.step%r.cfg.EvalEvery == 0 && r.step < r.total {
			if err := r.evaluate(r.epoch + 1); err != nil {
				return r.res, err
			}
		}
		if r.cfg.CheckpointEvery > 0 && r.step%r.cfg.CheckpointEvery == 0 {
			if err := r.checkpoint(); err != nil {
				return r.res, err
			}
		}
	}
	// The budget may end inside an epoch: evaluate there too.
	if r.epSteps > 0 || len(r.res.EpochLog) == 0 {
		if err := r.evaluate(r.epoch + 1); err != nil {
			return r.res, err
		}
	}
	if err := r.checkpoint(); err != nil {
		return r.res, err
	}
	r.res.Steps, r.res.Epochs = r.step, r.epoch
	r.res.TrainWall = time.Duration(r.wall * float64(time.Second))
	if stepsRun > 0 {
		r.res.MeanStepMS = float64(stepTotal.Microseconds()) / 1e3 / float64(stepsRun)
	}
	if st, err := r.opt.State(); err == nil {
		r.res.StateBytes = StateBytes(st)
	}
	if r.progress != nil {
		r.progress.done(r.res)
	}
	return r.res, nil
}

func (r *run) record(rec StepRecord) error {
	r.res.StepLog = append(r.res.StepLog, rec)
	if r.steps != nil {
		if err := r.steps.Add(rec); err != nil {
			return err
		}
	}
	if r.progress != nil {
		r.progress.step(rec)
	}
	return nil
}

// endEpoch evaluates, records and (by default) checkpoints at an epoch's end.
func (r *run) endEpoch() error {
	r.epoch++
	n := len(r.res.EpochLog)
	if n == 0 || r.res.EpochLog[n-1].Step != r.step || r.epSteps > 0 {
		if err := r.evaluate(r.epoch); err != nil {
			return err
		}
	} // else -eval-every has just evaluated at this very step

	if r.cfg.CheckpointEvery == 0 {
		return r.checkpoint()
	}
	return nil
}

// evaluate measures the test loss and accuracy and records them as the
// result of epoch (1-based; the run's last epoch may be partial).
func (r *run) evaluate(epoch int) error {
	var loss, acc float64
	var err error
	if r.text {
		loss, acc, err = EvaluateText(r.eng, r.test, r.cfg.EvalBatch, r.cfg.Dtype)
	} else {
		loss, acc, err = Evaluate(r.eng, r.test, r.cfg.EvalBatch, r.cfg.Dtype, r.norm)
	}
	if err == nil && !finite(loss) {
		err = fmt.Errorf("the test loss is %v: %w", loss, optim.ErrNonFinite)
	}
	if err != nil {
		if errors.Is(err, optim.ErrNonFinite) {
			return fmt.Errorf("train: evaluation after step %d: %w (%w; the last checkpoint is kept)", r.step, ErrDiverged, err)
		}
		return fmt.Errorf("train: evaluation after step %d: %w", r.step, err)
	}
	rec := EpochRecord{Epoch: epoch, Step: r.step, TestLoss: loss, TestAcc: acc, WallS: r.wall}
	if r.epSteps > 0 {
		rec.TrainLoss, rec.TrainAcc = r.epLoss/float64(r.epSteps), r.epAcc/float64(r.epSteps)
	}
	r.epLoss, r.epAcc, r.epSteps = 0, 0, 0
	r.best = math.Max(r.best, acc)
	r.res.FinalTestAcc, r.res.FinalTestLoss, r.res.BestTestAcc = acc, loss, r.best
	r.res.EpochLog = append(r.res.EpochLog, rec)
	if r.epochs != nil {
		if err := r.epochs.Add(rec); err != nil {
			return err
		}
		if err := r.epochs.Flush(); err != nil {
			return err
		}
		if err := r.steps.Flush(); err != nil {
			return err
		}
	}
	if r.progress != nil {
		r.progress.epoch(rec)
	}
	return nil
}

// sharpness measures the top Hessian eigenvalue (Lanczos) and the trace
// (Hutchinson, stopping at a 10% relative standard error or 20 probes, with
// its standard error se) on the current batch. converged is false when
// Lanczos stopped at its budget; top is then its last estimate.
func (r *run) sharpness() (top, trace, se float64, converged bool, err error) {
	rng := rand.New(r.hessPCG)
	// The top eigenvalue to ~1e-6 relative (residual ≤ 1e-4·‖H‖): enough to
	// track sharpness, at a few dozen products.
	lc := spectrum.LanczosConfig{K: 1, Which: spectrum.LargestAlgebraic, MaxIter: 100, Tol: 1e-6, ResidualTol: 1e-4}
	eig, err := spectrum.Lanczos(r.eng, lc, rng)
	if err != nil && !errors.Is(err, spectrum.ErrNotConverged) {
		return 0, 0, 0, false, err
	}
	tc := spectrum.TraceConfig{MinSamples: 2, MaxSamples: 20, Tol: 0.1}
	tr, err := spectrum.Hutchinson(r.eng, tc, rng)
	if err != nil && !errors.Is(err, spectrum.ErrNotConverged) {
		return 0, 0, 0, false, err
	}
	return eig.Pairs[0].Value, tr.Mean, tr.StdErr, eig.Converged, nil
}

// Evaluate returns the mean cross-entropy loss and the accuracy of the
// engine's model (in evaluation mode) on ds.
func Evaluate(eng *hessian.Engine, ds *data.Dataset, batch int, dt tensor.Dtype, norm *data.Stats) (loss, acc float64, err error) {
	it, err := data.NewIterator(ds, data.IterConfig{BatchSize: batch, Dtype: dt, Norm: norm})
	if err != nil {
		return 0, 0, err
	}
	var sumLoss float64
	correct, n := 0, 0
	for it.Next() {
		b := it.Batch()
		logits, err := eng.EvalLogits(b.X)
		if err != nil {
			return 0, 0, err
		}
		l, c := crossEntropy(logits, b.Labels)
		sumLoss += l
		correct += c
		n += len(b.Labels)
	}
	if n == 0 {
		return 0, 0, fmt.Errorf("%s is empty", ds.Name)
	}
	return sumLoss / float64(n), float64(correct) / float64(n), nil
}

// crossEntropy returns the summed softmax cross-entropy and the number of
// correct argmax predictions of logits [N, classes].
func crossEntropy(logits *tensor.Dense, labels []int) (float64, int) {
	if logits.Dtype() == tensor.Float32 {
		return ceRows(logits.Float32s(), labels)
	}
	return ceRows(logits.Float64s(), labels)
}

func ceRows[T optim.Float](vals []T, labels []int) (float64, int) {
	k := len(vals) / len(labels)
	sum, correct := 0.0, 0
	for i, y := range labels {
		row := vals[i*k : (i+1)*k]
		arg := argmax(row)
		mx := float64(row[arg])
		s := 0.0
		for _, v := range row {
			s += math.Exp(float64(v) - mx)
		}
		sum += math.Log(s) + mx - float64(row[y])
		if arg == y {
			correct++
		}
	}
	return sum, correct
}

func argmax[T optim.Float](row []T) int {
	arg := 0
	for j, v := range row {
		if v > row[arg] {
			arg = j
		}
	}
	return arg
}

// batchAccuracy is the share of rows of logits whose argmax is the label
// (no loss computed, no allocation: it runs every step).
func batchAccuracy(logits *tensor.Dense, labels []int) float64 {
	if logits == nil || len(labels) == 0 {
		return 0
	}
	correct := 0
	k := logits.Shape().TotalSize() / len(labels)
	for i, y := range labels {
		var arg int
		if logits.Dtype() == tensor.Float32 {
			arg = argmax(logits.Float32s()[i*k : (i+1)*k])
		} else {
			arg = argmax(logits.Float64s()[i*k : (i+1)*k])
		}
		if arg == y {
			correct++
		}
	}
	return float64(correct) / float64(len(labels))
}

// StateBytes is the memory of an optimizer's exported state in its live
// dtype (4 bytes per float32 entry, 8 per float64 entry).
func StateBytes(s *optim.State) int64 {
	var n int64
	for _, t := range s.Tensors {
		size := int64(8)
		if t.Dtype == "float32" {
			size = 4
		}
		n += size * int64(len(t.Data))
	}
	return n
}

type lrSetter interface {
	SetLR(float64) error
}

func setLR(o optim.Optimizer, lr float64) error {
	s, ok := o.(lrSetter)
	if !ok {
		return fmt.Errorf("optimizer %s cannot change its learning rate", o.Name())
	}
	return s.SetLR(lr)
}

func prod(xs []int) int {
	n := 1
	for _, x := range xs {
		n *= x
	}
	return n
}

func writeJSONAtomic(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func configSummary(c Config) map[string]any {
	return map[string]any{
		"model": c.Model, "dag": c.DAG, "data": c.Data, "optimizer": c.Optimizer, "hyper": c.Hyper,
		"steps": c.Steps, "epochs": c.Epochs, "batch_size": c.BatchSize, "seed": c.Seed,
		"dtype": c.Dtype.String(), "schedule": c.Schedule, "clip_norm": c.ClipNorm,
		"normalize": c.Normalize, "augment": c.Augment, "hessian_every": c.HessianEvery,
		"gnb_batch": c.GNBBatch, "drop_last": c.DropLast,
	}
}
