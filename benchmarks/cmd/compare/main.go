// Command compare runs the convergence comparison of curvopt's optimizers:
// each chosen optimizer trained with train.Run on the same model, data and
// budget over several seeds, and writes to -out
//
//	results.md     the table: final and best test accuracy (mean ± std),
//	               steps and training time to -target, ms/step, state bytes,
//	               and the sweep table with the chosen learning rates
//	summary.csv    the table as CSV
//	curves.csv     every curve point (long format)
//	{loss,acc}_vs_{steps,wall}.{png,svg}
//	runs/          one JSON per finished run, reused by a rerun
//
// Every optimizer uses its documented defaults unless -lrs overrides its
// learning rate or -sweep chooses it: the sweep trains each optimizer at
// default × -sweep-factors on the first (1 − -val-frac) of the training set,
// evaluates on the rest, and uses the rate with the best final validation
// accuracy for the comparison runs on the full training set.
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
	optimizers   string
	model        string
	hidden       string
	data         string
	steps        int
	epochs       int
	evalEvery    int
	batch        int
	seeds        int
	target       float64
	out          string
	work         string
	dtype        string
	normalize    bool
	sweep        bool
	sweepFactors string
	sweepSeeds   int
	valFrac      float64
	lrs          string
	resume       bool
	keepWork     bool
	verbose      bool
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
	fs.StringVar(&o.model, "model", "mlp", "model: mlp or cnn (sized for the data)")
	fs.StringVar(&o.hidden, "hidden", "128", "MLP hidden layer widths, comma-separated")
	fs.StringVar(&o.data, "data", "synthetic", `dataset: "synthetic [train=N] [test=N] [seed=S] [noise=X]", "fashion-mnist [DIR]", "cifar10 DIR", ...`)
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

func modelSpec(model, hidden string, ds *data.Dataset) (nn.Spec, error) {
	switch model {
	case "cnn":
		if ds.H != ds.W {
			return nn.Spec{}, fmt.Errorf("-model cnn needs square images, %s has %dx%d", ds.Name, ds.H, ds.W)
		}
		return nn.CNN(ds.C, ds.H, ds.Classes), nil
	case "mlp":
		var hs []int
		for _, f := range strings.Split(hidden, ",") {
			h, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || h < 1 {
				return nn.Spec{}, fmt.Errorf("-hidden %q: want positive integers separated by commas", hidden)
			}
			hs = append(hs, h)
		}
		return nn.MLP(ds.ImageSize(), hs, ds.Classes), nil
	}
	return nn.Spec{}, fmt.Errorf("-model %q: want mlp or cnn", model)
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

	spec, err := data.ParseSpec(o.data)
	if err != nil {
		return fmt.Errorf("-data: %w", err)
	}
	fmt.Fprintf(stdout, "loading %s ...\n", o.data)
	trainDS, testDS, err := data.LoadSpec(spec)
	if err != nil {
		return fmt.Errorf("-data: %w", err)
	}
	model, err := modelSpec(o.model, o.hidden, trainDS)
	if err != nil {
		return err
	}
	base := train.Config{
		Model: model, Steps: o.steps, Epochs: o.epochs, BatchSize: o.batch, Dtype: dt,
		Normalize: o.normalize, CheckpointEvery: -1, EvalBatch: 500,
	}
	if err := base.Validate(); err != nil {
		return err
	}
	tr := &compare.TrainRunner{Base: base, Train: trainDS, Test: testDS, EvalEvery: o.evalEvery}
	if o.verbose {
		tr.Log = stdout
	}
	if o.sweep {
		if tr.SweepTrain, tr.Val, err = compare.SplitTail(trainDS, o.valFrac); err != nil {
			return err
		}
	}
	fpBytes, err := json.Marshal(map[string]any{
		"model": model, "data": o.data, "train": trainDS.Len(), "test": testDS.Len(), "steps": o.steps,
		"epochs": o.epochs, "batch": o.batch, "dtype": o.dtype, "normalize": o.normalize,
		"eval_every": o.evalEvery, "val_frac": o.valFrac,
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
		for _, name := range opts {
			if source[name] != "default" {
				continue
			}
			for _, f := range factors {
				lr := roundSig(train.BaseLR(name, nil) * f)
				for s := 1; s <= o.sweepSeeds; s++ {
					specs = append(specs, compare.RunSpec{Phase: compare.PhaseSweep, Optimizer: name, LR: lr, Seed: uint64(s)})
				}
			}
		}
		fmt.Fprintf(stdout, "sweep: %d runs on %s (%d images) validated on %s (%d images)\n",
			len(specs), tr.SweepTrain.Name, tr.SweepTrain.Len(), tr.Val.Name, tr.Val.Len())
		res, err := runner.RunAll(ctx, specs)
		if err != nil {
			return err
		}
		var best map[string]float64
		sweepEntries, best = compare.ChooseLRs(res)
		for name, lr := range best {
			chosen[name], source[name] = lr, "sweep"
		}
	}
	var specs []compare.RunSpec
	for _, name := range opts {
		for s := 1; s <= o.seeds; s++ {
			specs = append(specs, compare.RunSpec{Phase: compare.PhaseFinal, Optimizer: name, LR: chosen[name], Seed: uint64(s)})
		}
	}
	fmt.Fprintf(stdout, "comparison: %d runs (%s, %s, %d train / %d test images)\n", len(specs), o.model, trainDS.Name, trainDS.Len(), testDS.Len())
	results, err := runner.RunAll(ctx, specs)
	if err != nil {
		return err
	}

	sums := compare.Summarize(results, o.target)
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
	var lrList []string
	for _, name := range opts {
		lrList = append(lrList, fmt.Sprintf("%s %g (%s)", name, chosen[name], source[name]))
	}
	rep := compare.Report{
		Title:   fmt.Sprintf("Optimizer comparison: %s on %s", o.model, o.data),
		Command: strings.TrimSpace("go run ./benchmarks/cmd/compare " + strings.Join(args, " ")),
		Settings: [][2]string{
			{"model", fmt.Sprintf("%s (%d layers), %s", o.model, len(model.Layers), o.dtype)},
			{"data", fmt.Sprintf("%s: %d train / %d test images, normalize=%v", trainDS.Name, trainDS.Len(), testDS.Len(), o.normalize)},
			{"budget", fmt.Sprintf("%s per run, batch %d; evaluation %s", budget, o.batch, eval)},
			{"seeds", fmt.Sprintf("%d (1..%d)", o.seeds, o.seeds)},
			{"learning rates", strings.Join(lrList, "; ")},
			{"other hyperparameters", "documented defaults (train.OptimizerHelp)"},
			{"machine", fmt.Sprintf("GOMAXPROCS=%d, BLAS %s, %s", runtime.GOMAXPROCS(0), nn.BLASBackend, runtime.Version())},
			{"training time", fmt.Sprintf("%.1f s summed over the %d comparison runs (evaluation excluded)", trainS, len(results))},
		},
		Target: o.target,
		Notes:  notes,
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
	return compare.WritePlots(dir, rep.Title, results)
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
