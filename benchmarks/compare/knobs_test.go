package compare

import (
	"image/color"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/curvopt/curvopt/train"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseKnobGrid(t *testing.T) {
	got, err := ParseKnobGrid("weight_decay=0.1|0.2, beta2=0.95|0.99")
	require.NoError(t, err)
	assert.Equal(t, []string{"beta2=0.95,weight_decay=0.1", "beta2=0.99,weight_decay=0.1", "beta2=0.95,weight_decay=0.2", "beta2=0.99,weight_decay=0.2"}, got)
	got, err = ParseKnobGrid("")
	require.NoError(t, err)
	assert.Empty(t, got)
	for _, bad := range []string{"rho", "rho=", "lr=0.1|0.2", "rho=x", "nope=1", "rho=1,rho=2"} {
		_, err := ParseKnobGrid(bad)
		assert.Error(t, err, bad)
	}
	h, err := KnobHyper("ngrads=64,rho=0.05")
	require.NoError(t, err)
	assert.Equal(t, train.Hyper{"ngrads": 64, "rho": 0.05}, h)
	got, err = ParseKnobGrid("weight_decay=5e-4/lr|0")
	require.NoError(t, err)
	assert.Equal(t, []string{"weight_decay=5e-4/lr", "weight_decay=0"}, got)
	_, err = ParseKnobGrid("ngrads=64/lr")
	assert.Error(t, err, "an integer knob per learning rate")
	h, err = KnobHyperAt("weight_decay=5e-4/lr", 0.25)
	require.NoError(t, err)
	assert.InDelta(t, 2e-3, h["weight_decay"], 1e-18, "5e-4/0.25: 5e-4 per step once AdaHessian multiplies by lr")
	_, err = KnobHyperAt("weight_decay=5e-4/lr", 0)
	assert.Error(t, err)
	assert.Equal(t, "sophiag[rho=0.05]-lr0.001-seed1", RunSpec{Optimizer: "sophiag", Knobs: "rho=0.05", LR: 1e-3, Seed: 1}.Key())
	assert.Equal(t, "adahessian[weight_decay=5e-4_per_lr]-lr0.15-steps900-seed2", RunSpec{Optimizer: "adahessian", Knobs: "weight_decay=5e-4/lr", LR: 0.15, Seed: 2, Steps: 900}.Key(), "no '/' in a file name")
	assert.Equal(t, "sophiag-lr0.001-seed1", RunSpec{Optimizer: "sophiag", LR: 1e-3, Seed: 1}.Key(), "keys without knobs are unchanged")
}

// sweepRun is a sweep result of opt at knobs and lr with final validation
// loss loss.
func sweepRun(opt, knobs string, lr, loss float64, seed uint64) *RunResult {
	return &RunResult{Spec: RunSpec{Phase: PhaseSweep, Optimizer: opt, Knobs: knobs, LR: lr, Seed: seed},
		Evals: []EvalPoint{{Step: 10, TestLoss: loss, TestAcc: 1 - loss}}, FinalTestAcc: 1 - loss}
}

// TestChooseKnobs: the best (knobs, lr) wins over every knob setting; its
// edge is judged among the rates of its own knob setting, and Widen
// extends that slice; a chosen knob value at an end of its values is
// noted; sweep counts are compared.
func TestChooseKnobs(t *testing.T) {
	rs := []*RunResult{
		sweepRun("sophiag", "rho=0.01", 1e-3, 2.0, 1), sweepRun("sophiag", "rho=0.01", 3e-3, 1.9, 1), sweepRun("sophiag", "rho=0.01", 1e-2, 1.95, 1),
		sweepRun("sophiag", "rho=0.1", 1e-3, 1.8, 1), sweepRun("sophiag", "rho=0.1", 3e-3, 1.7, 1), sweepRun("sophiag", "rho=0.1", 1e-2, 1.6, 1),
		sweepRun("adamw", "", 1e-3, 1.7, 1), sweepRun("adamw", "", 3e-3, 1.65, 1), sweepRun("adamw", "", 1e-2, 1.9, 1),
	}
	entries, best := ChooseLRs(rs, true)
	assert.Equal(t, map[string]float64{"sophiag": 1e-2, "adamw": 3e-3}, best)
	assert.Equal(t, map[string]string{"sophiag": "rho=0.1", "adamw": ""}, ChosenKnobs(entries))
	var chosen []SweepEntry
	for _, e := range entries {
		if e.Chosen {
			chosen = append(chosen, e)
		}
	}
	require.Len(t, chosen, 2)
	assert.Equal(t, "sophiag rho=0.1", chosen[0].Label())
	assert.Equal(t, +1, chosen[0].Edge, "1e-2 is the highest rate tried at rho=0.1")
	assert.Equal(t, 0, chosen[1].Edge)
	w := Widen(entries)
	require.Contains(t, w, "sophiag")
	assert.InDelta(t, 1e-2*1e-2/3e-3, w["sophiag"], 1e-15)
	assert.NotContains(t, w, "adamw")
	assert.Equal(t, []string{"sophiag: the chosen rho=0.1 is the largest rho swept; its optimum may lie above"}, KnobEdges(entries))
	counts, equal := SweepCounts(entries)
	assert.Equal(t, []string{"sophiag 6", "adamw 3"}, counts)
	assert.False(t, equal)
	_, equal = SweepCounts(entries[:3])
	assert.True(t, equal)
}

