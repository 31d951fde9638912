// Command train trains a model on an image-classification dataset with any
// curvopt optimizer, printing progress and writing metrics and checkpoints.
//
// With no flags it trains the small CNN on the built-in synthetic
// CIFAR-style data with SophiaH (its documented defaults) for 10 epochs:
//
//	go run ./cmd/train
//
// Analysis mode reads a finished (or interrupted) run from its directory
// alone and writes the Hessian spectrum there:
//
//	go run ./cmd/train -analyze -out DIR [-analyze-per-layer]
//
// Bad flags, files and sizes are refused before the first step with an
// error naming the flag or the file and offset.
//
// Run "go run ./cmd/train -h" for every flag.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/curvopt/curvopt/internal/meminfo"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/curvopt/curvopt/data"
	"github.com/curvopt/curvopt/internal/sigctx"
	"github.com/curvopt/curvopt/mpi"
	"github.com/curvopt/curvopt/nn"
	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/train"
	"gorgonia.org/tensor"
)

func main() {
	// First of all: from here on SIGINT and SIGTERM stop the command
	// cleanly (a checkpoint saved, an exit status of 130 or 143), whatever
	// it is doing, start-up and -analyze included.
	sig := sigctx.Notify()
	world, err := mpi.Init() // one process unless built with -tags mpi and launched by mpirun
	if err != nil {
		fmt.Fprintln(os.Stderr, "train: "+err.Error())
		os.Exit(1)
	}
	code := runComm(sig, world, os.Args[1:], os.Stdout, os.Stderr, nil)
	sig.Stop()
	os.Exit(endMPI(world, code, os.Stderr))
}

// run is the command: it returns the exit status (0 done, 1 failed, 2 bad
// usage, 128 + the signal's number when stopped by SIGINT or SIGTERM).
func run(args []string, stdout, stderr io.Writer) int {
	return runWith(args, stdout, stderr, nil)
}

// helpHint ends every usage error, in place of the whole usage.
const helpHint = "run 'train -h' for the flags"

// usageError reports a bad flag or argument in one line, then how to get
// help, and returns the exit status of bad usage.
func usageError(w io.Writer, err error) int {
	report(w, err)
	fmt.Fprintln(w, helpHint)
	return 2
}

// hyperFlag is the flag of one hyperparameter: its name is the
// hyperparameter's one name, its value is parsed by the hyperparameter's
// type and set in h only when given (the optimizer's default otherwise).
// The value is checked by the optimizer's Config (train.ValidateHyper).
type hyperFlag struct {
	knob train.HyperKnob
	h    train.Hyper
}

func (f hyperFlag) String() string { return "" }

// IsBoolFlag lets a switch (nesterov) be given as -name alone.
func (f hyperFlag) IsBoolFlag() bool { return f.knob.Kind == optim.KnobBool }

func (f hyperFlag) Set(s string) error {
	v, err := train.ParseHyperValue(f.knob.Name, s)
	if err != nil {
		_, why, _ := strings.Cut(err.Error(), ": ")
		return errors.New(why)
	}
	f.h[f.knob.Name] = v
	return nil
}

// settingFlags maps train.Config's setting names (SettingError.Setting) to
// the flags that set them.
var settingFlags = map[string]string{
	"batch_size": "batch", "eval_batch": "eval-batch", "eval_every": "eval-every", "steps": "steps",
	"epochs": "epochs", "clip_norm": "clip", "gnb_batch": "gnb-batch", "hessian_every": "hessian-every",
	"dtype": "dtype", "memory_limit": "memory-limit", "hessian_precond": "hessian-precond",
}

// settingFlagError names the flag of an invalid setting as the user typed
// it: "-clip NaN: must be a finite number >= 0 (0 turns clipping off)".
func settingFlagError(err error) error {
	var se *train.SettingError
	if errors.As(err, &se) {
		if f, ok := settingFlags[se.Setting]; ok {
			return fmt.Errorf("-%s %v: %s", f, se.Value, se.Want)
		}
	}
	return err
}

