// Command compare runs the convergence comparison of curvopt's optimizers:
// each chosen optimizer trained with train.Run on the same model, data and
// budget over several seeds, and writes to -out
//
//	results.md     the table: final and best test accuracy and final test
//	               loss (mean ± std), steps and training time to -target
//	               (or to -target-loss-of's final loss), ms/step, state
//	               bytes, the sweep table with the chosen learning rates,
//	               and the sharpness table when it was tracked
//	summary.csv    the table as CSV
//	curves.csv     every curve point (long format)
//	sharpness.csv  every sharpness measurement (-sharpness-every)
//	{loss,acc,val_loss}_vs_{steps,wall}.{png,svg}
//	sharpness_vs_{steps,2lr}.{png,svg}   (-sharpness-every)
//	runs/          one JSON per finished run, reused by a rerun
//
// Every optimizer uses its documented defaults unless -hyper overrides them,
// -lrs sets its learning rate or -sweep chooses it: the sweep trains each
// optimizer at (default or -sweep-base) × -sweep-factors on the first
// (1 − -val-frac) of the training set, evaluates on the rest, and uses the
// rate with the best final validation accuracy (-select acc) or loss
// (-select loss) for the comparison runs on the full training set. When the
// best rate lies at an end of its grid, the grid is widened past that end
// (-sweep-widen rounds) and the note in results.md says if it still does.
//
// The models are mlp, cnn, resnetN (N = 6n+2) and gpt-tiny on -data text;
// -schedule, -warmup, -cosine-min and -clip apply to every run alike. The
// study of issue 14 (results/study/run.sh) is two such comparisons.
//
// Rerunning the same command reuses finished runs and trains only missing
// ones; a run interrupted (Ctrl-C) resumes from its checkpoint under -work.
//
// Examples:
//
//	go run ./benchmarks/cmd/compare                      # synthetic, MLP, all optimizers, 3 seeds
//	go run ./benchmarks/cmd/compare -sweep -out results/synthetic-sweep
//	go run ./benchmarks/cmd/compare -data fashion-mnist -model mlp -epochs 1 -eval-every 47 \
//	    -target 0.8 -out results/fashion-mnist
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/curvopt/curvopt/benchmarks/compare"
	"github.com/curvopt/curvopt/data"
	"github.com/curvopt/curvopt/nn"
	"github.com/curvopt/curvopt/train"
	"gorgonia.org/tensor"
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
	targetLossOf    string
	sweepBase       string
	reference       string
	checkpointEvery int
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "compare:", err)
		if errors.Is(err, context.Canceled) {
			fmt.Fprintln(os.Stderr, "compare: interrupted; rerun the same command to continue (finished runs are kept, the current one resumes from its checkpoint)")
			os.Exit(130)
		}
		os.Exit(1)
	}
}

