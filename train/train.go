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
	"github.com/curvopt/curvopt/internal/fileio"
	"github.com/curvopt/curvopt/nn"
	"github.com/curvopt/curvopt/optim"
	"gorgonia.org/tensor"
)

// Config describes one training run. The zero value of an optional field
// takes the default given in its comment.
type Config struct {
	// Model is the network (nn.MLP, nn.CNN, nn.ResNet, nn.GPT, a model
	// file read by nn.ParseModel, or a layer list converted by
	// nn.Spec.DAG). A token model (Model.Tokens > 0) trains on text windows
	// (data.KindText) with one next-character label per position.
	Model nn.DAG
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
	// EvalBatch is the evaluation batch size (default: BatchSize, so that
	// the evaluation graph is no larger than the training graph: at 500 the
	// default CNN's evaluation im2col buffers doubled the run's peak memory).
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
	// DecayAll applies the optimizer's weight decay to every parameter (one
	// parameter group, torch.optim's default). By default the nanoGPT
	// recipe Sophia was tuned with is used: two groups, weight matrices and
	// convolution kernels (rank ≥ 2) with the weight decay, biases and
	// normalisation parameters (rank ≤ 1) without (optim.DecayGroups).
	DecayAll bool
	// Normalize standardises each channel with the training split's mean
	// and standard deviation.
	Normalize bool
	// Augment configures training-time augmentation (off by default).
	Augment data.Augment
	// Memory reports the bytes available for new allocations, which the
	// data (unless Data.Memory is set), the model and the optimizer's state
	// (M-FAC's window) are checked against before they are allocated (nil:
	// MemAvailable from /proc/meminfo).
	Memory func() (int64, error) `json:"-"`
	// MemoryLimit bounds the memory of the model: its parameters and the
	// graphs the engine compiles for the run's batch sizes (training, with
	// H·v where the optimizer, sharpness tracking or an analysis needs it,
	// and evaluation), estimated from shapes (nn.DAG.Memory) and checked
	// before the model is built; M-FAC's window is checked against it too.
	// 0: the memory
	// available (Memory). The data are always checked against Memory.
	MemoryLimit int64 `json:"-"`

	// Comm, when set with more than one rank, makes this process one rank
	// of a data-parallel run (see Comm): BatchSize stays the global batch,
	// each rank trains on its contiguous share of it, every gradient and
	// curvature estimate is the global batch's, and only rank 0 writes to
	// OutDir (every rank reads it on resume). Nil: one process.
	Comm Comm `json:"-"`
	// Shard, in a data-parallel run, splits the optimizer's state over the
	// ranks (ZeRO stage 1: each keeps and updates its contiguous slice of
	// the flattened parameters; see shard.go for which optimizers). The
	// checkpoint is the same with or without it.
	Shard bool `json:"-"`
	// SyncBN, in a data-parallel run, synchronises batch norm: the batch
	// mean and variance are the global batch's, all-reduced inside the
	// forward pass (and, through their derivatives, in the gradient and
	// the H·v), so the run equals one process at the global batch. Without
	// it (the default, as torch DDP's) each rank normalises with its own
	// rows' statistics. Not with GNBBatch. Alone: no effect.
	SyncBN bool `json:"-"`

	// OutDir, when set, receives steps.{jsonl,csv}, epochs.{jsonl,csv},
	// config.json and checkpoint.gob.
	OutDir string
	// Resume continues from OutDir/checkpoint.gob up to the budget; the
	// configuration must match the recorded one except where RunConfig says
	// it may change (ReadRunConfig returns the recorded one).
	Resume bool
	// Overwrite lets a fresh run (Resume false) replace a run whose
	// checkpoint is in OutDir; without it that is an error.
	Overwrite bool
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
	// HessianQuick makes that measurement cheap enough to track sharpness
	// along a comparison run: the top eigenvalue only, to about 1e-3
	// relative (Lanczos, at most 30 products), and no trace.
	HessianQuick bool
	// HessianPrecond, with HessianEvery, also measures the dominant
	// eigenvalue of the preconditioned Hessian P⁻¹H (P the preconditioner
	// of the optimizer's next step, from its state: the optimizer's
	// PrecondSolve) by power iteration, and records it with the
	// optimizer's StabilityLimit c (StepRecord.PrecondTop,
	// StabilityLimit): with P frozen, the iteration on a quadratic is
	// stable iff lr·λ < c, so c/λ is the largest stable rate that the
	// curvature alone predicts. The first measurement is taken at step 1
	// (after the first update, when P exists), then every HessianEvery
	// steps. It changes neither the parameters nor the optimizer's state.
	// Not in a data-parallel run.
	HessianPrecond bool

	// Progress receives progress output (nil: none). Terminal selects an
	// in-place progress bar instead of plain lines; LogEvery is the number
	// of steps between plain lines (default: ten lines an epoch).
	Progress io.Writer
	Terminal bool
	LogEvery int
	// Notices receives what a run did on its own that its user must hear
	// of even with progress output off: on resume, the repair of a metrics
	// file (the lines written after the checkpoint dropped). Nil: Progress.
	Notices io.Writer
	// EvalProgressAfter is how long an evaluation runs before it reports
	// its progress to Progress (0: 3s; negative: from its first batch).
	// ProgressClock is the clock progress output is timed by (nil:
	// time.Now). Neither changes any result.
	EvalProgressAfter time.Duration
	ProgressClock     func() time.Time
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
	// CommMS holds, in a data-parallel run, per step of this call, the
	// milliseconds spent in the all-reduces of its gradient, curvature
	// queries and loss (waiting for the slowest rank included).
	CommMS []float64
	// CommBytes holds, likewise, the bytes each rank gave to those
	// all-reduces (4 a float32 value: the gradient's 4D every step, as many
	// again for each H·v or sampled-label gradient, 16 for the loss and
	// the correct count).
	CommBytes []int64
	// ParamsDigest is the SHA-256, in hex, of the final parameter values
	// and batch-norm running statistics (their bytes, in order): equal on
	// every rank of a data-parallel run.
	ParamsDigest string
}

