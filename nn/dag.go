package nn

import (
	"fmt"

	"github.com/curvopt/curvopt/internal/strictjson"
)

// Node ops understood by DAG.
const (
	OpConv2d        = "conv2d"
	OpBatchNorm2d   = "batchnorm2d"
	OpLinear        = "linear"
	OpLayerNorm     = "layernorm"
	OpEmbedding     = "embedding"
	OpPosEmbedding  = "pos_embedding"
	OpAttention     = "attention"
	OpAdd           = "add"
	OpReLU          = "relu"
	OpTanh          = "tanh"
	OpSigmoid       = "sigmoid"
	OpGELU          = "gelu"
	OpGELUTanh      = "gelu_tanh"
	OpAvgPool2d     = "avgpool2d"
	OpGlobalAvgPool = "global_avgpool"
	OpMaxPool2d     = "maxpool2d"
	OpFlatten       = "flatten"
	OpDropout       = "dropout"
)

// DAGInput is the name by which nodes refer to the model's input.
const DAGInput = "input"

// DAG is the one description of a model: its layers as the nodes of a
// directed acyclic graph (chains, residual blocks, attention blocks). A
// layer list (Spec) is a shorthand that converts to one (Spec.DAG); MLP,
// CNN, ResNet and GPT return one; ParseModel reads either from JSON:
//
//	{"input_shape":[3,32,32],"nodes":[
//	  {"name":"conv1","op":"conv2d","inputs":["input"],"out":16,"kernel":3,"pad":1,"no_bias":true},
//	  {"name":"bn1","op":"batchnorm2d","inputs":["conv1"]},
//	  {"name":"relu1","op":"relu","inputs":["bn1"]},
//	  {"name":"res","op":"add","inputs":["relu1","conv1"]}, …],
//	 "output":"fc"}
//
// Nodes are listed in an order where every input is defined before it is
// used (the model input is "input"), which makes the graph acyclic by
// construction. Shapes are per example: images [C, H, W], feature vectors
// [F], token sequences [T] (Tokens set: the input holds token ids in
// [0, Tokens) as floats) and sequence activations [T, D]. The output must
// be [classes] or [T, classes]; the latter gives T rows of logits per
// example (next-token prediction), each with its own label.
type DAG struct {
	InputShape []int `json:"input_shape"`
	// Tokens > 0 marks the input as token ids in [0, Tokens).
	Tokens int       `json:"tokens,omitempty"`
	Nodes  []DAGNode `json:"nodes"`
	Output string    `json:"output"`
	// Loss is "cross_entropy" (the default when empty): the mean softmax
	// cross-entropy over all rows of logits.
	Loss string `json:"loss,omitempty"`
}

// DAGNode is one node of a DAG. Which fields matter depends on Op
// (parameters are named "<name>.weight" and "<name>.bias"):
//
//	conv2d:         Out, Kernel, Stride (1), Pad, NoBias    weight [Out, C, K, K]
//	batchnorm2d:    Eps (1e-5), Momentum (0.1)              γ, β [C]; batch statistics in training
//	linear:         Out, NoBias                             weight [In, Out] on the last axis
//	layernorm:      Eps (1e-5)                              γ, β [D] over the last axis
//	embedding:      Out (width D); input tokens [T]          weight [Tokens, D] → [T, D]
//	pos_embedding:  –; input [T, D]                          weight [T, D] added per position
//	attention:      Heads, NoCausal; inputs q, k, v [T, D]   softmax(q·kᵀ/√(D/H) + causal mask)·v per head
//	add:            two or more inputs of one shape          their sum (residual connections)
//	relu, tanh, sigmoid, gelu (erf), gelu_tanh: –
//	avgpool2d, maxpool2d: Kernel, Stride (Kernel)
//	global_avgpool: [C, H, W] → [C];  flatten: → [Π shape]
//	dropout:        P                                       training graphs only
//
// InitStd > 0 initialises the node's weights from N(0, InitStd²) and its
// biases to 0 (GPT-2 style); otherwise weights and biases follow torch's
// defaults (U(±1/√fan_in) for conv2d and linear, N(0, 1) for embeddings).
type DAGNode struct {
	Name     string   `json:"name"`
	Op       string   `json:"op"`
	Inputs   []string `json:"inputs"`
	Out      int      `json:"out,omitempty"`
	Kernel   int      `json:"kernel,omitempty"`
	Stride   int      `json:"stride,omitempty"`
	Pad      int      `json:"pad,omitempty"`
	NoBias   bool     `json:"no_bias,omitempty"`
	Eps      float64  `json:"eps,omitempty"`
	Momentum float64  `json:"momentum,omitempty"`
	Heads    int      `json:"heads,omitempty"`
	NoCausal bool     `json:"no_causal,omitempty"`
	P        float64  `json:"p,omitempty"`
	InitStd  float64  `json:"init_std,omitempty"`
}

