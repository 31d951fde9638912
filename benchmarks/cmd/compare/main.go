// Command compare runs the convergence comparison of curvopt's optimizers:
// each chosen optimizer trained with train.Run on the same model, data and
// budget over several seeds, and writes to -out
//
//	results.md     the table: final and best test accuracy and final test
//	               loss (mean ± std), steps and training time to -target
//	               (or to -target-loss-of's final loss), ms/step, state
//	               bytes, the sweep table with the chosen learning rates,
//	               the sharpness table when it was tracked, and with
//	               -sharpness-precond the section "Curvature and the
//	               chosen rate" (the swept rate against the bound c/λ(P⁻¹H))
//	summary.csv    the table as CSV
//	chosen.csv     per optimizer the rate and knobs used (-lrs and -hyper
//	               syntax), for a later run to reuse
//	curves.csv     every curve point (long format)
//	sharpness.csv  every sharpness measurement (-sharpness-every), with
//	               precond_top, stability_limit and lr_bound
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
// ones; a run interrupted (Ctrl-C or SIGTERM: the run stops after its
// current step and saves a checkpoint, exit status 130 or 143) resumes from
// its checkpoint under -work.
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
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/curvopt/curvopt/benchmarks/compare"
	"github.com/curvopt/curvopt/data"
	"github.com/curvopt/curvopt/internal/fileio"
	"github.com/curvopt/curvopt/internal/sigctx"
	"github.com/curvopt/curvopt/nn"
	"github.com/curvopt/curvopt/train"
	"gorgonia.org/tensor"
)

func main() {
	// First of all: from here on SIGINT and SIGTERM stop the comparison
	// cleanly, the current run saving a checkpoint.
	sig := sigctx.Notify()
	code := status(sig, run(sig.Context(), os.Args[1:], os.Stdout, os.Stderr), os.Stderr)
	sig.Stop()
	os.Exit(code)
}

// helpHint ends every usage error, in place of the whole usage.
const helpHint = "run 'compare -h' for the flags"

// status reports err, the outcome of run, on stderr and returns the exit
// status: 0 done (or -h), 2 a usage error (one line, then how to get help),
// 128 + the signal's number when stopped by SIGINT or SIGTERM, 1 otherwise.
func status(sig *sigctx.Listener, err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintln(stderr, "compare:", err)
	if s := sig.Received(); s != nil && errors.Is(err, context.Canceled) {
		fmt.Fprintf(stderr, "compare: stopped by %s; rerun the same command to continue (finished runs are kept, the current one resumes from its checkpoint)\n", sigctx.Name(s))
		return sigctx.ExitStatus(s)
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintln(stderr, helpHint)
		return 2
	}
	return 1
}