func parse(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
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
	fs.Float64Var(&o.clip, "clip", 0, "clip gradients to this global norm (0: off)")
	fs.StringVar(&o.hyper, "hyper", "", `hyperparameters other than lr per optimizer, e.g. "sgd:wd=5e-4,momentum=0.9;adamw:wd=0.1"`)
	fs.IntVar(&o.evalMax, "eval-max", 0, "evaluate on this many evenly spaced examples of the validation and test sets (0: all)")
	fs.IntVar(&o.evalBatch, "eval-batch", 500, "evaluation batch size")
	fs.StringVar(&o.selectBy, "select", "acc", "sweep: choose the rate with the best final validation acc (accuracy) or loss")
	fs.IntVar(&o.sweepWiden, "sweep-widen", 2, "sweep: rounds of widening the grid past an end where the chosen rate lies")
	fs.IntVar(&o.sharpEvery, "sharpness-every", 0, "track the Hessian's top eigenvalue every N steps in the comparison runs of the first -sharpness-seeds seeds (0: off)")
	fs.IntVar(&o.sharpSeeds, "sharpness-seeds", 1, "seeds whose comparison runs track sharpness")
	fs.StringVar(&o.reference, "reference", "", "compare every optimizer with this one: difference of final test accuracy (or loss, with -select loss), Welch's p, speed-up in steps to the target (default: -target-loss-of, else the first optimizer)")
	fs.StringVar(&o.sweepBase, "sweep-base", "", `sweep: the rate the factors multiply, per optimizer, e.g. "sophiah=0.01" (default: the documented default)`)
	fs.IntVar(&o.checkpointEvery, "checkpoint-every", 100, "checkpoint each run every N steps, so an interrupted comparison resumes mid-run (-1: only at the end)")
	fs.StringVar(&o.targetLossOf, "target-loss-of", "", "time-to-target columns: steps and time to reach this optimizer's mean final test loss (instead of -target accuracy)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: compare [flags]\n\nTrains each optimizer on the same model, data and budget over several seeds and writes\nresults.md, summary.csv, curves.csv and plots to -out. Optimizers and defaults:\n%s\nFlags:\n", train.OptimizerHelp())
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	switch {
	case o.seeds < 1:
		return nil, fmt.Errorf("-seeds %d: want >= 1", o.seeds)
	case o.sweepSeeds < 1:
		return nil, fmt.Errorf("-sweep-seeds %d: want >= 1", o.sweepSeeds)
	case o.steps < 0 || o.epochs < 0 || o.evalEvery < 0:
		return nil, errors.New("-steps, -epochs and -eval-every must be >= 0")
	case o.target < 0 || o.target > 1:
		return nil, fmt.Errorf("-target %v: want an accuracy in [0, 1]", o.target)
	case o.warmup < 0 || o.evalMax < 0 || o.sweepWiden < 0 || o.sharpEvery < 0 || o.sharpSeeds < 0:
		return nil, errors.New("-warmup, -eval-max, -sweep-widen, -sharpness-every and -sharpness-seeds must be >= 0")
	case o.evalBatch < 1:
		return nil, fmt.Errorf("-eval-batch %d: want >= 1", o.evalBatch)
	case !(o.cosineMin >= 0 && o.cosineMin < 1):
		return nil, fmt.Errorf("-cosine-min %v: want a fraction in [0, 1)", o.cosineMin)
	case !(o.clip >= 0) || math.IsInf(o.clip, 0):
		return nil, fmt.Errorf("-clip %v: want a norm >= 0", o.clip)
	case o.selectBy != "acc" && o.selectBy != "loss":
		return nil, fmt.Errorf("-select %q: want acc or loss", o.selectBy)
	}
	if o.work == "" {
		o.work = filepath.Join("results", "tmp", "work", filepath.Base(filepath.Clean(o.out)))
	}
	return o, nil
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
			x, err := strconv.ParseFloat(v, 64)
			if !ok || err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
				return nil, bad(fmt.Sprintf("%q is not name=number", kv))
			}
			if k == "lr" {
				return nil, bad("set learning rates with -lrs or -sweep")
			}
			h[k] = x
		}
		out[name] = h
	}
	return out, nil
}

