package nn

import (
	"errors"
	"fmt"

	"github.com/curvopt/curvopt/internal/strictjson"
)

// Layer types understood by Spec: each is the DAG node op of the same name.
const (
	LayerLinear      = "linear"
	LayerConv2d      = "conv2d"
	LayerReLU        = "relu"
	LayerTanh        = "tanh"
	LayerMaxPool2d   = "maxpool2d"
	LayerFlatten     = "flatten"
	LayerBatchNorm2d = "batchnorm2d"
)

// Spec is the layer-list shorthand for a chain-shaped DAG (Spec.DAG
// converts it): a feed-forward model as a list of layers, in the format of
// the curvature golden files (and of cmd/train model files):
//
//	{"input_shape":[3,8,8],"layers":[{"type":"conv2d","name":"c1","in":3,"out":4,"kernel":3,"stride":1,"pad":1},
//	  {"type":"relu"},{"type":"maxpool2d","kernel":2,"stride":2},{"type":"flatten"},
//	  {"type":"linear","name":"fc","in":64,"out":10}],"loss":"cross_entropy"}
//
// InputShape is the shape of one example ([features] or [C, H, W]) or, as in
// the golden files, of a whole batch ([N, features] or [N, C, H, W]); the
// batch axis is recognised from the rank the first linear (rank 1) or
// spatial (rank 3) layer expects, and N is then informational only — graphs
// are built for any batch size. Parameters are named "<name>.weight" and
// "<name>.bias".
type Spec struct {
	InputShape []int       `json:"input_shape"`
	Layers     []LayerSpec `json:"layers"`
	// Loss is "cross_entropy" (the default when empty): the mean softmax
	// cross-entropy over the batch on integer labels.
	Loss string `json:"loss,omitempty"`
}

// LayerSpec is one layer of a Spec. Which fields matter depends on Type:
//
//	linear:      Name, In, Out          weight [In, Out], bias [Out]; y = x·W + b
//	conv2d:      Name, In, Out, Kernel, Stride (default 1), Pad
//	             weight [Out, In, Kernel, Kernel], bias [Out]; NCHW cross-correlation
//	relu, tanh:  –
//	maxpool2d:   Kernel, Stride (default Kernel); no padding, floor output size
//	flatten:     –                      [N, C, H, W] → [N, C·H·W]
//	batchnorm2d: Name, Channels, Eps (default 1e-5), Momentum (default 0.1)
//	             weight γ [C], bias β [C]
type LayerSpec struct {
	Type     string  `json:"type"`
	Name     string  `json:"name,omitempty"`
	In       int     `json:"in,omitempty"`
	Out      int     `json:"out,omitempty"`
	Kernel   int     `json:"kernel,omitempty"`
	Stride   int     `json:"stride,omitempty"`
	Pad      int     `json:"pad,omitempty"`
	Channels int     `json:"channels,omitempty"`
	Eps      float64 `json:"eps,omitempty"`
	Momentum float64 `json:"momentum,omitempty"`
}

// ParamInfo names one parameter of a model and gives its shape and fan-in
// (the number of inputs of one output unit, used for initialisation).
type ParamInfo struct {
	Name  string
	Shape []int
	FanIn int
	// Kind is "weight", "bias", "bn_weight" or "bn_bias".
	Kind string
}

