package nn

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

// noPanic runs f and turns a panic into a test failure.
func noPanic(t *testing.T, what string, f func() error) (err error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("%s panicked: %v", what, r)
		}
	}()
	return f()
}

// The hostile shapes of issue 19: an input_shape whose element count wraps
// around int64 (2⁶²+768 times 4 is 3072 modulo 2⁶⁴, and times 3 is
// negative), flattened into a linear layer; sizes that overflow the conv
// arithmetic; parameters, columns and attention scores beyond the bound.
func TestCheckRefusesOverflowingShapes(t *testing.T) {
	const huge = 4611686018427388672 // 2⁶² + 768
	flat := func(in []int, linIn int) Spec {
		return Spec{InputShape: in, Layers: []LayerSpec{{Type: LayerFlatten}, {Type: LayerLinear, Name: "fc", In: linIn, Out: 2}}}
	}
	conv := func(in []int, l LayerSpec) Spec {
		l.Type, l.Name = LayerConv2d, "c"
		return Spec{InputShape: in, Layers: []LayerSpec{l, {Type: LayerFlatten}, {Type: LayerLinear, Name: "fc", In: 1, Out: 2}}}
	}
	specs := []struct {
		name string
		s    Spec
		want string
	}{
		{"wraps to 3072", flat([]int{huge, 4}, 3072), "nn: spec: input_shape [4611686018427388672 4]: want dimensions ≥ 1 and at most 1099511627776 elements"},
		{"wraps negative", flat([]int{huge, 3}, -4611686018427385600), "nn: spec: input_shape [4611686018427388672 3]"},
		{"batch axis", Spec{InputShape: []int{huge, 4}, Layers: []LayerSpec{{Type: LayerLinear, Name: "fc", In: 4, Out: 2}}}, "input_shape [4611686018427388672 4]"},
		{"pad overflows", conv([]int{1, 4, 4}, LayerSpec{In: 1, Out: 1, Kernel: 3, Pad: math.MaxInt / 2}), `nn: spec: layer 0 (conv2d "c"): pad 4611686018427387903 exceeds 1099511627776`},
		{"kernel too big", conv([]int{1, 4, 4}, LayerSpec{In: 1, Out: 1, Kernel: 1 << 21, Pad: 1 << 20}), `layer 0 (conv2d "c"): parameter c.weight of shape [1 1 2097152 2097152]`},
		{"columns", conv([]int{1, 1 << 20, 1 << 20}, LayerSpec{In: 1, Out: 1, Kernel: 3, Pad: 1}), `layer 0 (conv2d "c"): im2col columns [C·K·K, OH·OW] = [9 1048576 1048576]`},
		{"conv output", conv([]int{1, 1, 1}, LayerSpec{In: 1, Out: 8, Kernel: 1, Pad: 1 << 18}), `layer 0 (conv2d "c"): output shape [8 524289 524289]`},
		{"linear weight", Spec{InputShape: []int{1 << 30}, Layers: []LayerSpec{{Type: LayerLinear, Name: "fc", In: 1 << 30, Out: 1 << 20}}}, `layer 0 (linear "fc"): parameter fc.weight of shape [1073741824 1048576]`},
		{"linear out", Spec{InputShape: []int{4}, Layers: []LayerSpec{{Type: LayerLinear, Name: "fc", In: 4, Out: math.MaxInt}}}, `layer 0 (linear "fc"): parameter fc.weight`},
	}
	for _, c := range specs {
		t.Run("spec "+c.name, func(t *testing.T) {
			_, _, err := checkSpec(c.s)
			assert.ErrorContains(t, err, c.want)
			err = noPanic(t, "New", func() error { _, err := newSpec(c.s, tensor.Float32, nil); return err })
			assert.ErrorContains(t, err, c.want)
			_, err = specMemory(c.s, 1, tensor.Float32, HVPGraph)
			assert.ErrorContains(t, err, c.want)
		})
	}

	node := func(name, op string, in string, f func(*DAGNode)) DAGNode {
		n := DAGNode{Name: name, Op: op, Inputs: []string{in}}
		if f != nil {
			f(&n)
		}
		return n
	}
	lin := node("fc", OpLinear, "f", func(n *DAGNode) { n.Out = 2 })
	dags := []struct {
		name string
		d    DAG
		want string
	}{
		{"wraps to 3072", DAG{InputShape: []int{huge, 4}, Nodes: []DAGNode{node("f", OpFlatten, DAGInput, nil), lin}, Output: "fc"}, "nn: DAG: input_shape [4611686018427388672 4]"},
		{"wraps negative", DAG{InputShape: []int{huge, 3}, Nodes: []DAGNode{node("f", OpFlatten, DAGInput, nil), lin}, Output: "fc"}, "nn: DAG: input_shape [4611686018427388672 3]"},
		{"pad overflows", DAG{InputShape: []int{1, 4, 4}, Nodes: []DAGNode{node("c", OpConv2d, DAGInput, func(n *DAGNode) { n.Out, n.Kernel, n.Pad = 1, 3, math.MaxInt/2 }),
			node("f", OpFlatten, "c", nil), lin}, Output: "fc"}, `nn: DAG: node 0 (conv2d "c"): pad 4611686018427387903 exceeds`},
		{"columns", DAG{InputShape: []int{1, 1 << 20, 1 << 20}, Nodes: []DAGNode{node("c", OpConv2d, DAGInput, func(n *DAGNode) { n.Out, n.Kernel, n.Pad = 1, 3, 1 }),
			node("f", OpFlatten, "c", nil), lin}, Output: "fc"}, `node 0 (conv2d "c"): im2col columns`},
		{"embedding table", DAG{InputShape: []int{4}, Tokens: 1 << 30, Nodes: []DAGNode{node("e", OpEmbedding, DAGInput, func(n *DAGNode) { n.Out = 1 << 20 }),
			node("f", OpFlatten, "e", nil), lin}, Output: "fc"}, `node 0 (embedding "e"): parameter e.weight of shape [1073741824 1048576]`},
		{"tokens", DAG{InputShape: []int{4}, Tokens: math.MaxInt, Nodes: []DAGNode{node("e", OpEmbedding, DAGInput, func(n *DAGNode) { n.Out = 2 }),
			node("f", OpFlatten, "e", nil), lin}, Output: "fc"}, "nn: DAG: tokens 9223372036854775807 exceeds"},
		{"attention scores", DAG{InputShape: []int{1 << 21}, Tokens: 8, Nodes: []DAGNode{node("e", OpEmbedding, DAGInput, func(n *DAGNode) { n.Out = 4 }),
			{Name: "a", Op: OpAttention, Inputs: []string{"e", "e", "e"}, Heads: 1}, node("fc", OpLinear, "a", func(n *DAGNode) { n.Out = 2 })}, Output: "fc"},
			`node 1 (attention "a"): attention scores [H, T, T] = [1 2097152 2097152]`},
	}
	for _, c := range dags {
		t.Run("dag "+c.name, func(t *testing.T) {
			_, err := c.d.Check()
			assert.ErrorContains(t, err, c.want)
			err = noPanic(t, "NewDAG", func() error { _, err := New(c.d, tensor.Float32, nil, 1); return err })
			assert.ErrorContains(t, err, c.want)
			_, err = c.d.Memory(1, tensor.Float32, HVPGraph)
			assert.ErrorContains(t, err, c.want)
		})
	}
}

