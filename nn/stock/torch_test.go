package stock

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/curvopt/curvopt/nn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// torchStockCase is one model of testdata/torch_stock.json
// (gen_torch_stock.py).
type torchStockCase struct {
	Name    string   `json:"name"`
	Loss    float64  `json:"loss"`
	Params  []string `json:"params"`
	Tensors map[string]struct {
		Shape []int     `json:"shape"`
		Data  []float64 `json:"data"`
		V     []float64 `json:"v"`
		Grad  []float64 `json:"grad"`
		HV    []float64 `json:"hv"`
	} `json:"tensors"`
}

// TestStockModelsAgainstTorch builds the generator's models from stock
// Gorgonia ops, rewrites them and compares the loss, gradient and H·v
// with PyTorch's double backprop (float64, 1e-10 relative, as nn's op
// checks).
func TestStockModelsAgainstTorch(t *testing.T) {
	b, err := os.ReadFile("testdata/torch_stock.json")
	require.NoError(t, err)
	var f struct {
		Cases []torchStockCase `json:"cases"`
	}
	require.NoError(t, json.Unmarshal(b, &f))
	require.Len(t, f.Cases, 2)
	for _, tc := range f.Cases {
		t.Run(tc.Name, func(t *testing.T) {
			g := G.NewGraph()
			node := func(name string) *G.Node {
				tt := tc.Tensors[name]
				d := tensor.New(tensor.WithShape(tt.Shape...), tensor.WithBacking(append([]float64{}, tt.Data...)))
				return G.NewTensor(g, tensor.Float64, len(tt.Shape), G.WithShape(tt.Shape...), G.WithName(name), G.WithValue(d))
			}
			x, y := node("x"), node("y")
			ps := make([]*G.Node, len(tc.Params))
			for i, n := range tc.Params {
				ps[i] = node(n)
			}
			var z *G.Node
			switch tc.Name {
			case "mlp":
				h := must(G.Tanh(must(G.BroadcastAdd(must(G.Mul(x, ps[0])), ps[1], nil, []byte{0}))))
				z = must(G.BroadcastAdd(must(G.Mul(h, ps[2])), ps[3], nil, []byte{0}))
			case "convnet":
				c := must(G.Rectify(must(G.Conv2d(x, ps[0], tensor.Shape{3, 3}, []int{1, 1}, []int{1, 1}, []int{1, 1}))))
				m := must(G.MaxPool2D(c, tensor.Shape{2, 2}, []int{0, 0}, []int{2, 2}))
				h := must(G.Sigmoid(must(G.Conv2d(m, ps[1], tensor.Shape{2, 2}, []int{0, 0}, []int{2, 2}, []int{1, 1}))))
				s := h.Shape()
				z = must(G.Mul(must(G.Reshape(h, tensor.Shape{s[0], s[1] * s[2] * s[3]})), ps[2]))
			}
			cost := must(G.Neg(must(G.Mean(must(G.Sum(must(G.HadamardProd(must(G.Log(must(G.SoftMax(z)))), y)), 1))))))
			r, err := New(g, ps, Options{})
			require.NoError(t, err)
			rc, err := r.Rewrite(cost)
			require.NoError(t, err)
			one := G.NewTensor(g, tensor.Float64, 1, G.WithShape(1), G.WithName("one"), G.WithValue(tensor.New(tensor.WithShape(1), tensor.WithBacking([]float64{1}))))
			grads, err := nn.Backprop([]*G.Node{rc}, []*G.Node{one}, ps)
			require.NoError(t, err)
			require.NoError(t, nn.AuditSecondOrder(grads, ps))
			vs := make([]*G.Node, len(ps))
			for i, n := range tc.Params {
				tt := tc.Tensors[n]
				vs[i] = G.NewTensor(g, tensor.Float64, len(tt.Shape), G.WithShape(tt.Shape...), G.WithName("v:"+n),
					G.WithValue(tensor.New(tensor.WithShape(tt.Shape...), tensor.WithBacking(append([]float64{}, tt.V...)))))
			}
			hv, err := nn.Backprop(grads, vs, ps)
			require.NoError(t, err)
			run(t, g, append(append([]*G.Node{rc}, grads...), hv...)...)
			assert.InDelta(t, tc.Loss, scalar(t, rc), 1e-12*tc.Loss, "loss")
			for i, n := range tc.Params {
				tt := tc.Tensors[n]
				assert.LessOrEqual(t, relErr(grads[i].Value().Data().([]float64), tt.Grad), 1e-10, "gradient of %s", n)
				assert.LessOrEqual(t, relErr(hv[i].Value().Data().([]float64), tt.HV), 1e-10, "H·v of %s", n)
			}
		})
	}
}