const checkpointFile = "checkpoint.gob"

// ErrDiverged is wrapped by the error Run returns when training stopped on a
// NaN or Inf loss, gradient or curvature estimate (errors.Is(err,
// ErrDiverged)); the last good checkpoint, if any, is kept.
var ErrDiverged = errors.New("training diverged")

// diverged wraps err with ErrDiverged when it reports a non-finite value
// (Run adds what became of the checkpoint).
func diverged(step int, err error) error {
	if errors.Is(err, optim.ErrNonFinite) {
		return fmt.Errorf("train: step %d: %w (%w)", step, ErrDiverged, err)
	}
	return fmt.Errorf("train: step %d: %w", step, err)
}

// checkpointNote says, for a diverged run's error, which checkpoint is
// left: the one in OutDir (untouched by the failing step), or none.
func (r *run) checkpointNote() string {
	if r.cfg.OutDir == "" {
		return "no checkpoint: no output directory"
	}
	p := filepath.Join(r.cfg.OutDir, checkpointFile)
	if _, err := os.Stat(p); err != nil {
		return "no checkpoint was written yet"
	}
	return "the last checkpoint, " + p + ", is kept"
}

// run holds a run's live pieces.
type run struct {
	cfg         Config
	model       *nn.Model
	text        bool      // token model on text windows
	tb          textBatch // its input and labels
	eng         *hessian.Engine
	opt         optim.Optimizer
	it          *data.Iterator
	test        *data.Dataset
	testIt      *data.Iterator // reused by every evaluation (its batch buffers)
	norm        *data.Stats
	dist        *dist           // a data-parallel run's oracle (nil: one process)
	bnStats     []*tensor.Dense // its batch-norm running statistics
	stop        [1]float64      // the ranks' agreement to stop
	samplerPCG  *rand.PCG
	hessPCG     *rand.PCG
	prec        precondState // Config.HessianPrecond's scratch
	modelKey    string
	total       int
	baseLR      float64
	predictions int // per batch (SophiaG's bs defaults to it)

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

	evals       int  // evaluation records written in the whole run
	evalStep    int  // step of the last one (-1: none)
	saved       bool // OutDir holds a checkpoint of this run
	autoHorizon bool // the cosine horizon was not given: the budget's (or on resume the recorded one)
	training    bool // a training run (not an analysis): the recorded configuration must match
}

