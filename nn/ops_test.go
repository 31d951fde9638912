package nn

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func randDense(rng *rand.Rand, shape ...int) *tensor.Dense {
	t := tensor.New(tensor.Of(tensor.Float64), tensor.WithShape(shape...))
	d := t.Data().([]float64)
	for i := range d {
		d[i] = rng.NormFloat64()
	}
	return t
}

// runForward evaluates out (built by f on input nodes bound to ins) once.
func runForward(t *testing.T, ins []*tensor.Dense, f func(ns []*gorgonia.Node) (*gorgonia.Node, error)) []float64 {
	t.Helper()
	g := gorgonia.NewGraph()
	ns := make([]*gorgonia.Node, len(ins))
	for i, in := range ins {
		ns[i] = gorgonia.NewTensor(g, tensor.Float64, in.Dims(), gorgonia.WithShape(in.Shape()...),
			gorgonia.WithName(string(rune('a'+i))), gorgonia.WithValue(in))
	}
	out, err := f(ns)
	require.NoError(t, err)
	m := gorgonia.NewTapeMachine(g)
	defer m.Close()
	require.NoError(t, m.RunAll())
	return append([]float64{}, out.Value().Data().([]float64)...)
}

func maxAbsDiff(a, b []float64) float64 {
	var m float64
	for i := range a {
		m = math.Max(m, math.Abs(a[i]-b[i]))
	}
	return m
}

