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

// torchOpCase is one case of testdata/torch_ops.json (gen_torch_ops.py).
type torchOpCase struct {
	Name      string         `json:"name"`
	C         []float64      `json:"c"`
	YShape    []int          `json:"y_shape"`
	Y         []float64      `json:"y"`
	LossValue float64        `json:"loss_value"`
	Inputs    []torchOpInput `json:"inputs"`
}

// torchOpInput is one input of a case: its values, whether the loss is
// differentiated with respect to it, the direction v, and PyTorch's
// gradient and H·v.
type torchOpInput struct {
	Name  string    `json:"name"`
	Shape []int     `json:"shape"`
	Data  []float64 `json:"data"`
	Diff  bool      `json:"diff"`
	V     []float64 `json:"v"`
	Grad  []float64 `json:"grad"`
	HV    []float64 `json:"hv"`
}

// opBuilders builds each case's op from its input nodes (in the JSON order).
var opBuilders = map[string]func(ns []*gorgonia.Node) (*gorgonia.Node, error){
	"exp":             func(ns []*gorgonia.Node) (*gorgonia.Node, error) { return Exp(ns[0]) },
	"log":             func(ns []*gorgonia.Node) (*gorgonia.Node, error) { return Log(ns[0]) },
	"sigmoid":         func(ns []*gorgonia.Node) (*gorgonia.Node, error) { return Sigmoid(ns[0]) },
	"gelu_erf":        func(ns []*gorgonia.Node) (*gorgonia.Node, error) { return GELU(ns[0]) },
	"gelu_tanh":       func(ns []*gorgonia.Node) (*gorgonia.Node, error) { return GELUTanh(ns[0]) },
	"softmax_axis1":   func(ns []*gorgonia.Node) (*gorgonia.Node, error) { return Softmax(ns[0], 1) },
	"softmax_last":    func(ns []*gorgonia.Node) (*gorgonia.Node, error) { return Softmax(ns[0], -1) },
	"layernorm":       func(ns []*gorgonia.Node) (*gorgonia.Node, error) { return LayerNorm(ns[0], ns[1], ns[2], 1e-5) },
	"embedding":       func(ns []*gorgonia.Node) (*gorgonia.Node, error) { return Embedding(ns[0], ns[1]) },
	"bmm_nn":          func(ns []*gorgonia.Node) (*gorgonia.Node, error) { return BatchMatMul(ns[0], ns[1], false, false) },
	"bmm_nt":          func(ns []*gorgonia.Node) (*gorgonia.Node, error) { return BatchMatMul(ns[0], ns[1], false, true) },
	"bmm_tn":          func(ns []*gorgonia.Node) (*gorgonia.Node, error) { return BatchMatMul(ns[0], ns[1], true, false) },
	"bmm_tt":          func(ns []*gorgonia.Node) (*gorgonia.Node, error) { return BatchMatMul(ns[0], ns[1], true, true) },
	"split_heads":     func(ns []*gorgonia.Node) (*gorgonia.Node, error) { return SplitHeads(ns[0], 2, 3, 2) },
	"merge_heads":     func(ns []*gorgonia.Node) (*gorgonia.Node, error) { return MergeHeads(ns[0], 2, 2) },
	"causal_softmax":  causalSoftmaxForTest,
	"avgpool_k2s2":    func(ns []*gorgonia.Node) (*gorgonia.Node, error) { return AvgPool2d(ns[0], 2, 2) },
	"avgpool_k3s1":    func(ns []*gorgonia.Node) (*gorgonia.Node, error) { return AvgPool2d(ns[0], 3, 1) },
	"global_avgpool":  func(ns []*gorgonia.Node) (*gorgonia.Node, error) { return GlobalAvgPool(ns[0]) },
	"conv1x1_s2":      func(ns []*gorgonia.Node) (*gorgonia.Node, error) { return Conv2d(ns[0], ns[1], 2, 0) },
	"conv3x3_s2":      func(ns []*gorgonia.Node) (*gorgonia.Node, error) { return Conv2d(ns[0], ns[1], 2, 1) },
	"add_row_vector":  func(ns []*gorgonia.Node) (*gorgonia.Node, error) { return BiasAdd(ns[0], ns[1]) },
	"chan_mul":        func(ns []*gorgonia.Node) (*gorgonia.Node, error) { return ChanMul(ns[0], ns[1]) },
	"chan_dot":        func(ns []*gorgonia.Node) (*gorgonia.Node, error) { return ChanDot(ns[0], ns[1]) },
	"batchnorm_train": batchNormForTest,
	"residual": func(ns []*gorgonia.Node) (*gorgonia.Node, error) {
		h, err := Conv2d(ns[0], ns[1], 1, 1)
		if err != nil {
			return nil, err
		}
		if h, err = ReLU(h); err != nil {
			return nil, err
		}
		return AddN(ns[0], h)
	},
}

