package compare

import (
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

// TimeToTarget returns the step and the training time (seconds) of the first
// evaluation whose accuracy is at least target, and whether there is one.
func TimeToTarget(evals []EvalPoint, target float64) (step int, wallS float64, ok bool) {
	for _, e := range evals {
		if e.TestAcc >= target {
			return e.Step, e.WallS, true
		}
	}
	return 0, 0, false
}

// Summary aggregates the runs of one optimizer at one learning rate over
// seeds.
type Summary struct {
	Optimizer string
	LR        float64
	// Runs counts the seeds; Diverged those that stopped on NaN/Inf.
	Runs, Diverged int
	// FinalAcc and BestAcc are the final and best test accuracy.
	FinalAcc, BestAcc Stat
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
func Summarize(results []*RunResult, target float64) []Summary {
	keys, groups := group(results)
	out := make([]Summary, 0, len(keys))
	for _, k := range keys {
		rs := groups[k]
		s := Summary{Optimizer: k.opt, LR: k.lr, Runs: len(rs)}
		var fin, best, ms, wall, st, sw []float64
		for _, r := range rs {
			if r.Diverged {
				s.Diverged++
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
		s.StepsToTarget, s.WallToTarget = MeanStd(st), MeanStd(sw)
		out = append(out, s)
	}
	return out
}

// SweepEntry is one optimizer at one learning rate in a sweep: the final
// validation accuracy over seeds, a diverged seed counting as 0.
type SweepEntry struct {
	Optimizer string
	LR        float64
	ValAcc    Stat
	Runs      int
	Diverged  int
}

// ChooseLRs aggregates sweep results and picks, per optimizer, the learning
// rate with the highest mean final validation accuracy (ties: the smaller
// rate). Entries are sorted by optimizer order of first appearance, then LR.
func ChooseLRs(sweep []*RunResult) (entries []SweepEntry, best map[string]float64) {
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
		var accs []float64
		for _, r := range groups[k] {
			e.Runs++
			a := r.FinalTestAcc
			if r.Diverged {
				e.Diverged++
				a = 0
			}
			accs = append(accs, a)
		}
		e.ValAcc = MeanStd(accs)
		entries = append(entries, e)
		if a, ok := bestAcc[k.opt]; !ok || e.ValAcc.Mean > a {
			bestAcc[k.opt], best[k.opt] = e.ValAcc.Mean, k.lr
		}
	}
	return entries, best
}
