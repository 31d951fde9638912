package nn_test

import (
	"fmt"
	"math/rand/v2"

	"github.com/curvopt/curvopt/nn"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// ExampleGPT builds gpt-tiny for a 65-character vocabulary and its training
// graph for 2 sequences: the logits have one row per position.
func ExampleGPT() {
	d, err := nn.GPT(nn.GPTConfig{Vocab: 65}) // 4 layers, 4 heads, width 128, context 64
	if err != nil {
		panic(err)
	}
	m, err := nn.New(d, tensor.Float32, rand.New(rand.NewPCG(1, 2)), 1)
	if err != nil {
		panic(err)
	}
	n := 0
	for _, p := range m.Params() {
		n += p.Value.Shape().TotalSize()
	}
	net, err := m.Build(gorgonia.NewGraph(), 2, true)
	if err != nil {
		panic(err)
	}
	fmt.Println("parameters:", n)
	fmt.Println("input:", net.X.Shape(), "logits:", net.Logits.Shape(), "rows per example:", m.RowsPerExample())
	// Output:
	// parameters: 818241
	// input: (2, 64) logits: (128, 65) rows per example: 64
}

// ExampleResNet describes ResNet-20 for CIFAR-10 and prints a few of its
// nodes (the JSON form of a DAG names each node's inputs).
func ExampleResNet() {
	d, err := nn.ResNet(20, 3, 32, 10)
	if err != nil {
		panic(err)
	}
	ps, err := d.Check()
	if err != nil {
		panic(err)
	}
	fmt.Println("nodes:", len(d.Nodes), "parameter tensors:", len(ps))
	for _, n := range d.Nodes[len(d.Nodes)-4:] {
		fmt.Println(n.Name, n.Op, n.Inputs)
	}
	// Output:
	// nodes: 72 parameter tensors: 65
	// layer3.2.add add [layer3.2.bn2 layer3.1.relu2]
	// layer3.2.relu2 relu [layer3.2.add]
	// pool global_avgpool [layer3.2.relu2]
	// fc linear [pool]
}