// batchNormForTest is Model.batchNorm in training mode on its own.
func batchNormForTest(ns []*gorgonia.Node) (*gorgonia.Node, error) {
	m := &Model{dt: dtypeOf(ns[0])}
	c := shapeOf(ns[0])[1]
	run := &bnRunning{mean: tensor.New(tensor.Of(m.dt), tensor.WithShape(c)), vari: tensor.New(tensor.Of(m.dt), tensor.WithShape(c))}
	y, _, err := m.batchNorm(ns[0].Graph(), ns[0], ns[1], ns[2], run, 1e-5, true)
	return y, err
}

func causalSoftmaxForTest(ns []*gorgonia.Node) (*gorgonia.Node, error) {
	m, err := CausalMask(ns[0])
	if err != nil {
		return nil, err
	}
	return Softmax(m, -1)
}

func loadTorchOps(t *testing.T) []torchOpCase {
	t.Helper()
	b, err := os.ReadFile("testdata/torch_ops.json")
	require.NoError(t, err)
	var f struct {
		Cases []torchOpCase `json:"cases"`
	}
	require.NoError(t, json.Unmarshal(b, &f))
	require.NotEmpty(t, f.Cases)
	return f.Cases
}

// opProbe is the graph of one case: y = op(inputs), L = Σ c⊙y⊙y, its
// gradient and H·v, in dtype dt.
type opProbe struct {
	g         *gorgonia.ExprGraph
	ins       []*gorgonia.Node
	vals      []*tensor.Dense
	y, loss   *gorgonia.Node
	grads, hv []*gorgonia.Node
	diff      []int
	vm        gorgonia.VM
}

func newOpProbe(t *testing.T, tc torchOpCase, dt tensor.Dtype) *opProbe {
	t.Helper()
	build, ok := opBuilders[tc.Name]
	require.True(t, ok, "no builder for case %q", tc.Name)
	return newOpProbeWith(t, tc, dt, build)
}

// newOpProbeWith is newOpProbe with the op built by build.
func newOpProbeWith(t *testing.T, tc torchOpCase, dt tensor.Dtype, build func(ns []*gorgonia.Node) (*gorgonia.Node, error)) *opProbe {
	t.Helper()
	p := &opProbe{g: gorgonia.NewGraph()}
	mk := func(name string, shape []int, data []float64) (*gorgonia.Node, *tensor.Dense) {
		v := tensor.New(tensor.Of(dt), tensor.WithShape(shape...))
		setFloats(v, data)
		return gorgonia.NewTensor(p.g, dt, len(shape), gorgonia.WithShape(shape...), gorgonia.WithName(name), gorgonia.WithValue(v)), v
	}
	var vs []*gorgonia.Node
	for i, in := range tc.Inputs {
		n, v := mk(in.Name, in.Shape, in.Data)
		p.ins, p.vals = append(p.ins, n), append(p.vals, v)
		if in.Diff {
			p.diff = append(p.diff, i)
			vn, _ := mk("v:"+in.Name, in.Shape, in.V)
			vs = append(vs, vn)
		}
	}
	var err error
	p.y, err = build(p.ins)
	require.NoError(t, err)
	require.Equal(t, tc.YShape, []int(p.y.Shape()), "output shape")
	c, _ := mk("c", tc.YShape, tc.C)
	yy, err := Mul(p.y, p.y)
	require.NoError(t, err)
	cyy, err := Mul(c, yy)
	require.NoError(t, err)
	flat, err := Reshape(cyy, tensor.Shape{1, p.y.Shape().TotalSize()})
	require.NoError(t, err)
	p.loss, err = AxisSum(flat, 1)
	require.NoError(t, err)
	one, _ := mk("one", []int{1}, []float64{1})
	wrt := make([]*gorgonia.Node, len(p.diff))
	for k, i := range p.diff {
		wrt[k] = p.ins[i]
	}
	p.grads, err = Backprop([]*gorgonia.Node{p.loss}, []*gorgonia.Node{one}, wrt)
	require.NoError(t, err)
	require.NoError(t, AuditSecondOrder(p.grads, wrt), "second-order audit")
	p.hv, err = Backprop(p.grads, vs, wrt)
	require.NoError(t, err)
	roots := append([]*gorgonia.Node{p.y, p.loss}, p.grads...)
	p.vm = gorgonia.NewTapeMachine(p.g.SubgraphRoots(append(roots, p.hv...)...))
	t.Cleanup(func() { p.vm.Close() })
	return p
}

func (p *opProbe) run(t *testing.T) {
	t.Helper()
	p.vm.Reset()
	require.NoError(t, p.vm.RunAll())
}

func setFloats(v *tensor.Dense, data []float64) {
	switch d := v.Data().(type) {
	case []float64:
		copy(d, data)
	case []float32:
		for i := range d {
			d[i] = float32(data[i])
		}
	}
}

func floats(n *gorgonia.Node) []float64 {
	switch d := n.Value().Data().(type) {
	case []float64:
		return append([]float64{}, d...)
	case []float32:
		out := make([]float64, len(d))
		for i, v := range d {
			out[i] = float64(v)
		}
		return out
	}
	return nil
}