// DAG converts the layer list to the DAG it is shorthand for, the one
// model description the rest of the package works with: one node per
// layer, in order, each reading the previous one (the first reads the
// input), the last one the output. The input shape is the example's (see
// ExampleShape), the node ops are the layer types, and the parameters keep
// their names and order ("<name>.weight", "<name>.bias", layers in order),
// as does their initialisation (New draws them in the same order from the
// same distributions). A layer without parameters keeps its name when it
// has one not used elsewhere; otherwise its node is named "<type>_<index>"
// (with "_" appended while that name is taken).
//
// DAG validates the list: the layer-list rules (a name on every layer with
// parameters, each used once; In and Channels equal to the size the layer
// receives; a linear layer on a flat input; a flat output) and then every
// shape, as DAG.Check does. Errors name the layer by index, type and name.
func (s Spec) DAG() (DAG, error) {
	if err := s.checkLimits(); err != nil {
		return DAG{}, err
	}
	if s.Loss != "" && s.Loss != "cross_entropy" {
		return DAG{}, fmt.Errorf("nn: spec: unsupported loss %q (want cross_entropy)", s.Loss)
	}
	for _, d := range s.InputShape {
		if d < 1 {
			return DAG{}, fmt.Errorf("nn: spec: input_shape %v has a non-positive dimension", s.InputShape)
		}
	}
	if err := checkElements("nn: spec: input_shape", s.InputShape...); err != nil {
		return DAG{}, err
	}
	if len(s.Layers) == 0 {
		return DAG{}, fmt.Errorf("nn: spec: no layers")
	}
	ex, err := s.ExampleShape()
	if err != nil {
		return DAG{}, err
	}
	where := func(i int) string {
		l := s.Layers[i]
		return fmt.Sprintf("nn: spec: layer %d (%s %q)", i, l.Type, l.Name)
	}
	named := map[string]bool{}
	for i, l := range s.Layers {
		switch l.Type {
		case LayerLinear, LayerConv2d, LayerBatchNorm2d: // hasParams
			if l.Name == "" {
				return DAG{}, fmt.Errorf("%s: needs a name", where(i))
			}
			if named[l.Name] || l.Name == DAGInput {
				return DAG{}, fmt.Errorf("%s: duplicate name", where(i))
			}
			named[l.Name] = true
		case LayerReLU, LayerTanh, LayerMaxPool2d, LayerFlatten:
		default:
			return DAG{}, fmt.Errorf("%s: unknown layer type", where(i))
		}
	}
	d := s.convert(ex)
	info, err := d.check()
	var ne *nodeError
	var oe *outputError
	switch {
	case errors.As(err, &ne):
		return DAG{}, fmt.Errorf("%s: %w", where(ne.index), ne.err)
	case errors.As(err, &oe):
		return DAG{}, fmt.Errorf("nn: spec: output shape %v, want [classes] (add flatten and linear layers)", oe.shape)
	case err != nil:
		return DAG{}, fmt.Errorf("nn: spec: %w", err)
	}
	for i, l := range s.Layers {
		in := info.shapes[d.Nodes[i].Inputs[0]]
		switch {
		case l.Type == LayerLinear && (len(in) != 1 || in[0] != l.In):
			return DAG{}, fmt.Errorf("%s: input shape %v, layer wants [%d] and out ≥ 1 (got %d)", where(i), in, l.In, l.Out)
		case l.Type == LayerConv2d && in[0] != l.In:
			return DAG{}, fmt.Errorf("%s: input shape %v, layer wants [%d, H, W], out ≥ 1, kernel ≥ 1, pad ≥ 0", where(i), in, l.In)
		case l.Type == LayerBatchNorm2d && in[0] != l.Channels:
			return DAG{}, fmt.Errorf("%s: input shape %v, layer wants [%d, H, W]", where(i), in, l.Channels)
		}
	}
	if out := info.shapes[d.Output]; len(out) != 1 {
		return DAG{}, fmt.Errorf("nn: spec: output shape %v, want [classes] (add flatten and linear layers)", out)
	}
	return d, nil
}

// ExampleShape returns the shape of one input example: InputShape without
// its batch axis, if it has one (see Spec).
func (s Spec) ExampleShape() ([]int, error) {
	want := 0
	for _, l := range s.Layers {
		switch l.Type {
		case LayerLinear:
			want = 1
		case LayerConv2d, LayerMaxPool2d, LayerBatchNorm2d:
			want = 3
		case LayerFlatten:
			// [N, ...] → [N, Π ...]: any rank ≥ 1 works; assume no batch axis.
			want = -1
		default:
			continue
		}
		break
	}
	n := len(s.InputShape)
	switch {
	case n == 0:
		return nil, fmt.Errorf("nn: spec: empty input_shape")
	case want > 0 && n == want+1:
		return append([]int{}, s.InputShape[1:]...), nil
	case want > 0 && n != want:
		return nil, fmt.Errorf("nn: spec: input_shape %v has rank %d, first layer wants rank %d (or %d with a batch axis)", s.InputShape, n, want, want+1)
	}
	return append([]int{}, s.InputShape...), nil
}

// MLP returns the DAG of a multilayer perceptron in → hidden[0] → … →
// classes with ReLU between linear layers (named fc1, fc2, …): MLPSpec's
// layer list, converted. MLP(784, []int{128}, 10) is the 784-128-10
// network of the benchmarks. Sizes below 1 give a DAG that Check refuses.
func MLP(in int, hidden []int, classes int) DAG { return builtin(MLPSpec(in, hidden, classes)) }

