package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/curvopt/curvopt/benchmarks/compare"
	"github.com/curvopt/curvopt/train"
)

// commandLine returns the command that reproduces this invocation, as
// results.md prints it: "go run ./benchmarks/cmd/compare" and args, each
// quoted for a POSIX shell where it needs it (a -data value with a space,
// a -hyper value with ';'), prefixed by GOMAXPROCS=gomaxprocs when that
// environment variable was set (the runs' step times depend on it).
func commandLine(args []string, gomaxprocs string) string {
	words := []string{"go", "run", "./benchmarks/cmd/compare"}
	if gomaxprocs != "" {
		words = append([]string{"GOMAXPROCS=" + shellQuote(gomaxprocs)}, words...)
	}
	for _, a := range args {
		words = append(words, shellQuote(a))
	}
	return strings.Join(words, " ")
}

// shellQuote returns s as one POSIX shell word: unchanged when it holds
// only characters no shell treats specially, else in single quotes, each
// single quote inside closing the quotes, escaped, and reopening them.
func shellQuote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_./=,:+@%", c)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// codeVersionFiles reports whether the module file rel (slash-separated,
// relative to the module root) is part of the code version: every non-test
// Go file of the training code (the library packages: nn, hessian, optim,
// train, data, internal, ...), go.mod and go.sum, and of the comparison
// only what decides a run (benchmarks/compare's trainer.go and split.go;
// the model built by flags.go is in the fingerprint as its graph). Reports,
// plots, other commands (cmd/, the rest of benchmarks/), tests and
// results/ are left out, so that a change to how the tables are written
// does not retrain hours of stored runs.
func codeVersionFiles(rel string) bool {
	switch rel {
	case "go.mod", "go.sum", "benchmarks/compare/trainer.go", "benchmarks/compare/split.go":
		return true
	}
	if !strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "_test.go") {
		return false
	}
	top, _, _ := strings.Cut(rel, "/")
	switch top {
	case "benchmarks", "cmd", "results", "testdata", "docs":
		return false
	}
	return !strings.Contains(rel, "/testdata/")
}