// relErr is ‖a − b‖/max(‖b‖, tiny).
func relErr(a, b []float64) float64 {
	var num, den float64
	for i := range a {
		num += (a[i] - b[i]) * (a[i] - b[i])
		den += b[i] * b[i]
	}
	return math.Sqrt(num) / math.Max(math.Sqrt(den), 1e-300)
}

// TestOpsAgainstTorch checks every new op's value, gradient and
// Hessian-vector product against PyTorch double backprop (float64; the
// inputs are the JSON's own).
func TestOpsAgainstTorch(t *testing.T) {
	for _, tc := range loadTorchOps(t) {
		t.Run(tc.Name, func(t *testing.T) {
			p := newOpProbe(t, tc, tensor.Float64)
			p.run(t)
			assert.Less(t, relErr(floats(p.y), tc.Y), 1e-12, "value")
			assert.InDelta(t, tc.LossValue, floats(p.loss)[0], 1e-10*math.Abs(tc.LossValue))
			for k, i := range p.diff {
				in := tc.Inputs[i]
				eg, eh := relErr(floats(p.grads[k]), in.Grad), relErr(floats(p.hv[k]), in.HV)
				assert.Less(t, eg, 1e-10, "gradient of %s", in.Name)
				assert.Less(t, eh, 1e-10, "H·v of %s", in.Name)
			}
		})
	}
}

// TestOpsFiniteDifferences checks each op's gradient against central
// differences of the loss and H·v against central differences of the
// gradient, in float64, to 1e-7 relative.
func TestOpsFiniteDifferences(t *testing.T) {
	for _, tc := range loadTorchOps(t) {
		t.Run(tc.Name, func(t *testing.T) { checkFiniteDifferences(t, tc) })
	}
}

// checkFiniteDifferences checks case tc's gradients against central
// differences of the loss and H·v against central differences of the
// gradient, in float64, to 1e-7 relative.
func checkFiniteDifferences(t *testing.T, tc torchOpCase) {
	checkFiniteDifferencesOf(t, tc, newOpProbe(t, tc, tensor.Float64))
}

// checkFiniteDifferencesOf is checkFiniteDifferences on the probe p of tc.
func checkFiniteDifferencesOf(t *testing.T, tc torchOpCase, p *opProbe) {
	p.run(t)
	for k, i := range p.diff {
		x := p.vals[i].Data().([]float64)
		grad, hv := floats(p.grads[k]), floats(p.hv[k])
		const h = 1e-5
		fd := make([]float64, len(x))
		for j := range x {
			x0 := x[j]
			x[j] = x0 + h
			p.run(t)
			lp := floats(p.loss)[0]
			x[j] = x0 - h
			p.run(t)
			lm := floats(p.loss)[0]
			x[j] = x0
			fd[j] = (lp - lm) / (2 * h)
		}
		assert.Less(t, relErr(grad, fd), 1e-7, "gradient of %s vs finite differences", tc.Inputs[i].Name)
		// H·v restricted to this input: Σ over the other inputs'
		// directions is included in hv, so perturb every
		// differentiable input along its v at once.
		step := func(s float64) []float64 {
			for _, i2 := range p.diff {
				xd := p.vals[i2].Data().([]float64)
				for j := range xd {
					xd[j] += s * tc.Inputs[i2].V[j]
				}
			}
			p.run(t)
			return floats(p.grads[k])
		}
		gp := step(h)
		gm := step(-2 * h)
		step(h)
		fdh := make([]float64, len(gp))
		for j := range gp {
			fdh[j] = (gp[j] - gm[j]) / (2 * h)
		}
		assert.Less(t, relErr(hv, fdh), 1e-7, "H·v of %s vs finite differences of the gradient", tc.Inputs[i].Name)
	}
}

// TestOpsFloat32MatchesFloat64 runs every case in float32 and compares with
// float64.
func TestOpsFloat32MatchesFloat64(t *testing.T) {
	for _, tc := range loadTorchOps(t) {
		t.Run(tc.Name, func(t *testing.T) {
			p64, p32 := newOpProbe(t, tc, tensor.Float64), newOpProbe(t, tc, tensor.Float32)
			p64.run(t)
			p32.run(t)
			assert.Less(t, relErr(floats(p32.y), floats(p64.y)), 1e-5, "value")
			for k := range p64.diff {
				assert.Less(t, relErr(floats(p32.grads[k]), floats(p64.grads[k])), 1e-4, "gradient %d", k)
				assert.Less(t, relErr(floats(p32.hv[k]), floats(p64.hv[k])), 1e-4, "H·v %d", k)
			}
		})
	}
}

// TestUnaryDerivativeChains checks each unary family's derivative formulas
// f⁽ʲ⁺¹⁾ against central differences of f⁽ʲ⁾ (j up to the third
// derivative), so a wrong formula fails even where no test reaches it
// through a graph.
func TestUnaryDerivativeChains(t *testing.T) {
	for _, fam := range unaryFamilies {
		for j := 0; j+1 < len(fam.deriv); j++ {
			for _, x := range []float64{-2.3, -0.7, 0.1, 0.9, 2.6} {
				if fam == logFamily {
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
