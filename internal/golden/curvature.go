package golden

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/curvopt/curvopt/nn"
	"gorgonia.org/tensor"
)

// NamedTensor is a named, shaped tensor of a curvature file. Shape is absent
// for per-parameter fields, whose shape is the parameter's.
type NamedTensor struct {
	Name  string    `json:"name"`
	Shape []int     `json:"shape"`
	Data  []float64 `json:"data"`
}

// Curvature is a "curvature" file (curv_*.json): a model spec, its
// parameters, a batch, and torch's loss, gradient, H·v, Hutchinson estimate,
// sampled-label gradient and exact Hessian quantities. Per-parameter fields
// are lists in model order.
type Curvature struct {
	// Path is the file the data was read from.
	Path string `json:"-"`

	Kind           string        `json:"kind"`
	Model          nn.Spec       `json:"model"`
	Params         []NamedTensor `json:"params"`
	X              NamedTensor   `json:"x"`
	Labels         []int         `json:"labels"`
	Logits         NamedTensor   `json:"logits"`
	Loss           float64       `json:"loss"`
	Grad           []NamedTensor `json:"grad"`
	V              []NamedTensor `json:"v"`
	HV             []NamedTensor `json:"hv"`
	Probe          []NamedTensor `json:"probe"`
	HutchinsonDiag []NamedTensor `json:"hutchinson_diag"`
	SampledLabels  []int         `json:"sampled_labels"`
	GNBGrad        []NamedTensor `json:"gnb_grad"`
	HessianDiag    []NamedTensor `json:"hessian_diag"`
	TopEigenvalues []float64     `json:"top_eigenvalues"`
	MinEigenvalue  float64       `json:"min_eigenvalue"`
	Trace          float64       `json:"trace"`
	HessianNormFro float64       `json:"hessian_norm_fro"`

	// Informational fields (Dtype must be float64).
	Description string `json:"description"`
	Reference   string `json:"reference"`
	Dtype       string `json:"dtype"`
	Seed        int64  `json:"seed"`
}

// curvatureRequired lists the fields every curvature file must have.
var curvatureRequired = []string{"kind", "model", "params", "x", "labels", "logits", "loss", "grad", "v", "hv",
	"probe", "hutchinson_diag", "sampled_labels", "gnb_grad", "hessian_diag", "top_eigenvalues",
	"min_eigenvalue", "trace", "hessian_norm_fro", "dtype"}

