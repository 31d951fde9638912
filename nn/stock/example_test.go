package stock_test

import (
	"fmt"

	"github.com/curvopt/curvopt/nn"
	"github.com/curvopt/curvopt/nn/stock"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// A cost written with stock Gorgonia ops is rewritten into nn's ops, whose
// gradient graph can be differentiated again (here: H·v). hessian.NewGraph
// does this for a user's graph; the Rewriter is the piece that does it.
func ExampleRewriter() {
	g := gorgonia.NewGraph()
	x := gorgonia.NewMatrix(g, tensor.Float64, gorgonia.WithShape(2, 2), gorgonia.WithName("x"),
		gorgonia.WithValue(tensor.New(tensor.WithShape(2, 2), tensor.WithBacking([]float64{1, 2, 3, 4}))))
	w := gorgonia.NewMatrix(g, tensor.Float64, gorgonia.WithShape(2, 1), gorgonia.WithName("w"),
		gorgonia.WithValue(tensor.New(tensor.WithShape(2, 1), tensor.WithBacking([]float64{0.1, -0.2}))))
	cost := gorgonia.Must(gorgonia.Mean(gorgonia.Must(gorgonia.Square(gorgonia.Must(gorgonia.Tanh(gorgonia.Must(gorgonia.Mul(x, w))))))))

	r, err := stock.New(g, []*gorgonia.Node{w}, stock.Options{})
	if err != nil {
		panic(err)
	}
	c, err := r.Rewrite(cost) // shape (1): nn ops from w to the cost
	if err != nil {
		panic(err)
	}
	one := gorgonia.NewTensor(g, tensor.Float64, 1, gorgonia.WithShape(1), gorgonia.WithName("one"),
		gorgonia.WithValue(tensor.New(tensor.WithShape(1), tensor.WithBacking([]float64{1}))))
	grad, err := nn.Backprop([]*gorgonia.Node{c}, []*gorgonia.Node{one}, []*gorgonia.Node{w})
	if err != nil {
		panic(err)
	}
	v := gorgonia.NewTensor(g, tensor.Float64, 2, gorgonia.WithShape(2, 1), gorgonia.WithName("v"),
		gorgonia.WithValue(tensor.New(tensor.WithShape(2, 1), tensor.WithBacking([]float64{1, 0}))))
	hv, err := nn.Backprop(grad, []*gorgonia.Node{v}, []*gorgonia.Node{w})
	if err != nil {
		panic(err)
	}
	vm := gorgonia.NewTapeMachine(g.SubgraphRoots(c, grad[0], hv[0]))
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		panic(err)
	}
	// PyTorch's double backprop gives 0.149208, [-1.356884 -1.986906] and
	// [3.225595 4.755562].
	fmt.Printf("cost %.6f\ngradient %.6f\nH·v %.6f\n", c.Value().Data(), grad[0].Value().Data(), hv[0].Value().Data())
	// Output:
	// cost [0.149208]
	// gradient [-1.356884 -1.986906]
	// H·v [3.225595 4.755562]
}
