package nn

import (
	"fmt"
	"math"
)

// ResNet returns the DAG of He et al. (2016)'s CIFAR ResNet of the given
// depth (6n+2: 8, 14, 20, 32, …) for channels×size×size images: a 3×3
// convolution with 16 filters, batch norm and ReLU, then three stages of n
// basic blocks with 16, 32 and 64 filters (the first block of stages 2 and
// 3 halves the resolution with stride 2), global average pooling and a
// linear layer to classes. A basic block is conv3×3 → BN → ReLU → conv3×3
// → BN, added to the shortcut, then ReLU; convolutions have no bias (batch
// norm follows each).
//
// Shortcuts are the paper's option B: identity where the shape is kept,
// and a 1×1 convolution with stride 2 followed by batch norm (a projection)
// where the block changes resolution and width. Option A (subsampling and
// zero-padded channels, parameter-free) is what the paper's CIFAR tables
// use; option B costs 2 small projections per network (2,752 parameters in
// ResNet-20) and is the common choice in reimplementations (also the
// torchvision-style ResNets the second-order optimizer papers train).
//
// Parameter names follow torch conventions: conv1, bn1,
// layer{1,2,3}.{i}.{conv1,bn1,conv2,bn2,shortcut.0,shortcut.1}, fc.
func ResNet(depth, channels, size, classes int) (DAG, error) {
	if depth < 8 || (depth-2)%6 != 0 {
		return DAG{}, fmt.Errorf("nn: ResNet depth %d: want 6n+2 ≥ 8 (8, 14, 20, 32, …)", depth)
	}
	if channels < 1 || size < 4 || classes < 1 {
		return DAG{}, fmt.Errorf("nn: ResNet: %d channels, size %d, %d classes", channels, size, classes)
	}
	blocks := (depth - 2) / 6
	d := DAG{InputShape: []int{channels, size, size}, Loss: "cross_entropy"}
	add := func(n DAGNode) string { d.Nodes = append(d.Nodes, n); return n.Name }
	h := add(DAGNode{Name: "conv1", Op: OpConv2d, Inputs: []string{DAGInput}, Out: 16, Kernel: 3, Pad: 1, NoBias: true})
	h = add(DAGNode{Name: "bn1", Op: OpBatchNorm2d, Inputs: []string{h}})
	h = add(DAGNode{Name: "relu", Op: OpReLU, Inputs: []string{h}})
	in := 16
	for s, width := range []int{16, 32, 64} {
		for b := 0; b < blocks; b++ {
			p := fmt.Sprintf("layer%d.%d.", s+1, b)
			stride := 1
			if s > 0 && b == 0 {
				stride = 2
			}
			x := h
			c := add(DAGNode{Name: p + "conv1", Op: OpConv2d, Inputs: []string{x}, Out: width, Kernel: 3, Stride: stride, Pad: 1, NoBias: true})
			c = add(DAGNode{Name: p + "bn1", Op: OpBatchNorm2d, Inputs: []string{c}})
			c = add(DAGNode{Name: p + "relu1", Op: OpReLU, Inputs: []string{c}})
			c = add(DAGNode{Name: p + "conv2", Op: OpConv2d, Inputs: []string{c}, Out: width, Kernel: 3, Pad: 1, NoBias: true})
			c = add(DAGNode{Name: p + "bn2", Op: OpBatchNorm2d, Inputs: []string{c}})
			sc := x
			if stride != 1 || in != width {
				sc = add(DAGNode{Name: p + "shortcut.0", Op: OpConv2d, Inputs: []string{x}, Out: width, Kernel: 1, Stride: stride, NoBias: true})
				sc = add(DAGNode{Name: p + "shortcut.1", Op: OpBatchNorm2d, Inputs: []string{sc}})
			}
			r := add(DAGNode{Name: p + "add", Op: OpAdd, Inputs: []string{c, sc}})
			h = add(DAGNode{Name: p + "relu2", Op: OpReLU, Inputs: []string{r}})
			in = width
		}
	}
	h = add(DAGNode{Name: "pool", Op: OpGlobalAvgPool, Inputs: []string{h}})
	d.Output = add(DAGNode{Name: "fc", Op: OpLinear, Inputs: []string{h}, Out: classes})
	return d, nil
}

// GPTConfig sizes a GPT. The zero value of a field takes the gpt-tiny
// default given in its comment.
type GPTConfig struct {
	Vocab   int     // required: the number of token ids (characters)
	Context int     // positions per example (default 64)
	Layers  int     // transformer blocks (default 4)
	Heads   int     // attention heads (default 4)
	Width   int     // model width D (default 128); the MLP is 4D wide
	Dropout float64 // dropout after attention and MLP (default 0, as Sophia's GPT-2 runs)
}