// TestConv2dMatchesDefinition compares Conv2d with the defining loop
// y[n,o,i,j] = Σ_{c,p,q} w[o,c,p,q]·xpad[n,c,i·S+p,j·S+q].
func TestConv2dMatchesDefinition(t *testing.T) {
	cases := []struct{ n, c, h, w, o, k, s, p int }{
		{2, 3, 7, 7, 4, 3, 1, 1},
		{2, 2, 9, 8, 3, 3, 2, 1},
		{1, 1, 5, 5, 2, 2, 1, 0},
		{3, 2, 6, 7, 2, 3, 3, 2},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range cases {
		x, w := randDense(rng, tc.n, tc.c, tc.h, tc.w), randDense(rng, tc.o, tc.c, tc.k, tc.k)
		got := runForward(t, []*tensor.Dense{x, w}, func(ns []*gorgonia.Node) (*gorgonia.Node, error) {
			return Conv2d(ns[0], ns[1], tc.s, tc.p)
		})
		oh, ow := (tc.h+2*tc.p-tc.k)/tc.s+1, (tc.w+2*tc.p-tc.k)/tc.s+1
		require.Len(t, got, tc.n*tc.o*oh*ow)
		xd, wd := x.Data().([]float64), w.Data().([]float64)
		want := make([]float64, len(got))
		for n := 0; n < tc.n; n++ {
			for o := 0; o < tc.o; o++ {
				for i := 0; i < oh; i++ {
					for j := 0; j < ow; j++ {
						var s float64
						for c := 0; c < tc.c; c++ {
							for p := 0; p < tc.k; p++ {
								for q := 0; q < tc.k; q++ {
									h, ww := i*tc.s+p-tc.p, j*tc.s+q-tc.p
									if h < 0 || h >= tc.h || ww < 0 || ww >= tc.w {
										continue
									}
									s += wd[((o*tc.c+c)*tc.k+p)*tc.k+q] * xd[((n*tc.c+c)*tc.h+h)*tc.w+ww]
								}
							}
						}
						want[((n*tc.o+o)*oh+i)*ow+j] = s
					}
				}
			}
		}
		assert.Less(t, maxAbsDiff(got, want), 1e-12, "%+v", tc)
	}
}

// TestMaxPoolMatchesDefinition checks values and first-argmax gradient
// routing with overlapping windows and ties.
func TestMaxPoolMatchesDefinition(t *testing.T) {
	x := tensor.New(tensor.WithShape(1, 1, 3, 4), tensor.WithBacking([]float64{
		1, 5, 5, 0,
		2, 5, 3, 7,
		9, 1, 9, 7,
	}))
	// k=2, s=1: windows overlap; outputs 2×3.
	y := runForward(t, []*tensor.Dense{x}, func(ns []*gorgonia.Node) (*gorgonia.Node, error) { return MaxPool2d(ns[0], 2, 1) })
	assert.Equal(t, []float64{5, 5, 7, 9, 9, 9}, y)
	// Gradient of Σ y·c routes c to the first maximum of each window.
	c := tensor.New(tensor.WithShape(1, 1, 2, 3), tensor.WithBacking([]float64{1, 10, 100, 1000, 10000, 100000}))
	g := runForward(t, []*tensor.Dense{x, c}, func(ns []*gorgonia.Node) (*gorgonia.Node, error) {
		y, err := MaxPool2d(ns[0], 2, 1)
		if err != nil {
			return nil, err
		}
		gs, err := Backprop([]*gorgonia.Node{y}, []*gorgonia.Node{ns[1]}, []*gorgonia.Node{ns[0]})
		if err != nil {
			return nil, err
		}
		return gs[0], nil
	})
	assert.Equal(t, []float64{
		0, 11, 0, 0,
		0, 0, 0, 100,
		1000, 0, 110000, 0,
	}, g)
}

// TestBatchNormMatchesDefinition compares a training-mode batchnorm layer
// with y = (x − μ_c)/√(σ²_c + eps)·γ_c + β_c (biased variance).
func TestBatchNormMatchesDefinition(t *testing.T) {
	spec := Spec{InputShape: []int{2, 3, 3}, Layers: []LayerSpec{
		{Type: LayerBatchNorm2d, Name: "bn", Channels: 2, Eps: 1e-5}, {Type: LayerFlatten}}}
	m, err := newSpec(spec, tensor.Float64, nil)
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(3, 4))
	gamma, beta := m.Params()[0].Value.Data().([]float64), m.Params()[1].Value.Data().([]float64)
	gamma[0], gamma[1], beta[0], beta[1] = 1.5, -0.5, 0.25, 2
	x := randDense(rng, 4, 2, 3, 3)
	g := gorgonia.NewGraph()
	net, err := m.Build(g, 4, true)
	require.NoError(t, err)
	require.NoError(t, gorgonia.Let(net.X, x))
	vm := gorgonia.NewTapeMachine(g)
	defer vm.Close()
	require.NoError(t, vm.RunAll())
	got := net.Logits.Value().Data().([]float64)
	xd := x.Data().([]float64)
	for c := 0; c < 2; c++ {
		var mu, v float64
		for n := 0; n < 4; n++ {
			for i := 0; i < 9; i++ {
				mu += xd[(n*2+c)*9+i]
			}
		}
		mu /= 36
		for n := 0; n < 4; n++ {
			for i := 0; i < 9; i++ {
				d := xd[(n*2+c)*9+i] - mu
				v += d * d
			}
		}
		v /= 36
		for n := 0; n < 4; n++ {
			for i := 0; i < 9; i++ {
				want := (xd[(n*2+c)*9+i]-mu)/math.Sqrt(v+1e-5)*gamma[c] + beta[c]
				assert.InDelta(t, want, got[n*18+c*9+i], 1e-12)
			}
		}
	}
	require.NoError(t, m.UpdateRunningStats(net))
	rm, rv, err := m.RunningStats("bn")
	require.NoError(t, err)
	assert.Greater(t, rv.Data().([]float64)[0], 0.0)
	assert.NotZero(t, rm.Data().([]float64)[0])
}