// hyperFlagError names the flag of an invalid hyperparameter as the user
// typed it: "-momentum 1.5: must be in [0, 1) (sgd)".
func hyperFlagError(err error) error {
	var he *optim.HyperError
	if errors.As(err, &he) {
		return fmt.Errorf("-%s %v: must be %s (%s)", he.Field, he.Value, he.Want, he.Optimizer)
	}
	return err
}

// unknownFlag adds to the flag package's error for an undefined flag the
// flag meant: the new name of a renamed hyperparameter flag (-wd, -k,
// -power, -m), or the underscored spelling of a hyphenated one.
func unknownFlag(err error) error {
	name, ok := strings.CutPrefix(err.Error(), "flag provided but not defined: -")
	if !ok {
		return err
	}
	name = strings.TrimPrefix(name, "-")
	if n, ok := train.RenamedHyper(name); ok {
		return fmt.Errorf("%w (-%s was renamed -%s)", err, name, n)
	}
	u := strings.ReplaceAll(name, "-", "_")
	for _, k := range train.HyperKnobs() {
		if k.Name == u && u != name {
			return fmt.Errorf("%w (the hyperparameter flags use the optimizers' names: -%s)", err, u)
		}
	}
	return err
}

type options struct {
	cfg      train.Config
	model    string
	hidden   string
	dataKind string
	dataDir  string
	dataFile string
	coarse   bool
	synTrain int
	synTest  int
	dtype    string
	schedule string
	warmup   int
	augment  bool
	quiet    bool
	analyze  bool
	analysis analyzeOptions
	comm     world // the data-parallel run's ranks (nil: one process)
	shard    bool
	syncBN   bool
	// set holds the names of the flags given on the command line.
	set map[string]bool
}

// runWith is run with the source of the available memory injected (nil:
// /proc/meminfo).
func runWith(args []string, stdout, stderr io.Writer, mem func() (int64, error)) int {
	sig := sigctx.Notify()
	defer sig.Stop()
	return runListening(sig, args, stdout, stderr, mem)
}

// runListening is runWith with the signal listener installed by the caller
// (main installs it before anything else).
func runListening(sig *sigctx.Listener, args []string, stdout, stderr io.Writer, mem func() (int64, error)) int {
	return runComm(sig, nil, args, stdout, stderr, mem)
}