func (c GPTConfig) withDefaults() GPTConfig {
	if c.Context == 0 {
		c.Context = 64
	}
	if c.Layers == 0 {
		c.Layers = 4
	}
	if c.Heads == 0 {
		c.Heads = 4
	}
	if c.Width == 0 {
		c.Width = 128
	}
	return c
}

// GPT returns the DAG of a GPT-2-style causal transformer for next-token
// prediction (gpt-tiny with the default config: 4 layers, 4 heads, width
// 128, context 64, about 0.8M parameters for a 100-character vocabulary):
// token and learned position embeddings; Layers pre-norm blocks
// x += proj(attention(LN(x))), x += fc2(GELU_tanh(fc1(LN(x)))) with causal
// multi-head self-attention (separate q, k, v projections, equivalent to
// GPT-2's fused one) and a 4×-wide MLP; a final layer norm and an untied
// linear head to Vocab logits at every position. Weights are initialised
// from N(0, 0.02²) and the residual projections from N(0, (0.02/√(2L))²)
// as GPT-2 does, biases 0. The output is [Context, Vocab]: the loss is the
// cross-entropy averaged over all positions of all examples.
func GPT(cfg GPTConfig) (DAG, error) {
	c := cfg.withDefaults()
	switch {
	case c.Vocab < 2:
		return DAG{}, fmt.Errorf("nn: GPT: vocabulary of %d tokens, want ≥ 2", c.Vocab)
	case c.Context < 1 || c.Layers < 1 || c.Heads < 1 || c.Width < 1 || c.Width%c.Heads != 0:
		return DAG{}, fmt.Errorf("nn: GPT: context %d, layers %d, heads %d, width %d: want positive, heads dividing width", c.Context, c.Layers, c.Heads, c.Width)
	case !(c.Dropout >= 0 && c.Dropout < 1):
		return DAG{}, fmt.Errorf("nn: GPT: dropout %v, want [0, 1)", c.Dropout)
	}
	const std = 0.02
	resStd := std / math.Sqrt(2*float64(c.Layers))
	d := DAG{InputShape: []int{c.Context}, Tokens: c.Vocab, Loss: "cross_entropy"}
	add := func(n DAGNode) string { d.Nodes = append(d.Nodes, n); return n.Name }
	lin := func(name, in string, out int, s float64) string {
		return add(DAGNode{Name: name, Op: OpLinear, Inputs: []string{in}, Out: out, InitStd: s})
	}
	drop := func(name, in string) string {
		if c.Dropout == 0 {
			return in
		}
		return add(DAGNode{Name: name, Op: OpDropout, Inputs: []string{in}, P: c.Dropout})
	}
	h := add(DAGNode{Name: "wte", Op: OpEmbedding, Inputs: []string{DAGInput}, Out: c.Width, InitStd: std})
	h = add(DAGNode{Name: "wpe", Op: OpPosEmbedding, Inputs: []string{h}, InitStd: std})
	h = drop("drop", h)
	for l := 0; l < c.Layers; l++ {
		p := fmt.Sprintf("h.%d.", l)
		a := add(DAGNode{Name: p + "ln_1", Op: OpLayerNorm, Inputs: []string{h}})
		q := lin(p+"attn.q", a, c.Width, std)
		k := lin(p+"attn.k", a, c.Width, std)
		v := lin(p+"attn.v", a, c.Width, std)
		o := add(DAGNode{Name: p + "attn", Op: OpAttention, Inputs: []string{q, k, v}, Heads: c.Heads})
		o = lin(p+"attn.proj", o, c.Width, resStd)
		o = drop(p+"attn.drop", o)
		h = add(DAGNode{Name: p + "res1", Op: OpAdd, Inputs: []string{h, o}})
		m := add(DAGNode{Name: p + "ln_2", Op: OpLayerNorm, Inputs: []string{h}})
		m = lin(p+"mlp.fc", m, 4*c.Width, std)
		m = add(DAGNode{Name: p + "mlp.gelu", Op: OpGELUTanh, Inputs: []string{m}})
		m = lin(p+"mlp.proj", m, c.Width, resStd)
		m = drop(p+"mlp.drop", m)
		h = add(DAGNode{Name: p + "res2", Op: OpAdd, Inputs: []string{h, m}})
	}
	h = add(DAGNode{Name: "ln_f", Op: OpLayerNorm, Inputs: []string{h}})
	d.Output = lin("lm_head", h, c.Vocab, std)
	return d, nil
}