// buildModel returns the model for the data: a layer-list spec (mlp, cnn)
// or a DAG (resnetN on images, gpt-tiny on text windows).
func buildModel(model, hidden string, ds *data.Dataset, text bool) (nn.Spec, *nn.DAG, error) {
	switch {
	case model == "gpt-tiny":
		if !text {
			return nn.Spec{}, nil, fmt.Errorf("-model gpt-tiny trains on text: use -data text")
		}
		d, err := nn.GPT(nn.GPTConfig{Vocab: ds.Classes, Context: ds.W - 1})
		if err != nil {
			return nn.Spec{}, nil, fmt.Errorf("-model gpt-tiny: %w", err)
		}
		return nn.Spec{}, &d, nil
	case text:
		return nn.Spec{}, nil, fmt.Errorf("-data text needs -model gpt-tiny, not %q", model)
	case strings.HasPrefix(model, "resnet"):
		depth, err := strconv.Atoi(strings.TrimPrefix(model, "resnet"))
		if err != nil {
			return nn.Spec{}, nil, fmt.Errorf("-model %q: want resnetN with N = 6n+2 (resnet8, resnet20, …)", model)
		}
		if ds.H != ds.W {
			return nn.Spec{}, nil, fmt.Errorf("-model %s needs square images, %s has %dx%d", model, ds.Name, ds.H, ds.W)
		}
		d, err := nn.ResNet(depth, ds.C, ds.H, ds.Classes)
		if err != nil {
			return nn.Spec{}, nil, fmt.Errorf("-model %s: %w", model, err)
		}
		return nn.Spec{}, &d, nil
	case model == "cnn":
		if ds.H != ds.W {
			return nn.Spec{}, nil, fmt.Errorf("-model cnn needs square images, %s has %dx%d", ds.Name, ds.H, ds.W)
		}
		return nn.CNN(ds.C, ds.H, ds.Classes), nil, nil
	case model == "mlp":
		var hs []int
		for _, f := range strings.Split(hidden, ",") {
			h, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || h < 1 {
				return nn.Spec{}, nil, fmt.Errorf("-hidden %q: want positive integers separated by commas", hidden)
			}
			hs = append(hs, h)
		}
		return nn.MLP(ds.ImageSize(), hs, ds.Classes), nil, nil
	}
	return nn.Spec{}, nil, fmt.Errorf("-model %q: want mlp, cnn, resnetN or gpt-tiny", model)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	start := time.Now()
	o, err := parse(args, stderr)
	if err != nil {
		return err
	}
	lrs, err := parseLRs(o.lrs)
	if err != nil {
		return err
	}
	factors, err := parseFloats(o.sweepFactors)
	if err != nil {
		return fmt.Errorf("-sweep-factors: %w", err)
	}
	sweepBase, err := parseLRs(o.sweepBase)
	if err != nil {
		return fmt.Errorf("-sweep-base: %w", err)
	}
	dt := tensor.Float32
	switch o.dtype {
	case "float32":
	case "float64":
		dt = tensor.Float64
	default:
		return fmt.Errorf("-dtype %q: want float32 or float64", o.dtype)
	}

	// Optimizers: an unavailable one is skipped (and noted) when the list
	// is the default, an error when it was asked for.
	var opts, notes []string
	explicit := o.optimizers != strings.Join(train.Optimizers(), ",")
	for _, name := range strings.Split(o.optimizers, ",") {
		name = strings.TrimSpace(name)
		if _, err := train.NewOptimizer(name, nil, o.batch, 1); err != nil {
			if explicit {
				return fmt.Errorf("-optimizers: %w", err)
			}
			fmt.Fprintf(stderr, "compare: skipping %s: %v\n", name, err)
			notes = append(notes, fmt.Sprintf("%s skipped: %v", name, err))
			continue
		}
		opts = append(opts, name)
	}
	for k := range lrs {
		if !contains(opts, k) {
			return fmt.Errorf("-lrs names %q, which is not among the optimizers compared", k)
		}
	}
	if len(opts) == 0 {
		return errors.New("no optimizer to compare")
	}
	for flag, name := range map[string]string{"-reference": o.reference, "-target-loss-of": o.targetLossOf} {
		if name != "" && !contains(opts, name) {
			return fmt.Errorf("%s %q is not among the optimizers compared", flag, name)
		}
	}

	spec, err := data.ParseSpec(o.data)
	if err != nil {
		return fmt.Errorf("-data: %w", err)
	}
	fmt.Fprintf(stdout, "loading %s ...\n", o.data)
	trainDS, testDS, err := data.LoadSpec(spec)
	if err != nil {
		return fmt.Errorf("-data: %w", err)
	}
	text := spec.Kind == data.KindText
	model, dag, err := buildModel(o.model, o.hidden, trainDS, text)
	if err != nil {
		return err
	}
	sched, err := train.ParseSchedule(o.schedule)
	if err != nil {
		return fmt.Errorf("-schedule: %w", err)
	}
	sched.Warmup, sched.MinFactor = o.warmup, o.cosineMin
	if o.cosineMin > 0 && sched.Kind != "cosine" {
		return fmt.Errorf("-cosine-min is for -schedule cosine, not %q", o.schedule)
	}
	hyper, err := parseHyper(o.hyper)
	if err != nil {
		return err
	}
	for name, h := range hyper {
		if !contains(opts, name) {
			return fmt.Errorf("-hyper names %q, which is not among the optimizers compared", name)
		}
		if _, err := train.NewOptimizer(name, h, o.batch, 1); err != nil {
			return fmt.Errorf("-hyper %s: %w", name, err)
		}
	}
	base := train.Config{
		Model: model, DAG: dag, Data: spec, Steps: o.steps, Epochs: o.epochs, BatchSize: o.batch, Dtype: dt,
		Normalize: o.normalize && !text, CheckpointEvery: o.checkpointEvery, EvalBatch: o.evalBatch,
		Schedule: sched, ClipNorm: o.clip,
	}
	if err := base.Validate(); err != nil {
		return err
	}
	fullTest := testDS.Len()
	if testDS, err = compare.Subsample(testDS, o.evalMax); err != nil {
		return err
	}
	tr := &compare.TrainRunner{Base: base, Hyper: hyper, Train: trainDS, Test: testDS, EvalEvery: o.evalEvery}
	if o.verbose {
		tr.Log = stdout
	}
	if o.sweep {
		if tr.SweepTrain, tr.Val, err = compare.SplitTail(trainDS, o.valFrac); err != nil {
			return err
		}
		if tr.Val, err = compare.Subsample(tr.Val, o.evalMax); err != nil {
			return err
		}
	}
	var modelFP any = model
	if dag != nil {
		modelFP = dag
	}
	fpBytes, err := json.Marshal(map[string]any{
		"model": modelFP, "data": o.data, "train": trainDS.Len(), "test": testDS.Len(), "steps": o.steps,
		"epochs": o.epochs, "batch": o.batch, "dtype": o.dtype, "normalize": base.Normalize,
		"eval_every": o.evalEvery, "val_frac": o.valFrac, "schedule": sched, "clip": o.clip,
		"hyper": hyper, "eval_max": o.evalMax,
	})
	if err != nil {
		return err
	}
	runner := &compare.Runner{
		Dir: filepath.Join(o.out, "runs"), WorkDir: o.work, KeepWork: o.keepWork,
		Fingerprint: string(fpBytes), Train: tr.Run, Progress: stdout,
	}
	if !o.resume {
		if err := os.RemoveAll(runner.Dir); err != nil {
			return fmt.Errorf("-resume=false: %w", err)
		}
	}

	// Learning rates: explicit, swept, or the documented default.
	chosen := map[string]float64{}
	source := map[string]string{}
	for _, name := range opts {
		chosen[name], source[name] = train.BaseLR(name, nil), "default"
		if lr, ok := lrs[name]; ok {
			chosen[name], source[name] = lr, "-lrs"
		}
	}
	var sweepEntries []compare.SweepEntry
	if o.sweep {
		var specs []compare.RunSpec
		add := func(name string, lr float64) {
			for s := 1; s <= o.sweepSeeds; s++ {
				specs = append(specs, compare.RunSpec{Phase: compare.PhaseSweep, Optimizer: name, LR: lr, Seed: uint64(s)})
			}
		}
		for _, name := range opts {
			if source[name] != "default" {
				continue
			}
			center := train.BaseLR(name, nil)
			if lr, ok := sweepBase[name]; ok {
				center = lr
			}
			for _, f := range factors {
				add(name, roundSig(center*f))
			}
		}
		fmt.Fprintf(stdout, "sweep: %d runs on %s (%d examples) validated on %s (%d examples)\n",
			len(specs), tr.SweepTrain.Name, tr.SweepTrain.Len(), tr.Val.Name, tr.Val.Len())
		var best map[string]float64
		for round := 0; ; round++ {
			res, err := runner.RunAll(ctx, specs)
			if err != nil {
				return err
			}
			sweepEntries, best = compare.ChooseLRs(res, o.selectBy == "loss")
			wider := compare.Widen(sweepEntries)
			if len(wider) == 0 || round == o.sweepWiden {
				for name := range wider {
					notes = append(notes, fmt.Sprintf("%s: the chosen rate %g lies at an end of its sweep grid after %d widening rounds (-sweep-widen); its optimum may lie beyond", name, best[name], round))
				}
				break
			}
			for _, name := range opts { // in order, for a stable run list
				if lr, ok := wider[name]; ok {
					fmt.Fprintf(stdout, "sweep: %s's best rate %g is at an end of its grid; widening to %g\n", name, best[name], roundSig(lr))
					add(name, roundSig(lr))
				}
			}
		}
		for name, lr := range best {
			chosen[name], source[name] = lr, "sweep"
		}
	}
	var specs []compare.RunSpec
	for _, name := range opts {
		for s := 1; s <= o.seeds; s++ {
			sp := compare.RunSpec{Phase: compare.PhaseFinal, Optimizer: name, LR: chosen[name], Seed: uint64(s)}
			if s <= o.sharpSeeds {
				sp.SharpnessEvery = o.sharpEvery
			}
			specs = append(specs, sp)
		}
	}
	fmt.Fprintf(stdout, "comparison: %d runs (%s, %s, %d train / %d test images)\n", len(specs), o.model, trainDS.Name, trainDS.Len(), testDS.Len())
	results, err := runner.RunAll(ctx, specs)
	if err != nil {
		return err
	}

	target := compare.Target{Acc: o.target}
	if o.targetLossOf != "" {
		l, ok := compare.FinalLoss(results, o.targetLossOf)
		if !ok {
			return fmt.Errorf("-target-loss-of %s: no finished, non-diverged %s comparison run to take the target loss from", o.targetLossOf, o.targetLossOf)
		}
		target = compare.Target{Loss: l}
		notes = append(notes, fmt.Sprintf("the time-to-target columns measure the steps and training time to reach %s's mean final test loss, %.4f", o.targetLossOf, l))
	}
	sums := compare.Summarize(results, target)
	ref := o.reference
	switch {
	case ref == "" && o.targetLossOf != "":
		ref = o.targetLossOf
	case ref == "":
		ref = opts[0]
	}
	var trainS float64
	for _, r := range results {
		trainS += r.TrainWallS
	}
	budget := fmt.Sprintf("%d epochs", o.epochs)
	if o.steps > 0 {
		budget = fmt.Sprintf("%d steps", o.steps)
	}
	maxSteps := 0
	for _, r := range results {
		if !r.Diverged {
			maxSteps = max(maxSteps, r.Steps)
		}
	}
	if maxSteps > 0 && o.steps == 0 {
		budget += fmt.Sprintf(" (%d steps)", maxSteps)
	}
	eval := "at the end of each epoch"
	if o.evalEvery > 0 {
		eval = fmt.Sprintf("every %d steps and at the end of each epoch", o.evalEvery)
	}
	modelDesc := fmt.Sprintf("%s (%d layers), %s", o.model, len(model.Layers), o.dtype)
	if dag != nil {
		modelDesc = fmt.Sprintf("%s (%d-node graph), %s", o.model, len(dag.Nodes), o.dtype)
	}
	evalNote := ""
	if testDS.Len() < fullTest {
		evalNote = fmt.Sprintf(" (every %.4g-th of %d; -eval-max)", float64(fullTest)/float64(testDS.Len()), fullTest)
	}
	schedDesc := o.schedule
	if sched.Warmup > 0 {
		schedDesc += fmt.Sprintf(", %d warm-up steps", sched.Warmup)
	}
	if o.cosineMin > 0 {
		schedDesc += fmt.Sprintf(", down to %g of the peak", o.cosineMin)
	}
	if o.clip > 0 {
		schedDesc += fmt.Sprintf("; gradients clipped to norm %g", o.clip)
	}
	var lrList []string
	for _, name := range opts {
		lrList = append(lrList, fmt.Sprintf("%s %g (%s)", name, chosen[name], source[name]))
	}
	rep := compare.Report{
		Title:   fmt.Sprintf("Optimizer comparison: %s on %s", o.model, o.data),
		Command: strings.TrimSpace("go run ./benchmarks/cmd/compare " + strings.Join(args, " ")),
		Settings: [][2]string{
			{"model", modelDesc},
			{"data", fmt.Sprintf("%s: %d train / %d test examples%s, normalize=%v", trainDS.Name, trainDS.Len(), testDS.Len(), evalNote, base.Normalize)},
			{"budget", fmt.Sprintf("%s per run, batch %d; evaluation %s", budget, o.batch, eval)},
			{"schedule", schedDesc},
			{"seeds", fmt.Sprintf("%d (1..%d)", o.seeds, o.seeds)},
			{"learning rates", strings.Join(lrList, "; ")},
			{"other hyperparameters", hyperDesc(hyper)},
			{"machine", fmt.Sprintf("GOMAXPROCS=%d, BLAS %s, %s", runtime.GOMAXPROCS(0), nn.BLASBackend, runtime.Version())},
			{"training time", fmt.Sprintf("%.1f s summed over the %d comparison runs (evaluation excluded)", trainS, len(results))},
		},
		Target:    target,
		Notes:     notes,
		Sharpness: compare.SummarizeSharpness(results),
		Reference: ref,
		ByLoss:    o.selectBy == "loss",
	}
	for _, s := range sums {
		if s.Optimizer == ref && s.Reached > 0 {
			rep.RefSteps = s.StepsToTarget.Mean
		}
	}
	if o.targetLossOf != "" {
		rep.RefSteps = float64(maxSteps) // the reference reaches its own final loss at the end of its budget
	}
	if err := writeOutputs(o.out, rep, sums, sweepEntries, chosen, results); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s (this invocation: %s)\n", filepath.Join(o.out, "results.md"), time.Since(start).Round(time.Second))
	return nil
}

