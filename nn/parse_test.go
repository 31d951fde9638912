package nn

import (
	"fmt"
	"gorgonia.org/tensor"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	specOK = `{"input_shape":[4],"layers":[{"type":"linear","name":"fc","in":4,"out":3}]}`
	dagOK  = `{"input_shape":[4],"nodes":[{"name":"fc","op":"linear","inputs":["input"],"out":3}],"output":"fc"}`
)

// TestParseStrict: ParseSpec and ParseDAG accept exactly one JSON value of
// their own keys and refuse everything else with the line and column of the
// problem (not a bare "EOF").
func TestParseStrict(t *testing.T) {
	_, err := ParseSpec([]byte(" \n" + specOK + "\n"))
	require.NoError(t, err)
	_, err = ParseDAG([]byte(dagOK + "\n"))
	require.NoError(t, err)
	for _, c := range []struct{ name, spec, dag, want string }{
		{"empty", "", "", "line 1, column 1 (byte 0): no JSON value"},
		{"truncated", specOK[:40], dagOK[:40], "line 1, column 41 (byte 40): unexpected end of input"},
		{"syntax", "{\"input_shape\":[4],\n\"layers\":[{\"type\" \"relu\"}]}", "{\"input_shape\":[4],\n\"nodes\":[{\"names\" \"a\"}]}",
			"line 2, column 19 (byte 38): syntax error: invalid character '\"' after object key"},
		{"trailing-garbage", specOK + "\ngarbage", dagOK + "\ngarbage", "line 2, column 1"},
		{"two-values", specOK + specOK, dagOK + dagOK, "data after the JSON value"},
		{"unknown-field", strings.Replace(specOK, `"out":3`, "\"out\":3,\n\"bogus\":1", 1), strings.Replace(dagOK, `"out":3`, "\"out\":3,\n\"bogus\":1", 1),
			`line 2, column 1`},
		{"key-case", strings.Replace(specOK, `"layers"`, `"Layers"`, 1), strings.Replace(dagOK, `"nodes"`, `"Nodes"`, 1), `unknown field "`},
		{"repeated-key", strings.Replace(specOK, `"in":4`, `"in":4,"in":5`, 1), strings.Replace(dagOK, `"out":3`, `"out":3,"out":5`, 1), `repeated in`},
		{"int-overflow", strings.Replace(specOK, `"out":3`, `"out":9223372036854775808`, 1), strings.Replace(dagOK, `"out":3`, `"out":9223372036854775808`, 1),
			"got number 9223372036854775808, want an integer from -9223372036854775808 to 9223372036854775807"},
		{"shape-overflow", `{"input_shape":[1e19],"layers":[]}`, `{"input_shape":[1e19],"nodes":[]}`, "line 1, column 17 (byte 16): input_shape: got number 1e19"},
		{"fraction", strings.Replace(specOK, `"out":3`, `"out":3.5`, 1), strings.Replace(dagOK, `"out":3`, `"out":3.5`, 1), "got number 3.5, want an integer"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseSpec([]byte(c.spec))
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
			assert.True(t, strings.HasPrefix(err.Error(), "nn: parsing spec: line "), err.Error())
			_, err = ParseDAG([]byte(c.dag))
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
			assert.True(t, strings.HasPrefix(err.Error(), "nn: parsing DAG: line "), err.Error())
		})
	}
}

// reluSpec is a spec of n ReLU layers between two linear ones.
func reluSpec(n int) Spec {
	s := Spec{InputShape: []int{4}, Layers: []LayerSpec{{Type: LayerLinear, Name: "a", In: 4, Out: 4}}}
	for i := 0; i < n; i++ {
		s.Layers = append(s.Layers, LayerSpec{Type: LayerReLU})
	}
	s.Layers = append(s.Layers, LayerSpec{Type: LayerLinear, Name: "b", In: 4, Out: 2})
	return s
}

// reluDAG is a DAG of n nodes: a linear one and n-1 ReLUs.
func reluDAG(n int) DAG {
	d := DAG{InputShape: []int{4}, Nodes: []DAGNode{{Name: "n0", Op: OpLinear, Inputs: []string{DAGInput}, Out: 2}}}
	for i := 1; i < n; i++ {
		d.Nodes = append(d.Nodes, DAGNode{Name: fmt.Sprintf("n%d", i), Op: OpReLU, Inputs: []string{fmt.Sprintf("n%d", i-1)}})
	}
	d.Output = d.Nodes[n-1].Name
	return d
}

