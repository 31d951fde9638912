// Package golden reads the reference data files made with the reference
// PyTorch implementations (testdata/golden at the module root, or
// $GOLDEN_DIR; testdata/golden/README.md describes them) and provides the
// error measure the tests use. It is used only by tests.
//
// Every *.json in the directory is dispatched on its "kind"; a file of an
// unknown kind, a field the decoder does not know, a missing field, a vector
// of the wrong length or an empty trajectory is an error naming the file and
// the field, so a doctored or misplaced file fails the tests rather than
// being skipped.
package golden

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// The kinds of golden file.
const (
	KindTrajectory = "optimizer-trajectory"
	KindCurvature  = "curvature"
)

// Dir returns the golden directory: $GOLDEN_DIR if set, otherwise
// testdata/golden under the module root (the directory holding go.mod, found
// by walking up from the working directory, so every package's tests find
// the same directory).
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
			return filepath.Join(d, "testdata", "golden"), nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("golden: no go.mod above the working directory; set GOLDEN_DIR")
		}
	}
}

// Files returns the sorted paths of the files of the given kind in the
// golden directory (Dir). See FilesIn.
func Files(kind string) ([]string, error) {
	dir, err := Dir()
	if err != nil {
		return nil, err
	}
	return FilesIn(dir, kind)
}

// FilesIn reads the "kind" of every *.json in dir and returns the sorted
// paths of those of the given kind. It is an error for dir to be missing, for
// any file to be unreadable or of an unknown kind, or for no file to be of
// the given kind, so a misconfigured run cannot pass by checking nothing.
func FilesIn(dir, kind string) ([]string, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("golden directory: %w (set GOLDEN_DIR)", err)
	}
	all, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	sort.Strings(all)
	var out []string
	for _, path := range all {
		k, err := Kind(path)
		if err != nil {
			return nil, err
		}
		switch k {
		case KindTrajectory, KindCurvature:
		default:
			return nil, fmt.Errorf("%s: kind %q: unknown (want %q or %q)", path, k, KindTrajectory, KindCurvature)
		}
		if k == kind {
			out = append(out, path)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("golden directory %s has no file of kind %q", dir, kind)
	}
	return out, nil
}

// Kind reads only the "kind" field of a file; a file without one is an error.
func Kind(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	var k struct {
		Kind *string `json:"kind"`
	}
	if err := json.Unmarshal(b, &k); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	if k.Kind == nil {
		return "", fmt.Errorf("%s: kind: missing", path)
	}
	return *k.Kind, nil
}

// decodeStrict decodes b into v, rejecting unknown fields (at any depth of
// v's struct types) and trailing data.
func decodeStrict(path string, b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s: near byte %d: %w", path, dec.InputOffset(), err)
	}
	if dec.More() {
		return fmt.Errorf("%s: trailing data after the JSON object", path)
	}
	return nil
}

// Param is a trajectory parameter: its name, shape and initial value.
type Param struct {
	Name  string    `json:"name"`
	Shape []int     `json:"shape"`
	Init  []float64 `json:"init"`
}

// Size returns the number of entries of the parameter.
func (p Param) Size() int { return shapeSize(p.Shape) }

func shapeSize(s []int) int {
	n := 1
	for _, v := range s {
		n *= v
	}
	return n
}

// Trajectory is an "optimizer-trajectory" file. Hyperparameters are read
// with Float, Floats and Bool, which record what was read, so that
// CheckHyperConsumed can refuse a hyperparameter nobody used.
type Trajectory struct {
	// Path is the file the trajectory was read from.
	Path string `json:"-"`

	Kind      string                     `json:"kind"`
	Optimizer string                     `json:"optimizer"`
	Hyper     map[string]json.RawMessage `json:"hyper"`
	Params    []Param                    `json:"params"`
	Problem   Problem                    `json:"problem"`
	Steps     []Step                     `json:"steps"`

	// Informational fields (checked for type only; Dtype must be float64).
	Description    string `json:"description"`
	Reference      string `json:"reference"`
	ReferenceNotes string `json:"reference_notes"`
	Dtype          string `json:"dtype"`
	Seed           int64  `json:"seed"`
	RNG            string `json:"rng"`

	consumed map[string]bool
}

// Problem is the quadratic L(θ) = ½θᵀAθ + bᵀθ (and, for Sophia, the second
// quadratic whose gradient stands in for the sampled-label gradient).
type Problem struct {
	Type         string      `json:"type"`
	Definiteness string      `json:"definiteness"`
	A            [][]float64 `json:"A"`
	B            []float64   `json:"b"`
	AHessian     [][]float64 `json:"A_hessian"`
	BHessian     []float64   `json:"b_hessian"`
}