// padConv is the hostile layer-list model of issue 19: a 3×3 convolution
// padded by pad on CIFAR-sized inputs, pooled back to one value.
func padConv(pad int) Spec {
	side := 32 + 2*pad - 2
	return Spec{InputShape: []int{3, 32, 32}, Layers: []LayerSpec{
		{Type: LayerConv2d, Name: "c1", In: 3, Out: 1, Kernel: 3, Stride: 1, Pad: pad},
		{Type: LayerMaxPool2d, Kernel: side, Stride: side},
		{Type: LayerFlatten},
		{Type: LayerLinear, Name: "fc", In: 1, Out: 10},
	}}
}

func TestMemoryEstimateOfAnMLPByHand(t *testing.T) {
	// 4 → 8 → 2 at batch 5, float64. Forward elements per example: linear
	// 2·8, relu 8, linear 2·2, loss 2·2 (targets, saved logits); input
	// 2·4 (not multiplied); each of these five parts has its constant.
	s := MLP(4, []int{8}, 2)
	const n, size, params = 5, 8, 4*8 + 8 + 8*2 + 2
	for _, c := range []struct {
		g             GraphKind
		fwd4, pn, cps int64
	}{{EvalGraph, 4, 1, 2}, {GradGraph, 7, 3, 2}, {HVPGraph, 18, 9, 4}} {
		e, err := s.Memory(n, tensor.Float64, c.g)
		require.NoError(t, err)
		// Per layer, rounded down as the estimate does.
		var acts int64
		for _, f := range []int64{16, 8, 4, 4} {
			acts += n*(f*c.fwd4/4)*size + layerOverhead*c.fwd4/4
		}
		if c.g == EvalGraph {
			// Forward only, per output size, the most alive at once: 8
			// wide, fc1's two then its output beside relu's: 16; 2 wide,
			// fc2's two: 4. The layers' 16 + 8 + 4 count as 20.
			acts -= n * (16 + 8 + 4 - 20) * size
		}
		acts += n*2*4*size + layerOverhead*c.fwd4/4 // the input
		acts += params * size * c.pn
		assert.Equal(t, acts, e.Activations, "%v", c.g)
		assert.Equal(t, int64(params*size)*c.cps, e.Params, "%v", c.g)
		assert.Equal(t, e.Params+e.Activations, e.Total)
		assert.Equal(t, `node 0 (linear "fc1")`, e.Largest, "%v", c.g)
	}
}

