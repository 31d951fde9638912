package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/curvopt/curvopt/benchmarks/compare"
)

// parseExtraBudgets reads -extra-budgets, "opt=f|f,opt=f": per optimizer,
// multiples of -steps at which its chosen configuration is also trained
// (each a run of its own with its own schedule), e.g. "adamw=1.5|2".
func parseExtraBudgets(s string, opts []string, steps int) (map[string][]int, error) {
	out := map[string][]int{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	if steps <= 0 {
		return nil, fmt.Errorf("-extra-budgets %q needs a budget in -steps", s)
	}
	for _, part := range strings.Split(s, ",") {
		name, fs, ok := strings.Cut(strings.TrimSpace(part), "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" || fs == "" {
			return nil, fmt.Errorf("-extra-budgets %q: %q: want optimizer=factor|factor", s, part)
		}
		if !contains(opts, name) {
			return nil, fmt.Errorf("-extra-budgets names %q, which is not among the optimizers compared", name)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("-extra-budgets: %s given twice", name)
		}
		for _, f := range strings.Split(fs, "|") {
			x, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
			n := int(math.Round(x * float64(steps)))
			if err != nil || !(x > 0) || n == steps || n < 1 {
				return nil, fmt.Errorf("-extra-budgets %s: factor %q: want a number > 0 other than 1", name, f)
			}
			out[name] = append(out[name], n)
		}
	}
	return out, nil
}

// planRow is one optimizer's share of a comparison's plan.
type planRow struct {
	name               string
	stepMS             float64
	sweepRuns, widened int // sweep runs, and the most widening can add
	sweepSteps         int
	finalSteps         []int // the budget of each comparison run
}

// seconds returns the row's training time at its measured step time, with
// and without the widening rounds.
func (r planRow) seconds() (base, most float64) {
	steps := float64(r.sweepRuns * r.sweepSteps)
	for _, s := range r.finalSteps {
		steps += float64(s)
	}
	base = steps * r.stepMS / 1e3
	return base, base + float64(r.widened*r.sweepSteps)*r.stepMS/1e3
}

// estimatePlan trains each optimizer for n steps (seed 1, its centre rate
// and first knob setting, in a temporary directory), takes the median step
// time of steps 2..n, and prints the plan: per optimizer the sweep and
// comparison runs and their training time at that step time, and the
// total. Evaluation and sharpness tracking are not included (say so).
func estimatePlan(ctx context.Context, w io.Writer, tr *compare.TrainRunner, rows []planRow, n int, lrs map[string]float64, knobs map[string][]string) error {
	dir, err := os.MkdirTemp("", "compare-estimate-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	short := *tr // the step time does not depend on the schedule: no warm-up longer than the n steps
	short.Base.Schedule.Warmup, short.Base.Schedule.Total = 0, 0
	tr = &short
	for i := range rows {
		r := &rows[i]
		spec := compare.RunSpec{Phase: compare.PhaseFinal, Optimizer: r.name, LR: lrs[r.name], Seed: 1, Steps: n}
		if k := knobs[r.name]; len(k) > 0 {
			spec.Knobs = k[0]
		}
		work, err := os.MkdirTemp(dir, r.name)
		if err != nil {
			return err
		}
		res, err := tr.Run(ctx, spec, work)
		if err != nil {
			return fmt.Errorf("estimate: %s: %w", r.name, err)
		}
		if res.Diverged || len(res.StepLog) == 0 {
			return fmt.Errorf("estimate: %s's %d-step run stopped early (%s)", r.name, n, res.Error)
		}
		r.stepMS = medianStepMS(res.StepLog)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "optimizer\tms/step\tsweep runs (+ widening)\tcomparison runs\ttraining time")
	var total, most float64
	for _, r := range rows {
		base, m := r.seconds()
		total, most = total+base, most+m
		fmt.Fprintf(tw, "%s\t%.1f\t%d × %d steps (+%d)\t%d (%s steps)\t%s (up to %s)\n", r.name, r.stepMS, r.sweepRuns, r.sweepSteps, r.widened,
			len(r.finalSteps), budgets(r.finalSteps), dur(base), dur(m))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "estimated training time: %s (up to %s if every widening round runs), on this process's GOMAXPROCS, from a %d-step run per optimizer; evaluation and sharpness tracking not included\n",
		dur(total), dur(most), n)
	return nil
}

// medianStepMS returns the median step time of log without its first step
// (which pays for the graph's warm-up), or of the first when it is alone.
func medianStepMS(log []compare.StepPoint) float64 {
	var ms []float64
	for i, p := range log {
		if i > 0 || len(log) == 1 {
			ms = append(ms, p.StepMS)
		}
	}
	sort.Float64s(ms)
	if n := len(ms); n%2 == 1 {
		return ms[n/2]
	} else {
		return (ms[n/2-1] + ms[n/2]) / 2
	}
}

// budgets formats the comparison runs' budgets, e.g. "5×2000, 5×3000".
func budgets(steps []int) string {
	count := map[int]int{}
	var order []int
	for _, s := range steps {
		if count[s] == 0 {
			order = append(order, s)
		}
		count[s]++
	}
	var parts []string
	for _, s := range order {
		parts = append(parts, fmt.Sprintf("%d×%d", count[s], s))
	}
	return strings.Join(parts, ", ")
}

// dur formats seconds as a duration rounded to the minute (to the second
// under a minute).
func dur(s float64) string {
	d := time.Duration(s * float64(time.Second))
	if d < time.Minute {
		return d.Round(time.Second).String()
	}
	return d.Round(time.Minute).String()
}

// estimate builds the plan of run (the sweep grid before widening, the
// comparison runs with their extra budgets) and prints it with its
// estimated training time (estimatePlan), training nothing else.
func estimate(ctx context.Context, w io.Writer, o *options, tr *compare.TrainRunner, opts []string, source map[string]string, chosen, sweepBase map[string]float64,
	factors []float64, knobGrid map[string][]string, knobsOf func(string) []string, extra map[string][]int) error {
	budget := func(ds interface{ Len() int }) int {
		if o.steps > 0 {
			return o.steps
		}
		return max(1, o.epochs) * (ds.Len() / o.batch)
	}
	lrs := map[string]float64{}
	var rows []planRow
	for _, name := range opts {
		r := planRow{name: name}
		lrs[name] = chosen[name]
		if o.sweep && source[name] == "default" {
			r.sweepRuns = len(factors) * len(knobsOf(name)) * o.sweepSeeds
			r.widened = o.sweepWiden * o.sweepSeeds
			r.sweepSteps = budget(tr.SweepTrain)
			if lr, ok := sweepBase[name]; ok {
				lrs[name] = lr
			}
		}
		for s := 0; s < o.seeds; s++ {
			r.finalSteps = append(r.finalSteps, budget(tr.Train))
		}
		for _, n := range extra[name] {
			for s := 0; s < o.seeds; s++ {
				r.finalSteps = append(r.finalSteps, n)
			}
		}
		rows = append(rows, r)
	}
	fmt.Fprintf(w, "plan of %s (-estimate %d: nothing is stored):\n", o.out, o.estimateSteps)
	return estimatePlan(ctx, w, tr, rows, o.estimateSteps, lrs, knobGrid)
}