func TestMomentumThreshold(t *testing.T) {
	assert.Equal(t, 20.0, Momentum{}.Threshold(0.1), "2/lr")
	assert.InDelta(t, 38, Momentum{Beta: 0.9}.Threshold(0.1), 1e-12, "2(1+β)/lr")
	assert.InDelta(t, 38/2.8, Momentum{Beta: 0.9, Nesterov: true}.Threshold(0.1), 1e-12, "2(1+β)/((1+2β)lr)")
	top := 5.0
	r := &RunResult{Spec: RunSpec{Optimizer: "sgd"}, StepLog: []StepPoint{{Step: 1, LR: 0.1, HessTop: &top}}}
	sums := SummarizeSharpness([]*RunResult{r}, Edges{"sgd": {Beta: 0.9}})
	require.Len(t, sums, 1)
	assert.InDelta(t, 5.0/38, sums[0].MaxRatio, 1e-12, "λ over 2(1+β)/lr")
}

// TestColoursDistinct: every pair of the palette's colours, and so of the
// optimizers', differs clearly (RGB distance ≥ 60 of 441).
func TestColoursDistinct(t *testing.T) {
	var cs []color.Color
	for i := 0; i < 9; i++ {
		cs = append(cs, palette(i))
	}
	for i := range cs {
		for j := i + 1; j < len(cs); j++ {
			r1, g1, b1, _ := cs[i].RGBA()
			r2, g2, b2, _ := cs[j].RGBA()
			d := math.Sqrt(sq(float64(r1>>8)-float64(r2>>8)) + sq(float64(g1>>8)-float64(g2>>8)) + sq(float64(b1>>8)-float64(b2>>8)))
			assert.GreaterOrEqual(t, d, 60.0, "palette %d and %d", i, j)
		}
	}
	seen := map[color.Color]string{}
	for _, o := range train.Optimizers() {
		c := optimizerColor(o, 0)
		assert.NotContains(t, seen, c, "%s shares %s's colour", o, seen[c])
		seen[c] = o
	}
}

func sq(x float64) float64 { return x * x }

// TestWriteSweepPlot: the plot is written with a line per optimizer and
// knob setting, a diverged rate does not break it, and no sweep writes
// nothing.
func TestWriteSweepPlot(t *testing.T) {
	rs := []*RunResult{
		sweepRun("sophiag", "rho=0.01", 1e-3, 2.0, 1), sweepRun("sophiag", "rho=0.01", 3e-3, 1.9, 1),
		sweepRun("sophiag", "rho=0.1", 1e-3, 1.8, 1), sweepRun("sophiag", "rho=0.1", 3e-3, 1.7, 1),
		sweepRun("adamw", "", 1e-3, 1.7, 1), sweepRun("adamw", "", 1e-3, 1.75, 2), sweepRun("adamw", "", 3e-3, 1.65, 1), sweepRun("adamw", "", 3e-3, 1.6, 2),
	}
	div := sweepRun("adamw", "", 1e-2, math.NaN(), 1)
	div.Diverged = true
	rs = append(rs, div)
	entries, best := ChooseLRs(rs, true)
	dir := t.TempDir()
	require.NoError(t, WriteSweepPlot(dir, "t", entries, best))
	b, err := os.ReadFile(filepath.Join(dir, SweepPlotName+".svg"))
	require.NoError(t, err)
	for _, want := range []string{"sophiag rho=0.01", "sophiag rho=0.1", "adamw", "final validation loss", "learning-rate sweep"} {
		assert.Contains(t, string(b), want)
	}
	assert.FileExists(t, filepath.Join(dir, SweepPlotName+".png"))
	empty := t.TempDir()
	require.NoError(t, WriteSweepPlot(empty, "t", nil, nil))
	assert.NoFileExists(t, filepath.Join(empty, SweepPlotName+".svg"))
}

// TestSharpnessPlotCut: the threshold axis stops at ten times the largest
// λ, however far 2/lr grows in the cosine tail.
func TestSharpnessPlotCut(t *testing.T) {
	var log []StepPoint
	for i, lr := range []float64{0.1, 0.01, 1e-6} {
		top := 4.0 + float64(i)
		log = append(log, StepPoint{Step: i + 1, LR: lr, HessTop: &top})
	}
	r := &RunResult{Spec: RunSpec{Phase: PhaseFinal, Optimizer: "sgd", LR: 0.1, Seed: 1}, StepLog: log}
	dir := t.TempDir()
	require.NoError(t, WriteSharpnessPlots(dir, "t", []*RunResult{r}, Edges{"sgd": {Beta: 0.9}}))
	b, err := os.ReadFile(filepath.Join(dir, SharpnessPlotNames[1]+".svg"))
	require.NoError(t, err)
	assert.Contains(t, string(b), "cut at 380", "10 × 2(1+β)/lr at the peak rate 0.1, which is above 10 × the largest λ")
	assert.NotContains(t, string(b), "1e+06", "no tick runs out to 2/lr at lr = 1e-6")
}