func writeOutputs(dir string, rep compare.Report, sums []compare.Summary, sweep []compare.SweepEntry, chosen map[string]float64, results []*compare.RunResult) error {
	if err := compare.WriteFileAtomic(filepath.Join(dir, "results.md"), func(w io.Writer) error {
		return compare.RenderMarkdown(w, rep, sums, sweep, chosen)
	}); err != nil {
		return err
	}
	if err := compare.WriteFileAtomic(filepath.Join(dir, "summary.csv"), func(w io.Writer) error {
		return compare.WriteSummaryCSV(w, sums, rep.Target)
	}); err != nil {
		return err
	}
	if err := compare.WriteFileAtomic(filepath.Join(dir, "curves.csv"), func(w io.Writer) error {
		return compare.WriteCurvesCSV(w, results)
	}); err != nil {
		return err
	}
	if len(rep.Sharpness) > 0 {
		if err := compare.WriteFileAtomic(filepath.Join(dir, "sharpness.csv"), func(w io.Writer) error {
			return compare.WriteSharpnessCSV(w, results)
		}); err != nil {
			return err
		}
		if err := compare.WriteSharpnessPlots(dir, rep.Title, results); err != nil {
			return err
		}
	}
	return compare.WritePlots(dir, rep.Title, results)
}

// hyperDesc describes the -hyper overrides.
func hyperDesc(h map[string]train.Hyper) string {
	if len(h) == 0 {
		return "documented defaults (train.OptimizerHelp)"
	}
	b, _ := json.Marshal(h) // sorted keys
	return "documented defaults (train.OptimizerHelp) except " + string(b)
}

// roundSig rounds x to 4 significant digits, so that swept rates print and
// key cleanly (0.30000000000000004 → 0.3).
func roundSig(x float64) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(x, 'g', 4, 64), 64)
	return v
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}
