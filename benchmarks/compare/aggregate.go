package compare

import (
	"fmt"
	"math"
	"sort"

	"gonum.org/v1/gonum/stat/distuv"
)

// Stat is the mean, sample standard deviation (n−1 denominator; 0 for
// fewer than two values), minimum and maximum of N values.
type Stat struct {
	Mean, Std float64
	Min, Max  float64
	N         int
}

// MeanStd returns the Stat of xs (zero Stat when xs is empty).
func MeanStd(xs []float64) Stat {
	n := len(xs)
	if n == 0 {
		return Stat{}
	}
	var s float64
	for _, x := range xs {
		s += x
	}
	mean := s / float64(n)
	lo, hi := xs[0], xs[0]
	for _, x := range xs {
		lo, hi = math.Min(lo, x), math.Max(hi, x)
	}
	if n < 2 {
		return Stat{Mean: mean, Min: lo, Max: hi, N: n}
	}
	var ss float64
	for _, x := range xs {
		ss += (x - mean) * (x - mean)
	}
	return Stat{Mean: mean, Std: math.Sqrt(ss / float64(n-1)), Min: lo, Max: hi, N: n}
}

// Welch compares the means of two samples with Welch's unequal-variance t
// test: the difference mean(a) − mean(b) and its two-sided p-value. ok is
// false when either sample has fewer than two values or both have zero
// spread (no test is possible). With 3 seeds a side the test has little
// power: a large p says the seeds cannot tell the two apart, not that they
// are equal.
func Welch(a, b []float64) (diff, p float64, ok bool) {
	sa, sb := MeanStd(a), MeanStd(b)
	diff = sa.Mean - sb.Mean
	if sa.N < 2 || sb.N < 2 {
		return diff, math.NaN(), false
	}
	va, vb := sa.Std*sa.Std/float64(sa.N), sb.Std*sb.Std/float64(sb.N)
	if va+vb == 0 {
		return diff, math.NaN(), false
	}
	t := diff / math.Sqrt(va+vb)
	df := (va + vb) * (va + vb) / (va*va/float64(sa.N-1) + vb*vb/float64(sb.N-1))
	st := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: df}
	return diff, 2 * st.CDF(-math.Abs(t)), true
}

// Target is what the time-to-target columns measure: the first evaluation
// whose loss is at most Loss when Loss > 0 (a language model's validation
// loss), else whose accuracy is at least Acc.
type Target struct {
	Acc, Loss float64
	// MaxGap > 0 is the widest gap, in steps, between two evaluations that
	// TimeToTarget interpolates across (the comparison sets 2% of the
	// budget); a crossing between evaluations further apart is taken at
	// the later one, an upper bound, rather than guessed by a straight line.
	MaxGap int
}

// Reached reports whether evaluation e meets the target.
func (t Target) Reached(e EvalPoint) bool {
	v, goal := t.metric(e)
	if t.Loss > 0 {
		return v <= goal
	}
	return v >= goal
}

// metric returns the measured value and the target value.
func (t Target) metric(e EvalPoint) (v, goal float64) {
	if t.Loss > 0 {
		return e.TestLoss, t.Loss
	}
	return e.TestAcc, t.Acc
}

// String describes the target for table headers.
func (t Target) String() string {
	if t.Loss > 0 {
		return fmt.Sprintf("loss ≤ %.4g", t.Loss)
	}
	return fmt.Sprintf("%.4g%%", 100*t.Acc)
}

// TimeToTarget returns when the run first met target: the step and the
// training time (seconds), interpolated linearly between the first
// evaluation that meets it and the one before (which did not), so that the
// answer does not snap to the evaluation interval (when they are at most
// target.MaxGap steps apart; else the later one's step and time); the
// first evaluation's own step and time when that one already meets it. ok is false when no
// evaluation meets the target.
func TimeToTarget(evals []EvalPoint, target Target) (step, wallS float64, ok bool) {
	for i, e := range evals {
		if !target.Reached(e) {
			continue
		}
		if i == 0 {
			return float64(e.Step), e.WallS, true
		}
		prev := evals[i-1]
		if target.MaxGap > 0 && e.Step-prev.Step > target.MaxGap {
			return float64(e.Step), e.WallS, true
		}
		v0, goal := target.metric(prev)
		v1, _ := target.metric(e)
		f := 1.0
		if v1 != v0 {
			f = math.Min(1, math.Max(0, (goal-v0)/(v1-v0)))
		}
		return float64(prev.Step) + f*float64(e.Step-prev.Step), prev.WallS + f*(e.WallS-prev.WallS), true
	}
	return 0, 0, false
}

