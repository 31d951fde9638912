package compare

import (
	"fmt"
	"math"
	"sort"
)

// Stat is the mean and sample standard deviation (n−1 denominator; 0 for
// fewer than two values) of N values.
type Stat struct {
	Mean, Std float64
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
	if n < 2 {
		return Stat{Mean: mean, N: n}
	}
	var ss float64
	for _, x := range xs {
		ss += (x - mean) * (x - mean)
	}
	return Stat{Mean: mean, Std: math.Sqrt(ss / float64(n-1)), N: n}
}

// Target is what the time-to-target columns measure: the first evaluation
// whose loss is at most Loss when Loss > 0 (a language model's validation
// loss), else whose accuracy is at least Acc.
type Target struct {
	Acc, Loss float64
}

// Reached reports whether evaluation e meets the target.
func (t Target) Reached(e EvalPoint) bool {
	if t.Loss > 0 {
		return e.TestLoss <= t.Loss
	}
	return e.TestAcc >= t.Acc
}

// String describes the target for table headers.
func (t Target) String() string {
	if t.Loss > 0 {
		return fmt.Sprintf("loss ≤ %.4g", t.Loss)
	}
	return fmt.Sprintf("%.4g%%", 100*t.Acc)
}

// TimeToTarget returns the step and the training time (seconds) of the first
// evaluation that meets target, and whether there is one.
func TimeToTarget(evals []EvalPoint, target Target) (step int, wallS float64, ok bool) {
	for _, e := range evals {
		if target.Reached(e) {
			return e.Step, e.WallS, true
		}
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
	LR        float64
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
}

type groupKey struct {
	opt string
	lr  float64
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
		k := groupKey{r.Spec.Optimizer, r.Spec.LR}
		if _, ok := m[k]; !ok {
			keys = append(keys, k)
		}
		m[k] = append(m[k], r)
	}
	return keys, m
}

// Summarize aggregates results by optimizer and learning rate, in order of
// first appearance, with time to the target accuracy.
func Summarize(results []*RunResult, target Target) []Summary {
	keys, groups := group(results)
	out := make([]Summary, 0, len(keys))
	for _, k := range keys {
		rs := groups[k]
		s := Summary{Optimizer: k.opt, LR: k.lr, Runs: len(rs)}
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
				st = append(st, float64(step))
				sw = append(sw, w)
			}
		}
		s.FinalAcc, s.BestAcc, s.StepMS, s.TrainWallS = MeanStd(fin), MeanStd(best), MeanStd(ms), MeanStd(wall)
		s.FinalLoss, s.BestLoss = MeanStd(finL), MeanStd(bestL)
		s.StepsToTarget, s.WallToTarget = MeanStd(st), MeanStd(sw)
		out = append(out, s)
	}
	return out
}

// SweepEntry is one optimizer at one learning rate in a sweep: the final
// validation accuracy and loss over seeds, a diverged seed counting as
// accuracy 0 and loss +Inf.
type SweepEntry struct {
	Optimizer string
	LR        float64
	ValAcc    Stat
	ValLoss   Stat
	Runs      int
	Diverged  int
	// Edge is −1 or +1 when this is the optimizer's chosen rate and it lies
	// at the low or high end of the rates tried, else 0.
	Edge int
}

// score is the sweep criterion: higher is better.
func (e SweepEntry) score(byLoss bool) float64 {
	if byLoss {
		return -e.ValLoss.Mean
	}
	return e.ValAcc.Mean
}

// ChooseLRs aggregates sweep results and picks, per optimizer, the learning
// rate with the highest mean final validation accuracy, or with byLoss the
// lowest mean final validation loss (ties: the smaller rate). Entries are
// sorted by optimizer order of first appearance, then LR; the chosen entry's
// Edge says whether it lies at an end of the rates tried (a sweep whose
// optimum may lie outside its grid: widen it).
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
		return keys[i].lr < keys[j].lr
	})
	best = map[string]float64{}
	bestAcc := map[string]float64{}
	for _, k := range keys {
		e := SweepEntry{Optimizer: k.opt, LR: k.lr}
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
		if a, ok := bestAcc[k.opt]; !ok || e.score(byLoss) > a {
			bestAcc[k.opt], best[k.opt] = e.score(byLoss), k.lr
		}
	}
	lo, hi := map[string]float64{}, map[string]float64{}
	for _, e := range entries {
		if _, ok := lo[e.Optimizer]; !ok {
			lo[e.Optimizer] = e.LR
		}
		hi[e.Optimizer] = e.LR
	}
	for i, e := range entries {
		if best[e.Optimizer] != e.LR || lo[e.Optimizer] == hi[e.Optimizer] {
			continue
		}
		switch e.LR {
		case lo[e.Optimizer]:
			entries[i].Edge = -1
		case hi[e.Optimizer]:
			entries[i].Edge = +1
		}
	}
	return entries, best
}

// Widen returns, for every optimizer whose chosen rate lies at an end of
// its sweep grid, the next rate beyond that end: the end rate times (or
// divided by) the grid's spacing there (the ratio of its two outermost
// rates). An optimizer swept at a single rate is left alone.
func Widen(entries []SweepEntry) map[string]float64 {
	byOpt := map[string][]float64{}
	for _, e := range entries {
		byOpt[e.Optimizer] = append(byOpt[e.Optimizer], e.LR)
	}
	out := map[string]float64{}
	for _, e := range entries {
		lrs := byOpt[e.Optimizer] // sorted ascending
		n := len(lrs)
		switch {
		case e.Edge < 0 && n > 1:
			out[e.Optimizer] = lrs[0] * lrs[0] / lrs[1]
		case e.Edge > 0 && n > 1:
			out[e.Optimizer] = lrs[n-1] * lrs[n-1] / lrs[n-2]
		}
	}
	return out
}
