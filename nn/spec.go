package nn

import (
	"fmt"

	"github.com/curvopt/curvopt/internal/strictjson"
)

// Layer types understood by Spec.
const (
	LayerLinear      = "linear"
	LayerConv2d      = "conv2d"
	LayerReLU        = "relu"
	LayerTanh        = "tanh"
	LayerMaxPool2d   = "maxpool2d"
	LayerFlatten     = "flatten"
	LayerBatchNorm2d = "batchnorm2d"
)

// Spec describes a feed-forward model as a list of layers, in the format of
// the curvature golden files (and of cmd/train spec files):
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

func (l LayerSpec) stride() int {
	if l.Stride > 0 {
		return l.Stride
	}
	if l.Type == LayerMaxPool2d {
		return l.Kernel
	}
	return 1
}

func (l LayerSpec) eps() float64 {
	if l.Eps > 0 {
		return l.Eps
	}
	return 1e-5
}

func (l LayerSpec) momentum() float64 {
	if l.Momentum > 0 {
		return l.Momentum
	}
	return 0.1
}

// Check validates the spec by propagating shapes through the layers. It
// returns the parameters in model order and the number of classes (the
// width of the final [N, classes] output). Every shape it derives (an
// example, a layer's output, a parameter, a convolution's columns) must
// have at most MaxTensorElements elements: a larger one is refused, naming
// the layer, before any arithmetic on it could overflow.
func (s Spec) Check() ([]ParamInfo, int, error) {
	in, err := s.check()
	if err != nil {
		return nil, 0, err
	}
	return in.params, in.classes, nil
}

// specInfo is what check derives: the parameters in model order, the
// number of classes, and each layer's per-example input and output shapes.
type specInfo struct {
	params   []ParamInfo
	classes  int
	example  []int
	ins, out [][]int
}