func TestMemoryEstimateProperties(t *testing.T) {
	cnn := CNN(3, 32, 10)
	at := func(s DAG, n int, dt tensor.Dtype, g GraphKind) MemoryEstimate {
		e, err := s.Memory(n, dt, g)
		require.NoError(t, err)
		return e
	}
	// Linear in the batch size beyond the constants (from a batch at
	// least as large as the worker count), ordered by graph, twice as large
	// in float64.
	for _, g := range []GraphKind{EvalGraph, GradGraph, HVPGraph} {
		n := max(16, numWorkers())
		a1, a2, a3 := at(cnn, n, tensor.Float32, g), at(cnn, 2*n, tensor.Float32, g), at(cnn, 3*n, tensor.Float32, g)
		assert.Equal(t, a2.Activations-a1.Activations, a3.Activations-a2.Activations, "%v", g)
		d := at(cnn, n, tensor.Float64, g)
		assert.Equal(t, 2*a1.Params, d.Params)
		assert.Greater(t, d.Activations, 3*a1.Activations/2)
	}
	e, g, h := at(cnn, 64, tensor.Float32, EvalGraph), at(cnn, 64, tensor.Float32, GradGraph), at(cnn, 64, tensor.Float32, HVPGraph)
	assert.Less(t, e.Total, g.Total)
	assert.Less(t, 2*g.Total, h.Total)
	assert.Contains(t, h.Largest, "(conv2d ") // columns and outputs

	// The hostile convolution: the largest part is the conv, in bytes far
	// beyond any machine; a batch of 10⁹ saturates instead of wrapping.
	p := at(mustDAG(t, padConv(20000)), 64, tensor.Float32, HVPGraph)
	assert.Equal(t, `node 0 (conv2d "c1")`, p.Largest)
	assert.Greater(t, p.LargestBytes, int64(1e13))
	big := at(mustDAG(t, padConv(20000)), 1e9, tensor.Float64, HVPGraph)
	assert.Equal(t, int64(math.MaxInt64), big.Total)
	assert.Contains(t, p.String(), `the gradient and H·v graph for a batch of 64 needs`)
	assert.Contains(t, p.String(), `largest: node 0 (conv2d "c1")`)

	_, err := cnn.Memory(0, tensor.Float32, EvalGraph)
	assert.EqualError(t, err, "nn: memory estimate: batch size 0 < 1")
	_, err = cnn.Memory(1, tensor.Int, EvalGraph)
	assert.ErrorContains(t, err, "unsupported dtype")
	_, err = cnn.Memory(1, tensor.Float32, GraphKind(7))
	assert.EqualError(t, err, "nn: memory estimate: unknown graph kind 7")
}

