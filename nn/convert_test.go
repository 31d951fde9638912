package nn

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// opCounts builds m's training graph for a batch of 2 and counts its
// forward ops by name prefix.
func opCounts(t *testing.T, m *Model, prefixes ...string) map[string]int {
	t.Helper()
	g := gorgonia.NewGraph()
	_, err := m.Build(g, 2, true)
	require.NoError(t, err)
	n := map[string]int{}
	for _, node := range g.AllNodes() {
		if node.Op() == nil {
			continue
		}
		for _, p := range prefixes {
			if strings.HasPrefix(node.Op().String(), p) {
				n[p]++
			}
		}
	}
	return n
}

// TestBuildFusesReLUPool: Build fuses a ReLU read only by the max pooling
// that follows it (the CNN's two), and keeps a ReLU that something else
// also reads (a residual add) or that is the output apart; DAG.Memory
// counts the same.
func TestBuildFusesReLUPool(t *testing.T) {
	m, err := New(CNN(1, 8, 3), tensor.Float64, nil, 0)
	require.NoError(t, err)
	c := opCounts(t, m, "ReLUMaxPool2d", "MaxPool2d", "MaskMul")
	assert.Equal(t, map[string]int{"ReLUMaxPool2d": 2}, c)

	d := DAG{InputShape: []int{1, 4, 4}, Nodes: []DAGNode{
		{Name: "r", Op: OpReLU, Inputs: []string{DAGInput}},
		{Name: "p", Op: OpMaxPool2d, Inputs: []string{"r"}, Kernel: 1},
		{Name: "a", Op: OpAdd, Inputs: []string{"p", "r"}},
		{Name: "f", Op: OpFlatten, Inputs: []string{"a"}}}, Output: "f"}
	m, err = New(d, tensor.Float64, nil, 0)
	require.NoError(t, err)
	c = opCounts(t, m, "ReLUMaxPool2d", "MaxPool2d", "MaskMul")
	assert.Equal(t, map[string]int{"MaxPool2d": 1, "MaskMul": 1}, c, "the add also reads the ReLU")
	assert.Equal(t, []bool{false, false, false, false}, d.fusedReLUPools())
	assert.Equal(t, []bool{false, true, false, false, true, false, false, false}, CNN(1, 8, 3).fusedReLUPools())
}

// TestSpecDAGNames: a layer list converts to one node per layer; a layer
// without parameters keeps a name of its own and otherwise gets
// "<type>_<index>", with "_" appended while a layer's name has it; the
// parameters keep their names and order.
func TestSpecDAGNames(t *testing.T) {
	s := Spec{InputShape: []int{4}, Layers: []LayerSpec{
		{Type: LayerLinear, Name: "relu_1", In: 4, Out: 3}, {Type: LayerReLU},
		{Type: LayerTanh, Name: "act"}, {Type: LayerLinear, Name: "tanh_3", In: 3, Out: 2}, {Type: LayerTanh, Name: "act"}}}
	d, err := s.DAG()
	require.NoError(t, err)
	var names, inputs []string
	for _, n := range d.Nodes {
		names, inputs = append(names, n.Name), append(inputs, n.Inputs...)
	}
	assert.Equal(t, []string{"relu_1", "relu_1_", "act", "tanh_3", "tanh_4"}, names)
	assert.Equal(t, []string{DAGInput, "relu_1", "relu_1_", "act", "tanh_3"}, inputs)
	assert.Equal(t, "tanh_4", d.Output)
	ps, err := d.Check()
	require.NoError(t, err)
	var pn []string
	for _, p := range ps {
		pn = append(pn, p.Name)
	}
	assert.Equal(t, []string{"relu_1.weight", "relu_1.bias", "tanh_3.weight", "tanh_3.bias"}, pn)

	s.Layers[3].Name = "relu_1"
	_, err = s.DAG()
	assert.EqualError(t, err, `nn: spec: layer 3 (linear "relu_1"): duplicate name`)
	s.Layers[3].Name = DAGInput
	_, err = s.DAG()
	assert.EqualError(t, err, `nn: spec: layer 3 (linear "input"): duplicate name`)
	s.Layers[3].Name, s.Layers[3].In = "fc", 4
	_, err = s.DAG()
	assert.EqualError(t, err, `nn: spec: layer 3 (linear "fc"): input shape [3], layer wants [4] and out ≥ 1 (got 2)`)
	bn := Spec{InputShape: []int{2, 3, 3}, Layers: []LayerSpec{{Type: LayerBatchNorm2d, Name: "bn", Channels: 3}, {Type: LayerFlatten}}}
	_, err = bn.DAG()
	assert.EqualError(t, err, `nn: spec: layer 0 (batchnorm2d "bn"): input shape [2 3 3], layer wants [3, H, W]`)
	conv := Spec{InputShape: []int{2, 3, 3}, Layers: []LayerSpec{{Type: LayerConv2d, Name: "c", In: 3, Out: 1, Kernel: 1}, {Type: LayerFlatten}}}
	_, err = conv.DAG()
	assert.EqualError(t, err, `nn: spec: layer 0 (conv2d "c"): input shape [2 3 3], layer wants [3, H, W], out ≥ 1, kernel ≥ 1, pad ≥ 0`)
}

// TestParseModel: either format reads as its DAG; a document with both
// formats' keys, or a key of neither, is refused.
func TestParseModel(t *testing.T) {
	d, err := ParseModel([]byte(specOK))
	require.NoError(t, err)
	s, err := ParseSpec([]byte(specOK))
	require.NoError(t, err)
	want, err := s.DAG()
	require.NoError(t, err)
	assert.Equal(t, want, d)
	d, err = ParseModel([]byte(dagOK))
	require.NoError(t, err)
	want, err = ParseDAG([]byte(dagOK))
	require.NoError(t, err)
	assert.Equal(t, want, d)

	_, err = ParseModel([]byte(`{"input_shape":[4],"layers":[],"nodes":[],"output":"fc"}`))
	assert.EqualError(t, err, `nn: parsing model: it has both "layers" (a layer list) and "nodes" (a DAG)`)
	_, err = ParseModel([]byte(strings.Replace(specOK, `"layers"`, `"output":"fc","layers"`, 1)))
	assert.ErrorContains(t, err, `nn: parsing spec: line 1, column 20 (byte 19): unknown field "output"`)
	_, err = ParseModel([]byte(`{"input_shape":[4],"bogus":1}`))
	assert.ErrorContains(t, err, `nn: parsing model: line 1, column 20 (byte 19): unknown field "bogus"`)
	_, err = ParseModel([]byte(`{"input_shape":[4],"layers":[{"type":"softmax"}]}`))
	assert.EqualError(t, err, `nn: spec: layer 0 (softmax ""): unknown layer type`)
}