func (n DAGNode) stride() int {
	if n.Stride > 0 {
		return n.Stride
	}
	if n.Op == OpAvgPool2d || n.Op == OpMaxPool2d {
		return n.Kernel
	}
	return 1
}

func (n DAGNode) eps() float64 {
	if n.Eps > 0 {
		return n.Eps
	}
	return 1e-5
}

func (n DAGNode) momentum() float64 {
	if n.Momentum > 0 {
		return n.Momentum
	}
	return 0.1
}

// ParseDAG decodes a JSON DAG, strictly as ParseSpec does, and validates it
// with Check.
func ParseDAG(data []byte) (DAG, error) {
	var d DAG
	if err := strictjson.Decode(data, &d); err != nil {
		return DAG{}, fmt.Errorf("nn: parsing DAG: %w", err)
	}
	if _, err := d.Check(); err != nil {
		return DAG{}, err
	}
	return d, nil
}

// dagInfo is what Check derives: every node's per-example output shape,
// the parameters in model order (nodes in order, weight before bias) and
// the index of each node's first parameter.
type dagInfo struct {
	shapes  map[string][]int
	params  []ParamInfo
	first   []int
	classes int
	rows    int // logit rows per example
}

// Check validates the DAG by propagating shapes; it returns the parameters
// in model order. Every shape it derives (the input, a node's output, a
// parameter, a convolution's columns, attention scores) must have at most
// MaxTensorElements elements per example: a larger one is refused, naming
// the node, before any arithmetic on it could overflow.
func (d DAG) Check() ([]ParamInfo, error) {
	in, err := d.check()
	if err != nil {
		return nil, err
	}
	return in.params, nil
}

func (d DAG) check() (*dagInfo, error) {
	if err := d.checkLimits(); err != nil {
		return nil, err
	}
	if d.Loss != "" && d.Loss != "cross_entropy" {
		return nil, fmt.Errorf("nn: DAG: unsupported loss %q (want cross_entropy)", d.Loss)
	}
	if len(d.InputShape) == 0 {
		return nil, fmt.Errorf("nn: DAG: empty input_shape")
	}
	for _, s := range d.InputShape {
		if s < 1 {
			return nil, fmt.Errorf("nn: DAG: input_shape %v has a non-positive dimension", d.InputShape)
		}
	}
	if err := checkElements("nn: DAG: input_shape", d.InputShape...); err != nil {
		return nil, err
	}
	if d.Tokens < 0 || (d.Tokens > 0 && len(d.InputShape) != 1) {
		return nil, fmt.Errorf("nn: DAG: tokens %d with input_shape %v (token input must be [T])", d.Tokens, d.InputShape)
	}
	if err := checkSize("nn: DAG: tokens", d.Tokens); err != nil {
		return nil, err
	}
	if len(d.Nodes) == 0 {
		return nil, fmt.Errorf("nn: DAG: no nodes")
	}
	info := &dagInfo{shapes: map[string][]int{DAGInput: append([]int{}, d.InputShape...)}}
	for i, n := range d.Nodes {
		where := fmt.Sprintf("nn: DAG: node %d (%s %q)", i, n.Op, n.Name)
		if n.Name == "" || n.Name == DAGInput {
			return nil, fmt.Errorf("%s: needs a name other than %q", where, DAGInput)
		}
		if _, dup := info.shapes[n.Name]; dup {
			return nil, fmt.Errorf("%s: duplicate name", where)
		}
		ins := make([][]int, len(n.Inputs))
		for j, src := range n.Inputs {
			s, ok := info.shapes[src]
			if !ok {
				return nil, fmt.Errorf("%s: input %q is not the model input or an earlier node", where, src)
			}
			ins[j] = s
		}
		info.first = append(info.first, len(info.params))
		out, ps, err := d.nodeShape(n, ins, src0IsInput(n))
		if err == nil {
			err = checkParams(ps)
		}
		if err == nil {
			err = checkElements("output shape", out...)
		}
		if err != nil {
			return nil, &nodeError{where: where, index: i, err: err}
		}
		info.shapes[n.Name] = out
		info.params = append(info.params, ps...)
	}
	out, ok := info.shapes[d.Output]
	if !ok || d.Output == DAGInput {
		return nil, fmt.Errorf("nn: DAG: output %q is not a node", d.Output)
	}
	switch len(out) {
	case 1:
		info.classes, info.rows = out[0], 1
	case 2:
		info.rows, info.classes = out[0], out[1]
	default:
		return nil, &outputError{name: d.Output, shape: out}
	}
	return info, nil
}