// MLPSpec is MLP's layer list.
func MLPSpec(in int, hidden []int, classes int) Spec {
	s := Spec{InputShape: []int{in}, Loss: "cross_entropy"}
	prev := in
	for i, h := range hidden {
		s.Layers = append(s.Layers, LayerSpec{Type: LayerLinear, Name: fmt.Sprintf("fc%d", i+1), In: prev, Out: h}, LayerSpec{Type: LayerReLU})
		prev = h
	}
	s.Layers = append(s.Layers, LayerSpec{Type: LayerLinear, Name: fmt.Sprintf("fc%d", len(hidden)+1), In: prev, Out: classes})
	return s
}

// CNN returns the DAG of the small CIFAR-style network of the benchmarks for
// channels×size×size inputs: conv 3×3 pad 1 (channels→32) → ReLU → maxpool
// 2 → conv 3×3 pad 1 (32→64) → ReLU → maxpool 2 → flatten → linear →
// classes. CNN(3, 32, 10) takes CIFAR images (linear 4096→10), CNN(1, 28,
// 10) MNIST-style ones (linear 3136→10). It is CNNSpec's layer list,
// converted; sizes too small for the network give a DAG that Check refuses.
func CNN(channels, size, classes int) DAG { return builtin(CNNSpec(channels, size, classes)) }

// CNNSpec is CNN's layer list.
func CNNSpec(channels, size, classes int) Spec {
	s4 := size / 2 / 2
	return Spec{
		InputShape: []int{channels, size, size},
		Layers: []LayerSpec{
			{Type: LayerConv2d, Name: "conv1", In: channels, Out: 32, Kernel: 3, Stride: 1, Pad: 1},
			{Type: LayerReLU},
			{Type: LayerMaxPool2d, Kernel: 2, Stride: 2},
			{Type: LayerConv2d, Name: "conv2", In: 32, Out: 64, Kernel: 3, Stride: 1, Pad: 1},
			{Type: LayerReLU},
			{Type: LayerMaxPool2d, Kernel: 2, Stride: 2},
			{Type: LayerFlatten},
			{Type: LayerLinear, Name: "fc", In: 64 * s4 * s4, Out: classes},
		},
		Loss: "cross_entropy",
	}
}

// convert returns the DAG of the layer list for example shape ex (see
// DAG), without validating anything.
func (s Spec) convert(ex []int) DAG {
	taken := map[string]bool{DAGInput: true}
	for _, l := range s.Layers {
		if hasParams(l.Type) {
			taken[l.Name] = true
		}
	}
	d := DAG{InputShape: ex, Loss: s.Loss, Nodes: make([]DAGNode, 0, len(s.Layers))}
	prev := DAGInput
	for i, l := range s.Layers {
		n := DAGNode{Name: l.Name, Op: l.Type, Inputs: []string{prev}}
		switch l.Type {
		case LayerLinear:
			n.Out = l.Out
		case LayerConv2d:
			n.Out, n.Kernel, n.Stride, n.Pad = l.Out, l.Kernel, l.Stride, l.Pad
		case LayerMaxPool2d:
			n.Kernel, n.Stride = l.Kernel, l.Stride
		case LayerBatchNorm2d:
			n.Eps, n.Momentum = l.Eps, l.Momentum
		}
		if !hasParams(l.Type) {
			if n.Name == "" || taken[n.Name] {
				n.Name = fmt.Sprintf("%s_%d", l.Type, i)
				for taken[n.Name] {
					n.Name += "_"
				}
			}
			taken[n.Name] = true
		}
		d.Nodes = append(d.Nodes, n)
		prev = n.Name
	}
	d.Output = prev
	return d
}

// hasParams reports whether layers of type t have parameters (and so need
// a name of their own).
func hasParams(t string) bool {
	return t == LayerLinear || t == LayerConv2d || t == LayerBatchNorm2d
}

// builtin converts a built-in layer list without validating its sizes (the
// caller's: Check, New and ParseDAG report them), so that MLP and CNN
// return a description even for sizes no model can have.
func builtin(s Spec) DAG {
	ex, err := s.ExampleShape()
	if err != nil {
		ex = s.InputShape
	}
	return s.convert(ex)
}

// ParseSpec decodes a JSON spec (as written by encoding/json from Spec, or
// the "model" object of a curvature golden file) and validates it with
// DAG. The JSON is read strictly (internal/strictjson): exactly one value,
// only Spec's keys spelled as their tags, no key twice, integers that fit an
// int; a syntax error, a truncated document or trailing data is reported
// with its line and column.
func ParseSpec(data []byte) (Spec, error) {
	var s Spec
	if err := strictjson.Decode(data, &s); err != nil {
		return Spec{}, fmt.Errorf("nn: parsing spec: %w", err)
	}
	if _, err := s.DAG(); err != nil {
		return Spec{}, err
	}
	return s, nil
}
