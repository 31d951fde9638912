package compare

import (
	"math"
	"sort"

	"gonum.org/v1/gonum/stat/distuv"
)

// Paired is one optimizer compared with the reference seed by seed: the
// runs of one seed share the initial weights and the data order, so the
// per-seed differences d_s = x_s − ref_s remove what the seed alone
// explains, and a paired test on them has more power than Welch's test on
// two unpaired samples.
type Paired struct {
	Optimizer, Reference string
	// Label is the compared configuration's (RunSpec.Label).
	Label string
	// N is the number of seeds both have (a diverged seed is left out of
	// a loss comparison; its final accuracy counts in an accuracy one).
	N int
	// MeanDiff is the mean of d over the N seeds.
	MeanDiff float64
	// TP is the two-sided paired t test's p-value (TOK false: no test,
	// fewer than 2 pairs or no spread); WP the exact two-sided Wilcoxon
	// signed-rank p-value (WOK false: no non-zero difference). With n
	// pairs the smallest possible WP is 2/2ⁿ: 0.0625 at 5 seeds.
	TP, WP   float64
	TOK, WOK bool
	// Holm is TP adjusted by Holm's step-down method over all the
	// comparisons of the study (NaN without a test).
	Holm float64
}

// PairedT returns the two-sided p-value of the paired t test of mean(d) = 0
// (t = mean/(sd/√n), n − 1 degrees of freedom); ok is false with fewer
// than two differences or when they do not vary.
func PairedT(d []float64) (p float64, ok bool) {
	s := MeanStd(d)
	if s.N < 2 || s.Std == 0 {
		return math.NaN(), false
	}
	t := s.Mean / (s.Std / math.Sqrt(float64(s.N)))
	st := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: float64(s.N - 1)}
	return 2 * st.CDF(-math.Abs(t)), true
}

// maxExactWilcoxon bounds the number of non-zero differences for which
// Wilcoxon enumerates all 2ⁿ sign patterns; above it the normal
// approximation (with the tie correction) is used.
const maxExactWilcoxon = 20

// Wilcoxon returns the two-sided p-value of the Wilcoxon signed-rank test
// of d's median = 0: zero differences dropped, tied |d| given their mean
// rank, W⁺ the sum of the positive differences' ranks, and p the share of
// the 2ⁿ equally likely sign patterns whose W⁺ lies at least as far from
// n(n+1)/4 as the observed one (exact for n ≤ 20, else the normal
// approximation). ok is false when no difference is non-zero.
func Wilcoxon(d []float64) (p float64, ok bool) {
	var nz []float64
	for _, x := range d {
		if x != 0 && !math.IsNaN(x) {
			nz = append(nz, x)
		}
	}
	n := len(nz)
	if n == 0 {
		return math.NaN(), false
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return math.Abs(nz[idx[a]]) < math.Abs(nz[idx[b]]) })
	rank := make([]float64, n)
	ties := 0.0 // Σ(t³ − t) over groups of tied |d|
	for i := 0; i < n; {
		j := i
		for j+1 < n && math.Abs(nz[idx[j+1]]) == math.Abs(nz[idx[i]]) {
			j++
		}
		r := float64(i+j)/2 + 1
		for k := i; k <= j; k++ {
			rank[idx[k]] = r
		}
		t := float64(j - i + 1)
		ties += t*t*t - t
		i = j + 1
	}
	wPlus := 0.0
	for i, x := range nz {
		if x > 0 {
			wPlus += rank[i]
		}
	}
	mid := float64(n*(n+1)) / 4
	dev := math.Abs(wPlus-mid) - 1e-9 // a pattern as extreme as the observed one counts
	if n > maxExactWilcoxon {
		sd := math.Sqrt(float64(n*(n+1)*(2*n+1))/24 - ties/48)
		z := math.Max(0, math.Abs(wPlus-mid)-0.5) / sd // continuity correction
		return math.Min(1, 2*distuv.UnitNormal.CDF(-z)), true
	}
	count := 0
	for mask := 0; mask < 1<<n; mask++ {
		w := 0.0
		for i := 0; i < n; i++ {
			if mask&(1<<i) != 0 {
				w += rank[i]
			}
		}
		if math.Abs(w-mid) >= dev {
			count++
		}
	}
	return float64(count) / float64(int(1)<<n), true
}

// Holm returns p adjusted by Holm's step-down method for the family of all
// len(p) tests: sorted ascending, the i-th smallest (from 0) is multiplied
// by (m − i), made monotone and capped at 1. NaN entries (no test) stay
// NaN and do not count in m.
func Holm(p []float64) []float64 {
	out := make([]float64, len(p))
	var idx []int
	for i, v := range p {
		out[i] = math.NaN()
		if !math.IsNaN(v) {
			idx = append(idx, i)
		}
	}
	sort.SliceStable(idx, func(a, b int) bool { return p[idx[a]] < p[idx[b]] })
	m, run := len(idx), 0.0
	for i, k := range idx {
		run = math.Max(run, math.Min(1, float64(m-i)*p[k]))
		out[k] = run
	}
	return out
}

// seedMetric returns, per seed, r's final test accuracy (byLoss false; a
// diverged run's counts) or final test loss (byLoss; diverged runs left
// out).
func seedMetric(rs []*RunResult, byLoss bool) map[uint64]float64 {
	m := map[uint64]float64{}
	for _, r := range rs {
		if !byLoss {
			m[r.Spec.Seed] = r.FinalTestAcc
			continue
		}
		if n := len(r.Evals); n > 0 && !r.Diverged {
			m[r.Spec.Seed] = r.Evals[n-1].TestLoss
		}
	}
	return m
}

// ComparePaired compares every (optimizer, knobs, lr, budget) group of
// results other than ref's with ref's (an extra budget of ref itself
// included), seed by seed, on the final test accuracy (or, with
// byLoss, the final test loss), and Holm-adjusts the paired t p-values over
// all these comparisons. Groups are in order of first appearance; ref's
// group is the first with that optimizer. Nil when ref has no runs.
func ComparePaired(results []*RunResult, ref string, byLoss bool) []Paired {
	keys, groups := group(results)
	var refRuns []*RunResult
	var refKey groupKey
	for _, k := range keys {
		if k.opt == ref {
			refRuns, refKey = groups[k], k
			break
		}
	}
	if refRuns == nil {
		return nil
	}
	base := seedMetric(refRuns, byLoss)
	var out []Paired
	for _, k := range keys {
		if k == refKey {
			continue
		}
		x := seedMetric(groups[k], byLoss)
		var seeds []uint64
		for s := range x {
			if _, ok := base[s]; ok {
				seeds = append(seeds, s)
			}
		}
		sort.Slice(seeds, func(i, j int) bool { return seeds[i] < seeds[j] })
		d := make([]float64, len(seeds))
		for i, s := range seeds {
			d[i] = x[s] - base[s]
		}
		p := Paired{Optimizer: k.opt, Reference: ref, Label: groups[k][0].Spec.Label(), N: len(d), MeanDiff: MeanStd(d).Mean}
		p.TP, p.TOK = PairedT(d)
		p.WP, p.WOK = Wilcoxon(d)
		out = append(out, p)
	}
	ps := make([]float64, len(out))
	for i, p := range out {
		ps[i] = p.TP
	}
	for i, h := range Holm(ps) {
		out[i].Holm = h
	}
	return out
}
