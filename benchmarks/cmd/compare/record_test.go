package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/curvopt/curvopt/benchmarks/compare"
	"github.com/curvopt/curvopt/train"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// shellWords splits a command line as a POSIX shell does for words made
// of plain characters, single quotes, double quotes and backslashes (no
// expansions), or fails on an unterminated quote.
func shellWords(t *testing.T, line string) []string {
	t.Helper()
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				words, inWord = append(words, cur.String()), false
				cur.Reset()
			}
			continue
		case c == ';' || c == '&' || c == '|' || c == '#' || c == '$' || c == '`' || c == '<' || c == '>' || c == '(' || c == ')':
			t.Fatalf("unquoted shell metacharacter %q at %d in %s", c, i, line)
		case c == '\'':
			j := strings.IndexByte(line[i+1:], '\'')
			require.GreaterOrEqual(t, j, 0, "unterminated single quote in %s", line)
			cur.WriteString(line[i+1 : i+1+j])
			i += j + 1
		case c == '"':
			j := strings.IndexByte(line[i+1:], '"')
			require.GreaterOrEqual(t, j, 0, "unterminated double quote in %s", line)
			cur.WriteString(line[i+1 : i+1+j])
			i += j + 1
		case c == '\\' && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
		default:
			cur.WriteByte(c)
		}
		inWord = true
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// studyArgs are the arguments of the study's comparisons (results/study),
// with the values that did not survive the old printed command: a -data
// value with a space, a -hyper value with ';', and one with a quote.
var studyArgs = [][]string{
	{"-model", "resnet8", "-data", "synthetic noise=0.25", "-optimizers", "sgd,adam,adamw,adahessian,mfac,sophiah,sophiag",
		"-steps", "500", "-batch", "32", "-eval-every", "100", "-schedule", "cosine", "-warmup", "25",
		"-sweep", "-sweep-factors", "0.3,1,3", "-sweep-widen", "4", "-select", "loss", "-sweep-base", "sgd=0.05,sophiag=0.0003",
		"-hyper", "adahessian:weight_decay=0.0005", "-seeds", "3", "-sharpness-every", "50", "-target", "0.9", "-out", "results/study-image"},
	{"-model", "gpt-tiny", "-data", "text", "-optimizers", "adamw,sophiag", "-clip", "1",
		"-hyper", "adamw:weight_decay=0.1,beta2=0.95;sophiag:weight_decay=0.2,rho=0.05", "-target-loss-of", "adamw", "-out", "results/study-lm"},
	{"-data", "text it's", "-hyper", "", "-out", "results/x y"},
}

// TestCommandLineRunsAsPrinted: the command results.md prints splits, as a
// shell splits it, into GOMAXPROCS=1, go run ./benchmarks/cmd/compare and
// exactly the arguments given, which the flag parser accepts; /bin/sh
// agrees on the words.
func TestCommandLineRunsAsPrinted(t *testing.T) {
	for _, args := range studyArgs {
		line := commandLine(args, "1")
		words := shellWords(t, line)
		require.GreaterOrEqual(t, len(words), 4, line)
		assert.Equal(t, []string{"GOMAXPROCS=1", "go", "run", "./benchmarks/cmd/compare"}, words[:4], line)
		assert.Equal(t, args, words[4:], line)
		var stderr bytes.Buffer
		_, err := parse(words[4:], &stderr)
		require.NoError(t, err, line)

		if sh, err := exec.LookPath("sh"); err == nil {
			script := "printf '%s\\n' " + strings.TrimPrefix(line, "GOMAXPROCS=1 go run ./benchmarks/cmd/compare ")
			out, err := exec.Command(sh, "-c", script).Output()
			require.NoError(t, err, script)
			assert.Equal(t, strings.Join(args, "\n")+"\n", string(out), "sh splits %s", line)
		}
	}
	assert.Equal(t, "go run ./benchmarks/cmd/compare -seeds 5", commandLine([]string{"-seeds", "5"}, ""), "no GOMAXPROCS when it was not set")
}

