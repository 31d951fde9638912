package nn

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// stockAuxBuilders builds the cases of testdata/torch_stockaux.json
// (gen_torch_stockaux.py).
var stockAuxBuilders = map[string]func(ns []*gorgonia.Node) (*gorgonia.Node, error){
	"reciprocal": func(ns []*gorgonia.Node) (*gorgonia.Node, error) { return Reciprocal(ns[0]) },
	"sqrt": func(ns []*gorgonia.Node) (*gorgonia.Node, error) { // √x·x (√x alone makes the loss linear)
		s, err := Sqrt(ns[0])
		if err != nil {
			return nil, err
		}
		return Mul(s, ns[0])
	},
	"softplus":          func(ns []*gorgonia.Node) (*gorgonia.Node, error) { return Softplus(ns[0]) },
	"log1p":             func(ns []*gorgonia.Node) (*gorgonia.Node, error) { return Log1p(ns[0]) },
	"expm1":             func(ns []*gorgonia.Node) (*gorgonia.Node, error) { return Expm1(ns[0]) },
	"sin":               func(ns []*gorgonia.Node) (*gorgonia.Node, error) { return Sin(ns[0]) },
	"cos":               func(ns []*gorgonia.Node) (*gorgonia.Node, error) { return Cos(ns[0]) },
	"log_softmax_last":  func(ns []*gorgonia.Node) (*gorgonia.Node, error) { return LogSoftmax(ns[0], -1) },
	"slice_axis1":       func(ns []*gorgonia.Node) (*gorgonia.Node, error) { return Slice(ns[0], 1, 1, 4) },
	"slice_axis0":       func(ns []*gorgonia.Node) (*gorgonia.Node, error) { return Slice(ns[0], 0, 1, 3) },
	"concat_axis1":      func(ns []*gorgonia.Node) (*gorgonia.Node, error) { return Concat(1, ns[0], ns[1]) },
	"concat_axis0":      func(ns []*gorgonia.Node) (*gorgonia.Node, error) { return Concat(0, ns[0], ns[1]) },
	"log_softmax_axis1": func(ns []*gorgonia.Node) (*gorgonia.Node, error) { return LogSoftmax(ns[0], 1) },
}

func init() {
	// The probe of ops_torch_test.go looks builders up by case name.
	for k, f := range stockAuxBuilders {
		opBuilders[k] = f
	}
}

func loadStockAux(t *testing.T) []torchOpCase {
	t.Helper()
	b, err := os.ReadFile("testdata/torch_stockaux.json")
	require.NoError(t, err)
	var f struct {
		Cases []torchOpCase `json:"cases"`
	}
	require.NoError(t, json.Unmarshal(b, &f))
	require.Len(t, f.Cases, len(stockAuxBuilders))
	return f.Cases
}

// TestStockAuxAgainstTorch checks the ops added for nn/stock (value,
// gradient, H·v) against PyTorch double backprop, and against finite
// differences, at the tolerances of TestOpsAgainstTorch and
// TestOpsFiniteDifferences.
func TestStockAuxAgainstTorch(t *testing.T) {
	for _, tc := range loadStockAux(t) {
		t.Run(tc.Name, func(t *testing.T) {
			p := newOpProbe(t, tc, tensor.Float64)
			p.run(t)
			assert.Less(t, relErr(floats(p.y), tc.Y), 1e-12, "value")
			assert.InDelta(t, tc.LossValue, floats(p.loss)[0], 1e-10*math.Abs(tc.LossValue))
			for k, i := range p.diff {
				in := tc.Inputs[i]
				assert.Less(t, relErr(floats(p.grads[k]), in.Grad), 1e-10, "gradient of %s", in.Name)
				assert.Less(t, relErr(floats(p.hv[k]), in.HV), 1e-10, "H·v of %s", in.Name)
			}
			checkFiniteDifferences(t, tc)
			p32 := newOpProbe(t, tc, tensor.Float32)
			p32.run(t)
			assert.Less(t, relErr(floats(p32.y), floats(p.y)), 1e-5, "float32 value")
		})
	}
}

// TestStockAuxDerivativeChains checks each added family's derivative
// formulas against central differences, to the third derivative.
func TestStockAuxDerivativeChains(t *testing.T) {
	for _, fam := range stockAuxFamilies {
		for j := 0; j+1 < len(fam.deriv); j++ {
			for _, x := range []float64{-2.3, -0.7, 0.1, 0.9, 2.6} {
				if fam == recipFamily || fam == sqrtFamily || fam == log1pFamily {
					x = math.Abs(x) + 0.2
				}
				const h = 1e-5
				fd := (fam.deriv[j](x+h) - fam.deriv[j](x-h)) / (2 * h)
				got := fam.deriv[j+1](x)
				assert.InDelta(t, fd, got, 1e-7*math.Max(1, math.Abs(got)), fmt.Sprintf("%s derivative %d at %v", fam.name, j+1, x))
			}
		}
	}
}

// TestRowLocal checks the row-independence answers the evaluation of user
// graphs relies on.
func TestRowLocal(t *testing.T) {
	g := gorgonia.NewGraph()
	x := gorgonia.NewMatrix(g, tensor.Float64, gorgonia.WithShape(4, 3), gorgonia.WithName("x"))
	w := gorgonia.NewMatrix(g, tensor.Float64, gorgonia.WithShape(3, 3), gorgonia.WithName("w"))
	mm, err := MatMul(x, w, false, false)
	require.NoError(t, err)
	rows, ok := RowLocal(mm.Op())
	require.True(t, ok)
	assert.Equal(t, []bool{true, false}, rows)
	mt, err := MatMul(x, x, true, false)
	require.NoError(t, err)
	_, ok = RowLocal(mt.Op())
	assert.False(t, ok, "xᵀx mixes rows")
	s0, err := Softmax(x, 0)
	require.NoError(t, err)
	_, ok = RowLocal(s0.Op())
	assert.False(t, ok, "softmax over axis 0 mixes rows")
	s1, err := LogSoftmax(x, 1)
	require.NoError(t, err)
	_, ok = RowLocal(s1.Op())
	assert.True(t, ok)
	assert.Equal(t, "LogSoftmax", OutputsProbabilities(s1.Op()))
	sg, err := Sigmoid(x)
	require.NoError(t, err)
	assert.Equal(t, "Sigmoid", OutputsProbabilities(sg.Op()))
	assert.True(t, IsOwnOp(sg.Op()))
	assert.Equal(t, "", OutputsProbabilities(mm.Op()))
}
