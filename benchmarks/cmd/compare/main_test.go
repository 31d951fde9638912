package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/curvopt/curvopt/benchmarks/compare"
	"github.com/curvopt/curvopt/internal/fileio"
	"github.com/curvopt/curvopt/internal/sigctx"
	"github.com/curvopt/curvopt/train"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseLRs(t *testing.T) {
	m, err := parseLRs("sgd=0.1, adam=3e-3")
	require.NoError(t, err)
	assert.Equal(t, map[string]float64{"sgd": 0.1, "adam": 3e-3}, m)
	m, err = parseLRs("")
	require.NoError(t, err)
	assert.Empty(t, m)
	for _, bad := range []string{"sgd", "sgd=x", "sgd=-1", "sgd=0"} {
		_, err := parseLRs(bad)
		assert.Error(t, err, bad)
	}
}

func TestParseFlags(t *testing.T) {
	var stderr bytes.Buffer
	o, err := parse([]string{"-out", "results/x/"}, &stderr)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join("results", "tmp", "work", "x"), o.work)
	assert.Equal(t, 3, o.seeds)
	for _, bad := range [][]string{{"-seeds", "0"}, {"-target", "2"}, {"-steps", "-1"}, {"extra"}} {
		_, err := parse(bad, &stderr)
		assert.Error(t, err, strings.Join(bad, " "))
	}
}

func TestRunErrors(t *testing.T) {
	var out, errw bytes.Buffer
	for _, args := range [][]string{
		{"-optimizers", "nope"},
		{"-lrs", "sgd=0.1", "-optimizers", "adam"},
		{"-dtype", "float16"},
		{"-model", "rnn", "-data", "synthetic train=20 test=10"},
		{"-data", "synthetic train=20 test=10", "-optimizers", "sophiag", "-sweep-knobs", "sophiag:rho=1|2"},                                  // no -sweep
		{"-data", "synthetic train=20 test=10", "-optimizers", "sophiag", "-sweep", "-lrs", "sophiag=0.1", "-sweep-knobs", "sophiag:rho=1|2"}, // rate fixed
		{"-data", "synthetic train=20 test=10", "-optimizers", "sophiag", "-extra-budgets", "sophiag=2"},                                      // no -steps
	} {
		err := run(context.Background(), args, &out, &errw)
		assert.Error(t, err, strings.Join(args, " "))
	}
}

// TestRunSmoke runs the whole command on a tiny synthetic set: a sweep and
// the comparison, then a rerun that trains nothing.
func TestRunSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("trains models")
	}
	dir := t.TempDir()
	args := []string{"-optimizers", "sgd,adam", "-data", "synthetic train=120 test=40", "-hidden", "4", "-steps", "4",
		"-batch", "20", "-seeds", "2", "-sweep", "-sweep-factors", "0.1,1", "-eval-every", "2",
		"-out", filepath.Join(dir, "out"), "-work", filepath.Join(dir, "work"), "-lrs", "sgd=0.05"}
	var out, errw bytes.Buffer
	require.NoError(t, run(context.Background(), args, &out, &errw), errw.String())
	assert.Contains(t, out.String(), "2 runs: 0 stored, 2 to train") // sweep: adam × 2 factors
	assert.Contains(t, out.String(), "4 runs: 0 stored, 4 to train") // comparison
	md, err := os.ReadFile(filepath.Join(dir, "out", "results.md"))
	require.NoError(t, err)
	assert.Contains(t, string(md), "sgd 0.05 (-lrs)")
	assert.Contains(t, string(md), "(sweep)")
	assert.Contains(t, string(md), "## Learning-rate sweep")
	for _, f := range []string{"summary.csv", "curves.csv", "acc_vs_steps.png", "loss_vs_wall.svg"} {
		assert.FileExists(t, filepath.Join(dir, "out", f))
	}
	out.Reset()
	leftover := filepath.Join(dir, "out", "results.md"+fileio.TmpInfix+"123") // a killed write's
	require.NoError(t, os.WriteFile(leftover, []byte("# partial"), 0o644))
	require.NoError(t, run(context.Background(), args, &out, &errw))
	assert.Contains(t, out.String(), "4 runs: 4 stored, 0 to train")
	assert.NoFileExists(t, leftover)

	// Runs stored without a code version (-code-version any, as before it
	// was recorded) are reused only under -code-version any.
	anyArgs := append([]string{"-code-version", "any"}, args...)
	anyArgs[len(anyArgs)-1], anyArgs = "sgd=0.04", append(anyArgs, "-out", filepath.Join(dir, "old")) // other runs, another directory
	out.Reset()
	require.NoError(t, run(context.Background(), anyArgs, &out, &errw))
	assert.Contains(t, out.String(), "4 runs: 0 stored, 4 to train")
	out.Reset()
	require.NoError(t, run(context.Background(), anyArgs, &out, &errw))
	assert.Contains(t, out.String(), "4 runs: 4 stored, 0 to train")
	md, err = os.ReadFile(filepath.Join(dir, "old", "results.md"))
	require.NoError(t, err)
	assert.Contains(t, string(md), "not checked (-code-version any)")
	out.Reset()
	require.NoError(t, run(context.Background(), anyArgs[2:], &out, &errw))
	assert.Contains(t, out.String(), "4 runs: 0 stored, 4 to train", "with the code version, those runs are stale")

	// One seed fewer: seed 2's runs are orphans, listed, then removed.
	fewer := append(append([]string{}, args...), "-seeds", "1")
	out.Reset()
	require.NoError(t, run(context.Background(), fewer, &out, &errw))
	assert.Contains(t, out.String(), "2 stored runs belong to no run of this plan, left in place")
	md, err = os.ReadFile(filepath.Join(dir, "out", "results.md"))
	require.NoError(t, err)
	assert.Contains(t, string(md), "2 stored runs under")
	out.Reset()
	require.NoError(t, run(context.Background(), append(fewer, "-remove-orphans"), &out, &errw))
	assert.Contains(t, out.String(), "2 stored runs belong to no run of this plan, removed")
	assert.NoFileExists(t, filepath.Join(dir, "out", "runs", "final", "adam-lr0.001-seed2.json"))
	out.Reset()
	require.NoError(t, run(context.Background(), fewer, &out, &errw))
	assert.NotContains(t, out.String(), "belong to no run")
}