func (s Spec) check() (*specInfo, error) {
	if err := s.checkLimits(); err != nil {
		return nil, err
	}
	if s.Loss != "" && s.Loss != "cross_entropy" {
		return nil, fmt.Errorf("nn: spec: unsupported loss %q (want cross_entropy)", s.Loss)
	}
	for _, d := range s.InputShape {
		if d < 1 {
			return nil, fmt.Errorf("nn: spec: input_shape %v has a non-positive dimension", s.InputShape)
		}
	}
	if err := checkElements("nn: spec: input_shape", s.InputShape...); err != nil {
		return nil, err
	}
	if len(s.Layers) == 0 {
		return nil, fmt.Errorf("nn: spec: no layers")
	}
	shape, err := s.ExampleShape()
	if err != nil {
		return nil, err
	}
	info := &specInfo{example: append([]int{}, shape...)}
	names := map[string]bool{}
	for i, l := range s.Layers {
		where := fmt.Sprintf("nn: spec: layer %d (%s %q)", i, l.Type, l.Name)
		needName := func() error {
			if l.Name == "" {
				return fmt.Errorf("%s: needs a name", where)
			}
			if names[l.Name] {
				return fmt.Errorf("%s: duplicate name", where)
			}
			names[l.Name] = true
			return nil
		}
		in := shape
		var ps []ParamInfo
		switch l.Type {
		case LayerLinear:
			if err := needName(); err != nil {
				return nil, err
			}
			if len(shape) != 1 || shape[0] != l.In || l.Out < 1 {
				return nil, fmt.Errorf("%s: input shape %v, layer wants [%d] and out ≥ 1 (got %d)", where, shape, l.In, l.Out)
			}
			ps = []ParamInfo{{Name: l.Name + ".weight", Shape: []int{l.In, l.Out}, FanIn: l.In, Kind: "weight"},
				{Name: l.Name + ".bias", Shape: []int{l.Out}, FanIn: l.In, Kind: "bias"}}
			shape = []int{l.Out}
		case LayerConv2d:
			if err := needName(); err != nil {
				return nil, err
			}
			if len(shape) != 3 || shape[0] != l.In || l.Out < 1 || l.Kernel < 1 || l.Pad < 0 || l.Stride < 0 {
				return nil, fmt.Errorf("%s: input shape %v, layer wants [%d, H, W], out ≥ 1, kernel ≥ 1, pad ≥ 0", where, shape, l.In)
			}
			for _, e := range []error{checkSize("pad", l.Pad), checkSize("kernel", l.Kernel), checkSize("stride", l.Stride)} {
				if e != nil {
					return nil, fmt.Errorf("%s: %w", where, e)
				}
			}
			st := l.stride()
			h, w := shape[1]+2*l.Pad, shape[2]+2*l.Pad
			if h < l.Kernel || w < l.Kernel {
				return nil, fmt.Errorf("%s: kernel %d larger than padded input %dx%d", where, l.Kernel, h, w)
			}
			ps = []ParamInfo{{Name: l.Name + ".weight", Shape: []int{l.Out, l.In, l.Kernel, l.Kernel}, Kind: "weight"},
				{Name: l.Name + ".bias", Shape: []int{l.Out}, Kind: "bias"}}
			if err := checkParams(ps); err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
			fan := l.In * l.Kernel * l.Kernel
			ps[0].FanIn, ps[1].FanIn = fan, fan
			shape = []int{l.Out, (h-l.Kernel)/st + 1, (w-l.Kernel)/st + 1}
			if err := checkElements("im2col columns [C·K·K, OH·OW] =", fan, shape[1], shape[2]); err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
		case LayerReLU, LayerTanh:
		case LayerMaxPool2d:
			if len(shape) != 3 || l.Kernel < 1 || l.Stride < 0 || l.Kernel > shape[1] || l.Kernel > shape[2] {
				return nil, fmt.Errorf("%s: input shape %v does not fit kernel %d", where, shape, l.Kernel)
			}
			st := l.stride()
			shape = []int{shape[0], (shape[1]-l.Kernel)/st + 1, (shape[2]-l.Kernel)/st + 1}
		case LayerFlatten:
			// The input's count was checked (as the example or the previous
			// layer's output), so the product cannot overflow.
			n := 1
			for _, d := range shape {
				n *= d
			}
			shape = []int{n}
		case LayerBatchNorm2d:
			if err := needName(); err != nil {
				return nil, err
			}
			if len(shape) != 3 || shape[0] != l.Channels {
				return nil, fmt.Errorf("%s: input shape %v, layer wants [%d, H, W]", where, shape, l.Channels)
			}
			ps = []ParamInfo{{Name: l.Name + ".weight", Shape: []int{l.Channels}, FanIn: 1, Kind: "bn_weight"},
				{Name: l.Name + ".bias", Shape: []int{l.Channels}, FanIn: 1, Kind: "bn_bias"}}
		default:
			return nil, fmt.Errorf("%s: unknown layer type", where)
		}
		if err := checkParams(ps); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if err := checkElements("output shape", shape...); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		info.params = append(info.params, ps...)
		info.ins, info.out = append(info.ins, in), append(info.out, shape)
	}
	if len(shape) != 1 {
		return nil, fmt.Errorf("nn: spec: output shape %v, want [classes] (add flatten and linear layers)", shape)
	}
	info.classes = shape[0]
	return info, nil
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

// MLP returns the spec of a multilayer perceptron in → hidden[0] → … →
// classes with ReLU between linear layers (named fc1, fc2, …). MLP(784,
// []int{128}, 10) is the 784-128-10 network of the benchmarks.
func MLP(in int, hidden []int, classes int) Spec {
	s := Spec{InputShape: []int{in}, Loss: "cross_entropy"}
	prev := in
	for i, h := range hidden {
		s.Layers = append(s.Layers, LayerSpec{Type: LayerLinear, Name: fmt.Sprintf("fc%d", i+1), In: prev, Out: h}, LayerSpec{Type: LayerReLU})
		prev = h
	}
	s.Layers = append(s.Layers, LayerSpec{Type: LayerLinear, Name: fmt.Sprintf("fc%d", len(hidden)+1), In: prev, Out: classes})
	return s
}

// CNN returns the spec of the small CIFAR-style network of the benchmarks for
// channels×size×size inputs: conv 3×3 pad 1 (channels→32) → ReLU → maxpool
// 2 → conv 3×3 pad 1 (32→64) → ReLU → maxpool 2 → flatten → linear →
// classes. CNN(3, 32, 10) takes CIFAR images (linear 4096→10), CNN(1, 28,
// 10) MNIST-style ones (linear 3136→10).
func CNN(channels, size, classes int) Spec {
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

// ParseSpec decodes a JSON spec (as written by encoding/json from Spec, or
// the "model" object of a curvature golden file) and validates it with
// Check. The JSON is read strictly (internal/strictjson): exactly one value,
// only Spec's keys spelled as their tags, no key twice, integers that fit an
// int; a syntax error, a truncated document or trailing data is reported
// with its line and column.
func ParseSpec(data []byte) (Spec, error) {
	var s Spec
	if err := strictjson.Decode(data, &s); err != nil {
		return Spec{}, fmt.Errorf("nn: parsing spec: %w", err)
	}
	if _, _, err := s.Check(); err != nil {
		return Spec{}, err
	}
	return s, nil
}