// runComm is runListening as one rank of comm's data-parallel run (nil or
// one rank: one process).
func runComm(sig *sigctx.Listener, comm world, args []string, stdout, stderr io.Writer, mem func() (int64, error)) int {
	var o options
	h := train.Hyper{}
	fs := flag.NewFlagSet("train", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported below, in one line
	fs.Usage = func() {}

	fs.StringVar(&o.cfg.Optimizer, "optimizer", "sophiah", "optimizer: "+strings.Join(train.Optimizers(), ", "))
	for _, k := range train.HyperKnobs() {
		fs.Var(hyperFlag{k, h}, k.Name, k.Usage)
	}

	fs.StringVar(&o.model, "model", "cnn", "model: mlp, cnn, resnet8, resnet20 (resnetN, N = 6n+2), gpt-tiny (with -data text), or the path of a model file (JSON: a layer list or a DAG)")
	fs.StringVar(&o.hidden, "hidden", "128", "MLP hidden layer widths, comma-separated")
	fs.StringVar(&o.dataKind, "data", "synthetic", "dataset: synthetic, cifar10, cifar100, fashion-mnist, mnist, text")
	fs.StringVar(&o.dataFile, "data-file", "", "text: a UTF-8 text file, last 10% held out for validation (default: the built-in corpus of Go standard-library sources)")
	fs.StringVar(&o.dataDir, "data-dir", "", "dataset directory (cifar10, cifar100, mnist; fashion-mnist defaults to "+data.FashionMNISTDir+")")
	fs.BoolVar(&o.coarse, "coarse", false, "CIFAR-100: use the 20 coarse labels")
	fs.IntVar(&o.synTrain, "synthetic-train", 5000, "synthetic data: training images")
	fs.IntVar(&o.synTest, "synthetic-test", 1000, "synthetic data: test images")

	fs.IntVar(&o.cfg.Epochs, "epochs", 10, "training epochs (ignored when -steps is set)")
	fs.IntVar(&o.cfg.Steps, "steps", 0, "training steps (overrides -epochs)")
	fs.IntVar(&o.cfg.BatchSize, "batch", 64, "training batch size")
	fs.IntVar(&o.cfg.EvalBatch, "eval-batch", 0, "evaluation batch size (0: the training batch size, which bounds evaluation memory by the training graph's)")
	fs.IntVar(&o.cfg.GNBBatch, "gnb-batch", 0, "sophiag only: compute the GNB estimate on the first N rows of each batch (0: the whole batch);\nbs defaults to N; implies -drop-last (an epoch's incomplete last batch is skipped, so every batch holds N rows)")
	fs.BoolVar(&o.cfg.DropLast, "drop-last", false, "drop each epoch's incomplete last batch")
	var seed uint64
	fs.Uint64Var(&seed, "seed", 1, "random seed (model, data order, probes, sampled labels)")
	fs.StringVar(&o.dtype, "dtype", "float32", "float32 or float64")
	fs.StringVar(&o.schedule, "schedule", "constant", "learning-rate schedule: constant, cosine (over the budget), cosine:TOTAL (over TOTAL steps), or step:M1,M2[:GAMMA] (milestones in steps)")
	fs.IntVar(&o.warmup, "warmup", 0, "linear learning-rate warm-up steps")
	fs.Float64Var(&o.cfg.ClipNorm, "clip", 0, "clip gradients to this global norm (0: off)")
	fs.BoolVar(&o.cfg.DecayAll, "decay-all", false, "apply weight decay to every parameter (one group); by default biases and normalisation parameters (rank <= 1) are exempt, as in nanoGPT")
	fs.BoolVar(&o.cfg.Normalize, "normalize", true, "standardise channels with the training split's statistics")
	fs.BoolVar(&o.augment, "augment", false, "augment training images (random crop with 4-pixel padding, horizontal flip)")

	fs.StringVar(&o.cfg.OutDir, "out", "train-out", "output directory: metrics (JSONL, CSV), config, checkpoint")
	fs.BoolVar(&o.cfg.Resume, "resume", false, "resume the run in -out from its checkpoint with its recorded settings, up to its budget (flags given override: see below)")
	fs.BoolVar(&o.cfg.Overwrite, "overwrite", false, "start afresh even if -out holds a run's checkpoint (it and the metrics are replaced)")
	fs.IntVar(&o.cfg.CheckpointEvery, "checkpoint-every", 0, "save a checkpoint every N steps (0: every epoch; -1: only at the end)")
	fs.IntVar(&o.cfg.EvalEvery, "eval-every", 0, "also evaluate on the test split every N steps (0: at the end of each epoch only)")
	fs.IntVar(&o.cfg.HessianEvery, "hessian-every", 0, "every N steps, measure the Hessian's top eigenvalue and trace on the batch")
	fs.BoolVar(&o.cfg.HessianQuick, "hessian-quick", false, "with -hessian-every: the top eigenvalue only, to about 1e-3 relative (at most 30 Hessian-vector products), no trace")
	fs.BoolVar(&o.cfg.HessianPrecond, "hessian-precond", false, "with -hessian-every: also the top eigenvalue of the optimizer's preconditioned Hessian P⁻¹H and its stability limit (from step 1 on; steps.jsonl's precond_top, stability_limit)")
	fs.IntVar(&o.cfg.LogEvery, "log-every", 0, "steps between progress lines when not on a terminal (0: ten per epoch)")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress output")
	fs.BoolVar(&o.shard, "shard", false, "under mpirun (a build with -tags mpi): split the optimizer's state over the ranks (ZeRO-1;\nevery optimizer; mfac's window by coordinates); the checkpoint is the same without it. Alone: no effect")
	fs.BoolVar(&o.syncBN, "sync-bn", false, "under mpirun: synchronised batch norm, the batch statistics of the global batch (all-reduced in the forward\npass, the gradient and the H·v: the run equals one process); default: each rank's own rows' statistics. Alone: no effect")
	fs.Func("memory-limit", "memory the model's parameters and graphs may take, e.g. 2GB, 512MB, 1.5GiB; a run that would need more is refused before training (default: the memory available, MemAvailable)", func(s string) (err error) {
		o.cfg.MemoryLimit, err = meminfo.ParseBytes(s)
		return err
	})
	fs.BoolVar(&o.analyze, "analyze", false, "analysis mode: load the run in -out (its checkpoint and config.json: model, dtype, data, batch size)\nand write the Hessian spectrum (numbers and density plot) there; data and batch flags given override the run's")
	fs.IntVar(&o.analysis.batches, "analyze-batches", 4, "analysis mode: training batches the Hessian is averaged over")
	fs.IntVar(&o.analysis.top, "analyze-top", 3, "analysis mode: number of top eigenvalues")
	fs.IntVar(&o.analysis.slq, "analyze-slq-steps", 40, "analysis mode: Lanczos steps per SLQ probe")
	fs.IntVar(&o.analysis.probes, "analyze-probes", 2, "analysis mode: SLQ probes")
	fs.BoolVar(&o.analysis.perLayer, "analyze-per-layer", false, "analysis mode: also analyse every parameter tensor's diagonal block")
	fs.StringVar(&o.analysis.traceMethod, "analyze-trace", "hutchinson", "analysis mode: trace estimator, hutchinson or hutch++")

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stderr)
			usage(fs, stderr)
			return 0
		}
		return usageError(stderr, unknownFlag(err))
	}
	if fs.NArg() > 0 {
		return usageError(stderr, fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	o.set = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { o.set[f.Name] = true })
	o.cfg.Seed = seed
	o.cfg.Hyper = h
	o.cfg.Memory = mem
	if err := o.finish(); err != nil {
		return usageError(stderr, err)
	}
	if err := o.ranks(comm); err != nil {
		return usageError(stderr, err)
	}
	if !o.quiet {
		o.cfg.Progress = stdout
		o.cfg.Terminal = isTerminal(stdout)
	}
	o.cfg.Notices = stderr // a resume's repair is reported even with -quiet

	if o.analyze {
		if err := analyze(sig.Context(), &o); err != nil {
			if s := sig.Received(); s != nil && errors.Is(err, context.Canceled) {
				fmt.Fprintf(stderr, "train: analysis stopped by %s; nothing was written (spectrum.json and the density plots are written when it finishes)\n", sigctx.Name(s))
				return sigctx.ExitStatus(s)
			}
			report(stderr, err)
			return 1
		}
		return 0
	}
	if o.cfg.Resume {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		cfg, err := resumed(&o, set)
		if err != nil {
			report(stderr, err)
			return 1
		}
		cfg.Progress, cfg.Terminal, cfg.Notices = o.cfg.Progress, o.cfg.Terminal, o.cfg.Notices
		cfg.Memory, cfg.MemoryLimit = o.cfg.Memory, o.cfg.MemoryLimit
		o.cfg = cfg
		if !o.quiet {
			fmt.Fprintf(stdout, "resuming the run in %s: %s on %s with %s (%s), batch %d\n",
				o.cfg.OutDir, modelName(o.cfg), describeData(o.cfg.Data), o.cfg.Optimizer, o.cfg.Dtype, o.cfg.BatchSize)
		}
	} else if !o.quiet {
		fmt.Fprintf(stdout, "training %s on %s with %s (%s), batch %d%s, output in %s\n",
			o.model, describeData(o.cfg.Data), o.cfg.Optimizer, o.dtype, o.cfg.BatchSize, o.rankNote(), o.cfg.OutDir)
		if o.cfg.GNBBatch > 0 {
			fmt.Fprintf(stdout, "GNB estimate on the first %d rows of each batch; an epoch's incomplete last batch is dropped (-drop-last)\n", o.cfg.GNBBatch)
		}
	}
	if s := sig.Received(); s != nil { // during start-up: nothing was touched yet
		fmt.Fprintf(stderr, "train: stopped by %s before the first step; nothing was written\n", sigctx.Name(s))
		return sigctx.ExitStatus(s)
	}
	ctx := sig.Context()
	o.cfg.Comm, o.cfg.Shard, o.cfg.SyncBN = o.comm, o.shard, o.syncBN
	res, err := train.Run(ctx, o.cfg)
	if s := sig.Received(); s != nil && err != nil && ctx.Err() != nil {
		return interrupted(s, o.cfg.OutDir, stderr)
	}
	if err != nil {
		report(stderr, err)
		return 1
	}
	if !o.quiet {
		reportValidation(stdout, res, o.cfg.Data.Kind == data.KindText)
	}
	return 0
}