func TestSpecJSONAndChecks(t *testing.T) {
	raw := `{"input_shape":[4,3,8,8],"layers":[{"type":"conv2d","name":"conv1","in":3,"out":4,"kernel":3,"stride":1,"pad":1},
		{"type":"relu"},{"type":"maxpool2d","kernel":2,"stride":2},{"type":"flatten"},
		{"type":"linear","name":"fc","in":64,"out":10}],"loss":"cross_entropy"}`
	s, err := ParseSpec([]byte(raw))
	require.NoError(t, err)
	_, err = ParseSpec([]byte(`{"input_shape":[3],"layers":[{"type":"linear","name":"a","in":3,"out":2,"bogus":1}]}`))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "bogus")
	info, classes, err := checkSpec(s)
	require.NoError(t, err)
	assert.Equal(t, 10, classes)
	require.Len(t, info, 4)
	assert.Equal(t, "conv1.weight", info[0].Name)
	assert.Equal(t, []int{4, 3, 3, 3}, info[0].Shape)
	ex, err := s.ExampleShape()
	require.NoError(t, err)
	assert.Equal(t, []int{3, 8, 8}, ex)

	// The built-in layer lists: valid, and MLP and CNN are their DAGs.
	for name, c := range map[string]struct {
		spec    Spec
		dag     DAG
		classes int
	}{
		"MLP": {MLPSpec(784, []int{128}, 10), MLP(784, []int{128}, 10), 10}, "CNN cifar": {CNNSpec(3, 32, 10), CNN(3, 32, 10), 10},
		"CNN mnist": {CNNSpec(1, 28, 10), CNN(1, 28, 10), 10}, "MLP deep": {MLPSpec(8, []int{6, 5, 4}, 3), MLP(8, []int{6, 5, 4}, 3), 3},
	} {
		_, cl, err := checkSpec(c.spec)
		require.NoError(t, err, name)
		assert.Equal(t, c.classes, cl, name)
		b, err := json.Marshal(c.spec)
		require.NoError(t, err)
		var back Spec
		require.NoError(t, json.Unmarshal(b, &back))
		assert.Equal(t, c.spec, back)
		d, err := c.spec.DAG()
		require.NoError(t, err, name)
		assert.Equal(t, c.dag, d, name)
		ps, err := c.dag.Check()
		require.NoError(t, err, name)
		n := 0
		for _, l := range c.spec.Layers {
			if hasParams(l.Type) {
				n += 2
			}
		}
		assert.Len(t, ps, n, name)
	}
	assert.Equal(t, 4096, CNNSpec(3, 32, 10).Layers[7].In)
	assert.Equal(t, 3136, CNNSpec(1, 28, 10).Layers[7].In)

	bad := []struct {
		spec Spec
		want string
	}{
		{Spec{InputShape: []int{5}, Layers: []LayerSpec{{Type: "linear", Name: "a", In: 4, Out: 2}}}, "layer 0"},
		{Spec{InputShape: []int{5}, Layers: []LayerSpec{{Type: "softmax"}}}, "unknown layer type"},
		{Spec{InputShape: []int{5}, Layers: []LayerSpec{{Type: "linear", In: 5, Out: 2}}}, "needs a name"},
		{Spec{InputShape: []int{3, 4, 4}, Layers: []LayerSpec{{Type: "conv2d", Name: "c", In: 3, Out: 2, Kernel: 3}}}, "output shape"},
		{Spec{InputShape: []int{5}, Layers: []LayerSpec{{Type: "linear", Name: "a", In: 5, Out: 2}}, Loss: "mse"}, "unsupported loss"},
	}
	for _, b := range bad {
		_, _, err := checkSpec(b.spec)
		require.Error(t, err)
		assert.Contains(t, err.Error(), b.want)
	}
}

// TestInitKaimingUniform checks the torch-default bounds and determinism.
func TestInitKaimingUniform(t *testing.T) {
	spec := CNN(3, 32, 10)
	a, err := New(spec, tensor.Float32, rand.New(rand.NewPCG(1, 1)), 1)
	require.NoError(t, err)
	b, err := New(spec, tensor.Float32, rand.New(rand.NewPCG(1, 1)), 1)
	require.NoError(t, err)
	for i, p := range a.Params() {
		fan := a.ParamInfo()[i].FanIn
		bound := float32(1 / math.Sqrt(float64(fan)))
		d := p.Value.Data().([]float32)
		var maxAbs float32
		for _, v := range d {
			maxAbs = max(maxAbs, float32(math.Abs(float64(v))))
		}
		assert.LessOrEqual(t, maxAbs, bound, p.Name)
		assert.Greater(t, maxAbs, bound/2, p.Name)
		assert.Equal(t, d, b.Params()[i].Value.Data().([]float32), "same seed, same values")
	}
	_, err = New(spec, tensor.Int, nil, 1)
	require.Error(t, err)
}