// Run trains a model as cfg describes and returns the summary. It stops
// early, with an error naming the step, if the loss or gradient becomes NaN
// or Inf, leaving the last checkpoint intact; ctx cancellation stops it after
// the current step with ctx's error, after writing a checkpoint.
//
// A nil ctx is an error (use context.Background()).
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if ctx == nil {
		return nil, errors.New("train: run: nil context (use context.Background())")
	}
	r, err := setup(cfg, true)
	if err != nil {
		return nil, err
	}
	defer r.close()
	res, err := r.loop(ctx)
	if errors.Is(err, ErrDiverged) {
		err = fmt.Errorf("%w; %s", err, r.checkpointNote())
	}
	return res, err
}

func (c *Config) defaults() {
	if c.BatchSize == 0 {
		c.BatchSize = 128
	}
	if c.EvalBatch == 0 {
		c.EvalBatch = c.BatchSize
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

// Validate checks the configuration: its own fields, then the optimizer's
// name and hyperparameters (by the optimizer Config's Validate, whose
// *optim.HyperError names the hyperparameter; an empty Optimizer with no
// Hyper is left to Run). Zero values stand for the defaults.
func (c Config) Validate() error {
	if len(c.Model.Nodes) == 0 && len(c.Model.InputShape) == 0 {
		return errors.New("train: no model: set Config.Model (nn.MLP, nn.CNN, nn.ResNet, nn.GPT, or nn.ParseModel for a file)")
	}
	if err := c.ValidateSettings(); err != nil {
		return err
	}
	if c.Optimizer == "" && len(c.Hyper) == 0 {
		return nil // a template, such as a comparison's shared settings; Run refuses it
	}
	if err := ValidateHyper(c.Optimizer, c.Hyper, c.BatchSize); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	return nil
}

// ValidateSettings checks the run's own settings, each refused with a
// *SettingError (zero values stand for the defaults); Validate adds the
// model and the optimizer's hyperparameters. A command calls it to report
// a setting under its flag's name.
func (c Config) ValidateSettings() error {
	switch {
	case c.BatchSize < 0:
		return &SettingError{"batch_size", c.BatchSize, "must be >= 1 (0: the default)"}
	case c.EvalBatch < 0:
		return &SettingError{"eval_batch", c.EvalBatch, "must be >= 1 (0: the default)"}
	case c.EvalEvery < 0:
		return &SettingError{"eval_every", c.EvalEvery, "must be >= 0"}
	case c.Steps < 0:
		return &SettingError{"steps", c.Steps, "must be >= 0"}
	case c.Epochs < 0:
		return &SettingError{"epochs", c.Epochs, "must be >= 0"}
	case c.ClipNorm < 0 || math.IsNaN(c.ClipNorm) || math.IsInf(c.ClipNorm, 0):
		return &SettingError{"clip_norm", c.ClipNorm, "must be a finite number >= 0 (0 turns clipping off)"}
	case c.GNBBatch < 0 || c.GNBBatch > c.BatchSize:
		return &SettingError{"gnb_batch", c.GNBBatch, fmt.Sprintf("must be in [0, the batch size %d]", c.BatchSize)}
	case c.HessianEvery < 0:
		return &SettingError{"hessian_every", c.HessianEvery, "must be >= 0"}
	case c.HessianPrecond && c.HessianEvery == 0:
		return &SettingError{"hessian_precond", c.HessianPrecond, "needs hessian_every > 0 (it measures alongside the sharpness)"}
	case c.Dtype != tensor.Float32 && c.Dtype != tensor.Float64:
		return &SettingError{"dtype", c.Dtype, "want float32 or float64"}
	case c.MemoryLimit < 0:
		return &SettingError{"memory_limit", c.MemoryLimit, "must be >= 0 (0: the memory available)"}
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
	if cfg.Data.Memory == nil {
		cfg.Data.Memory = cfg.Memory
	}
	// The model's memory, before anything large is allocated: its
	// parameters, then its graphs, before the data are loaded where the
	// splits' sizes are known (given or synthetic), else right after (an
	// optimizer's error is reported below, where it was, before any graph
	// is built).
	if err := checkModelSize(cfg); err != nil {
		return nil, err
	}
	clock := cfg.ProgressClock
	if clock == nil {
		clock = time.Now
	}
	start := clock()
	if cfg.Progress != nil && logs {
		building(cfg.Progress, paramCount(cfg), cfg)
	}
	needs, needsErr := runNeeds(cfg, !logs)
	nTrain, nTest, known := splitSizes(cfg)
	if needsErr == nil && known {
		if err := checkModelMemory(cfg, needs, !logs, nTrain, nTest); err != nil {
			return nil, err
		}
	}
	if trainDS == nil || testDS == nil {
		var err error
		if trainDS, testDS, err = data.LoadSpec(cfg.Data); err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
	}
	if needsErr == nil && !known {
		if err := checkModelMemory(cfg, needs, !logs, trainDS.Len(), testDS.Len()); err != nil {
			return nil, err
		}
	}
	model, text, err := newModel(cfg, rand.New(rand.NewPCG(cfg.Seed, 0x5eed)))
	if err != nil {
		return nil, err
	}
	engOpts := []hessian.Option{}
	if cfg.GNBBatch > 0 {
		cfg.DropLast = true // every batch must hold the GNB rows
		if g := localGNB(cfg); g > 0 {
			engOpts = append(engOpts, hessian.WithGNBBatch(g))
		}
	}
	predictions := predictionsPerBatch(cfg, text)
	opt, err := NewOptimizer(cfg.Optimizer, cfg.Hyper, predictions, cfg.Seed)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	// From here on the run holds every value it uses, for its record.
	if cfg.Hyper, err = ResolveHyper(cfg.Optimizer, cfg.Hyper, predictions, cfg.Seed); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if err := checkInputs(cfg, model, text, opt.Needs(), trainDS, testDS); err != nil {
		return nil, err
	}
	if err := checkPrecond(cfg, opt); err != nil {
		return nil, err
	}
	r := &run{cfg: cfg, model: model, text: text, opt: opt, test: testDS, res: &Result{Optimizer: cfg.Optimizer}, evalStep: -1, training: logs, predictions: predictions}
	r.samplerPCG = rand.NewPCG(cfg.Seed, 0x5a3b1e)
	r.hessPCG = rand.NewPCG(cfg.Seed, 0x4e55)
	needs = opt.Needs()
	if cfg.HessianEvery > 0 || !logs {
		needs.HVP = true // sharpness tracking and analysis use H·v
	}
	var sampler *rowSampler
	var bnRed *bnReducer
	if distributed(cfg) {
		if err := checkDistributed(cfg); err != nil {
			return nil, err
		}
		if cfg.SyncBN {
			bnRed = &bnReducer{}
			model.SetBatchReducer(bnRed) // before the engine builds a graph
		}
		sampler = &rowSampler{r: rand.New(r.samplerPCG)}
		engOpts = append(engOpts, hessian.WithSampler(sampler))
	} else {
		engOpts = append(engOpts, hessian.WithRand(rand.New(r.samplerPCG)))
	}
	if r.eng, err = hessian.New(model, needs, engOpts...); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if distributed(cfg) {
		r.dist = newDist(r.eng, cfg.Comm, sampler)
		r.dist.drop = model.DropoutState()
		r.dist.gnbRows, r.dist.gnbLocal = cfg.GNBBatch, localGNB(cfg)
		r.bnStats = runningStats(model)
		if bnRed != nil { // the running statistics are the global batch's on every rank
			bnRed.d, r.dist.syncedBN = r.dist, true
		}
		if cfg.Shard {
			if err := r.shard(predictions); err != nil {
				r.close()
				return nil, fmt.Errorf("train: %w", err)
			}
		}
	}
	if !cfg.DecayAll {
		if err := r.opt.SetGroups(optim.DecayGroups(r.eng.Params(), BaseWD(cfg.Optimizer, cfg.Hyper))); err != nil {
			r.close()
			return nil, fmt.Errorf("train: %w", err)
		}
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
	if err := checkLastShare(cfg, trainDS.Len()); err != nil {
		r.close()
		return nil, err
	}
	r.total = cfg.Steps
	if r.total == 0 {
		r.total = cfg.Epochs * perEpoch
	}
	if r.cfg.Schedule.Kind == "cosine" && r.cfg.Schedule.Total == 0 {
		r.cfg.Schedule.Total = r.total
		r.autoHorizon = true
	}
	if err := r.cfg.Schedule.Validate(); err != nil {
		r.close()
		return nil, fmt.Errorf("train: %w", err)
	}
	if s := r.cfg.Schedule; !cfg.Resume && s.Kind == "cosine" && s.Total < r.total && s.MinFactor == 0 {
		r.close()
		return nil, fmt.Errorf("train: the cosine schedule ends at step %d, before the budget of %d steps: the rate would reach 0", s.Total, r.total)
	}
	r.baseLR = BaseLR(cfg.Optimizer, cfg.Hyper)
	key, _ := json.Marshal(cfg.Model)
	r.modelKey = string(key)

	if logs {
		if err := refuseOverwrite(cfg); err != nil {
			r.close()
			return nil, err
		}
	}
	if cfg.Resume {
		if err := r.restore(); err != nil {
			r.close()
			return nil, err
		}
	}
	if cfg.OutDir != "" && logs && writer(cfg) {
		if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
			r.close()
			return nil, fmt.Errorf("train: %w", err)
		}
		if err := fileio.RemoveTemps(cfg.OutDir, outputFiles...); err != nil {
			r.close()
			return nil, fmt.Errorf("train: %w", err)
		}
		// A resumed run keeps the records up to its checkpoint: steps up
		// to its step, and its number of evaluations.
		var stepBytes, evalBytes int64
		if cfg.Resume {
			if stepBytes, evalBytes, err = r.verifyLogs(); err != nil {
				r.close()
				return nil, err
			}
		}
		if err := writeJSONAtomic(filepath.Join(cfg.OutDir, "config.json"), r.cfg.record()); err != nil {
			r.close()
			return nil, err
		}
		if r.steps, err = openLog[StepRecord](cfg.OutDir, "steps", stepColumns, stepBytes, r.step); err != nil {
			r.close()
			return nil, err
		}
		if r.epochs, err = openLog[EpochRecord](cfg.OutDir, "epochs", epochColumns, evalBytes, r.evals); err != nil {
			r.close()
			return nil, err
		}
	}
	if cfg.Progress != nil {
		r.progress = newProgress(cfg.Progress, cfg.Terminal, r.total, perEpoch, cfg.LogEvery, clock)
		r.progress.setupStart = start
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
	if r.opt != nil {
		r.opt.Close() // frees M-FAC's window; the run's state is in its checkpoint
	}
}

func (r *run) loop(ctx context.Context) (*Result, error) {
	var stepTotal time.Duration
	stepsRun := 0
	for r.step < r.total {
		if err := r.stopped(ctx); err != nil {
			if cerr := r.checkpoint(); cerr != nil {
				return r.res, errors.Join(err, cerr)
			}
			return r.res, r.stoppedTogether(err)
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
		predictions := len(labels) // of the global batch
		var oracle Oracle = r.eng
		if r.dist != nil { // this rank's rows
			var err error
			if x, labels, err = r.dist.slice(x, labels); err != nil {
				return r.res, fmt.Errorf("train: step %d: data parallel: %w", r.step+1, err)
			}
			oracle = r.dist
		}
		var c0 time.Time
		if stepsRun == 0 && r.progress != nil {
			c0 = r.progress.now()
		}
		if err := r.eng.SetBatch(x, labels); err != nil {
			return r.res, fmt.Errorf("train: step %d: %w", r.step+1, err)
		}
		lr := r.baseLR * r.cfg.Schedule.Factor(r.step)
		if err := r.opt.SetLR(lr); err != nil {
			return r.res, fmt.Errorf("train: step %d: %w", r.step+1, err)
		}
		t0 := time.Now()
		if r.dist != nil {
			r.dist.commT, r.dist.commB = 0, 0
		}
		sr, err := Step(oracle, r.opt, r.cfg.ClipNorm)
		if err != nil {
			return r.res, diverged(r.step+1, err)
		}
		correct := 0
		if r.dist != nil {
			if err := r.dist.syncStats(r.bnStats); err != nil {
				return r.res, fmt.Errorf("train: step %d: data parallel: %w", r.step+1, err)
			}
			correct = r.dist.Correct()
			r.res.CommMS = append(r.res.CommMS, float64(r.dist.commT.Microseconds())/1e3)
			r.res.CommBytes = append(r.res.CommBytes, r.dist.commB)
		} else {
			correct = r.eng.Correct()
		}
		if stepsRun == 0 && r.progress != nil { // the first step compiled the training graphs
			t1 := r.progress.now()
			r.progress.compiled(len(b.Labels), t1.Sub(c0), c0.Sub(r.progress.setupStart))
		}
		loss, gnorm := sr.Loss, sr.GradNorm
		dt := time.Since(t0)
		stepTotal += dt
		stepsRun++
		r.wall += dt.Seconds()
		r.step++

		acc := float64(correct) / float64(predictions)
		rec := StepRecord{Step: r.step, Epoch: r.epoch + 1, Loss: loss, Acc: acc, LR: lr,
			StepMS: float64(dt.Microseconds()) / 1e3, GradNorm: gnorm}
		if d, ok := r.opt.(optim.Diagnostics); ok {
			rec.Diag = d.Diagnostics() // a fresh map each call
		}
		if r.cfg.HessianEvery > 0 && (r.step%r.cfg.HessianEvery == 0 || r.cfg.HessianPrecond && r.step == 1) {
			top, tr, se, conv, err := r.sharpness()
			if err != nil {
				return r.res, fmt.Errorf("train: step %d: sharpness: %w", r.step, err)
			}
			rec.HessTop, rec.HessTrace, rec.HessTraceSE, rec.HessConverged = &top, tr, se, &conv
			if pc, ok := r.opt.(preconditioned); ok && r.cfg.HessianPrecond {
				ptop, pconv, err := r.precondTop(pc)
				if err != nil {
					return r.res, fmt.Errorf("train: step %d: preconditioned sharpness: %w", r.step, err)
				}
				limit := pc.StabilityLimit()
				rec.PrecondTop, rec.PrecondConverged, rec.StabilityLimit = &ptop, &pconv, &limit
			}
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
	if r.epSteps > 0 || r.evals == 0 {
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
	if sh, ok := r.opt.(*shardedOpt); ok {
		if n, err := sh.StateBytes(); err == nil {
			r.res.StateBytes = n
		}
	} else if st, err := r.stateView(); err == nil {
		r.res.StateBytes = StateBytes(st)
	}
	r.res.ParamsDigest = paramsDigest(r.eng.Params(), runningStats(r.model))
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
	if r.evalStep != r.step || r.epSteps > 0 {
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
	var ep *evalProgress
	if r.progress != nil {
		ep = r.progress.evaluation(r.step, r.test.Len(), r.cfg.EvalProgressAfter)
	}
	if r.text {
		loss, acc, err = evaluateText(r.eng, r.test, r.cfg.EvalBatch, r.cfg.Dtype, ep)
	} else {
		if r.testIt == nil {
			r.testIt, err = data.NewIterator(r.test, data.IterConfig{BatchSize: r.cfg.EvalBatch, Dtype: r.cfg.Dtype, Norm: r.norm})
		}
		if err == nil {
			if loss, acc, err = evaluateIter(r.eng, r.testIt, ep); err != nil {
				r.testIt = nil // stopped inside an epoch: start afresh next time
			}
		}
	}
	if err != nil {
		ep.end() // else the epoch's line clears it
	}
	if err == nil && !finite(loss) {
		err = fmt.Errorf("the test loss is %v: %w", loss, optim.ErrNonFinite)
	}
	if err != nil {
		if errors.Is(err, optim.ErrNonFinite) {
			return fmt.Errorf("train: evaluation after step %d: %w (%w)", r.step, ErrDiverged, err)
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
	r.evals++
	r.evalStep = r.step
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
// its standard error se) on the current batch; in the quick mode
// (Config.HessianQuick) only the top eigenvalue, trace and se being nil.
// converged is false when Lanczos stopped at its budget; top is then its
// last estimate.
func (r *run) sharpness() (top float64, trace, se *float64, converged bool, err error) {
	rng := rand.New(r.hessPCG)
	// The top eigenvalue to ~1e-6 relative (residual ≤ 1e-4·‖H‖): enough to
	// track sharpness, at a few dozen products.
	lc := spectrum.LanczosConfig{K: 1, Which: spectrum.LargestAlgebraic, MaxIter: 100, Tol: 1e-6, ResidualTol: 1e-4}
	if r.cfg.HessianQuick {
		lc.MaxIter, lc.Tol, lc.ResidualTol = 30, 1e-3, 3e-2
	}
	var op spectrum.Operator = r.eng
	if r.dist != nil {
		op = &flatDist{eng: r.eng, d: r.dist} // the global batch's Hessian
	}
	eig, err := spectrum.Lanczos(op, lc, rng)
	if err != nil && !errors.Is(err, spectrum.ErrNotConverged) {
		return 0, nil, nil, false, err
	}
	if r.cfg.HessianQuick {
		return eig.Pairs[0].Value, nil, nil, eig.Converged, nil // no trace
	}
	tc := spectrum.TraceConfig{MinSamples: 2, MaxSamples: 20, Tol: 0.1}
	tr, err := spectrum.Hutchinson(op, tc, rng)
	if err != nil && !errors.Is(err, spectrum.ErrNotConverged) {
		return 0, nil, nil, false, err
	}
	return eig.Pairs[0].Value, &tr.Mean, &tr.StdErr, eig.Converged, nil
}

// predictionsPerBatch is the number of predictions the loss of a batch (or
// of its GNB rows) averages over: Sophia's bs, the scale that turns the mean
// loss's squared sampled-label gradient into the Gauss-Newton-Bartlett
// diagonal (ĥ = bs·ĝ⊙ĝ). A token model predicts at every position, so its
// bs is rows × context, as in Sophia's GPT-2 runs (batch × block size).
func predictionsPerBatch(cfg Config, text bool) int {
	rows := cfg.BatchSize
	if cfg.GNBBatch > 0 {
		rows = cfg.GNBBatch
	}
	if text && len(cfg.Model.InputShape) == 1 {
		rows *= cfg.Model.InputShape[0]
	}
	return rows
}

// StateBytes is the memory of an optimizer's exported state in its live
// dtype (4 bytes per float32 entry, 8 per float64 entry); 0 for nil.
func StateBytes(s *optim.State) int64 {
	var n int64
	if s == nil {
		return 0
	}
	for _, t := range s.Tensors {
		size := int64(8)
		if t.Dtype == "float32" {
			size = 4
		}
		n += size * int64(t.Len())
	}
	return n
}

func prod(xs []int) int {
	n := 1
	for _, x := range xs {
		n *= x
	}
	return n
}