func TestParseHyper(t *testing.T) {
	h, err := parseHyper("adamw:weight_decay=0.1,beta2=0.95; sophiag:rho=0.05,hessian_interval=5; sgd:nesterov=true")
	require.NoError(t, err)
	assert.Equal(t, map[string]train.Hyper{"adamw": {"weight_decay": 0.1, "beta2": 0.95},
		"sophiag": {"rho": 0.05, "hessian_interval": 5}, "sgd": {"nesterov": true}}, h)
	h, err = parseHyper("")
	require.NoError(t, err)
	assert.Empty(t, h)
	for _, bad := range []string{"weight_decay=0.1", ":weight_decay=1", "adamw:weight_decay", "adamw:weight_decay=x",
		"adamw:lr=0.1", "sophiag:hessian_interval=2.5", "sgd:nesterov=maybe"} {
		_, err := parseHyper(bad)
		assert.ErrorContains(t, err, "-hyper", bad)
	}
	_, err = parseHyper("adamw:wd=0.1")
	assert.ErrorContains(t, err, `no optimizer has a hyperparameter "wd" (renamed weight_decay)`)
}

// A result stored before the hyperparameters were renamed keeps its
// fingerprint: the old names are converted before comparing.
func TestUpgradeFingerprint(t *testing.T) {
	now, err := json.Marshal(map[string]any{"batch": 16, "hyper": map[string]train.Hyper{
		"adamw": {"beta2": 0.95, "weight_decay": 0.1}, "sophiag": {"hessian_interval": 5, "rho": 0.05}}, "model": "<x>"})
	require.NoError(t, err)
	old := `{"batch":16,"hyper":{"adamw":{"beta2":0.95,"wd":0.1},"sophiag":{"k":5,"rho":0.05}},"model":"\u003cx\u003e"}`
	assert.Equal(t, string(now), upgradeFingerprint(old))
	assert.Equal(t, string(now), upgradeFingerprint(string(now)))
	assert.Equal(t, "not json", upgradeFingerprint("not json"))
}

func TestRunFlagErrors(t *testing.T) {
	var out, errw bytes.Buffer
	tiny := "synthetic train=20 test=10"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-data", tiny, "-optimizers", "sgd", "-hyper", "adam:weight_decay=0.1"}, `-hyper names "adam"`},
		{[]string{"-data", tiny, "-optimizers", "sgd", "-hyper", "sgd:rho=0.1"}, "-hyper sgd"},
		{[]string{"-data", tiny, "-optimizers", "sgd", "-hyper", "sgd:weight_decay=NaN"}, "-hyper sgd: sgd: invalid weight_decay = NaN"},
		{[]string{"-data", tiny, "-cosine-min", "0.1"}, "-cosine-min is for -schedule cosine"},
		{[]string{"-data", tiny, "-schedule", "linear"}, "-schedule"},
		{[]string{"-data", tiny, "-model", "gpt-tiny"}, "use -data text"},
		{[]string{"-data", tiny, "-model", "resnet9"}, "resnet9"},
		{[]string{"-select", "best"}, "-select"},
		{[]string{"-clip", "-1"}, "-clip"},
		{[]string{"-cosine-min", "1"}, "-cosine-min"},
		{[]string{"-eval-batch", "0"}, "-eval-batch"},
		{[]string{"-sweep-base", "sgd=x"}, "-sweep-base"},
		{[]string{"-data", tiny, "-optimizers", "sgd", "-reference", "adam"}, "-reference"},
		{[]string{"-data", tiny, "-optimizers", "sgd", "-target-loss-of", "adamw"}, "-target-loss-of"},
	} {
		err := run(context.Background(), tc.args, &out, &errw)
		assert.ErrorContains(t, err, tc.want, strings.Join(tc.args, " "))
		assert.ErrorAs(t, err, new(usageError), strings.Join(tc.args, " "))
	}
}

