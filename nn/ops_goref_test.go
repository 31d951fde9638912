package nn

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Cases that PyTorch's file (testdata/torch_ops.json) does not hold, with
// their reference values computed here from the definition.
func init() {
	opBuilders["softmax_axis0"] = func(ns []*gorgonia.Node) (*gorgonia.Node, error) { return Softmax(ns[0], 0) }
	opBuilders["softmax_axis-3"] = func(ns []*gorgonia.Node) (*gorgonia.Node, error) { return Softmax(ns[0], -3) }
	opBuilders["tanh"] = func(ns []*gorgonia.Node) (*gorgonia.Node, error) { return Tanh(ns[0]) }
}

// softmaxAxis0Ref is softmax along the first axis of x [a, b·c]: each column
// normalised over the a rows, straight from the definition.
func softmaxAxis0Ref(x []float64, a int) []float64 {
	cols := len(x) / a
	y := make([]float64, len(x))
	for c := 0; c < cols; c++ {
		var s float64
		for r := 0; r < a; r++ {
			s += math.Exp(x[r*cols+c])
		}
		for r := 0; r < a; r++ {
			y[r*cols+c] = math.Exp(x[r*cols+c]) / s
		}
	}
	return y
}

// goRefCase builds a case of one differentiable input of shape, with random
// data, loss weights c and direction v, and reference output ref(data).
func goRefCase(rng *rand.Rand, name string, shape []int, scale float64, ref func([]float64) []float64) torchOpCase {
	n := 1
	for _, d := range shape {
		n *= d
	}
	r := func(s float64) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = s * (2*rng.Float64() - 1)
		}
		return v
	}
	tc := torchOpCase{Name: name, C: r(1), YShape: shape}
	tc.Inputs = append(tc.Inputs, struct {
		Name  string    `json:"name"`
		Shape []int     `json:"shape"`
		Data  []float64 `json:"data"`
		Diff  bool      `json:"diff"`
		V     []float64 `json:"v"`
		Grad  []float64 `json:"grad"`
		HV    []float64 `json:"hv"`
	}{Name: "x", Shape: shape, Data: r(scale), Diff: true, V: r(1)})
	tc.Y = ref(tc.Inputs[0].Data)
	return tc
}

// TestOpsGoReference checks Softmax along axis 0 (also written −3) and Tanh:
// the value against the definition (math.Exp, math.Tanh), the gradient and
// H·v against finite differences, and float32 against float64.
func TestOpsGoReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 5))
	softmax0 := func(x []float64) []float64 { return softmaxAxis0Ref(x, 3) }
	tanh := func(x []float64) []float64 {
		y := make([]float64, len(x))
		for i, v := range x {
			y[i] = math.Tanh(v)
		}
		return y
	}
	for _, tc := range []torchOpCase{
		goRefCase(rng, "softmax_axis0", []int{3, 2, 4}, 2, softmax0),
		goRefCase(rng, "softmax_axis-3", []int{3, 2, 4}, 2, softmax0),
		goRefCase(rng, "tanh", []int{4, 5}, 3, tanh),
	} {
		t.Run(tc.Name, func(t *testing.T) {
			p := newOpProbe(t, tc, tensor.Float64)
			p.run(t)
			assert.Less(t, relErr(floats(p.y), tc.Y), 1e-14, "value")
			checkFiniteDifferences(t, tc)
			p32 := newOpProbe(t, tc, tensor.Float32)
			p32.run(t)
			assert.Less(t, relErr(floats(p32.y), floats(p.y)), 1e-6, "float32 value")
			assert.Less(t, relErr(floats(p32.grads[0]), floats(p.grads[0])), 1e-5, "float32 gradient")
			assert.Less(t, relErr(floats(p32.hv[0]), floats(p.hv[0])), 1e-5, "float32 H·v")
		})
	}
}

// TestTanhKernel runs the Tanh op's forward kernel on 3·2¹⁵ + 7 values (so
// that it is split across workers) from −20 to 20, zero and the smallest
// magnitudes included, and compares every output with math.Tanh: to 2 ulp
// in float64, and to float32 rounding of the float64 value in float32.
func TestTanhKernel(t *testing.T) {
	n := 3*minParallel + 7
	xs := make([]float64, n)
	for i := range xs {
		xs[i] = -20 + 40*float64(i)/float64(n-1)
	}
	xs[0], xs[1], xs[2], xs[3] = 0, 1e-300, -1e-20, math.SmallestNonzeroFloat64
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		g := gorgonia.NewGraph()
		v := tensor.New(tensor.Of(dt), tensor.WithShape(n))
		setFloats(v, xs)
		x := gorgonia.NewTensor(g, dt, 1, gorgonia.WithShape(n), gorgonia.WithName("x"), gorgonia.WithValue(v))
		y, err := Tanh(x)
		require.NoError(t, err)
		vm := gorgonia.NewTapeMachine(g)
		require.NoError(t, vm.RunAll())
		vm.Close()
		got := floats(y)
		in := floats(x)
		bad := 0
		for i, xi := range in {
			want := math.Tanh(xi)
			tol := 2 * math.Abs(want) * 0x1p-52
			if dt == tensor.Float32 {
				want = float64(float32(want))
				tol = math.Abs(want) * 0x1p-24
			}
			if d := math.Abs(got[i] - want); d > tol && bad < 5 {
				bad++
				t.Errorf("%v: Tanh(%v) = %v, want %v (math.Tanh)", dt, xi, got[i], want)
			}
		}
	}
}