// FinalLoss returns the mean over finished, non-diverged runs of opt of the
// last evaluation's loss: the reference for a loss target (the Sophia
// paper's "steps to reach AdamW's final validation loss"). ok is false when
// there is no such run.
func FinalLoss(results []*RunResult, opt string) (loss float64, ok bool) {
	var xs []float64
	for _, r := range results {
		if r == nil || r.Spec.Optimizer != opt || r.Diverged || len(r.Evals) == 0 {
			continue
		}
		xs = append(xs, r.Evals[len(r.Evals)-1].TestLoss)
	}
	if len(xs) == 0 {
		return 0, false
	}
	return MeanStd(xs).Mean, true
}

// Summary aggregates the runs of one optimizer at one learning rate over
// seeds.
type Summary struct {
	Optimizer string
	// Knobs are the swept hyperparameters other than lr (RunSpec.Knobs).
	Knobs string
	LR    float64
	// Steps is an extra budget (RunSpec.Steps; 0: the comparison's).
	Steps int
	// Runs counts the seeds; Diverged those that stopped on NaN/Inf.
	Runs, Diverged int
	// FinalAcc and BestAcc are the final and best test accuracy; FinalLoss
	// and BestLoss the final and lowest test loss (diverged runs excluded).
	FinalAcc, BestAcc   Stat
	FinalLoss, BestLoss Stat
	// Reached counts the seeds that reached the target; StepsToTarget and
	// WallToTarget average over those seeds only.
	Reached                     int
	StepsToTarget, WallToTarget Stat
	// StepMS is the mean step time; TrainWallS the total training time.
	StepMS, TrainWallS Stat
	// StateBytes is the optimizer state's size (the largest over seeds).
	StateBytes int64
	// Finals and FinalLosses are the per-seed final test accuracies (all
	// seeds) and losses (non-diverged seeds), for tests between optimizers.
	Finals, FinalLosses []float64
}

type groupKey struct {
	opt   string
	knobs string
	lr    float64
	steps int
}

// group returns the results grouped by (optimizer, lr), groups in order of
// first appearance.
func group(results []*RunResult) ([]groupKey, map[groupKey][]*RunResult) {
	var keys []groupKey
	m := map[groupKey][]*RunResult{}
	for _, r := range results {
		if r == nil {
			continue
		}
		k := groupKey{r.Spec.Optimizer, r.Spec.Knobs, r.Spec.LR, r.Spec.Steps}
		if _, ok := m[k]; !ok {
			keys = append(keys, k)
		}
		m[k] = append(m[k], r)
	}
	return keys, m
}

// Summarize aggregates results by optimizer, knobs, learning rate and
// extra budget, in order of first appearance, with time to the target.
func Summarize(results []*RunResult, target Target) []Summary {
	keys, groups := group(results)
	out := make([]Summary, 0, len(keys))
	for _, k := range keys {
		rs := groups[k]
		s := Summary{Optimizer: k.opt, Knobs: k.knobs, LR: k.lr, Steps: k.steps, Runs: len(rs)}
		var fin, best, ms, wall, st, sw, finL, bestL []float64
		for _, r := range rs {
			if r.Diverged {
				s.Diverged++
			} else if n := len(r.Evals); n > 0 {
				finL = append(finL, r.Evals[n-1].TestLoss)
				lo := math.Inf(1)
				for _, e := range r.Evals {
					lo = math.Min(lo, e.TestLoss)
				}
				bestL = append(bestL, lo)
			}
			fin = append(fin, r.FinalTestAcc)
			best = append(best, r.BestTestAcc)
			ms = append(ms, r.MeanStepMS)
			wall = append(wall, r.TrainWallS)
			s.StateBytes = max(s.StateBytes, r.StateBytes)
			if step, w, ok := TimeToTarget(r.Evals, target); ok {
				s.Reached++
				st = append(st, step)
				sw = append(sw, w)
			}
		}
		s.FinalAcc, s.BestAcc, s.StepMS, s.TrainWallS = MeanStd(fin), MeanStd(best), MeanStd(ms), MeanStd(wall)
		s.FinalLoss, s.BestLoss = MeanStd(finL), MeanStd(bestL)
		s.Finals, s.FinalLosses = fin, finL
		s.StepsToTarget, s.WallToTarget = MeanStd(st), MeanStd(sw)
		out = append(out, s)
	}
	return out
}

// SweepEntry is one optimizer at one knob setting (RunSpec.Knobs; empty
// when only the rate is swept) and one learning rate in a sweep: the final
// validation accuracy and loss over seeds, a diverged seed counting as
// accuracy 0 and loss +Inf.
type SweepEntry struct {
	Optimizer string
	Knobs     string
	LR        float64
	ValAcc    Stat
	ValLoss   Stat
	Runs      int
	Diverged  int
	// Chosen marks the optimizer's chosen configuration.
	Chosen bool
	// Edge is −1 or +1 when this is the chosen entry and its rate lies at
	// the low or high end of the rates tried at its knob setting, else 0.
	Edge int
}