// report prints err on w with the command's "train: " prefix, once (errors
// of the train package carry it already).
func report(w io.Writer, err error) {
	msg := err.Error()
	if !strings.HasPrefix(msg, "train: ") {
		msg = "train: " + msg
	}
	fmt.Fprintln(w, msg)
}

// finish turns the parsed flags into the run's configuration.
func (o *options) finish() error {
	switch o.dtype {
	case "float32":
		o.cfg.Dtype = tensor.Float32
	case "float64":
		o.cfg.Dtype = tensor.Float64
	default:
		return fmt.Errorf("-dtype %q: want float32 or float64", o.dtype)
	}
	sched, err := train.ParseSchedule(o.schedule)
	if err != nil {
		return fmt.Errorf("-schedule: %w", err)
	}
	sched.Warmup = o.warmup
	if o.warmup < 0 {
		return fmt.Errorf("-warmup %d: must be >= 0", o.warmup)
	}
	o.cfg.Schedule = sched
	if o.augment {
		o.cfg.Augment = data.Augment{Pad: 4, Flip: true}
	}
	switch o.dataKind {
	case data.KindSynthetic, data.KindCIFAR10, data.KindCIFAR100, data.KindFashionMNIST, data.KindMNIST, data.KindText:
	default:
		return fmt.Errorf("-data %q: want synthetic, cifar10, cifar100, fashion-mnist, mnist or text", o.dataKind)
	}
	if (o.dataKind == data.KindCIFAR10 || o.dataKind == data.KindCIFAR100 || o.dataKind == data.KindMNIST) && o.dataDir == "" {
		return fmt.Errorf("-data %s needs -data-dir", o.dataKind)
	}
	if o.synTrain < 1 || o.synTest < 1 {
		return fmt.Errorf("-synthetic-train and -synthetic-test must be >= 1")
	}
	o.cfg.Data = data.Spec{Kind: o.dataKind, Dir: o.dataDir, Coarse: o.coarse,
		Synthetic: data.SyntheticConfig{Train: o.synTrain, Test: o.synTest, Seed: o.cfg.Seed}, File: o.dataFile}
	if o.dataKind == data.KindText {
		o.cfg.Data.Context = gptContext
	}
	if o.dataFile != "" && o.dataKind != data.KindText {
		return fmt.Errorf("-data-file is for -data text")
	}
	if o.cfg.Epochs < 1 && o.cfg.Steps == 0 {
		return fmt.Errorf("-epochs %d: must be >= 1", o.cfg.Epochs)
	}
	if o.cfg.BatchSize < 1 { // the flag has no zero default (train.Config's 0 means 128)
		return fmt.Errorf("-batch %d: must be >= 1", o.cfg.BatchSize)
	}
	// The run's settings are train.Config's to check, once; its errors
	// name the setting, reported here under its flag.
	if err := o.cfg.ValidateSettings(); err != nil {
		return settingFlagError(err)
	}
	if !o.cfg.Resume { // a resumed run's optimizer is the recorded one: train.Run checks it
		// The optimizer Config's Validate, the one check of the values.
		if err := train.ValidateHyper(o.cfg.Optimizer, o.cfg.Hyper, o.cfg.BatchSize); err != nil {
			return hyperFlagError(err)
		}
		if o.cfg.GNBBatch > 0 {
			opt, err := train.NewOptimizer(o.cfg.Optimizer, o.cfg.Hyper, o.cfg.GNBBatch, o.cfg.Seed)
			if err != nil {
				return hyperFlagError(err)
			}
			if !opt.Needs().SampledGrad {
				return fmt.Errorf("-gnb-batch %d: optimizer %s does not use the GNB estimate (only sophiag does)", o.cfg.GNBBatch, o.cfg.Optimizer)
			}
		}
	}
	c, size, classes := dataGeometry(o.dataKind, o.coarse)
	if ok, err := o.dagModel(c, size, classes); ok {
		return err
	}
	o.cfg.Model, err = imageModel(o.model, o.hidden, o.dataKind, o.coarse)
	return err
}

