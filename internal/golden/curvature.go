package golden

import (
	"encoding/json"
	"fmt"
	"os"

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
}

// LoadCurvature reads a curvature file.
func LoadCurvature(path string) (*Curvature, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c Curvature
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if c.Kind != "curvature" {
		return nil, fmt.Errorf("%s: kind %q, want curvature", path, c.Kind)
	}
	return &c, nil
}

// NewModel builds the file's model in float64 with the file's parameter
// values, checking that names and shapes match the spec's parameters.
func (c *Curvature) NewModel() (*nn.Model, error) {
	m, err := nn.New(c.Model, tensor.Float64, nil)
	if err != nil {
		return nil, err
	}
	ps := m.Params()
	if len(ps) != len(c.Params) {
		return nil, fmt.Errorf("the spec has %d parameters, the file %d", len(ps), len(c.Params))
	}
	for i, p := range ps {
		g := c.Params[i]
		if g.Name != p.Name || !p.Value.Shape().Eq(tensor.Shape(g.Shape)) || len(g.Data) != p.Value.Shape().TotalSize() {
			return nil, fmt.Errorf("parameter %d: file has %q %v, the spec %q %v", i, g.Name, g.Shape, p.Name, p.Value.Shape())
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
