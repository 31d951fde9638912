// Command train trains a model on an image-classification dataset with any
// curvopt optimizer, printing progress and writing metrics and checkpoints.
//
// With no flags it trains the small CNN on the built-in synthetic
// CIFAR-style data with SophiaH (its documented defaults) for 10 epochs:
//
//	go run ./cmd/train
//
// Run "go run ./cmd/train -h" for every flag.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"

	"github.com/curvopt/curvopt/data"
	"github.com/curvopt/curvopt/nn"
	"github.com/curvopt/curvopt/train"
	"gorgonia.org/tensor"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// optFloat is a float flag that remembers whether it was set.
type optFloat struct {
	name string
	h    train.Hyper
}

func (o optFloat) String() string { return "" }
func (o optFloat) Set(s string) error {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("not a number: %q", s)
	}
	o.h[o.name] = v
	return nil
}

// optBool is a boolean hyperparameter flag that remembers whether it was set.
type optBool struct{ optFloat }

func (o optBool) IsBoolFlag() bool { return true }
func (o optBool) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("not a boolean: %q", s)
	}
	o.h[o.name] = map[bool]float64{false: 0, true: 1}[b]
	return nil
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
}

func run(args []string, stdout, stderr io.Writer) int {
	var o options
	h := train.Hyper{}
	fs := flag.NewFlagSet("train", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { usage(fs, stderr) }

	fs.StringVar(&o.cfg.Optimizer, "optimizer", "sophiah", "optimizer: "+strings.Join(train.Optimizers(), ", "))
	for _, name := range []string{"lr", "momentum", "dampening", "wd", "beta1", "beta2", "eps", "rho", "bs", "k", "power", "m", "damp"} {
		fs.Var(optFloat{name, h}, name, hyperUsage[name])
	}
	fs.Var(optBool{optFloat{"nesterov", h}}, "nesterov", hyperUsage["nesterov"])

	fs.StringVar(&o.model, "model", "cnn", "model: mlp, cnn, resnet8, resnet20 (resnetN, N = 6n+2), gpt-tiny (with -data text), or the path of a layer-list spec file (JSON)")
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
	fs.IntVar(&o.cfg.EvalBatch, "eval-batch", 500, "evaluation batch size")
	fs.IntVar(&o.cfg.GNBBatch, "gnb-batch", 0, "sophiag: compute the GNB estimate on the first N rows of each batch (0: the whole batch); bs defaults to N")
	fs.BoolVar(&o.cfg.DropLast, "drop-last", false, "drop each epoch's incomplete last batch")
	var seed uint64
	fs.Uint64Var(&seed, "seed", 1, "random seed (model, data order, probes, sampled labels)")
	fs.StringVar(&o.dtype, "dtype", "float32", "float32 or float64")
	fs.StringVar(&o.schedule, "schedule", "constant", "learning-rate schedule: constant, cosine, or step:M1,M2[:GAMMA] (milestones in steps)")
	fs.IntVar(&o.warmup, "warmup", 0, "linear learning-rate warm-up steps")
	fs.Float64Var(&o.cfg.ClipNorm, "clip", 0, "clip gradients to this global norm (0: off)")
	fs.BoolVar(&o.cfg.Normalize, "normalize", true, "standardise channels with the training split's statistics")
	fs.BoolVar(&o.augment, "augment", false, "augment training images (random crop with 4-pixel padding, horizontal flip)")

	fs.StringVar(&o.cfg.OutDir, "out", "train-out", "output directory: metrics (JSONL, CSV), config, checkpoint")
	fs.BoolVar(&o.cfg.Resume, "resume", false, "resume from the checkpoint in -out and train up to the budget")
	fs.IntVar(&o.cfg.CheckpointEvery, "checkpoint-every", 0, "save a checkpoint every N steps (0: every epoch; -1: only at the end)")
	fs.IntVar(&o.cfg.EvalEvery, "eval-every", 0, "also evaluate on the test split every N steps (0: at the end of each epoch only)")
	fs.IntVar(&o.cfg.HessianEvery, "hessian-every", 0, "every N steps, measure the Hessian's top eigenvalue and trace on the batch")
	fs.IntVar(&o.cfg.LogEvery, "log-every", 0, "steps between progress lines when not on a terminal (0: ten per epoch)")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress output")
	fs.BoolVar(&o.analyze, "analyze", false, "analysis mode: load the checkpoint in -out and write the Hessian spectrum (numbers and density plot) there")
	fs.IntVar(&o.analysis.batches, "analyze-batches", 4, "analysis mode: training batches the Hessian is averaged over")
	fs.IntVar(&o.analysis.top, "analyze-top", 3, "analysis mode: number of top eigenvalues")
	fs.IntVar(&o.analysis.slq, "analyze-slq-steps", 40, "analysis mode: Lanczos steps per SLQ probe")
	fs.IntVar(&o.analysis.probes, "analyze-probes", 2, "analysis mode: SLQ probes")
	fs.BoolVar(&o.analysis.perLayer, "analyze-per-layer", false, "analysis mode: also analyse every parameter tensor's diagonal block")

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "train: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	o.cfg.Seed = seed
	o.cfg.Hyper = h
	if err := o.finish(); err != nil {
		fmt.Fprintf(stderr, "train: %v\n", err)
		fs.Usage()
		return 2
	}
	if !o.quiet {
		o.cfg.Progress = stdout
		o.cfg.Terminal = isTerminal(stdout)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if o.analyze {
		if err := analyze(o.cfg, o.analysis, stdout); err != nil {
			fmt.Fprintf(stderr, "train: %v\n", err)
			return 1
		}
		return 0
	}
	if !o.quiet {
		fmt.Fprintf(stdout, "training %s on %s with %s (%s), batch %d, output in %s\n",
			o.model, describeData(o.cfg.Data), o.cfg.Optimizer, o.dtype, o.cfg.BatchSize, o.cfg.OutDir)
	}
	res, err := train.Run(ctx, o.cfg)
	if err != nil {
		fmt.Fprintf(stderr, "train: %v\n", err)
		return 1
	}
	if !o.quiet {
		reportValidation(stdout, res, o.dataKind == data.KindText)
	}
	return 0
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
	if err != nil && !(sched.Kind == "cosine") {
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
	if o.cfg.Steps < 0 {
		return fmt.Errorf("-steps %d: must be >= 0", o.cfg.Steps)
	}
	if o.cfg.BatchSize < 1 {
		return fmt.Errorf("-batch %d: must be >= 1", o.cfg.BatchSize)
	}
	if o.cfg.GNBBatch < 0 || o.cfg.GNBBatch > o.cfg.BatchSize {
		return fmt.Errorf("-gnb-batch %d: must be in [0, -batch %d]", o.cfg.GNBBatch, o.cfg.BatchSize)
	}
	if o.cfg.ClipNorm < 0 {
		return fmt.Errorf("-clip %v: must be >= 0", o.cfg.ClipNorm)
	}
	if _, err := train.NewOptimizer(o.cfg.Optimizer, o.cfg.Hyper, o.cfg.BatchSize, o.cfg.Seed); err != nil {
		return err
	}
	c, size, classes := dataGeometry(o.dataKind, o.coarse)
	if ok, err := o.dagModel(c, size, classes); ok {
		return err
	}
	o.cfg.Model, err = modelSpec(o.model, o.hidden, o.dataKind, o.coarse)
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

// modelSpec returns the spec for -model, sized for the dataset.
func modelSpec(model, hidden, kind string, coarse bool) (nn.Spec, error) {
	c, size, classes := dataGeometry(kind, coarse)
	switch model {
	case "cnn":
		return nn.CNN(c, size, classes), nil
	case "mlp":
		var hs []int
		for _, f := range strings.Split(hidden, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				return nn.Spec{}, fmt.Errorf("-hidden %q: want positive integers separated by commas", hidden)
			}
			hs = append(hs, n)
		}
		return nn.MLP(c*size*size, hs, classes), nil
	}
	return readSpec(model)
}

func describeData(s data.Spec) string {
	if s.Dir != "" {
		return s.Kind + " (" + s.Dir + ")"
	}
	return s.Kind
}

var hyperUsage = map[string]string{
	"lr":        "learning rate (default: the optimizer's, see below)",
	"momentum":  "sgd, mfac: momentum",
	"dampening": "sgd: dampening",
	"nesterov":  "sgd: Nesterov momentum",
	"wd":        "weight decay (coupled for sgd, adam, mfac; decoupled for adamw, sophia*, adahessian)",
	"beta1":     "adam*, sophia*, adahessian: first-moment decay",
	"beta2":     "adam*, sophia*, adahessian: second-moment / Hessian EMA decay",
	"eps":       "adam*, sophia*, adahessian: epsilon in the denominator",
	"rho":       "sophia*: clipping scale rho",
	"bs":        "sophia*: predictions per batch in rho*bs*h (sophiag default: the batch size)",
	"k":         "sophia*: Hessian estimate every k steps; adahessian: Hessian refresh interval",
	"power":     "adahessian: Hessian power in (0, 1]",
	"m":         "mfac: window size (number of gradients)",
	"damp":      "mfac: damping",
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
does not take are an error):
%s
Outputs in -out: steps.jsonl/csv (per step), epochs.jsonl/csv (per epoch,
with test accuracy), config.json, checkpoint.gob (resume with -resume).
`, train.OptimizerHelp())
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