// dataGeometry returns the channels, size and classes of an image dataset.
func dataGeometry(kind string, coarse bool) (c, size, classes int) {
	c, size, classes = 3, 32, 10
	switch kind {
	case data.KindFashionMNIST, data.KindMNIST:
		c, size = 1, 28
	case data.KindCIFAR100:
		classes = 100
		if coarse {
			classes = 20
		}
	}
	return c, size, classes
}

// imageModel returns the model for -model mlp or cnn, sized for the
// dataset, or read from the file -model names (readModel).
func imageModel(model, hidden, kind string, coarse bool) (nn.DAG, error) {
	c, size, classes := dataGeometry(kind, coarse)
	switch model {
	case "cnn":
		return nn.CNN(c, size, classes), nil
	case "mlp":
		var hs []int
		for _, f := range strings.Split(hidden, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				return nn.DAG{}, fmt.Errorf("-hidden %q: want positive integers separated by commas", hidden)
			}
			hs = append(hs, n)
		}
		return nn.MLP(c*size*size, hs, classes), nil
	}
	return readModel(model)
}

func describeData(s data.Spec) string {
	if s.Dir != "" {
		return s.Kind + " (" + s.Dir + ")"
	}
	return s.Kind
}

func usage(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprintf(w, `usage: train [flags]

Trains a model with a curvopt optimizer. With no flags: the small CNN on the
built-in synthetic CIFAR-style data, SophiaH with its defaults, 10 epochs.

Flags:
`)
	fs.PrintDefaults()
	fmt.Fprintf(w, `
Optimizer defaults (a hyperparameter flag overrides one; flags an optimizer
does not take are an error; renamed: %s):
%s
Outputs in -out: steps.jsonl/csv (per step), epochs.jsonl/csv (per epoch,
with test accuracy), config.json, checkpoint.gob. Ctrl-C or SIGTERM stops
after the current step and saves a checkpoint (exit status 130 or 143).

-resume -out DIR continues the run in DIR with the settings recorded in its
checkpoint; no other flag is needed. Flags given with it may change the
budget (-epochs, -steps), the schedule (-schedule, -warmup; a cosine
schedule keeps its recorded horizon unless given as cosine:TOTAL), -eval-every,
-checkpoint-every, -eval-batch, -data-dir and the progress output; any other
flag must equal the recorded value, or the resume is refused naming both.
A fresh run into a DIR that holds a checkpoint is refused unless -overwrite.
`, renamedFlags(), train.OptimizerHelp())
}

// renamedFlags lists the renamed hyperparameter flags: "-wd → -weight_decay, ...".
func renamedFlags() string {
	var parts []string
	for _, r := range train.RenamedHypers() {
		parts = append(parts, "-"+r[0]+" → -"+r[1])
	}
	return strings.Join(parts, ", ")
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