// codeVersion returns the code version stored in every run's fingerprint:
// the first 16 hex digits of a SHA-256 over the files codeVersionFiles
// selects under the module root (the directory holding go.mod at or above
// dir), in sorted order, each as its path, a NUL, its length and its
// bytes. It is deterministic (no clock, no git state) and changes exactly
// when the training code does, committed or not. The binary must be run
// from the tree it was built from (results/study/run.sh builds it and
// runs it there); -code-version overrides it elsewhere.
func codeVersion(dir string) (string, error) {
	root, err := moduleRoot(dir)
	if err != nil {
		return "", err
	}
	var files []string
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel != "." && (strings.HasPrefix(d.Name(), ".") || rel == "results") {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() && codeVersionFiles(rel) {
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("code version: walking %s: %w", root, err)
	}
	sort.Strings(files)
	h := sha256.New()
	for _, rel := range files {
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
		if err != nil {
			return "", fmt.Errorf("code version: %w", err)
		}
		fmt.Fprintf(h, "%s\x00%d\x00", rel, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// modulePath is curvopt's module path, the first line of its go.mod.
const modulePath = "github.com/curvopt/curvopt"

// moduleRoot returns the nearest directory at or above dir holding go.mod,
// which must be curvopt's.
func moduleRoot(dir string) (string, error) {
	d, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("code version: %w", err)
	}
	for {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil {
			if !strings.HasPrefix(string(b), "module "+modulePath+"\n") {
				return "", fmt.Errorf("code version: %s is not %s's (run from curvopt's tree, or give -code-version)", filepath.Join(d, "go.mod"), modulePath)
			}
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", errors.New("code version: no go.mod at or above " + dir + " (run from the module's tree, or give -code-version)")
		}
		d = parent
	}
}

// orphanNotes lists (or, with remove, removes) the stored runs of no spec
// in used, says so on stdout and returns notes with a line about them
// appended for results.md.
func orphanNotes(r *compare.Runner, used []compare.RunSpec, remove bool, stdout io.Writer, notes []string) ([]string, error) {
	list := r.Orphans
	what := "left in place (-remove-orphans removes them)"
	if remove {
		list, what = r.RemoveOrphans, "removed (-remove-orphans)"
	}
	orphans, err := list(used)
	if err != nil {
		return notes, err
	}
	if len(orphans) == 0 {
		return notes, nil
	}
	fmt.Fprintf(stdout, "%d stored runs belong to no run of this plan, %s:\n", len(orphans), what)
	for _, f := range orphans {
		fmt.Fprintf(stdout, "  %s\n", f)
	}
	if !remove {
		notes = append(notes, fmt.Sprintf("%d stored runs under %s belong to no run of this plan (an earlier grid or seed count) and are not used here", len(orphans), r.Dir))
	}
	return notes, nil
}

// parseKnobGrids reads -sweep-knobs, "opt:grid;opt:grid" with each grid as
// compare.ParseKnobGrid reads it, and checks that every combination is a
// valid setting of its optimizer with the -hyper overrides.
func parseKnobGrids(s string, opts []string, hyper map[string]train.Hyper, batch int) (map[string][]string, error) {
	out := map[string][]string{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, part := range strings.Split(s, ";") {
		name, grid, ok := strings.Cut(strings.TrimSpace(part), ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return nil, fmt.Errorf("-sweep-knobs %q: %q: want optimizer:name=v|v,...", s, part)
		}
		if !contains(opts, name) {
			return nil, fmt.Errorf("-sweep-knobs names %q, which is not among the optimizers compared", name)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("-sweep-knobs: %s given twice", name)
		}
		combos, err := compare.ParseKnobGrid(grid)
		if err != nil {
			return nil, fmt.Errorf("-sweep-knobs %s: %w", name, err)
		}
		for _, c := range combos {
			h, err := compare.KnobHyper(c)
			if err != nil {
				return nil, fmt.Errorf("-sweep-knobs %s: %w", name, err)
			}
			for k, v := range hyper[name] {
				if _, set := h[k]; !set {
					h[k] = v
				}
			}
			if err := train.ValidateHyper(name, h, batch); err != nil {
				return nil, fmt.Errorf("-sweep-knobs %s %s: %w", name, c, err)
			}
		}
		out[name] = combos
	}
	return out, nil
}

// effectiveHyper returns name's hyperparameters as its runs use them: the
// defaults, the -hyper overrides and the chosen knobs.
func effectiveHyper(name string, hyper map[string]train.Hyper, knobs map[string]string, batch int) train.Hyper {
	h := train.Hyper{}
	for k, v := range hyper[name] {
		h[k] = v
	}
	if kh, err := compare.KnobHyper(knobs[name]); err == nil {
		for k, v := range kh {
			h[k] = v
		}
	}
	r, err := train.ResolveHyper(name, h, batch, 1)
	if err != nil {
		return h
	}
	return r
}

// rhoTitle returns the plots' title suffix naming the ρ of every Sophia
// compared, as its runs use it, e.g. " (sophiag ρ = 0.05)".
func rhoTitle(opts []string, hyper map[string]train.Hyper, knobs map[string]string, batch int) string {
	var parts []string
	for _, name := range opts {
		if name != "sophiag" && name != "sophiah" {
			continue
		}
		if rho, ok := effectiveHyper(name, hyper, knobs, batch)["rho"].(float64); ok {
			parts = append(parts, fmt.Sprintf("%s ρ = %g", name, rho))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// stabilityEdges returns the heavy-ball momentum of the compared SGD (its
// stability threshold is 2(1+β)/lr; the other optimizers are drawn
// against 2/lr as a reference line).
func stabilityEdges(opts []string, hyper map[string]train.Hyper, knobs map[string]string, batch int) compare.Edges {
	edges := compare.Edges{}
	if !contains(opts, "sgd") {
		return edges
	}
	h := effectiveHyper("sgd", hyper, knobs, batch)
	beta, _ := h["momentum"].(float64)
	nesterov, _ := h["nesterov"].(bool)
	damp, _ := h["dampening"].(float64)
	if beta > 0 && damp == 0 {
		edges["sgd"] = compare.Momentum{Beta: beta, Nesterov: nesterov}
	}
	return edges
}

// codeAny is the -code-version that leaves the code version out of the
// fingerprint, as versions before it wrote it: stored runs are reused
// whatever code trained them (to rewrite the tables of a study stored
// before the code version was recorded), so a stale run goes unnoticed.
const codeAny = "any"

// codeNote is results.md's line on the code version.
func codeNote(code string) string {
	if code == codeAny {
		return "not checked (-code-version any): stored runs are reused whatever code trained them"
	}
	return code + " (in every run's fingerprint: a stored run made by other training code is retrained)"
}
