package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/curvopt/curvopt/data"
	"github.com/curvopt/curvopt/nn"
	"github.com/curvopt/curvopt/train"
)

type options struct {
	optimizers      string
	model           string
	hidden          string
	data            string
	steps           int
	epochs          int
	evalEvery       int
	batch           int
	seeds           int
	target          float64
	out             string
	work            string
	dtype           string
	normalize       bool
	sweep           bool
	sweepFactors    string
	sweepSeeds      int
	valFrac         float64
	lrs             string
	resume          bool
	keepWork        bool
	verbose         bool
	schedule        string
	warmup          int
	cosineMin       float64
	clip            float64
	hyper           string
	evalMax         int
	evalBatch       int
	selectBy        string
	sweepWiden      int
	sharpEvery      int
	sharpSeeds      int
	sharpPrecond    bool
	targetLossOf    string
	sweepBase       string
	reference       string
	checkpointEvery int
	codeVersion     string
	sweepKnobs      string
	extraBudgets    string
	estimateSteps   int
	removeOrphans   bool
	only            string
}

func parse(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // a bad flag is reported in one line by main, not with the usage
	fs.StringVar(&o.optimizers, "optimizers", strings.Join(train.Optimizers(), ","), "comma-separated optimizers to compare")
	fs.StringVar(&o.model, "model", "mlp", "model: mlp, cnn, resnetN (N = 6n+2: resnet8, resnet20) on image data, or gpt-tiny on text")
	fs.StringVar(&o.hidden, "hidden", "128", "MLP hidden layer widths, comma-separated")
	fs.StringVar(&o.data, "data", "synthetic", `dataset: "synthetic [train=N] [test=N] [seed=S] [noise=X]", "fashion-mnist [DIR]", "cifar10 DIR", "text [FILE] [context=N]", ...`)
	fs.IntVar(&o.steps, "steps", 0, "budget in steps per run (0: -epochs)")
	fs.IntVar(&o.epochs, "epochs", 15, "budget in epochs per run when -steps is 0")
	fs.IntVar(&o.evalEvery, "eval-every", 0, "also evaluate every N steps (0: at the end of each epoch only)")
	fs.IntVar(&o.batch, "batch", 128, "training batch size")
	fs.IntVar(&o.seeds, "seeds", 3, "number of seeds per optimizer (seeds 1..N)")
	fs.Float64Var(&o.target, "target", 0.25, "test accuracy (0..1) for the steps/time-to-target columns")
	fs.StringVar(&o.out, "out", "results/synthetic", "output directory")
	fs.StringVar(&o.work, "work", "", "directory for the runs' checkpoints while they train (default results/tmp/work/<base of -out>)")
	fs.StringVar(&o.dtype, "dtype", "float32", "float32 or float64")
	fs.BoolVar(&o.normalize, "normalize", true, "standardise channels with the training split's statistics")
	fs.BoolVar(&o.sweep, "sweep", false, "choose each optimizer's learning rate by a sweep on a validation split first")
	fs.StringVar(&o.sweepFactors, "sweep-factors", "0.1,0.3,1,3,10", "sweep: multiples of each optimizer's default learning rate")
	fs.IntVar(&o.sweepSeeds, "sweep-seeds", 1, "sweep: seeds per learning rate")
	fs.Float64Var(&o.valFrac, "val-frac", 0.2, "sweep: fraction of the training set (its tail) held out for validation")
	fs.StringVar(&o.lrs, "lrs", "", `explicit learning rates, e.g. "sgd=0.1,adam=0.003" (these optimizers skip the sweep)`)
	fs.BoolVar(&o.resume, "resume", true, "reuse finished runs stored in -out/runs (false: retrain everything)")
	fs.BoolVar(&o.keepWork, "keep-work", false, "keep finished runs' checkpoints and logs under -work")
	fs.BoolVar(&o.verbose, "v", false, "print train.Run's progress lines for every run")
	fs.StringVar(&o.schedule, "schedule", "constant", "learning-rate schedule: constant, cosine (over each run's budget) or step:M1,M2[:GAMMA]")
	fs.IntVar(&o.warmup, "warmup", 0, "linear learning-rate warm-up steps")
	fs.Float64Var(&o.cosineMin, "cosine-min", 0, "cosine: the final rate as a fraction of the peak (nanoGPT and Sophia decay to 0.1)")
	fs.Float64Var(&o.clip, "clip", 0, "clip gradients to this global norm (0: off); SophiaG's sampled-label gradient is clipped to the same norm before its Hessian estimate, as the reference's train_sophiag.py does")
	fs.StringVar(&o.hyper, "hyper", "", `hyperparameters other than lr per optimizer, e.g. "sgd:weight_decay=5e-4,nesterov=true;adamw:weight_decay=0.1"; the names are the train flags' (train -h)`)
	fs.IntVar(&o.evalMax, "eval-max", 0, "evaluate on this many evenly spaced examples of the validation and test sets (0: all)")
	fs.IntVar(&o.evalBatch, "eval-batch", 500, "evaluation batch size")
	fs.StringVar(&o.selectBy, "select", "acc", "sweep: choose the rate with the best final validation acc (accuracy) or loss")
	fs.IntVar(&o.sweepWiden, "sweep-widen", 2, "sweep: rounds of widening the grid past an end where the chosen rate lies")
	fs.IntVar(&o.sharpEvery, "sharpness-every", 0, "track the Hessian's top eigenvalue every N steps in the comparison runs of the first -sharpness-seeds seeds (0: off)")
	fs.IntVar(&o.sharpSeeds, "sharpness-seeds", 1, "seeds whose comparison runs track sharpness")
	fs.BoolVar(&o.sharpPrecond, "sharpness-precond", false, `with -sharpness-every: also measure the top eigenvalue of each optimizer's preconditioned Hessian and its stability limit, from step 1 on (results.md's "Curvature and the chosen rate", sharpness.csv's precond_top, stability_limit, lr_bound)`)
	fs.StringVar(&o.reference, "reference", "", "compare every optimizer with this one: mean per-seed difference of final test accuracy (of loss with -target-loss-of) with a paired t test (Holm-adjusted over the comparisons) and a Wilcoxon signed-rank test, speed-up in steps to the target (default: -target-loss-of, else the first optimizer)")
	fs.StringVar(&o.sweepBase, "sweep-base", "", `sweep: the rate the factors multiply, per optimizer, e.g. "sophiah=0.01" (default: the documented default)`)
	fs.IntVar(&o.checkpointEvery, "checkpoint-every", 100, "checkpoint each run every N steps, so an interrupted comparison resumes mid-run (-1: only at the end)")
	fs.StringVar(&o.targetLossOf, "target-loss-of", "", "time-to-target columns: steps and time to reach this optimizer's mean final test loss (instead of -target accuracy)")
	fs.StringVar(&o.codeVersion, "code-version", "", "the code version in every run's fingerprint (default: a hash of the module's training sources, found from the working directory; \"any\": left out, as before it was recorded, to rewrite an old study's tables from its stored runs)")
	fs.StringVar(&o.sweepKnobs, "sweep-knobs", "", `sweep: knobs swept with the rate, per optimizer, e.g. "sophiag:rho=0.01|0.05|0.2;adamw:beta2=0.95|0.99,weight_decay=0.1|0.2" (every combination × every rate; the chosen combination is used in the comparison)`)
	fs.StringVar(&o.extraBudgets, "extra-budgets", "", `also train an optimizer's chosen configuration at these multiples of -steps, each with its own schedule, e.g. "adamw=1.5|2" (the Sophia paper's AdamW at 1.5 and 2 times the budget)`)
	fs.IntVar(&o.estimateSteps, "estimate", 0, "train each optimizer N steps, print the plan (runs per optimizer) with its estimated training time, and stop (0: run the comparison)")
	fs.StringVar(&o.only, "only", "", "train only these optimizers' runs of the plan (comma-separated, each among -optimizers) and stop without writing tables: several processes with the same flags and disjoint -only lists share a study's runs between cores; a run without -only then writes the tables from the stored runs")
	fs.BoolVar(&o.removeOrphans, "remove-orphans", false, "remove stored runs under -out/runs that belong to no run of this plan (without it they are listed and left)")
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) { // -h: the whole usage
			fs.SetOutput(stderr)
			fmt.Fprintf(stderr, "usage: compare [flags]\n\nTrains each optimizer on the same model, data and budget over several seeds and writes\nresults.md, summary.csv, curves.csv and plots to -out. Optimizers and defaults:\n%s\nFlags:\n", train.OptimizerHelp())
			fs.PrintDefaults()
			return nil, err
		}
		return nil, badUsage(err)
	}
	if fs.NArg() > 0 {
		return nil, badUsage(fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	if err := checkValues(o); err != nil {
		return nil, badUsage(err)
	}
	if o.work == "" {
		o.work = filepath.Join("results", "tmp", "work", filepath.Base(filepath.Clean(o.out)))
	}
	return o, nil
}

// checkValues checks the flags' values that need nothing else.
func checkValues(o *options) error {
	switch {
	case o.seeds < 1:
		return fmt.Errorf("-seeds %d: want >= 1", o.seeds)
	case o.sweepSeeds < 1:
		return fmt.Errorf("-sweep-seeds %d: want >= 1", o.sweepSeeds)
	case o.estimateSteps < 0:
		return fmt.Errorf("-estimate %d: want >= 0", o.estimateSteps)
	case o.steps < 0 || o.epochs < 0 || o.evalEvery < 0:
		return errors.New("-steps, -epochs and -eval-every must be >= 0")
	case o.target < 0 || o.target > 1:
		return fmt.Errorf("-target %v: want an accuracy in [0, 1]", o.target)
	case o.warmup < 0 || o.evalMax < 0 || o.sweepWiden < 0 || o.sharpEvery < 0 || o.sharpSeeds < 0:
		return errors.New("-warmup, -eval-max, -sweep-widen, -sharpness-every and -sharpness-seeds must be >= 0")
	case o.evalBatch < 1:
		return fmt.Errorf("-eval-batch %d: want >= 1", o.evalBatch)
	case !(o.cosineMin >= 0 && o.cosineMin < 1):
		return fmt.Errorf("-cosine-min %v: want a fraction in [0, 1)", o.cosineMin)
	case !(o.clip >= 0) || math.IsInf(o.clip, 0):
		return fmt.Errorf("-clip %v: want a norm >= 0", o.clip)
	case o.selectBy != "acc" && o.selectBy != "loss":
		return fmt.Errorf("-select %q: want acc or loss", o.selectBy)
	}
	return nil
}

// parseLRs reads "opt=lr,opt=lr".
func parseLRs(s string) (map[string]float64, error) {
	out := map[string]float64{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, f := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(f), "=")
		lr, err := strconv.ParseFloat(v, 64)
		if !ok || err != nil || !(lr > 0) {
			return nil, fmt.Errorf("-lrs %q: want optimizer=positive-rate pairs separated by commas", s)
		}
		out[k] = lr
	}
	return out, nil
}

