package compare

import (
	"bytes"
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The reference p-values were computed independently in Python (the t
// density integrated by Simpson's rule; the signed-rank distribution by
// enumerating every sign pattern with itertools): t = 4.2426 on 4 degrees
// of freedom gives p = 0.0132356; n = 5 all positive gives the textbook
// exact 2/32 = 0.0625.
func TestPairedT(t *testing.T) {
	p, ok := PairedT([]float64{1, 2, 3, 4, 5})
	require.True(t, ok)
	assert.InDelta(t, 0.0132356, p, 1e-6)
	p, ok = PairedT([]float64{0.2, 0.1, -0.05, 0.4, 0.3})
	require.True(t, ok)
	assert.InDelta(t, 0.0717714, p, 1e-6)
	_, ok = PairedT([]float64{1})
	assert.False(t, ok, "one pair")
	_, ok = PairedT([]float64{2, 2, 2})
	assert.False(t, ok, "no spread")
}

func TestWilcoxon(t *testing.T) {
	for _, c := range []struct {
		d    []float64
		want float64
	}{
		{[]float64{1, 2, 3, 4, 5}, 0.0625},
		{[]float64{-1, -2, -3, -4, -5}, 0.0625},
		{[]float64{1, -2, 3, 4, 5}, 0.1875},
		{[]float64{1, -2, 2, 4, -5, 6}, 0.625},    // tied |d|: mid-ranks
		{[]float64{0, 1, -2, 2, 4, -5, 6}, 0.625}, // a zero is dropped
	} {
		p, ok := Wilcoxon(c.d)
		require.True(t, ok, "%v", c.d)
		assert.InDelta(t, c.want, p, 1e-12, "%v", c.d)
	}
	_, ok := Wilcoxon([]float64{0, 0})
	assert.False(t, ok)
	// Above the exact limit: the normal approximation, close to the exact
	// one-sided tail 2⁻²¹ ·2 for 21 positive differences.
	d := make([]float64, 21)
	for i := range d {
		d[i] = float64(i + 1)
	}
	p, ok := Wilcoxon(d)
	require.True(t, ok)
	assert.Less(t, p, 1e-3)
}

func TestHolm(t *testing.T) {
	got := Holm([]float64{0.01, 0.04, 0.03, math.NaN()})
	assert.InDelta(t, 0.03, got[0], 1e-15)
	assert.InDelta(t, 0.06, got[1], 1e-15, "monotone: not below the adjusted 0.03")
	assert.InDelta(t, 0.06, got[2], 1e-15)
	assert.True(t, math.IsNaN(got[3]))
	assert.Equal(t, []float64{0.7}, Holm([]float64{0.7}), "one test: unchanged")
	assert.InDelta(t, 1, Holm([]float64{0.6, 0.9})[0], 0, "capped at 1")
}

// TestComparePaired: differences are taken seed by seed (a seed missing
// on either side is left out), on the loss with diverged runs left out,
// and the p-values are Holm-adjusted over the comparisons.
func TestComparePaired(t *testing.T) {
	run := func(opt string, seed uint64, loss float64, diverged bool) *RunResult {
		return &RunResult{Spec: RunSpec{Phase: PhaseFinal, Optimizer: opt, LR: 1, Seed: seed}, Diverged: diverged,
			FinalTestAcc: 1 - loss, Evals: []EvalPoint{{Step: 10, TestLoss: loss}}}
	}
	var rs []*RunResult
	ref := []float64{0.3, 0.6, 0.25, 0.5, 0.1}
	a := []float64{0.5, 0.7, 0.2, 0.9, 0.4}
	for i := range ref {
		rs = append(rs, run("adamw", uint64(i+1), ref[i], false), run("sophiag", uint64(i+1), a[i], false))
		rs = append(rs, run("sgd", uint64(i+1), ref[i]+1, i == 0))
	}
	rs = append(rs, run("sophiag", 9, 5, false)) // no partner
	got := ComparePaired(rs, "adamw", true)
	require.Len(t, got, 2)
	s, g := got[0], got[1]
	assert.Equal(t, "sophiag", s.Optimizer)
	assert.Equal(t, 5, s.N)
	assert.InDelta(t, 0.19, s.MeanDiff, 1e-12)
	assert.InDelta(t, 0.0717714, s.TP, 1e-6)
	assert.InDelta(t, 0.125, s.WP, 1e-12) // d = (0.2, 0.1, −0.05, 0.4, 0.3): W⁺ = 14 of 15, 4 of 32 patterns as extreme
	assert.Equal(t, 4, g.N, "the diverged seed is left out of a loss comparison")
	assert.InDelta(t, 1, g.MeanDiff, 1e-12)
	assert.False(t, g.TOK, "constant differences: no t test")
	assert.True(t, math.IsNaN(g.Holm))
	assert.InDelta(t, s.TP, s.Holm, 1e-15, "one test in the family")

	acc := ComparePaired(rs, "adamw", false)
	assert.Equal(t, 5, acc[1].N, "a diverged run's accuracy counts")
	assert.Nil(t, ComparePaired(rs, "adam", true))
}

// TestTimeToTargetMaxGap: a crossing between evaluations more than MaxGap
// steps apart is taken at the later one, not interpolated.
func TestTimeToTargetMaxGap(t *testing.T) {
	ev := evals(0.1, 0.3, 0.7) // steps 10, 20, 30: 0.5 is crossed halfway from 20 to 30
	step, _, ok := TimeToTarget(ev, Target{Acc: 0.5, MaxGap: 10})
	require.True(t, ok)
	assert.Equal(t, 25.0, step, "gap 10 ≤ MaxGap: interpolated")
	step, wall, ok := TimeToTarget(ev, Target{Acc: 0.5, MaxGap: 9})
	require.True(t, ok)
	assert.Equal(t, 30.0, step, "gap 10 > MaxGap: the later evaluation")
	assert.Equal(t, 3.0, wall)
}

// TestRenderPaired: with Report.Paired the reference column gives the
// paired tests, and an optimizer whose seeds did not all reach the target
// gets no speed-up but the count of those that did.
func TestRenderPaired(t *testing.T) {
	rs := []*RunResult{result("sgd", 0.1, 1, 0.5, 0.8), result("sgd", 0.1, 2, 0.5, 0.9), result("sgd", 0.1, 3, 0.5, 0.85),
		result("adam", 1e-3, 1, 0.7, 0.6), result("adam", 1e-3, 2, 0.7, 0.7), result("adam", 1e-3, 3, 0.3, 0.4)}
	target := Target{Acc: 0.6}
	sums := Summarize(rs, target)
	paired := ComparePaired(rs, "sgd", false)
	var b bytes.Buffer
	require.NoError(t, RenderMarkdown(&b, Report{Target: target, Reference: "sgd", RefSteps: 20, Paired: paired}, sums, nil, nil))
	md := b.String()
	assert.Contains(t, md, "| final acc (pp) − sgd paired by seed (pairs; t p, Holm-adjusted p; Wilcoxon p) | speed-up in steps vs sgd |")
	p := paired[0]
	assert.Equal(t, "adam", p.Optimizer)
	assert.Contains(t, md, fmt.Sprintf("| -28.33 (3; t p = %.2g, Holm %.2g; W p = 0.25) | — (2/3 reached) |", p.TP, p.Holm))
}