// Step is one recorded optimizer step. Fields a file does not record are
// nil. State is the raw "state" object; LoadTrajectory splits it into
// StateStep (the reference's step counter) and StateVecs (the rest).
type Step struct {
	Loss        *float64                   `json:"loss"`
	Grad        []float64                  `json:"grad"`
	ParamsAfter []float64                  `json:"params_after"`
	State       map[string]json.RawMessage `json:"state"`

	Probe          []float64 `json:"probe"`            // AdaHessian, SophiaH: the probe z
	HZ             []float64 `json:"hz"`               // H·z
	HessianDiagEst []float64 `json:"hessian_diag_est"` // AdaHessian's D
	HessianGrad    []float64 `json:"hessian_grad"`     // SophiaG: the sampled-label gradient stand-in
	GUsed          []float64 `json:"g_used"`           // M-FAC: grad + wd·θ
	RingSlot       *int      `json:"ring_slot"`        // M-FAC: the window row overwritten
	IHVP           []float64 `json:"ihvp"`             // M-FAC: F⁻¹·g_used

	StateStep *float64             `json:"-"`
	StateVecs map[string][]float64 `json:"-"`
}

// Extras returns the names of the optimizer-specific per-step fields this
// step records (probe, hz, hessian_diag_est, hessian_grad, g_used,
// ring_slot, ihvp).
func (s *Step) Extras() []string {
	var out []string
	add := func(name string, present bool) {
		if present {
			out = append(out, name)
		}
	}
	add("probe", s.Probe != nil)
	add("hz", s.HZ != nil)
	add("hessian_diag_est", s.HessianDiagEst != nil)
	add("hessian_grad", s.HessianGrad != nil)
	add("g_used", s.GUsed != nil)
	add("ring_slot", s.RingSlot != nil)
	add("ihvp", s.IHVP != nil)
	return out
}

