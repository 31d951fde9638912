// Package golden reads the reference data files in the golden directory
// (../shared/golden beside the module root, or $GOLDEN_DIR) made with the
// reference PyTorch implementations, and provides the error measure their
// README prescribes. It is used only by tests.
package golden

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
)

// Dir returns the golden directory: $GOLDEN_DIR if set, otherwise
// ../shared/golden relative to the module root (the directory holding go.mod,
// found by walking up from the working directory).
func Dir() (string, error) {
	if d := os.Getenv("GOLDEN_DIR"); d != "" {
		return d, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(d, "..", "shared", "golden"), nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("golden: no go.mod above the working directory; set GOLDEN_DIR")
		}
	}
}

// Files returns the sorted paths of the files matching pattern (such as
// "opt_*.json") in the golden directory. It is an error for the directory to
// be missing or to hold no matching file, so a misconfigured run cannot pass
// by checking nothing.
func Files(pattern string) ([]string, error) {
	dir, err := Dir()
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("golden directory: %w (set GOLDEN_DIR)", err)
	}
	files, err := filepath.Glob(filepath.Join(dir, pattern))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("golden directory %s has no %s files", dir, pattern)
	}
	sort.Strings(files)
	return files, nil
}

// Param is a parameter's name, shape and (for trajectories) initial value.
type Param struct {
	Name  string    `json:"name"`
	Shape []int     `json:"shape"`
	Init  []float64 `json:"init"`
	Data  []float64 `json:"data"`
}

// Size returns the number of entries of the parameter.
func (p Param) Size() int {
	n := 1
	for _, s := range p.Shape {
		n *= s
	}
	return n
}

// Trajectory is an "optimizer-trajectory" file.
type Trajectory struct {
	Kind      string                     `json:"kind"`
	Optimizer string                     `json:"optimizer"`
	Reference string                     `json:"reference"`
	Hyper     map[string]json.RawMessage `json:"hyper"`
	Params    []Param                    `json:"params"`
	Problem   Problem                    `json:"problem"`
	Steps     []Step                     `json:"steps"`
}

// Problem is the quadratic L(θ) = ½θᵀAθ + bᵀθ (and, for Sophia, the second
// quadratic whose gradient stands in for the sampled-label gradient).
type Problem struct {
	Type       string      `json:"type"`
	A          [][]float64 `json:"A"`
	B          []float64   `json:"b"`
	AHessian   [][]float64 `json:"A_hessian"`
	BHessian   []float64   `json:"b_hessian"`
	Definitess string      `json:"definiteness"`
}

// Step is one recorded optimizer step. Fields not present in a file are nil.
type Step struct {
	Loss        float64                    `json:"loss"`
	Grad        []float64                  `json:"grad"`
	ParamsAfter []float64                  `json:"params_after"`
	State       map[string]json.RawMessage `json:"state"`
	Probe       []float64                  `json:"probe"`
	HZ          []float64                  `json:"hz"`
	HessianGrad []float64                  `json:"hessian_grad"`
	Extra       map[string]json.RawMessage `json:"-"`
}

// Kind reads only the "kind" field of a file.
func Kind(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	var k struct {
		Kind string `json:"kind"`
	}
	if err := json.Unmarshal(b, &k); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return k.Kind, nil
}

// LoadTrajectory reads an optimizer-trajectory file, including each step's
// fields beyond the common ones into Step.Extra.
func LoadTrajectory(path string) (*Trajectory, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var tr Trajectory
	if err := json.Unmarshal(b, &tr); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var raw struct {
		Steps []map[string]json.RawMessage `json:"steps"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for i := range tr.Steps {
		tr.Steps[i].Extra = raw.Steps[i]
	}
	if tr.Kind != "optimizer-trajectory" {
		return nil, fmt.Errorf("%s: kind %q, want optimizer-trajectory", path, tr.Kind)
	}
	d := 0
	for _, p := range tr.Params {
		if len(p.Init) != p.Size() {
			return nil, fmt.Errorf("%s: param %q: %d init values for shape %v", path, p.Name, len(p.Init), p.Shape)
		}
		d += p.Size()
	}
	if len(tr.Problem.A) != d || len(tr.Problem.B) != d {
		return nil, fmt.Errorf("%s: problem has %d rows and %d b entries, want %d", path, len(tr.Problem.A), len(tr.Problem.B), d)
	}
	return &tr, nil
}

// Float reads a hyperparameter as a float64 (JSON numbers and booleans).
func (t *Trajectory) Float(name string) (float64, error) {
	raw, ok := t.Hyper[name]
	if !ok {
		return 0, fmt.Errorf("hyper has no %q", name)
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err == nil {
		return f, nil
	}
	var b bool
	if err := json.Unmarshal(raw, &b); err == nil {
		if b {
			return 1, nil
		}
		return 0, nil
	}
	return 0, fmt.Errorf("hyper %q = %s is not a number", name, raw)
}

// Floats reads a hyperparameter that is a list of numbers (such as betas).
func (t *Trajectory) Floats(name string) ([]float64, error) {
	raw, ok := t.Hyper[name]
	if !ok {
		return nil, fmt.Errorf("hyper has no %q", name)
	}
	var f []float64
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("hyper %q = %s is not a list of numbers", name, raw)
	}
	return f, nil
}

// Bool reads a boolean hyperparameter.
func (t *Trajectory) Bool(name string) (bool, error) {
	f, err := t.Float(name)
	return f != 0, err
}

// MatVec returns A·x.
func MatVec(a [][]float64, x []float64) []float64 {
	out := make([]float64, len(a))
	for i, row := range a {
		s := 0.0
		for j, v := range row {
			s += v * x[j]
		}
		out[i] = s
	}
	return out
}

// RelErr is the norm-wise relative error of the golden README:
// max_i |a_i − r_i| / max_i |r_i|. When r is entirely zero it is the absolute
// error max_i |a_i|. A length mismatch or a non-finite a gives +Inf.
func RelErr(a, r []float64) float64 {
	if len(a) != len(r) {
		return math.Inf(1)
	}
	var diff, scale float64
	for i := range r {
		if math.IsNaN(a[i]) || math.IsInf(a[i], 0) {
			return math.Inf(1)
		}
		diff = math.Max(diff, math.Abs(a[i]-r[i]))
		scale = math.Max(scale, math.Abs(r[i]))
	}
	if scale == 0 {
		return diff
	}
	return diff / scale
}

// ScalarRelErr is |a − r|/|r| (|a − r| when r = 0).
func ScalarRelErr(a, r float64) float64 {
	if r == 0 {
		return math.Abs(a)
	}
	return math.Abs(a-r) / math.Abs(r)
}