// LoadCurvature reads a curvature file strictly (unknown fields anywhere are
// errors, every data field is required) and checks the length of every
// tensor: parameters against their shapes, x and logits against theirs,
// labels and sampled labels against the batch size, and every
// per-parameter list against the parameters' names and sizes.
func LoadCurvature(path string) (*Curvature, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	base := filepath.Base(path)
	c := &Curvature{Path: path}
	if err := decodeStrict(base, b, c); err != nil {
		return nil, err
	}
	var present map[string]json.RawMessage
	if err := json.Unmarshal(b, &present); err != nil {
		return nil, fmt.Errorf("%s: %w", base, err)
	}
	for _, k := range curvatureRequired {
		if _, ok := present[k]; !ok {
			return nil, c.errorf(k, "missing")
		}
	}
	if c.Kind != KindCurvature {
		return nil, c.errorf("kind", "%q, want %q", c.Kind, KindCurvature)
	}
	if c.Dtype != "float64" {
		return nil, c.errorf("dtype", "%q, want \"float64\"", c.Dtype)
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Curvature) errorf(field, format string, args ...any) error {
	return fmt.Errorf("%s: %s: %s", filepath.Base(c.Path), field, fmt.Sprintf(format, args...))
}

func (c *Curvature) validate() error {
	if len(c.Params) == 0 {
		return c.errorf("params", "empty")
	}
	names := make([]string, len(c.Params))
	sizes := make([]int, len(c.Params))
	for i, p := range c.Params {
		if p.Name == "" || len(p.Shape) == 0 || len(p.Data) != shapeSize(p.Shape) {
			return c.errorf(fmt.Sprintf("params[%d]", i), "%q: %d values for shape %v", p.Name, len(p.Data), p.Shape)
		}
		names[i], sizes[i] = p.Name, len(p.Data)
	}
	for _, nt := range []struct {
		field string
		t     NamedTensor
	}{{"x", c.X}, {"logits", c.Logits}} {
		if len(nt.t.Shape) < 2 || len(nt.t.Data) != shapeSize(nt.t.Shape) {
			return c.errorf(nt.field, "%d values for shape %v", len(nt.t.Data), nt.t.Shape)
		}
	}
	n := c.X.Shape[0]
	if len(c.Labels) != n {
		return c.errorf("labels", "%d labels for a batch of %d", len(c.Labels), n)
	}
	if len(c.SampledLabels) != n {
		return c.errorf("sampled_labels", "%d labels for a batch of %d", len(c.SampledLabels), n)
	}
	if len(c.Logits.Shape) != 2 || c.Logits.Shape[0] != n {
		return c.errorf("logits.shape", "%v, want [%d, classes]", c.Logits.Shape, n)
	}
	for _, l := range append(append([]int(nil), c.Labels...), c.SampledLabels...) {
		if l < 0 || l >= c.Logits.Shape[1] {
			return c.errorf("labels", "label %d outside [0, %d)", l, c.Logits.Shape[1])
		}
	}
	for _, f := range []struct {
		field string
		ts    []NamedTensor
	}{{"grad", c.Grad}, {"v", c.V}, {"hv", c.HV}, {"probe", c.Probe}, {"hutchinson_diag", c.HutchinsonDiag},
		{"gnb_grad", c.GNBGrad}, {"hessian_diag", c.HessianDiag}} {
		if _, err := Flat(f.ts, names, sizes); err != nil {
			return c.errorf(f.field, "%v", err)
		}
	}
	if len(c.TopEigenvalues) == 0 {
		return c.errorf("top_eigenvalues", "empty")
	}
	return nil
}

// NewModel builds the file's model in float64 with the file's parameter
// values, checking that names and shapes match the spec's parameters.
func (c *Curvature) NewModel() (*nn.Model, error) {
	d, err := c.Model.DAG()
	if err != nil {
		return nil, c.errorf("model", "%v", err)
	}
	m, err := nn.New(d, tensor.Float64, nil, 0)
	if err != nil {
		return nil, c.errorf("model", "%v", err)
	}
	ps := m.Params()
	if len(ps) != len(c.Params) {
		return nil, c.errorf("params", "the model spec has %d parameters, the file %d", len(ps), len(c.Params))
	}
	for i, p := range ps {
		g := c.Params[i]
		if g.Name != p.Name || !p.Value.Shape().Eq(tensor.Shape(g.Shape)) || len(g.Data) != p.Value.Shape().TotalSize() {
			return nil, c.errorf(fmt.Sprintf("params[%d]", i), "file has %q %v, the model spec %q %v", g.Name, g.Shape, p.Name, p.Value.Shape())
		}
		copy(p.Value.Float64s(), g.Data)
	}
	return m, nil
}

// Input returns the batch x as a new float64 tensor.
func (c *Curvature) Input() *tensor.Dense {
	return tensor.New(tensor.WithShape(c.X.Shape...), tensor.WithBacking(append([]float64(nil), c.X.Data...)))
}

// Flat concatenates per-parameter tensors in the order of names (model
// order), checking that names match and sizes are the given ones.
func Flat(ts []NamedTensor, names []string, sizes []int) ([]float64, error) {
	if len(ts) != len(names) {
		return nil, fmt.Errorf("%d entries for %d parameters", len(ts), len(names))
	}
	var out []float64
	for i, t := range ts {
		if t.Name != names[i] || len(t.Data) != sizes[i] {
			return nil, fmt.Errorf("entry %d is %q with %d values, want %q with %d", i, t.Name, len(t.Data), names[i], sizes[i])
		}
		out = append(out, t.Data...)
	}
	return out, nil
}
