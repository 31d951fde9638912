package nn

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// testDAGs are the small model instances of the end-to-end PyTorch tests
// (gen_torch_models.py reads their JSON from testdata).
func testDAGs(t *testing.T) map[string]DAG {
	t.Helper()
	r8, err := ResNet(8, 3, 8, 10)
	require.NoError(t, err)
	gpt, err := GPT(GPTConfig{Vocab: 11, Context: 8, Layers: 2, Heads: 2, Width: 16})
	require.NoError(t, err)
	return map[string]DAG{"resnet8": r8, "gpt_small": gpt}
}

// TestDAGSpecFiles checks that the DAG JSON files the PyTorch generator
// reads are what the constructors build, and that they parse back (unknown
// fields rejected). NN_UPDATE_TESTDATA=1 rewrites them.
func TestDAGSpecFiles(t *testing.T) {
	for name, d := range testDAGs(t) {
		b, err := json.MarshalIndent(d, "", " ")
		require.NoError(t, err)
		path := filepath.Join("testdata", "dag_"+name+".json")
		if os.Getenv("NN_UPDATE_TESTDATA") == "1" {
			require.NoError(t, os.WriteFile(path, append(b, '\n'), 0o644))
		}
		got, err := os.ReadFile(path)
		require.NoError(t, err)
		assert.JSONEq(t, string(b), string(got), "%s is stale (NN_UPDATE_TESTDATA=1 go test ./nn -run TestDAGSpecFiles)", path)
		back, err := ParseDAG(got)
		require.NoError(t, err)
		assert.Equal(t, d, back)
	}
}

// TestDAGChecks checks the shapes and parameter counts of the standard
// models and that bad DAGs get errors naming the node and the problem.
func TestDAGChecks(t *testing.T) {
	count := func(d DAG) int {
		ps, err := d.Check()
		require.NoError(t, err)
		n := 0
		for _, p := range ps {
			s := 1
			for _, v := range p.Shape {
				s *= v
			}
			n += s
		}
		return n
	}
	r20, err := ResNet(20, 3, 32, 10)
	require.NoError(t, err)
	// He et al.'s ResNet-20 has 0.27M parameters (269,722 with option A); option B adds
	// the two projections' 1×1 convolutions and batch norms.
	assert.Equal(t, 269722+16*32+32*2+32*64+64*2, count(r20))
	gpt, err := GPT(GPTConfig{Vocab: 65})
	require.NoError(t, err)
	// 4 blocks of 12·D² + 13·D, embeddings, final LN and head.
	const d = 128
	assert.Equal(t, 4*(12*d*d+13*d)+65*d+64*d+2*d+d*65+65, count(gpt))

	_, err = ParseDAG([]byte(`{"input_shape":[3],"nodes":[{"name":"a","op":"linear","inputs":["input"],"out":2,"bogus":1}],"output":"a"}`))
	assert.ErrorContains(t, err, "bogus")
	bad := []struct {
		d    DAG
		want string
	}{
		{DAG{InputShape: []int{3}, Nodes: []DAGNode{{Name: "a", Op: "linear", Inputs: []string{"b"}, Out: 2}}, Output: "a"}, `input "b" is not the model input or an earlier node`},
		{DAG{InputShape: []int{3}, Nodes: []DAGNode{{Name: "a", Op: "softmax", Inputs: []string{"input"}}}, Output: "a"}, "unknown op"},
		{DAG{InputShape: []int{3}, Nodes: []DAGNode{{Name: "a", Op: "linear", Inputs: []string{"input"}, Out: 2}, {Name: "a", Op: "relu", Inputs: []string{"a"}}}, Output: "a"}, "duplicate name"},
		{DAG{InputShape: []int{3}, Nodes: []DAGNode{{Name: "a", Op: "linear", Inputs: []string{"input"}, Out: 2}, {Name: "b", Op: "linear", Inputs: []string{"input"}, Out: 3}, {Name: "c", Op: "add", Inputs: []string{"a", "b"}}}, Output: "c"}, "input shapes"},
		{DAG{InputShape: []int{3}, Nodes: []DAGNode{{Name: "a", Op: "linear", Inputs: []string{"input"}, Out: 2}}, Output: "z"}, `output "z"`},
		{DAG{InputShape: []int{4, 8}, Nodes: []DAGNode{{Name: "a", Op: "attention", Inputs: []string{"input", "input", "input"}, Heads: 3}}, Output: "a"}, "heads"},
		{DAG{InputShape: []int{3, 8, 8}, Nodes: []DAGNode{{Name: "a", Op: "conv2d", Inputs: []string{"input"}, Out: 2, Kernel: 9}}, Output: "a"}, "kernel 9"},
	}
	for _, b := range bad {
		_, err := b.d.Check()
		require.Error(t, err, b.want)
		assert.Contains(t, err.Error(), b.want)
	}
	_, err = ResNet(9, 3, 32, 10)
	assert.ErrorContains(t, err, "6n+2")
	_, err = GPT(GPTConfig{Vocab: 10, Heads: 3})
	assert.ErrorContains(t, err, "heads")
}

