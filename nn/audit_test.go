package nn

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestAuditRefusesStockOps checks that a second-order graph through stock
// Gorgonia ops known to be wrong under double differentiation (SoftMax,
// MaxPool2D) is refused with an error naming the op and the node, while the
// same graph built from this package's ops passes.
func TestAuditRefusesStockOps(t *testing.T) {
	cases := []struct {
		name    string
		build   func(g *gorgonia.ExprGraph, x *gorgonia.Node) (*gorgonia.Node, error)
		wantErr string
	}{
		{"stock SoftMax", func(g *gorgonia.ExprGraph, h *gorgonia.Node) (*gorgonia.Node, error) {
			f, err := Flatten(h)
			if err != nil {
				return nil, err
			}
			return gorgonia.SoftMax(f)
		}, "oftmax"},
		{"stock MaxPool2D", func(g *gorgonia.ExprGraph, h *gorgonia.Node) (*gorgonia.Node, error) {
			p, err := gorgonia.MaxPool2D(h, tensor.Shape{2, 2}, []int{0, 0}, []int{2, 2})
			if err != nil {
				return nil, err
			}
			return Flatten(p)
		}, "MaxPool"},
		{"own ops", func(g *gorgonia.ExprGraph, h *gorgonia.Node) (*gorgonia.Node, error) {
			p, err := MaxPool2d(h, 2, 2)
			if err != nil {
				return nil, err
			}
			return Flatten(p)
		}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := gorgonia.NewGraph()
			x := gorgonia.NewTensor(g, tensor.Float64, 4, gorgonia.WithShape(2, 1, 4, 4), gorgonia.WithName("x"))
			w := gorgonia.NewTensor(g, tensor.Float64, 4, gorgonia.WithShape(2, 1, 3, 3), gorgonia.WithName("conv.weight"))
			h, err := Conv2d(x, w, 1, 1)
			require.NoError(t, err)
			out, err := tc.build(g, h)
			require.NoError(t, err)
			s := out.Shape()
			fc := gorgonia.NewTensor(g, tensor.Float64, 2, gorgonia.WithShape(s[1], 3), gorgonia.WithName("fc.weight"))
			z, err := MatMul(out, fc, false, false)
			require.NoError(t, err)
			y := gorgonia.NewTensor(g, tensor.Float64, 2, gorgonia.WithShape(2, 3), gorgonia.WithName("targets"))
			loss, err := CrossEntropy(z, y)
			require.NoError(t, err)
			one := gorgonia.NewTensor(g, tensor.Float64, 1, gorgonia.WithShape(1), gorgonia.WithName("one"))
			params := []*gorgonia.Node{w, fc}
			grads, err := Backprop([]*gorgonia.Node{loss}, []*gorgonia.Node{one}, params)
			require.NoError(t, err)
			err = AuditSecondOrder(grads, params)
			if tc.wantErr == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.wantErr)
			assert.Contains(t, err.Error(), "not verified for double differentiation")
			assert.Contains(t, err.Error(), "at node")
			t.Log(err)
		})
	}
}