// usageError marks an error in the flags or arguments.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// badUsage marks err, if any, as a usage error.
func badUsage(err error) error {
	if err == nil {
		return nil
	}
	return usageError{err}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	start := time.Now()
	o, err := parse(args, stderr)
	if err != nil {
		return err
	}
	lrs, err := parseLRs(o.lrs)
	if err != nil {
		return badUsage(err)
	}
	factors, err := parseFloats(o.sweepFactors)
	if err != nil {
		return badUsage(fmt.Errorf("-sweep-factors: %w", err))
	}
	sweepBase, err := parseLRs(o.sweepBase)
	if err != nil {
		return badUsage(fmt.Errorf("-sweep-base: %w", err))
	}
	dt := tensor.Float32
	switch o.dtype {
	case "float32":
	case "float64":
		dt = tensor.Float64
	default:
		return badUsage(fmt.Errorf("-dtype %q: want float32 or float64", o.dtype))
	}

	// Optimizers: an unavailable one is skipped (and noted) when the list
	// is the default, an error when it was asked for.
	var opts, notes []string
	explicit := o.optimizers != strings.Join(train.Optimizers(), ",")
	for _, name := range strings.Split(o.optimizers, ",") {
		name = strings.TrimSpace(name)
		if _, err := train.NewOptimizer(name, nil, o.batch, 1); err != nil {
			if explicit {
				return badUsage(fmt.Errorf("-optimizers: %w", err))
			}
			fmt.Fprintf(stderr, "compare: skipping %s: %v\n", name, err)
			notes = append(notes, fmt.Sprintf("%s skipped: %v", name, err))
			continue
		}
		opts = append(opts, name)
	}
	for k := range lrs {
		if !contains(opts, k) {
			return badUsage(fmt.Errorf("-lrs names %q, which is not among the optimizers compared", k))
		}
	}
	only := map[string]bool{}
	for _, name := range strings.Split(o.only, ",") {
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		if !contains(opts, name) {
			return badUsage(fmt.Errorf("-only names %q, which is not among the optimizers compared", name))
		}
		only[name] = true
	}
	if len(only) > 0 && o.removeOrphans {
		return badUsage(errors.New("-only trains part of the plan: -remove-orphans needs the whole plan (run it without -only)"))
	}
	trains := func(name string) bool { return len(only) == 0 || only[name] }
	if len(opts) == 0 {
		return badUsage(errors.New("no optimizer to compare"))
	}
	for flag, name := range map[string]string{"-reference": o.reference, "-target-loss-of": o.targetLossOf} {
		if name != "" && !contains(opts, name) {
			return badUsage(fmt.Errorf("%s %q is not among the optimizers compared", flag, name))
		}
	}

	spec, err := data.ParseSpec(o.data)
	if err != nil {
		return badUsage(fmt.Errorf("-data: %w", err))
	}
	fmt.Fprintf(stdout, "loading %s ...\n", o.data)
	trainDS, testDS, err := data.LoadSpec(spec)
	if err != nil {
		return fmt.Errorf("-data: %w", err)
	}
	text := spec.Kind == data.KindText
	model, modelFP, err := buildModel(o.model, o.hidden, trainDS, text)
	if err != nil {
		return badUsage(err)
	}
	sched, err := train.ParseSchedule(o.schedule)
	if err != nil {
		return badUsage(fmt.Errorf("-schedule: %w", err))
	}
	sched.Warmup, sched.MinFactor = o.warmup, o.cosineMin
	if o.cosineMin > 0 && sched.Kind != "cosine" {
		return badUsage(fmt.Errorf("-cosine-min is for -schedule cosine, not %q", o.schedule))
	}
	hyper, err := parseHyper(o.hyper)
	if err != nil {
		return badUsage(err)
	}
	for name, h := range hyper {
		if !contains(opts, name) {
			return badUsage(fmt.Errorf("-hyper names %q, which is not among the optimizers compared", name))
		}
		if err := train.ValidateHyper(name, h, o.batch); err != nil {
			return badUsage(fmt.Errorf("-hyper %s: %w", name, err))
		}
	}
	knobGrid, err := parseKnobGrids(o.sweepKnobs, opts, hyper, o.batch)
	if err != nil {
		return badUsage(err)
	}
	for name := range knobGrid {
		if _, fixed := lrs[name]; fixed || !o.sweep {
			return badUsage(fmt.Errorf("-sweep-knobs %s: its knobs are swept only in a sweep (-sweep) of an optimizer whose rate -lrs does not fix", name))
		}
	}
	extra, err := parseExtraBudgets(o.extraBudgets, opts, o.steps)
	if err != nil {
		return badUsage(err)
	}
	knobsOf := func(name string) []string {
		if k := knobGrid[name]; len(k) > 0 {
			return k
		}
		return []string{""}
	}
	base := train.Config{
		Model: model, Data: spec, Steps: o.steps, Epochs: o.epochs, BatchSize: o.batch, Dtype: dt,
		Normalize: o.normalize && !text, CheckpointEvery: o.checkpointEvery, EvalBatch: o.evalBatch,
		Schedule: sched, ClipNorm: o.clip,
	}
	if err := base.Validate(); err != nil {
		return badUsage(err)
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
	code := o.codeVersion
	if code == "" {
		if code, err = codeVersion("."); err != nil {
			return err
		}
	}
	fp := map[string]any{
		"model": modelFP, "data": o.data, "train": trainDS.Len(), "test": testDS.Len(), "steps": o.steps,
		"epochs": o.epochs, "batch": o.batch, "dtype": o.dtype, "normalize": base.Normalize,
		"eval_every": o.evalEvery, "val_frac": o.valFrac, "schedule": sched, "clip": o.clip,
		"hyper": hyper, "eval_max": o.evalMax, "code": code,
	}
	if code == codeAny {
		delete(fp, "code") // the fingerprint of a version that recorded none: old stored runs are reused
	}
	fpBytes, err := json.Marshal(fp)
	if err != nil {
		return err
	}
	runner := &compare.Runner{
		Dir: filepath.Join(o.out, "runs"), WorkDir: o.work, KeepWork: o.keepWork,
		Fingerprint: string(fpBytes), Upgrade: upgradeFingerprint, Train: tr.Run, Progress: stdout,
	}
	if !o.resume && o.estimateSteps == 0 {
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
	if o.estimateSteps > 0 {
		return estimate(ctx, stdout, o, tr, opts, source, chosen, sweepBase, factors, knobGrid, knobsOf, extra)
	}
	var sweepEntries []compare.SweepEntry
	chosenKnobs := map[string]string{}
	var used []compare.RunSpec // every run of this plan, for the orphan check
	if o.sweep {
		var specs []compare.RunSpec
		add := func(name string, lr float64, knobs []string) {
			for _, k := range knobs {
				for s := 1; s <= o.sweepSeeds; s++ {
					specs = append(specs, compare.RunSpec{Phase: compare.PhaseSweep, Optimizer: name, Knobs: k, LR: lr, Seed: uint64(s)})
				}
			}
		}

		for _, name := range opts {
			if source[name] != "default" || !trains(name) {
				continue
			}
			center := train.BaseLR(name, nil)
			if lr, ok := sweepBase[name]; ok {
				center = lr
			}
			for _, f := range factors {
				add(name, roundSig(center*f), knobsOf(name))
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
			used = specs
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
					add(name, roundSig(lr), []string{compare.ChosenKnobs(sweepEntries)[name]})
				}
			}
		}
		for name, lr := range best {
			chosen[name], source[name] = lr, "sweep"
		}
		chosenKnobs = compare.ChosenKnobs(sweepEntries)
		notes = append(notes, compare.KnobEdges(sweepEntries)...)
		counts, equal := compare.SweepCounts(sweepEntries)
		what := "the same number for every optimizer"
		if !equal {
			what = "not the same for every optimizer (widening adds runs where a chosen rate lay at an edge)"
		}
		notes = append(notes, fmt.Sprintf("sweep runs per optimizer: %s; %s", strings.Join(counts, ", "), what))
	}
	var specs []compare.RunSpec
	for _, name := range opts {
		if !trains(name) {
			continue
		}
		for s := 1; s <= o.seeds; s++ {
			sp := compare.RunSpec{Phase: compare.PhaseFinal, Optimizer: name, Knobs: chosenKnobs[name], LR: chosen[name], Seed: uint64(s)}
			if s <= o.sharpSeeds {
				sp.SharpnessEvery = o.sharpEvery
				sp.SharpnessPrecond = o.sharpPrecond && o.sharpEvery > 0
			}
			specs = append(specs, sp)
		}
	}
	for _, name := range opts { // extra budgets after the comparison's own, so each optimizer's first group is at -steps
		if !trains(name) {
			continue
		}
		for _, n := range extra[name] {
			for s := 1; s <= o.seeds; s++ {
				specs = append(specs, compare.RunSpec{Phase: compare.PhaseFinal, Optimizer: name, Knobs: chosenKnobs[name], LR: chosen[name], Seed: uint64(s), Steps: n})
			}
		}
	}
	fmt.Fprintf(stdout, "comparison: %d runs (%s, %s, %d train / %d test images)\n", len(specs), o.model, trainDS.Name, trainDS.Len(), testDS.Len())
	results, err := runner.RunAll(ctx, specs)
	if err != nil {
		return err
	}
	if len(only) > 0 {
		fmt.Fprintf(stdout, "-only %s: their runs are stored; run without -only to write the tables\n", o.only)
		return nil
	}
	if notes, err = orphanNotes(runner, append(used, specs...), o.removeOrphans, stdout, notes); err != nil {
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
	budgetSteps := o.steps // the comparison's own budget, not an extra one
	for _, r := range results {
		if !r.Diverged && o.steps == 0 {
			budgetSteps = max(budgetSteps, r.Steps)
		}
	}
	target.MaxGap = max(1, budgetSteps/50) // interpolate the time to the target only across ≤ 2% of the budget
	if o.evalEvery == 0 || o.evalEvery > target.MaxGap {
		notes = append(notes, fmt.Sprintf("evaluations are more than 2%% of the budget apart (-eval-every %d, budget %d steps): the time to the target is taken at the first evaluation that meets it, not interpolated; set -eval-every ≤ %d", o.evalEvery, budgetSteps, target.MaxGap))
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
	modelDesc := fmt.Sprintf("%s (%d-node graph), %s", o.model, len(model.Nodes), o.dtype)
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
	edges := stabilityEdges(opts, hyper, chosenKnobs, o.batch)
	var lrList []string
	for _, name := range opts {
		k := ""
		if chosenKnobs[name] != "" {
			k = ", " + chosenKnobs[name]
		}
		lrList = append(lrList, fmt.Sprintf("%s %g (%s%s)", name, chosen[name], source[name], k))
	}
	rep := compare.Report{
		Title:   fmt.Sprintf("Optimizer comparison: %s on %s%s", o.model, o.data, rhoTitle(opts, hyper, chosenKnobs, o.batch)),
		Command: commandLine(args, os.Getenv("GOMAXPROCS")),
		Settings: [][2]string{
			{"model", modelDesc},
			{"data", fmt.Sprintf("%s: %d train / %d test examples%s, normalize=%v", trainDS.Name, trainDS.Len(), testDS.Len(), evalNote, base.Normalize)},
			{"budget", fmt.Sprintf("%s per run, batch %d; evaluation %s", budget, o.batch, eval)},
			{"schedule", schedDesc},
			{"seeds", fmt.Sprintf("%d (1..%d)", o.seeds, o.seeds)},
			{"learning rates", strings.Join(lrList, "; ")},
			{"other hyperparameters", hyperDesc(hyper)},
			{"machine", fmt.Sprintf("GOMAXPROCS=%d, BLAS %s, %s", runtime.GOMAXPROCS(0), nn.BLASBackend, runtime.Version())},
			{"code version", codeNote(code)},
			{"training time", fmt.Sprintf("%.1f s summed over the %d comparison runs (evaluation excluded)", trainS, len(results))},
		},
		Target:    target,
		Notes:     notes,
		Sharpness: compare.SummarizeSharpness(results, edges),
		Curvature: compare.SummarizeCurvature(results),
		Reference: ref,
		ByLoss:    o.targetLossOf != "",
		Paired:    compare.ComparePaired(results, ref, o.targetLossOf != ""),
	}
	for _, s := range sums {
		if s.Optimizer == ref && s.Reached > 0 && s.Reached == s.Runs {
			rep.RefSteps = s.StepsToTarget.Mean
		}
	}
	if o.targetLossOf != "" {
		rep.RefSteps = float64(maxSteps) // the reference reaches its own final loss at the end of its budget
		if o.steps > 0 {
			rep.RefSteps = float64(o.steps) // not an extra budget's
		}
	}
	if err := writeOutputs(o.out, rep, sums, sweepEntries, chosen, results, edges); err != nil {
		return err
	}
	if err := compare.WriteFile(filepath.Join(o.out, "chosen.csv"), func(w io.Writer) error {
		return compare.WriteChosenCSV(w, opts, chosen, chosenKnobs)
	}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s (this invocation: %s)\n", filepath.Join(o.out, "results.md"), time.Since(start).Round(time.Second))
	return nil
}

func writeOutputs(dir string, rep compare.Report, sums []compare.Summary, sweep []compare.SweepEntry, chosen map[string]float64, results []*compare.RunResult, edges compare.Edges) error {
	if err := fileio.RemoveTemps(dir); err != nil { // left by a killed earlier write
		return fmt.Errorf("compare: %w", err)
	}
	if err := compare.WriteFile(filepath.Join(dir, "results.md"), func(w io.Writer) error {
		return compare.RenderMarkdown(w, rep, sums, sweep, chosen)
	}); err != nil {
		return err
	}
	if err := compare.WriteFile(filepath.Join(dir, "summary.csv"), func(w io.Writer) error {
		return compare.WriteSummaryCSV(w, sums, rep.Target)
	}); err != nil {
		return err
	}
	if err := compare.WriteFile(filepath.Join(dir, "curves.csv"), func(w io.Writer) error {
		return compare.WriteCurvesCSV(w, results)
	}); err != nil {
		return err
	}
	if len(rep.Sharpness) > 0 {
		if err := compare.WriteFile(filepath.Join(dir, "sharpness.csv"), func(w io.Writer) error {
			return compare.WriteSharpnessCSV(w, results, edges)
		}); err != nil {
			return err
		}
		if err := compare.WriteSharpnessPlots(dir, rep.Title, results, edges); err != nil {
			return err
		}
	}
	if err := compare.WriteSweepPlot(dir, rep.Title, sweep, chosen); err != nil {
		return err
	}
	return compare.WritePlots(dir, rep.Title, results)
}

// upgradeFingerprint returns a fingerprint stored by an older version with
// its -hyper overrides under their current names (wd → weight_decay, ...,
// as train.Hyper decodes them), written as run writes one; a fingerprint it
// cannot read is returned as it is.
func upgradeFingerprint(stored string) string {
	var fp map[string]json.RawMessage
	if err := json.Unmarshal([]byte(stored), &fp); err != nil || fp["hyper"] == nil {
		return stored
	}
	var h map[string]train.Hyper
	if err := json.Unmarshal(fp["hyper"], &h); err != nil {
		return stored
	}
	b, err := json.Marshal(h)
	if err != nil {
		return stored
	}
	fp["hyper"] = b
	if b, err = json.Marshal(fp); err != nil {
		return stored
	}
	return string(b)
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