func TestMemoryEstimateOfDAGs(t *testing.T) {
	// A long context makes the attention scores [H, T, T] the largest part.
	d, err := GPT(GPTConfig{Vocab: 16, Context: 512, Layers: 1, Heads: 4, Width: 32})
	require.NoError(t, err)
	e, err := d.Memory(8, tensor.Float32, GradGraph)
	require.NoError(t, err)
	assert.Equal(t, `node 6 (attention "h.0.attn")`, e.Largest)
	// Causal attention holds four [H, T, T] buffers per example, ×1.75
	// with the gradient.
	assert.GreaterOrEqual(t, e.LargestBytes, int64(8*4*4*512*512*4*7/4))

	// Dropout costs memory only in training graphs.
	r, err := ResNet(8, 3, 16, 10)
	require.NoError(t, err)
	withDrop := r
	withDrop.Nodes = append(append([]DAGNode{}, r.Nodes[:len(r.Nodes)-1]...),
		DAGNode{Name: "drop", Op: OpDropout, Inputs: []string{"pool"}, P: 0.5},
		DAGNode{Name: "fc", Op: OpLinear, Inputs: []string{"drop"}, Out: 10})
	for _, g := range []GraphKind{EvalGraph, GradGraph} {
		a, err := r.Memory(4, tensor.Float32, g)
		require.NoError(t, err)
		b, err := withDrop.Memory(4, tensor.Float32, g)
		require.NoError(t, err)
		extra := b.Activations - a.Activations
		if g == EvalGraph {
			assert.Equal(t, int64(layerOverhead), extra, "evaluation: only the node's constant")
		} else {
			// 64 outputs and a float64 mask per example, ×1.75, plus the constant.
			assert.Equal(t, int64(4*((64+128)*7/4)*4+layerOverhead*7/4), extra, fmt.Sprint(g))
		}
	}
}

// byHand is a layer's share of an estimate as the test derives it from
// the ops Build emits: forward elements per example, im2col cache per
// example, per-worker scratch and per-example input elements.
type byHand struct{ fwd, cols, scratch, plain int64 }

// handTotal sums parts as the documented multipliers say (fwd4 quarters
// of F per graph, cols and convOps, one layerOverhead per part). For an
// evaluation graph the layers' forward buffers (all parts but the last,
// the loss) count as evalPeak per example, the liveness bound derived by
// hand.
func handTotal(parts []byHand, n, size, params int64, g GraphKind, evalPeak int64) int64 {
	f, _ := factorsOf(g)
	w := min(int64(numWorkers()), n)
	var acts int64
	for i, p := range parts {
		fwd := p.fwd
		if g == EvalGraph && i < len(parts)-1 {
			fwd = 0
		}
		acts += (n*(fwd*f.fwd4/4+p.plain)+n*p.cols*f.cols+w*p.scratch*f.convOps)*size + layerOverhead*f.fwd4/4
	}
	if g == EvalGraph {
		acts += n * evalPeak * size
	}
	return acts + params*size*f.paramNodes
}