// A usage error is reported in one line, then how to get help (status 2),
// not buried under the usage; -h prints the usage (status 0); an error that
// is not the flags' (a missing dataset) has no hint (status 1).
func TestUsageErrorsInOneLine(t *testing.T) {
	sig := sigctx.Notify()
	defer sig.Stop()
	tiny := "synthetic train=20 test=10"
	for _, args := range [][]string{{"-nosuchflag"}, {"extra"}, {"-seeds", "0"}, {"-lr", "x"}, {"-dtype", "float16"},
		{"-optimizers", "nope"}, {"-lrs", "sgd"}, {"-data", "imagenet"}, {"-data", tiny, "-model", "rnn"}, {"-data", tiny, "-hyper", "x"}} {
		var out, errb bytes.Buffer
		code := status(sig, run(sig.Context(), args, &out, &errb), &errb)
		assert.Equal(t, 2, code, "%v", args)
		lines := strings.Split(strings.TrimSuffix(errb.String(), "\n"), "\n")
		if assert.Len(t, lines, 2, "%v: %s", args, errb.String()) {
			assert.True(t, strings.HasPrefix(lines[0], "compare: "), "%v: %s", args, lines[0])
			assert.Equal(t, "run 'compare -h' for the flags", lines[1], "%v", args)
		}
	}
	var out, errb bytes.Buffer
	assert.Equal(t, 0, status(sig, run(sig.Context(), []string{"-h"}, &out, &errb), &errb))
	assert.Contains(t, errb.String(), "usage: compare")
	assert.Contains(t, errb.String(), "-sweep-factors")

	errb.Reset()
	missing := filepath.Join(t.TempDir(), "none")
	assert.Equal(t, 1, status(sig, run(sig.Context(), []string{"-data", "cifar10 " + missing}, &out, &errb), &errb))
	assert.NotContains(t, errb.String(), "compare -h", errb.String())
}