// TestCodeVersion: the code version is deterministic, changes with the
// training code (a library file, the comparison's trainer) and not with
// tests, reports, other commands or results, and needs curvopt's go.mod.
func TestCodeVersion(t *testing.T) {
	root := t.TempDir()
	write := func(rel, body string) {
		p := filepath.Join(root, filepath.FromSlash(rel))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	}
	write("go.mod", "module "+modulePath+"\n\ngo 1.22\n")
	for _, f := range []string{"optim/sgd.go", "train/step.go", "benchmarks/compare/trainer.go", "benchmarks/compare/report.go",
		"cmd/train/main.go", "optim/sgd_test.go", "results/x/gen.go", "train/testdata/t.go"} {
		write(f, "package x\n")
	}
	v0, err := codeVersion(filepath.Join(root, "train"))
	require.NoError(t, err)
	assert.Len(t, v0, 16)
	again, err := codeVersion(root)
	require.NoError(t, err)
	assert.Equal(t, v0, again, "deterministic, from any directory of the module")

	for _, f := range []string{"optim/sgd_test.go", "benchmarks/compare/report.go", "cmd/train/main.go", "results/x/gen.go", "train/testdata/t.go", "train/notes.md"} {
		write(f, "package x // changed\n")
		v, err := codeVersion(root)
		require.NoError(t, err)
		assert.Equal(t, v0, v, "%s is not training code", f)
	}
	prev := v0
	for _, f := range []string{"train/step.go", "benchmarks/compare/trainer.go", "optim/new.go", "go.sum"} {
		write(f, "package x // changed\n")
		v, err := codeVersion(root)
		require.NoError(t, err)
		assert.NotEqual(t, prev, v, "%s is training code", f)
		prev = v
	}

	write("go.mod", "module example.com/other\n")
	_, err = codeVersion(root)
	assert.ErrorContains(t, err, "is not "+modulePath)
	require.NoError(t, os.Remove(filepath.Join(root, "go.mod")))
	_, err = codeVersion(filepath.Join(root, "train"))
	if err == nil { // a go.mod above the temporary directory
		t.Logf("a go.mod above %s", root)
	}
}

// TestKnobGridsAndTitles: -sweep-knobs is read per optimizer and checked
// against the optimizer's settings; the plots' title names the ρ the runs
// use (the chosen knob over -hyper over the default); SGD's stability
// threshold carries its momentum.
func TestKnobGridsAndTitles(t *testing.T) {
	opts := []string{"sgd", "adamw", "sophiag"}
	hyper := map[string]train.Hyper{"sophiag": {"rho": 0.05}}
	g, err := parseKnobGrids("sophiag:rho=0.01|0.05; adamw:beta2=0.95|0.99,weight_decay=0.1", opts, hyper, 16)
	require.NoError(t, err)
	assert.Equal(t, []string{"rho=0.01", "rho=0.05"}, g["sophiag"])
	assert.Equal(t, []string{"beta2=0.95,weight_decay=0.1", "beta2=0.99,weight_decay=0.1"}, g["adamw"])
	for _, bad := range []string{"adam:beta2=0.9", "sophiag", "sophiag:rho=-1", "sophiag:rho=1;sophiag:rho=2"} {
		_, err := parseKnobGrids(bad, opts, hyper, 16)
		assert.Error(t, err, bad)
	}
	assert.Equal(t, " (sophiag ρ = 0.05)", rhoTitle(opts, hyper, nil, 16), "-hyper's ρ")
	assert.Equal(t, " (sophiag ρ = 1)", rhoTitle(opts, hyper, map[string]string{"sophiag": "rho=1"}, 16), "the chosen knob's ρ")
	assert.Equal(t, " (sophiag ρ = 0.04)", rhoTitle(opts, nil, nil, 16), "the default ρ")
	assert.Equal(t, "", rhoTitle([]string{"adamw"}, nil, nil, 16))
	e := stabilityEdges(opts, nil, nil, 16)
	assert.InDelta(t, 0.9, e["sgd"].Beta, 0, "SGD's default momentum")
	assert.Empty(t, stabilityEdges(opts, map[string]train.Hyper{"sgd": {"momentum": 0.0}}, nil, 16))
}

func TestParseExtraBudgets(t *testing.T) {
	opts := []string{"adamw", "sophiag"}
	got, err := parseExtraBudgets("adamw=1.5|2", opts, 2000)
	require.NoError(t, err)
	assert.Equal(t, map[string][]int{"adamw": {3000, 4000}}, got)
	got, err = parseExtraBudgets("", opts, 0)
	require.NoError(t, err)
	assert.Empty(t, got)
	for _, bad := range []string{"adamw=1", "adamw=0", "adamw=x", "adam=2", "adamw", "adamw=2,adamw=3"} {
		_, err := parseExtraBudgets(bad, opts, 2000)
		assert.Error(t, err, bad)
	}
	_, err = parseExtraBudgets("adamw=2", opts, 0)
	assert.ErrorContains(t, err, "needs a budget in -steps")
}

func TestPlanArithmetic(t *testing.T) {
	log := []compare.StepPoint{{StepMS: 500}, {StepMS: 10}, {StepMS: 30}, {StepMS: 20}}
	assert.Equal(t, 20.0, medianStepMS(log), "the first step is left out")
	assert.Equal(t, 20.0, medianStepMS(log[:3]), "(10 + 30)/2")
	r := planRow{stepMS: 100, sweepRuns: 12, widened: 4, sweepSteps: 2000, finalSteps: []int{2000, 2000, 3000}}
	base, most := r.seconds()
	assert.InDelta(t, (12*2000+7000)*0.1, base, 1e-9)
	assert.InDelta(t, base+4*2000*0.1, most, 1e-9)
	assert.Equal(t, "2×2000, 1×3000", budgets(r.finalSteps))
	assert.Equal(t, "1h2m0s", dur(3720))
}