func TestMemoryEstimateOfEachLayerByHand(t *testing.T) {
	// [2, 6, 6] → conv 2→3 k3 pad 1 → BN → ReLU+maxpool 2 (fused) → tanh
	// → flatten → linear 27→4.
	s := Spec{InputShape: []int{2, 6, 6}, Layers: []LayerSpec{
		{Type: LayerConv2d, Name: "c", In: 2, Out: 3, Kernel: 3, Pad: 1}, {Type: LayerBatchNorm2d, Name: "bn", Channels: 3},
		{Type: LayerReLU}, {Type: LayerMaxPool2d, Kernel: 2}, {Type: LayerTanh}, {Type: LayerFlatten},
		{Type: LayerLinear, Name: "fc", In: 27, Out: 4}}}
	const params = 2*3*9 + 3 + 3 + 3 + 27*4 + 4
	parts := []byHand{
		{plain: 2 * 72}, // input: the engine's tensor and the caller's batch
		// conv output; no column cache (3×3, stride 1, padding 1);
		// scratch, the most of one op's (6 < implicitMinW: forward and
		// input gradient by im2col), L = 6·8: forward 9·2·6·6 columns +
		// 4·256 + 64·min(256, 18); input gradient the same with 64·3;
		// weight gradient 4·8·8 + padSlack + 3·L + 9·3·4 + 4·256 + 32·L
		// (C = 2 planes widened to the dot form's 4; B panels of max(C, O)
		// = 3 ≤ 32 columns)
		{fwd: 108, scratch: max(9*72+4*256+64*18, 4*64+padSlack+3*48+9*3*4+4*256+32*48)},
		{fwd: 4*108 + 16*3},  // batch norm: four full-size ops, per-channel statistics
		{},                   // ReLU, fused into the pool
		{fwd: 2 * 27},        // pool output and arg-max indices
		{fwd: 27}, {fwd: 27}, // tanh, flatten's copy
		{fwd: 2 * 4}, // MatMul, BiasAdd
		{fwd: 2 * 4}, // the loss: targets and saved logits
	}
	// Forward only, per output size, the most alive at once: 108 (conv,
	// batch norm): the conv output beside batch norm's 4·108 + 48 = 588;
	// 27: two of pool, tanh, flatten beside each other (the pool's indices
	// with its output) = 54; 4: the linear layer's two = 8.
	const evalPeak = 588 + 54 + 8
	for _, g := range []GraphKind{EvalGraph, GradGraph, HVPGraph} {
		for _, n := range []int64{1, 32} {
			e, err := specMemory(s, int(n), tensor.Float32, g)
			require.NoError(t, err)
			assert.Equal(t, handTotal(parts, n, 4, params, g, evalPeak), e.Activations, "%v batch %d", g, n)
		}
	}

	// Tokens [8] → embedding 16 → positions → layer norm → q, k, v
	// (linear, no bias) → causal attention, 2 heads → add → GELU →
	// dropout → linear 16→5 (with bias): [8, 5] logits per example.
	lin := func(name, in string, out int, noBias bool) DAGNode {
		return DAGNode{Name: name, Op: OpLinear, Inputs: []string{in}, Out: out, NoBias: noBias}
	}
	d := DAG{InputShape: []int{8}, Tokens: 11, Output: "head", Nodes: []DAGNode{
		{Name: "emb", Op: OpEmbedding, Inputs: []string{DAGInput}, Out: 16},
		{Name: "pos", Op: OpPosEmbedding, Inputs: []string{"emb"}},
		{Name: "ln", Op: OpLayerNorm, Inputs: []string{"pos"}},
		lin("q", "ln", 16, true), lin("k", "ln", 16, true), lin("v", "ln", 16, true),
		{Name: "attn", Op: OpAttention, Inputs: []string{"q", "k", "v"}, Heads: 2},
		{Name: "res", Op: OpAdd, Inputs: []string{"pos", "attn"}},
		{Name: "act", Op: OpGELU, Inputs: []string{"res"}},
		{Name: "drop", Op: OpDropout, Inputs: []string{"act"}, P: 0.1},
		lin("head", "drop", 5, false)}}
	const dparams = 11*16 + 8*16 + 2*16 + 3*16*16 + 16*5 + 5
	const td = 8 * 16
	dparts := func(train bool) []byHand {
		drop := int64(0)
		// forward only, the machine frees a layer norm's and attention's
		// temporaries inside the layer
		ln, att := int64(2*td+5*8), int64(2*td+1*2*8*8)
		if train {
			drop = td + 2*td // output and a float64 mask (two float32 elements each)
			ln, att = 9*td+5*8, 5*td+4*2*8*8
		}
		return []byHand{
			{plain: 2 * 8},                  // token input
			{fwd: td},                       // embedding rows
			{fwd: 2*td + 8},                 // positions, gathered rows, sum
			{fwd: ln},                       // layer norm: nine full-size ops, five per row
			{fwd: td}, {fwd: td}, {fwd: td}, // q, k, v without bias
			{fwd: att},           // split q, k, v, product, merge; scores, scaled, masked, softmax
			{fwd: td}, {fwd: td}, // add, GELU
			{fwd: drop},      // dropout: training graphs only
			{fwd: 2 * 8 * 5}, // MatMul, BiasAdd
			{fwd: 2 * 8 * 5}, // the loss over 8 rows per example
		}
	}
	// Forward only, every output but the head's is td: the most alive at
	// once is at attention, with pos (read again by res), q, k and v beside
	// its own 2·td + 2·8·8: 4·td + 2·td + 128 = 896; the head's two [8, 5]:
	// 80.
	const dEvalPeak = 4*td + 2*td + 2*8*8 + 2*8*5
	for _, g := range []GraphKind{EvalGraph, GradGraph, HVPGraph} {
		e, err := d.Memory(3, tensor.Float32, g)
		require.NoError(t, err)
		assert.Equal(t, handTotal(dparts(g != EvalGraph), 3, 4, dparams, g, dEvalPeak), e.Activations, "%v", g)
	}
}

// mustDAG converts a layer list that must be valid.
func mustDAG(t *testing.T, s Spec) DAG {
	t.Helper()
	d, err := s.DAG()
	require.NoError(t, err)
	return d
}