// TestRunTextSmoke runs the language-model comparison end to end on a tiny
// text: gpt-tiny, a loss-selected sweep, cosine with warm-up, clipping,
// per-optimizer hyperparameters, sharpness tracking and a loss target.
func TestRunTextSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("trains models")
	}
	dir := t.TempDir()
	txt := filepath.Join(dir, "t.txt")
	require.NoError(t, os.WriteFile(txt, []byte(strings.Repeat("func main() { fmt.Println(\"hello, world\") }\n", 40)), 0o644))
	args := []string{"-model", "gpt-tiny", "-data", "text " + txt + " context=8", "-optimizers", "adamw,sophiag",
		"-steps", "4", "-batch", "4", "-seeds", "2", "-sweep", "-sweep-factors", "0.5,1", "-sweep-widen", "0", "-select", "loss",
		"-schedule", "cosine", "-warmup", "1", "-cosine-min", "0.1", "-clip", "1", "-hyper", "adamw:weight_decay=0.1",
		"-eval-every", "2", "-eval-max", "16", "-sharpness-every", "2", "-target-loss-of", "adamw",
		"-sweep-knobs", "sophiag:rho=0.05|1", "-extra-budgets", "adamw=2",
		"-out", filepath.Join(dir, "out"), "-work", filepath.Join(dir, "work")}
	var out, errw bytes.Buffer
	// The plan first: each optimizer trained 3 steps, nothing stored.
	require.NoError(t, run(context.Background(), append(append([]string{}, args...), "-estimate", "3"), &out, &errw), errw.String())
	for _, want := range []string{"adamw", "sophiag", "2 × 4 steps (+0)", "4 × 4 steps (+0)", "4 (2×4, 2×8 steps)", "estimated training time: "} {
		assert.Contains(t, out.String(), want)
	}
	assert.NoDirExists(t, filepath.Join(dir, "out", "runs"))
	out.Reset()
	require.NoError(t, run(context.Background(), args, &out, &errw), errw.String())
	md, err := os.ReadFile(filepath.Join(dir, "out", "results.md"))
	require.NoError(t, err)
	for _, want := range []string{"gpt-tiny (", "-eval-max", "cosine, 1 warm-up steps, down to 0.1 of the peak; gradients clipped to norm 1",
		`{"adamw":{"weight_decay":0.1}}`, "steps to loss ≤ ", "## Sharpness along training", "adamw's mean final test loss", "val loss",
		"| sophiag rho=0.05 |", "| sophiag rho=1 |", "sweep runs per optimizer: adamw 2, sophiag 4; not the same", "(sophiag ρ = ",
		"- code version: ", "paired by seed", "GOMAXPROCS=", "| adamw @8 steps |"} {
		assert.Contains(t, string(md), want)
	}
	for _, f := range []string{"sharpness.csv", "sharpness_vs_steps.png", "sharpness_vs_2lr.svg", "val_loss_vs_wall.png", "sweep_val_loss_vs_lr.svg"} {
		assert.FileExists(t, filepath.Join(dir, "out", f))
	}
	rows, err := os.ReadFile(filepath.Join(dir, "out", "sharpness.csv"))
	require.NoError(t, err)
	// Seed 1 of each optimizer tracks sharpness at steps 2 and 4.
	assert.Equal(t, 1+2*2, strings.Count(string(rows), "\n"), string(rows))
	// The final SophiaG runs use the chosen ρ, and the curves carry its win rate.
	finals, err := filepath.Glob(filepath.Join(dir, "out", "runs", "final", `sophiag\[rho=*\]-lr*-seed1.json`))
	require.NoError(t, err)
	assert.Len(t, finals, 1)
	curves, err := os.ReadFile(filepath.Join(dir, "out", "curves.csv"))
	require.NoError(t, err)
	winRates := 0
	for _, line := range strings.Split(string(curves), "\n") {
		f := strings.Split(line, ",")
		if len(f) == len(compare.CurveColumns) && f[0] == "final" && f[1] == "sophiag" && f[4] == "step" && f[10] != "" {
			winRates++
		}
	}
	assert.Equal(t, 2*4, winRates, "a win rate at every step of both seeds")
}

// TestRunOnly splits a study's runs by optimizer (-only), as separate
// processes do: each trains only its optimizers' sweep and comparison runs
// and writes no tables; a run without -only then trains nothing and writes
// them. -only refuses a name outside -optimizers and -remove-orphans.
func TestRunOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("trains models")
	}
	dir := t.TempDir()
	args := []string{"-optimizers", "sgd,adam", "-data", "synthetic train=120 test=40", "-hidden", "4", "-steps", "4",
		"-batch", "20", "-seeds", "2", "-sweep", "-sweep-factors", "0.1,1", "-sweep-widen", "0", "-eval-every", "2",
		"-out", filepath.Join(dir, "out"), "-work", filepath.Join(dir, "work")}
	var out, errw bytes.Buffer
	require.NoError(t, run(context.Background(), append(args, "-only", "adam"), &out, &errw), errw.String())
	assert.Contains(t, out.String(), "2 runs: 0 stored, 2 to train") // adam's sweep, then its 2 seeds
	assert.NotContains(t, out.String(), "4 runs")
	assert.Contains(t, out.String(), "-only adam: their runs are stored")
	assert.NoFileExists(t, filepath.Join(dir, "out", "results.md"))
	stored := func(pattern string) int {
		m, err := filepath.Glob(filepath.Join(dir, "out", "runs", "final", pattern))
		require.NoError(t, err)
		return len(m)
	}
	assert.Equal(t, 2, stored("adam-*"))
	assert.Equal(t, 0, stored("sgd-*"))
	out.Reset()
	require.NoError(t, run(context.Background(), append(args, "-only", "sgd"), &out, &errw), errw.String())
	assert.Contains(t, out.String(), "2 runs: 0 stored, 2 to train")
	out.Reset()
	require.NoError(t, run(context.Background(), args, &out, &errw), errw.String())
	assert.Contains(t, out.String(), "4 runs: 4 stored, 0 to train") // the sweep
	assert.Contains(t, out.String(), "4 runs: 4 stored, 0 to train\n")
	assert.NotContains(t, out.String(), "belong to no run")
	assert.FileExists(t, filepath.Join(dir, "out", "results.md"))

	for _, bad := range [][]string{{"-only", "sophiag"}, {"-only", "adam", "-remove-orphans"}} {
		errw.Reset()
		err := run(context.Background(), append(append([]string{}, args...), bad...), &out, &errw)
		require.Error(t, err, "%v", bad)
		assert.Contains(t, err.Error(), "-only")
	}
}
