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

// ceReference returns the mean softmax cross-entropy of z [n, c] against
// targets y, its gradient (p − y)/n and its Hessian-vector product
// (p⊙v − p·(pᵀv))/n row by row, from the definitions (p = softmax(z)).
func ceReference(z, y, v []float64, n, c int) (loss float64, grad, hv []float64) {
	grad, hv = make([]float64, n*c), make([]float64, n*c)
	for r := 0; r < n; r++ {
		zr := z[r*c : (r+1)*c]
		mx := math.Inf(-1)
		for _, x := range zr {
			mx = math.Max(mx, x)
		}
		var sum float64
		for _, x := range zr {
			sum += math.Exp(x - mx)
		}
		lse := mx + math.Log(sum)
		var pv, ysum float64
		p := make([]float64, c)
		for j, x := range zr {
			p[j] = math.Exp(x - lse)
			pv += p[j] * v[r*c+j]
			ysum += y[r*c+j]
			loss += y[r*c+j] * (lse - x) / float64(n)
		}
		for j := range p {
			grad[r*c+j] = (p[j]*ysum - y[r*c+j]) / float64(n)
			hv[r*c+j] = ysum * (p[j]*v[r*c+j] - p[j]*pv) / float64(n)
		}
	}
	return loss, grad, hv
}

// TestCrossEntropyDerivatives builds CrossEntropy on a graph, takes its
// gradient and its H·v with Backprop (double backprop through the
// cross-entropy's own backward op), and compares loss, gradient and H·v
// with the closed forms, for one-hot and for probability targets, in
// float64 and float32.
func TestCrossEntropyDerivatives(t *testing.T) {
	const n, c = 3, 5
	rng := rand.New(rand.NewPCG(81, 82))
	z := make([]float64, n*c)
	v := make([]float64, n*c)
	for i := range z {
		z[i], v[i] = 3*rng.NormFloat64(), rng.NormFloat64()
	}
	oneHot := make([]float64, n*c)
	for r, l := range []int{2, 0, 4} {
		oneHot[r*c+l] = 1
	}
	soft := make([]float64, n*c)
	for r := 0; r < n; r++ {
		var s float64
		for j := 0; j < c; j++ {
			soft[r*c+j] = rng.Float64()
			s += soft[r*c+j]
		}
		for j := 0; j < c; j++ {
			soft[r*c+j] /= s
		}
	}
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		tol := 1e-13
		if dt == tensor.Float32 {
			tol = 1e-5
		}
		for name, y := range map[string][]float64{"one-hot": oneHot, "soft": soft} {
			t.Run(dt.String()+"/"+name, func(t *testing.T) {
				g := gorgonia.NewGraph()
				mk := func(name string, x []float64, shape ...int) *gorgonia.Node {
					tt := tensor.New(tensor.Of(dt), tensor.WithShape(shape...))
					switch d := tt.Data().(type) {
					case []float64:
						copy(d, x)
					case []float32:
						for i := range d {
							d[i] = float32(x[i])
						}
					}
					return gorgonia.NewTensor(g, dt, len(shape), gorgonia.WithShape(shape...), gorgonia.WithName(name), gorgonia.WithValue(tt))
				}
				zn, yn, vn := mk("z", z, n, c), mk("y", y, n, c), mk("v", v, n, c)
				seed := mk("one", []float64{1}, 1)
				loss, err := CrossEntropy(zn, yn)
				require.NoError(t, err)
				grads, err := Backprop([]*gorgonia.Node{loss}, []*gorgonia.Node{seed}, []*gorgonia.Node{zn})
				require.NoError(t, err)
				require.NoError(t, AuditSecondOrder(grads, []*gorgonia.Node{zn}))
				hv, err := Backprop(grads, []*gorgonia.Node{vn}, []*gorgonia.Node{zn})
				require.NoError(t, err)
				// The gradient is linear in the upstream seed g: ⟨v, ∂grad/∂g⟩ = ⟨v, grad⟩.
				dg, err := Backprop(grads, []*gorgonia.Node{vn}, []*gorgonia.Node{seed})
				require.NoError(t, err)
				m := gorgonia.NewTapeMachine(g)
				defer m.Close()
				require.NoError(t, m.RunAll())

				wantL, wantG, wantHV := ceReference(z, y, v, n, c)
				val := func(nd *gorgonia.Node) []float64 {
					switch d := nd.Value().Data().(type) {
					case []float64:
						return append([]float64(nil), d...)
					case []float32:
						out := make([]float64, len(d))
						for i, x := range d {
							out[i] = float64(x)
						}
						return out
					}
					t.Fatalf("dtype %T", nd.Value().Data())
					return nil
				}
				assert.InDelta(t, wantL, val(loss)[0], tol*math.Max(1, wantL), "loss")
				assert.LessOrEqual(t, maxAbsDiff(val(grads[0]), wantG), tol, "gradient")
				assert.LessOrEqual(t, maxAbsDiff(val(hv[0]), wantHV), tol, "H·v")
				var vg float64
				for i := range v {
					vg += v[i] * wantG[i]
				}
				assert.InDelta(t, vg, val(dg[0])[0], tol, "⟨v, ∂grad/∂g⟩")
			})
		}
	}
}

// recordSampler returns fixed labels and records the probabilities it was
// given.
type recordSampler struct {
	labels []int
	probs  []float64
}

func (s *recordSampler) Sample(probs []float64, classes int, labels []int) error {
	s.probs = append(s.probs[:0], probs...)
	copy(labels, s.labels)
	return nil
}

// TestSampledTargets: the sampler sees softmax(z) row by row, and the node
// outputs the one-hot rows of the labels it drew (readable with
// SampledLabels); an out-of-range label is an error.
func TestSampledTargets(t *testing.T) {
	const n, c = 2, 3
	z := []float64{1, 2, 3, -1, 0, 5}
	s := &recordSampler{labels: []int{2, 0}}
	out := runForward(t, []*tensor.Dense{tensor.New(tensor.WithShape(n, c), tensor.WithBacking(append([]float64(nil), z...)))},
		func(ns []*gorgonia.Node) (*gorgonia.Node, error) { return SampledTargets(ns[0], s) })
	assert.Equal(t, []float64{0, 0, 1, 1, 0, 0}, out)
	for r := 0; r < n; r++ {
		var sum float64
		for j := 0; j < c; j++ {
			sum += math.Exp(z[r*c+j])
		}
		for j := 0; j < c; j++ {
			assert.InDelta(t, math.Exp(z[r*c+j])/sum, s.probs[r*c+j], 1e-15, "row %d class %d", r, j)
		}
	}

	g := gorgonia.NewGraph()
	zn := gorgonia.NewTensor(g, tensor.Float64, 2, gorgonia.WithShape(n, c), gorgonia.WithName("z"),
		gorgonia.WithValue(tensor.New(tensor.WithShape(n, c), tensor.WithBacking(append([]float64(nil), z...)))))
	bad := &recordSampler{labels: []int{1, 3}}
	st, err := SampledTargets(zn, bad)
	require.NoError(t, err)
	m := gorgonia.NewTapeMachine(g)
	defer m.Close()
	require.ErrorContains(t, m.RunAll(), "label 3 for row 1")
	labels, err := SampledLabels(st)
	require.NoError(t, err)
	assert.Equal(t, []int{1, 3}, labels)
	_, err = SampledLabels(zn)
	require.Error(t, err)
	_, err = SampledTargets(zn, nil)
	require.Error(t, err)
}