// StateKeys returns the sorted names of the step's state entries.
func (s *Step) StateKeys() []string {
	var out []string
	for k := range s.State {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Dim returns d, the length of the flattened parameter vector.
func (t *Trajectory) Dim() int {
	d := 0
	for _, p := range t.Params {
		d += p.Size()
	}
	return d
}

// Errorf returns an error prefixed with the file name and the field.
func (t *Trajectory) Errorf(field, format string, args ...any) error {
	return fmt.Errorf("%s: %s: %s", filepath.Base(t.Path), field, fmt.Sprintf(format, args...))
}

// LoadTrajectory reads an optimizer-trajectory file strictly (unknown fields
// anywhere are errors) and checks its structure: kind, dtype, parameter
// sizes, the problem's dimensions, at least one step, and the length of
// every per-step vector and state entry. Which hyperparameters, state
// entries and per-step extras an optimizer needs is the caller's to check
// (CheckHyperConsumed, and the tests' per-optimizer tables).
func LoadTrajectory(path string) (*Trajectory, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	tr := &Trajectory{Path: path, consumed: map[string]bool{}}
	if err := decodeStrict(filepath.Base(path), b, tr); err != nil {
		return nil, err
	}
	if err := tr.validate(); err != nil {
		return nil, err
	}
	return tr, nil
}

func (t *Trajectory) validate() error {
	if t.Kind != KindTrajectory {
		return t.Errorf("kind", "%q, want %q", t.Kind, KindTrajectory)
	}
	if t.Optimizer == "" {
		return t.Errorf("optimizer", "missing")
	}
	if t.Dtype != "float64" {
		return t.Errorf("dtype", "%q, want \"float64\"", t.Dtype)
	}
	if t.Hyper == nil {
		return t.Errorf("hyper", "missing")
	}
	if len(t.Params) == 0 {
		return t.Errorf("params", "empty")
	}
	for i, p := range t.Params {
		if p.Name == "" || len(p.Shape) == 0 {
			return t.Errorf(fmt.Sprintf("params[%d]", i), "needs a name and a shape")
		}
		for _, s := range p.Shape {
			if s <= 0 {
				return t.Errorf(fmt.Sprintf("params[%d].shape", i), "%v has a non-positive size", p.Shape)
			}
		}
		if len(p.Init) != p.Size() {
			return t.Errorf(fmt.Sprintf("params[%d].init", i), "%d values for %q of shape %v", len(p.Init), p.Name, p.Shape)
		}
	}
	d := t.Dim()
	pr := t.Problem
	if pr.Type != "quadratic" {
		return t.Errorf("problem.type", "%q, want \"quadratic\"", pr.Type)
	}
	if pr.Definiteness != "SPD" && pr.Definiteness != "indefinite" {
		return t.Errorf("problem.definiteness", "%q, want \"SPD\" or \"indefinite\"", pr.Definiteness)
	}
	if err := t.checkMatrix("problem.A", pr.A, d); err != nil {
		return err
	}
	if err := t.checkVec("problem.b", pr.B, d); err != nil {
		return err
	}
	if (pr.AHessian == nil) != (pr.BHessian == nil) {
		return t.Errorf("problem.A_hessian", "A_hessian and b_hessian must come together")
	}
	if pr.AHessian != nil {
		if err := t.checkMatrix("problem.A_hessian", pr.AHessian, d); err != nil {
			return err
		}
		if err := t.checkVec("problem.b_hessian", pr.BHessian, d); err != nil {
			return err
		}
	}
	if len(t.Steps) == 0 {
		return t.Errorf("steps", "no steps (an empty trajectory checks nothing)")
	}
	for i := range t.Steps {
		if err := t.validateStep(i); err != nil {
			return err
		}
	}
	return nil
}

func (t *Trajectory) validateStep(i int) error {
	st := &t.Steps[i]
	d := t.Dim()
	f := func(name string) string { return fmt.Sprintf("steps[%d].%s", i, name) }
	if st.Loss == nil {
		return t.Errorf(f("loss"), "missing")
	}
	if err := t.checkVec(f("grad"), st.Grad, d); err != nil {
		return err
	}
	if err := t.checkVec(f("params_after"), st.ParamsAfter, d); err != nil {
		return err
	}
	for name, v := range map[string][]float64{"probe": st.Probe, "hz": st.HZ, "hessian_diag_est": st.HessianDiagEst,
		"hessian_grad": st.HessianGrad, "g_used": st.GUsed, "ihvp": st.IHVP} {
		if v != nil {
			if err := t.checkVec(f(name), v, d); err != nil {
				return err
			}
		}
	}
	if st.RingSlot != nil && *st.RingSlot < 0 {
		return t.Errorf(f("ring_slot"), "%d is negative", *st.RingSlot)
	}
	st.StateVecs = map[string][]float64{}
	for _, key := range st.StateKeys() {
		raw := st.State[key]
		if key == "step" {
			var s float64
			if err := json.Unmarshal(raw, &s); err != nil {
				return t.Errorf(f("state.step"), "%s is not a number", raw)
			}
			st.StateStep = &s
			continue
		}
		var v []float64
		if err := json.Unmarshal(raw, &v); err != nil {
			return t.Errorf(f("state."+key), "not a list of numbers: %v", err)
		}
		if err := t.checkVec(f("state."+key), v, d); err != nil {
			return err
		}
		st.StateVecs[key] = v
	}
	return nil
}

func (t *Trajectory) checkVec(field string, v []float64, d int) error {
	if v == nil {
		return t.Errorf(field, "missing")
	}
	if len(v) != d {
		return t.Errorf(field, "%d values, want d = %d", len(v), d)
	}
	return nil
}

func (t *Trajectory) checkMatrix(field string, a [][]float64, d int) error {
	if len(a) != d {
		return t.Errorf(field, "%d rows, want d = %d", len(a), d)
	}
	for i, row := range a {
		if len(row) != d {
			return t.Errorf(fmt.Sprintf("%s[%d]", field, i), "%d columns, want d = %d", len(row), d)
		}
	}
	return nil
}

// Float reads a hyperparameter as a float64 (JSON numbers and booleans) and
// marks it consumed.
func (t *Trajectory) Float(name string) (float64, error) {
	raw, ok := t.Hyper[name]
	if !ok {
		return 0, t.Errorf("hyper."+name, "missing")
	}
	t.consume(name)
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
	return 0, t.Errorf("hyper."+name, "%s is not a number", raw)
}

// Floats reads a hyperparameter that is a list of numbers (such as betas)
// and marks it consumed.
func (t *Trajectory) Floats(name string) ([]float64, error) {
	raw, ok := t.Hyper[name]
	if !ok {
		return nil, t.Errorf("hyper."+name, "missing")
	}
	t.consume(name)
	var f []float64
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, t.Errorf("hyper."+name, "%s is not a list of numbers", raw)
	}
	return f, nil
}

// Bool reads a boolean (or 0/1) hyperparameter and marks it consumed.
func (t *Trajectory) Bool(name string) (bool, error) {
	f, err := t.Float(name)
	return f != 0, err
}

// Has reports whether the file sets the hyperparameter (without consuming it).
func (t *Trajectory) Has(name string) bool {
	_, ok := t.Hyper[name]
	return ok
}

func (t *Trajectory) consume(name string) {
	if t.consumed == nil {
		t.consumed = map[string]bool{}
	}
	t.consumed[name] = true
}

// CheckHyperConsumed returns an error naming the file and every
// hyperparameter that no Float, Floats or Bool call has read: a
// hyperparameter the code under test does not consume would otherwise be
// silently ignored.
func (t *Trajectory) CheckHyperConsumed() error {
	var left []string
	for k := range t.Hyper {
		if !t.consumed[k] {
			left = append(left, "hyper."+k)
		}
	}
	if len(left) == 0 {
		return nil
	}
	sort.Strings(left)
	return fmt.Errorf("%s: %s: not consumed by the %s construction (unknown hyperparameter)", filepath.Base(t.Path), strings.Join(left, ", "), t.Optimizer)
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

// RelErr is the norm-wise relative error of testdata/golden/README.md:
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