// Label is the entry's optimizer with its knob setting, e.g.
// "sophiag rho=0.05".
func (e SweepEntry) Label() string {
	if e.Knobs == "" {
		return e.Optimizer
	}
	return e.Optimizer + " " + e.Knobs
}

// score is the sweep criterion: higher is better.
func (e SweepEntry) score(byLoss bool) float64 {
	if byLoss {
		return -e.ValLoss.Mean
	}
	return e.ValAcc.Mean
}

// ChooseLRs aggregates sweep results and picks, per optimizer, the
// configuration (knob setting and learning rate) with the highest mean
// final validation accuracy, or with byLoss the lowest mean final
// validation loss (ties: the first in entry order, so the smaller rate),
// returning its rate in best and marking its entry Chosen (ChosenKnobs
// returns its knobs). Entries are sorted by optimizer order of first
// appearance, then knob setting, then LR; the chosen entry's Edge says
// whether its rate lies at an end of the rates tried at its knob setting
// (a sweep whose optimum may lie outside its grid: widen it).
func ChooseLRs(sweep []*RunResult, byLoss bool) (entries []SweepEntry, best map[string]float64) {
	keys, groups := group(sweep)
	order := map[string]int{}
	for _, k := range keys {
		if _, ok := order[k.opt]; !ok {
			order[k.opt] = len(order)
		}
	}
	sort.SliceStable(keys, func(i, j int) bool {
		if keys[i].opt != keys[j].opt {
			return order[keys[i].opt] < order[keys[j].opt]
		}
		if keys[i].knobs != keys[j].knobs {
			return keys[i].knobs < keys[j].knobs
		}
		return keys[i].lr < keys[j].lr
	})
	best = map[string]float64{}
	bestScore := map[string]float64{}
	bestIdx := map[string]int{}
	for _, k := range keys {
		e := SweepEntry{Optimizer: k.opt, Knobs: k.knobs, LR: k.lr}
		var accs, losses []float64
		for _, r := range groups[k] {
			e.Runs++
			a, l := r.FinalTestAcc, math.Inf(1)
			if n := len(r.Evals); n > 0 {
				l = r.Evals[n-1].TestLoss
			}
			if r.Diverged || math.IsNaN(l) {
				e.Diverged++
				a, l = 0, math.Inf(1)
			}
			accs, losses = append(accs, a), append(losses, l)
		}
		e.ValAcc, e.ValLoss = MeanStd(accs), MeanStd(losses)
		entries = append(entries, e)
		if a, ok := bestScore[k.opt]; !ok || e.score(byLoss) > a {
			bestScore[k.opt], best[k.opt], bestIdx[k.opt] = e.score(byLoss), k.lr, len(entries)-1
		}
	}
	for _, i := range bestIdx {
		c := &entries[i]
		c.Chosen = true
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, e := range entries {
			if e.Optimizer == c.Optimizer && e.Knobs == c.Knobs {
				lo, hi = math.Min(lo, e.LR), math.Max(hi, e.LR)
			}
		}
		switch {
		case lo == hi:
		case c.LR == lo:
			c.Edge = -1
		case c.LR == hi:
			c.Edge = +1
		}
	}
	return entries, best
}

// ChosenKnobs returns, per optimizer, the knob setting of its chosen
// entry (ChooseLRs; empty when only the rate was swept).
func ChosenKnobs(entries []SweepEntry) map[string]string {
	out := map[string]string{}
	for _, e := range entries {
		if e.Chosen {
			out[e.Optimizer] = e.Knobs
		}
	}
	return out
}

// Widen returns, for every optimizer whose chosen rate lies at an end of
// the rates tried at its chosen knob setting, the next rate beyond that
// end: the end rate times (or divided by) the grid's spacing there (the
// ratio of its two outermost rates). An optimizer swept at a single rate
// is left alone.
func Widen(entries []SweepEntry) map[string]float64 {
	out := map[string]float64{}
	for _, c := range entries {
		if !c.Chosen || c.Edge == 0 {
			continue
		}
		var lrs []float64 // sorted ascending
		for _, e := range entries {
			if e.Optimizer == c.Optimizer && e.Knobs == c.Knobs {
				lrs = append(lrs, e.LR)
			}
		}
		n := len(lrs)
		switch {
		case c.Edge < 0 && n > 1:
			out[c.Optimizer] = lrs[0] * lrs[0] / lrs[1]
		case c.Edge > 0 && n > 1:
			out[c.Optimizer] = lrs[n-1] * lrs[n-1] / lrs[n-2]
		}
	}
	return out
}

// Label names the summary's configuration as RunSpec.Label does.
func (s Summary) Label() string {
	return RunSpec{Optimizer: s.Optimizer, Knobs: s.Knobs, Steps: s.Steps}.Label()
}