// nodeError is a node's shape or parameter error, naming the node: Spec.DAG
// names the layer it came from instead.
type nodeError struct {
	where string // "nn: DAG: node i (op "name")"
	index int
	err   error
}

func (e *nodeError) Error() string { return e.where + ": " + e.err.Error() }
func (e *nodeError) Unwrap() error { return e.err }

// outputError is an output of the wrong rank.
type outputError struct {
	name  string
	shape []int
}

func (e *outputError) Error() string {
	return fmt.Sprintf("nn: DAG: output %q has shape %v, want [classes] or [T, classes]", e.name, e.shape)
}

func src0IsInput(n DAGNode) bool { return len(n.Inputs) > 0 && n.Inputs[0] == DAGInput }

// nodeShape returns node n's output shape and parameters for input shapes ins.
func (d DAG) nodeShape(n DAGNode, ins [][]int, fromInput bool) ([]int, []ParamInfo, error) {
	want := func(k int) error {
		if len(ins) != k {
			return fmt.Errorf("has %d inputs, want %d", len(ins), k)
		}
		return nil
	}
	w := func(shape []int, fan int, kind string) ParamInfo {
		return ParamInfo{Name: n.Name + ".weight", Shape: shape, FanIn: fan, Kind: kind}
	}
	b := func(size, fan int, kind string) ParamInfo {
		return ParamInfo{Name: n.Name + ".bias", Shape: []int{size}, FanIn: fan, Kind: kind}
	}
	if n.Op != OpAdd && n.Op != OpAttention {
		if err := want(1); err != nil {
			return nil, nil, err
		}
	}
	if d.Tokens > 0 && fromInput && n.Op != OpEmbedding {
		return nil, nil, fmt.Errorf("token input can only feed an embedding")
	}
	var x []int
	if len(ins) > 0 {
		x = ins[0]
	}
	switch n.Op {
	case OpConv2d:
		if len(x) != 3 || n.Out < 1 || n.Kernel < 1 || n.Pad < 0 || n.Stride < 0 {
			return nil, nil, fmt.Errorf("input %v, want [C, H, W]; out ≥ 1, kernel ≥ 1, pad ≥ 0", x)
		}
		for _, e := range []error{checkSize("pad", n.Pad), checkSize("kernel", n.Kernel), checkSize("stride", n.Stride)} {
			if e != nil {
				return nil, nil, e
			}
		}
		h, wd := x[1]+2*n.Pad, x[2]+2*n.Pad
		if h < n.Kernel || wd < n.Kernel {
			return nil, nil, fmt.Errorf("kernel %d larger than padded input %dx%d", n.Kernel, h, wd)
		}
		if err := checkElements("parameter "+n.Name+".weight of shape", n.Out, x[0], n.Kernel, n.Kernel); err != nil {
			return nil, nil, err
		}
		fan := x[0] * n.Kernel * n.Kernel
		ps := []ParamInfo{w([]int{n.Out, x[0], n.Kernel, n.Kernel}, fan, "weight")}
		if !n.NoBias {
			ps = append(ps, b(n.Out, fan, "bias"))
		}
		s := n.stride()
		out := []int{n.Out, (h-n.Kernel)/s + 1, (wd-n.Kernel)/s + 1}
		if err := checkElements("im2col columns [C·K·K, OH·OW] =", fan, out[1], out[2]); err != nil {
			return nil, nil, err
		}
		return out, ps, nil
	case OpBatchNorm2d:
		if len(x) != 3 {
			return nil, nil, fmt.Errorf("input %v, want [C, H, W]", x)
		}
		return x, []ParamInfo{w([]int{x[0]}, 1, "bn_weight"), b(x[0], 1, "bn_bias")}, nil
	case OpLinear:
		if len(x) < 1 || len(x) > 2 || n.Out < 1 {
			return nil, nil, fmt.Errorf("input %v, want [F] or [T, F]; out ≥ 1", x)
		}
		f := x[len(x)-1]
		ps := []ParamInfo{w([]int{f, n.Out}, f, "weight")}
		if !n.NoBias {
			ps = append(ps, b(n.Out, f, "bias"))
		}
		out := append([]int{}, x...)
		out[len(out)-1] = n.Out
		return out, ps, nil
	case OpLayerNorm:
		if len(x) < 1 || len(x) > 2 {
			return nil, nil, fmt.Errorf("input %v, want [F] or [T, F]", x)
		}
		f := x[len(x)-1]
		return x, []ParamInfo{w([]int{f}, 1, "bn_weight"), b(f, 1, "bn_bias")}, nil
	case OpEmbedding:
		if !fromInput || d.Tokens == 0 || n.Out < 1 {
			return nil, nil, fmt.Errorf("an embedding reads the token input (tokens > 0) and needs out ≥ 1")
		}
		return []int{x[0], n.Out}, []ParamInfo{w([]int{d.Tokens, n.Out}, 1, "embedding")}, nil
	case OpPosEmbedding:
		if len(x) != 2 {
			return nil, nil, fmt.Errorf("input %v, want [T, D]", x)
		}
		return x, []ParamInfo{w(append([]int{}, x...), 1, "embedding")}, nil
	case OpAttention:
		if err := want(3); err != nil {
			return nil, nil, err
		}
		if len(x) != 2 || !equalInts(ins[1], x) || !equalInts(ins[2], x) {
			return nil, nil, fmt.Errorf("inputs %v, want q, k, v of one shape [T, D]", ins)
		}
		if n.Heads < 1 || x[1]%n.Heads != 0 {
			return nil, nil, fmt.Errorf("%d heads do not divide width %d", n.Heads, x[1])
		}
		if err := checkElements("attention scores [H, T, T] =", n.Heads, x[0], x[0]); err != nil {
			return nil, nil, err
		}
		return x, nil, nil
	case OpAdd:
		if len(ins) < 2 {
			return nil, nil, fmt.Errorf("has %d inputs, want at least 2", len(ins))
		}
		for _, s := range ins[1:] {
			if !equalInts(s, x) {
				return nil, nil, fmt.Errorf("input shapes %v differ", ins)
			}
		}
		return x, nil, nil
	case OpReLU, OpTanh, OpSigmoid, OpGELU, OpGELUTanh:
		return x, nil, nil
	case OpDropout:
		if !(n.P >= 0 && n.P < 1) {
			return nil, nil, fmt.Errorf("p %v, want [0, 1)", n.P)
		}
		return x, nil, nil
	case OpAvgPool2d, OpMaxPool2d:
		if len(x) != 3 || n.Kernel < 1 || n.Stride < 0 || n.Kernel > x[1] || n.Kernel > x[2] {
			return nil, nil, fmt.Errorf("input %v does not fit kernel %d", x, n.Kernel)
		}
		s := n.stride()
		return []int{x[0], (x[1]-n.Kernel)/s + 1, (x[2]-n.Kernel)/s + 1}, nil, nil
	case OpGlobalAvgPool:
		if len(x) != 3 {
			return nil, nil, fmt.Errorf("input %v, want [C, H, W]", x)
		}
		return []int{x[0]}, nil, nil
	case OpFlatten:
		// The input's count was checked (as the input or an earlier node's
		// output), so the product cannot overflow.
		p := 1
		for _, v := range x {
			p *= v
		}
		return []int{p}, nil, nil
	}
	return nil, nil, fmt.Errorf("unknown op")
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