// TestSpecLimits: Check (and so ParseSpec and New) refuses more than
// MaxLayers layers, strings longer than MaxNameLen bytes (quoting only their
// beginning) and input shapes of more than MaxRank axes, and accepts the
// limits themselves.
func TestSpecLimits(t *testing.T) {
	_, _, err := checkSpec(reluSpec(MaxLayers - 2))
	require.NoError(t, err)
	_, _, err = checkSpec(reluSpec(MaxLayers - 1))
	assert.EqualError(t, err, "nn: spec: 1001 layers, more than the limit of 1000 (nn.MaxLayers)")

	long := strings.Repeat("n", MaxNameLen+1)
	s := reluSpec(0)
	s.Layers[0].Name = long[:MaxNameLen]
	_, _, err = checkSpec(s)
	require.NoError(t, err)
	s.Layers[0].Name = long
	_, _, err = checkSpec(s)
	assert.EqualError(t, err, `nn: spec: layer 0 (linear): name "`+long[:40]+`"… has 257 bytes, more than the limit of 256 (nn.MaxNameLen)`)
	s = reluSpec(0)
	s.Layers[1].Type = long
	_, _, err = checkSpec(s)
	assert.ErrorContains(t, err, "nn: spec: layer 1: type \"nnn")
	assert.Less(t, len(err.Error()), 200)
	s = reluSpec(0)
	s.Loss = long
	_, _, err = checkSpec(s)
	assert.ErrorContains(t, err, "nn: spec: loss \"nnn")

	s = Spec{InputShape: []int{1, 1, 1, 1, 1, 1, 1, 1, 1}, Layers: []LayerSpec{{Type: LayerFlatten}}}
	_, _, err = checkSpec(s)
	assert.EqualError(t, err, "nn: spec: input_shape has 9 axes, more than the limit of 8 (nn.MaxRank)")

	// Through the parser: a layer name of 1 MB is refused, not stored.
	_, err = ParseSpec([]byte(strings.Replace(specOK, `"fc"`, `"`+strings.Repeat("x", 1<<20)+`"`, 1)))
	assert.ErrorContains(t, err, "has 1048576 bytes, more than the limit of 256")
	assert.Less(t, len(err.Error()), 200)
}

// TestDAGLimits: the same for DAG.Check: nodes, inputs per node, names
// (node, op, input, output) and the input's rank.
func TestDAGLimits(t *testing.T) {
	_, err := reluDAG(MaxNodes).Check()
	require.NoError(t, err)
	_, err = reluDAG(MaxNodes + 1).Check()
	assert.EqualError(t, err, "nn: DAG: 5001 nodes, more than the limit of 5000 (nn.MaxNodes)")

	long := strings.Repeat("n", MaxNameLen+1)
	d := reluDAG(2)
	d.Nodes[1].Name, d.Nodes[1].Inputs[0], d.Output = long[:MaxNameLen], long[:MaxNameLen], long[:MaxNameLen]
	d.Nodes[0].Name = long[:MaxNameLen]
	_, err = d.Check()
	assert.ErrorContains(t, err, "duplicate name") // the limit itself passes
	for _, c := range []struct {
		edit func(*DAG)
		want string
	}{
		{func(d *DAG) { d.Nodes[1].Name = long }, `nn: DAG: node 1 (relu): name "nnn`},
		{func(d *DAG) { d.Nodes[1].Op = long }, `nn: DAG: node 1: op "nnn`},
		{func(d *DAG) { d.Nodes[1].Inputs[0] = long }, `nn: DAG: node 1 (relu "n1"): input 0 "nnn`},
		{func(d *DAG) { d.Output = long }, `nn: DAG: output "nnn`},
		{func(d *DAG) { d.Loss = long }, `nn: DAG: loss "nnn`},
	} {
		d := reluDAG(2)
		c.edit(&d)
		_, err := d.Check()
		require.Error(t, err)
		assert.True(t, strings.HasPrefix(err.Error(), c.want), err.Error())
		assert.Contains(t, err.Error(), "has 257 bytes, more than the limit of 256 (nn.MaxNameLen)")
		assert.Less(t, len(err.Error()), 200)
	}

	d = reluDAG(3)
	d.Nodes[2] = DAGNode{Name: "sum", Op: OpAdd}
	for i := 0; i < MaxNodeInputs; i++ {
		d.Nodes[2].Inputs = append(d.Nodes[2].Inputs, "n1")
	}
	d.Output = "sum"
	_, err = d.Check()
	require.NoError(t, err)
	d.Nodes[2].Inputs = append(d.Nodes[2].Inputs, "n1")
	_, err = d.Check()
	assert.EqualError(t, err, `nn: DAG: node 2 (add "sum"): 1025 inputs, more than the limit of 1024 (nn.MaxNodeInputs)`)

	d = DAG{InputShape: []int{1, 1, 1, 1, 1, 1, 1, 1, 1}, Nodes: []DAGNode{{Name: "f", Op: OpFlatten, Inputs: []string{DAGInput}}}, Output: "f"}
	_, err = d.Check()
	assert.EqualError(t, err, "nn: DAG: input_shape has 9 axes, more than the limit of 8 (nn.MaxRank)")

	// The largest built-in model fits, with room to spare.
	r, err := ResNet(1202, 3, 32, 10)
	require.NoError(t, err)
	_, err = r.Check()
	require.NoError(t, err)
	assert.LessOrEqual(t, len(r.Nodes), MaxNodes)
	r, err = ResNet(6*1000+2, 3, 32, 10)
	require.NoError(t, err)
	_, err = r.Check()
	assert.ErrorContains(t, err, "nodes, more than the limit of 5000")
}

// newSpec builds a model from a layer list (converted with Spec.DAG).
func newSpec(s Spec, dt tensor.Dtype, rng *rand.Rand) (*Model, error) {
	d, err := s.DAG()
	if err != nil {
		return nil, err
	}
	return New(d, dt, rng, 1)
}

// checkSpec validates a layer list and returns its parameters and classes.
func checkSpec(s Spec) ([]ParamInfo, int, error) {
	d, err := s.DAG()
	if err != nil {
		return nil, 0, err
	}
	info, err := d.check()
	if err != nil {
		return nil, 0, err
	}
	return info.params, info.classes, nil
}

// specMemory is DAG.Memory of a layer list.
func specMemory(s Spec, batch int, dt tensor.Dtype, g GraphKind) (MemoryEstimate, error) {
	d, err := s.DAG()
	if err != nil {
		return MemoryEstimate{}, err
	}
	return d.Memory(batch, dt, g)
}