// TestDAGBuildShapes builds resnet8 and a small GPT in both modes and
// checks the logits' shapes, the rows per example and that a forward pass
// runs; the GPT's logits at position t must not depend on later tokens
// (causality).
func TestDAGBuildShapes(t *testing.T) {
	ds := testDAGs(t)
	m, err := New(ds["resnet8"], tensor.Float64, rand.New(rand.NewPCG(1, 2)), 1)
	require.NoError(t, err)
	assert.Equal(t, 1, m.RowsPerExample())
	assert.Equal(t, 10, m.Classes())
	for _, train := range []bool{true, false} {
		g := gorgonia.NewGraph()
		net, err := m.Build(g, 3, train)
		require.NoError(t, err)
		assert.Equal(t, []int{3, 10}, []int(net.Logits.Shape()))
	}
	gm, err := New(ds["gpt_small"], tensor.Float64, rand.New(rand.NewPCG(1, 2)), 1)
	require.NoError(t, err)
	assert.Equal(t, 8, gm.RowsPerExample())
	assert.Equal(t, 11, gm.Classes())
	run := func(tokens []float64) []float64 {
		g := gorgonia.NewGraph()
		net, err := gm.Build(g, 2, true)
		require.NoError(t, err)
		require.Equal(t, []int{16, 11}, []int(net.Logits.Shape()))
		require.NoError(t, gorgonia.Let(net.X, tensor.New(tensor.WithShape(2, 8), tensor.WithBacking(tokens))))
		vm := gorgonia.NewTapeMachine(g)
		defer vm.Close()
		require.NoError(t, vm.RunAll())
		return floats(net.Logits)
	}
	a := run([]float64{1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 2, 3, 4, 5, 6, 7})
	b := run([]float64{1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 2, 3, 4, 9, 9, 9})
	assert.Equal(t, a[:(8+5)*11], b[:(8+5)*11], "positions before the change are unaffected")
	assert.NotEqual(t, a[(8+5)*11:], b[(8+5)*11:])
}

// TestDAGDropoutTrainOnly checks that dropout is in training graphs only:
// evaluation logits do not depend on the dropout step, training logits do.
func TestDAGDropoutTrainOnly(t *testing.T) {
	d, err := GPT(GPTConfig{Vocab: 5, Context: 4, Layers: 1, Heads: 1, Width: 4, Dropout: 0.5})
	require.NoError(t, err)
	m, err := New(d, tensor.Float64, rand.New(rand.NewPCG(1, 2)), 3)
	require.NoError(t, err)
	logits := func(train bool) []float64 {
		g := gorgonia.NewGraph()
		net, err := m.Build(g, 1, train)
		require.NoError(t, err)
		require.NoError(t, gorgonia.Let(net.X, tensor.New(tensor.WithShape(1, 4), tensor.WithBacking([]float64{0, 1, 2, 3}))))
		vm := gorgonia.NewTapeMachine(g)
		defer vm.Close()
		require.NoError(t, vm.RunAll())
		return floats(net.Logits)
	}
	e0, t0 := logits(false), logits(true)
	m.DropoutState().Next()
	e1, t1 := logits(false), logits(true)
	assert.Equal(t, e0, e1, "evaluation: no dropout")
	assert.NotEqual(t, t0, t1, "training: a new mask per step")
	assert.NotEqual(t, e0, t0)
}

// TestBatchNormEvalMode compares an evaluation-mode batch norm with
// (x − running_mean)/√(running_var + eps)·γ + β.
func TestBatchNormEvalMode(t *testing.T) {
	spec := Spec{InputShape: []int{2, 2, 2}, Layers: []LayerSpec{{Type: LayerBatchNorm2d, Name: "bn", Channels: 2, Eps: 1e-5}, {Type: LayerFlatten}}}
	m, err := newSpec(spec, tensor.Float64, nil)
	require.NoError(t, err)
	g0, b0 := m.Params()[0].Value.Float64s(), m.Params()[1].Value.Float64s()
	g0[0], g0[1], b0[0], b0[1] = 1.5, -2, 0.5, 3
	rm, rv, err := m.RunningStats("bn")
	require.NoError(t, err)
	copy(rm.Float64s(), []float64{0.25, -1})
	copy(rv.Float64s(), []float64{4, 0.5})
	x := []float64{1, 2, 3, 4, 5, 6, 7, 8, -1, -2, -3, -4, -5, -6, -7, -8}
	g := gorgonia.NewGraph()
	net, err := m.Build(g, 2, false)
	require.NoError(t, err)
	require.NoError(t, gorgonia.Let(net.X, tensor.New(tensor.WithShape(2, 2, 2, 2), tensor.WithBacking(append([]float64{}, x...)))))
	vm := gorgonia.NewTapeMachine(g)
	defer vm.Close()
	require.NoError(t, vm.RunAll())
	got := floats(net.Logits)
	for i, v := range x {
		c := (i / 4) % 2
		want := (v-rm.Float64s()[c])/math.Sqrt(rv.Float64s()[c]+1e-5)*g0[c] + b0[c]
		assert.InDelta(t, want, got[i], 1e-12, "entry %d", i)
	}
}