func parseFloats(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || !(v > 0) {
			return nil, fmt.Errorf("%q: want positive numbers separated by commas", s)
		}
		out = append(out, v)
	}
	return out, nil
}

// parseHyper reads "opt:k=v,k=v;opt:k=v" into per-optimizer overrides.
func parseHyper(s string) (map[string]train.Hyper, error) {
	out := map[string]train.Hyper{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	bad := func(why string) error {
		return fmt.Errorf("-hyper %q: %s (want optimizer:name=value,... separated by semicolons)", s, why)
	}
	for _, grp := range strings.Split(s, ";") {
		name, kvs, ok := strings.Cut(strings.TrimSpace(grp), ":")
		if !ok || name == "" {
			return nil, bad(fmt.Sprintf("%q has no optimizer name", grp))
		}
		h := out[name]
		if h == nil {
			h = train.Hyper{}
		}
		for _, kv := range strings.Split(kvs, ",") {
			k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
			if !ok {
				return nil, bad(fmt.Sprintf("%q is not name=value", kv))
			}
			if k == "lr" {
				return nil, bad("set learning rates with -lrs or -sweep")
			}
			// The value's type is the hyperparameter's (nesterov=true,
			// hessian_interval=5); its range is the optimizer's to check.
			x, err := train.ParseHyperValue(k, v)
			if err != nil {
				return nil, bad(err.Error())
			}
			h[k] = x
		}
		out[name] = h
	}
	return out, nil
}

// buildModel returns the model for the data (mlp, cnn, resnetN on images,
// gpt-tiny on text windows) and what identifies it in the comparison's
// fingerprint: the layer list for mlp and cnn (as before the layer list
// became a shorthand for a DAG, so that runs stored then are reused), the
// DAG otherwise.
func buildModel(model, hidden string, ds *data.Dataset, text bool) (nn.DAG, any, error) {
	d, err := modelDAG(model, hidden, ds, text)
	if err != nil {
		return nn.DAG{}, nil, err
	}
	switch model {
	case "cnn":
		return d, nn.CNNSpec(ds.C, ds.H, ds.Classes), nil
	case "mlp":
		hs, _ := hiddenSizes(hidden) // checked by modelDAG
		return d, nn.MLPSpec(ds.ImageSize(), hs, ds.Classes), nil
	}
	return d, d, nil
}

// hiddenSizes parses -hidden.
func hiddenSizes(hidden string) ([]int, error) {
	var hs []int
	for _, f := range strings.Split(hidden, ",") {
		h, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || h < 1 {
			return nil, fmt.Errorf("-hidden %q: want positive integers separated by commas", hidden)
		}
		hs = append(hs, h)
	}
	return hs, nil
}

// modelDAG returns the model -model names for the data.
func modelDAG(model, hidden string, ds *data.Dataset, text bool) (nn.DAG, error) {
	switch {
	case model == "gpt-tiny":
		if !text {
			return nn.DAG{}, fmt.Errorf("-model gpt-tiny trains on text: use -data text")
		}
		d, err := nn.GPT(nn.GPTConfig{Vocab: ds.Classes, Context: ds.W - 1})
		if err != nil {
			return nn.DAG{}, fmt.Errorf("-model gpt-tiny: %w", err)
		}
		return d, nil
	case text:
		return nn.DAG{}, fmt.Errorf("-data text needs -model gpt-tiny, not %q", model)
	case strings.HasPrefix(model, "resnet"):
		depth, err := strconv.Atoi(strings.TrimPrefix(model, "resnet"))
		if err != nil {
			return nn.DAG{}, fmt.Errorf("-model %q: want resnetN with N = 6n+2 (resnet8, resnet20, …)", model)
		}
		if ds.H != ds.W {
			return nn.DAG{}, fmt.Errorf("-model %s needs square images, %s has %dx%d", model, ds.Name, ds.H, ds.W)
		}
		d, err := nn.ResNet(depth, ds.C, ds.H, ds.Classes)
		if err != nil {
			return nn.DAG{}, fmt.Errorf("-model %s: %w", model, err)
		}
		return d, nil
	case model == "cnn":
		if ds.H != ds.W {
			return nn.DAG{}, fmt.Errorf("-model cnn needs square images, %s has %dx%d", ds.Name, ds.H, ds.W)
		}
		return nn.CNN(ds.C, ds.H, ds.Classes), nil
	case model == "mlp":
		hs, err := hiddenSizes(hidden)
		if err != nil {
			return nn.DAG{}, err
		}
		return nn.MLP(ds.ImageSize(), hs, ds.Classes), nil
	}
	return nn.DAG{}, fmt.Errorf("-model %q: want mlp, cnn, resnetN or gpt-tiny", model)
}
