// Package optimtest holds checks every optimizer's tests share: a quadratic
// problem with a known Hessian that also serves as an optim.Oracle, the
// resume-is-bit-identical check, and the bad-gradient check.
package optimtest

import (
	"github.com/curvopt/curvopt/internal/num"
	"github.com/curvopt/curvopt/optim/internal/kernel"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/curvopt/curvopt/optim"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

// Quadratic is L(θ) = ½ θᵀAθ + bᵀθ over the flattened parameters, with A
// symmetric. It answers HVP with A·v and SampledGrad with the gradient of a
// second quadratic (AS, BS), standing in for the sampled-label gradient.
type Quadratic struct {
	Shapes [][]int
	A, AS  [][]float64
	B, BS  []float64
	params []optim.Param
	work   []float64
	flat   []float64
	vals   []*tensor.Dense
}

// NewQuadratic makes a random quadratic over parameters of the given shapes.
// Its Hessian is A = QᵀQ/d + shift·I, so shift < 0 can make it indefinite.
func NewQuadratic(rng *rand.Rand, shift float64, shapes ...[]int) *Quadratic {
	d := 0
	for _, s := range shapes {
		d += size(s)
	}
	mk := func(sh float64) ([][]float64, []float64) {
		q := make([][]float64, d)
		for i := range q {
			q[i] = make([]float64, d)
			for j := range q[i] {
				q[i][j] = rng.NormFloat64()
			}
		}
		a := make([][]float64, d)
		for i := range a {
			a[i] = make([]float64, d)
			for j := range a[i] {
				s := 0.0
				for k := 0; k < d; k++ {
					s += q[k][i] * q[k][j]
				}
				a[i][j] = s / float64(d)
			}
			a[i][i] += sh
		}
		b := make([]float64, d)
		for i := range b {
			b[i] = rng.NormFloat64()
		}
		return a, b
	}
	q := &Quadratic{Shapes: shapes, work: make([]float64, d), flat: make([]float64, d)}
	q.A, q.B = mk(shift)
	q.AS, q.BS = mk(0)
	return q
}

func size(s []int) int {
	n := 1
	for _, v := range s {
		n *= v
	}
	return n
}

// Params returns fresh parameters of the given dtype, initialised from rng,
// with zero gradients. The quadratic remembers them for SampledGrad.
func (q *Quadratic) Params(dt tensor.Dtype, rng *rand.Rand) []optim.Param {
	ps := make([]optim.Param, len(q.Shapes))
	for i, s := range q.Shapes {
		v := tensor.New(tensor.Of(dt), tensor.WithShape(s...))
		switch d := kernel.Backing(v).(type) {
		case []float64:
			for j := range d {
				d[j] = rng.NormFloat64()
			}
		case []float32:
			for j := range d {
				d[j] = float32(rng.NormFloat64())
			}
		}
		ps[i] = optim.Param{Name: "p" + string(rune('0'+i)), Value: v, Grad: tensor.New(tensor.Of(dt), tensor.WithShape(s...))}
	}
	q.params = ps
	return ps
}

// Use makes the quadratic evaluate SampledGrad at ps.
func (q *Quadratic) Use(ps []optim.Param) { q.params = ps }

// Grad sets every ps[i].Grad to ∇L = Aθ + b and returns L.
func (q *Quadratic) Grad(ps []optim.Param) float64 {
	theta := Flatten(ps)
	g := q.matVec(q.A, theta)
	loss := 0.0
	for i := range g {
		loss += 0.5*theta[i]*g[i] + q.B[i]*theta[i]
		g[i] += q.B[i]
	}
	unflattenGrads(ps, g)
	return loss
}

func (q *Quadratic) matVec(a [][]float64, x []float64) []float64 {
	out := q.work[:len(a)]
	for i, row := range a {
		s := 0.0
		for j, v := range row {
			s += v * x[j]
		}
		out[i] = s
	}
	return out
}

// HVP sets out = A·v. It does not allocate.
func (q *Quadratic) HVP(v, out []*tensor.Dense) error {
	Unflatten(out, q.matVec(q.A, q.flatInto(v)))
	return nil
}

// flatInto concatenates ts into the quadratic's buffer as float64.
func (q *Quadratic) flatInto(ts []*tensor.Dense) []float64 {
	off := 0
	for _, t := range ts {
		switch t.Dtype() {
		case tensor.Float64:
			off += copy(q.flat[off:], t.Float64s())
		case tensor.Float32:
			for _, x := range t.Float32s() {
				q.flat[off] = float64(x)
				off++
			}
		}
	}
	return q.flat[:off]
}

// SampledGrad sets out = AS·θ + BS at the parameters last given to Params
// or Use. It does not allocate.
func (q *Quadratic) SampledGrad(out []*tensor.Dense) error {
	q.vals = q.vals[:0]
	for _, p := range q.params {
		q.vals = append(q.vals, p.Value)
	}
	g := q.matVec(q.AS, q.flatInto(q.vals))
	for i := range g {
		g[i] += q.BS[i]
	}
	Unflatten(out, g)
	return nil
}

// Flatten concatenates the parameter values as float64.
func Flatten(ps []optim.Param) []float64 {
	var out []float64
	for _, p := range ps {
		out = append(out, num.ToFloat64(p.Value)...)
	}
	return out
}

// FlattenT concatenates tensors as float64.
func FlattenT(ts []*tensor.Dense) []float64 {
	var out []float64
	for _, t := range ts {
		out = append(out, num.ToFloat64(t)...)
	}
	return out
}

// Unflatten copies x into the tensors in order, converting to their dtype.
// It does not allocate.
func Unflatten(ts []*tensor.Dense, x []float64) {
	off := 0
	for _, t := range ts {
		switch t.Dtype() {
		case tensor.Float64:
			off += copy(t.Float64s(), x[off:])
		case tensor.Float32:
			d := t.Float32s()
			for j := range d {
				d[j] = float32(x[off+j])
			}
			off += len(d)
		}
	}
}

func unflattenGrads(ps []optim.Param, g []float64) {
	ts := make([]*tensor.Dense, len(ps))
	for i, p := range ps {
		ts[i] = p.Grad
	}
	Unflatten(ts, g)
}

// CheckResume runs steps steps with one optimizer, and k steps + export +
// import into a fresh optimizer + steps−k steps with another, on the same
// quadratic from the same start, and requires bit-identical parameters.
func CheckResume(t *testing.T, newOpt func() optim.Optimizer, q *Quadratic, dt tensor.Dtype, steps, k int) {
	t.Helper()
	run := func(ps []optim.Param, opt optim.Optimizer, n int) {
		q.Use(ps)
		for i := 0; i < n; i++ {
			q.Grad(ps)
			require.NoError(t, opt.Step(ps, q))
		}
	}
	straight := q.Params(dt, rand.New(rand.NewPCG(1, 2)))
	run(straight, newOpt(), steps)

	resumed := q.Params(dt, rand.New(rand.NewPCG(1, 2)))
	first := newOpt()
	run(resumed, first, k)
	st, err := first.State()
	require.NoError(t, err)
	second := newOpt()
	require.NoError(t, second.LoadState(resumed, st))
	run(resumed, second, steps-k)

	a, b := Flatten(straight), Flatten(resumed)
	for i := range a {
		require.Equal(t, math.Float64bits(a[i]), math.Float64bits(b[i]), "entry %d differs after resume: %v vs %v", i, a[i], b[i])
	}
}

// CheckBadGradient requires that a NaN gradient or a gradient of the wrong
// shape makes Step fail with an error naming the parameter, and changes no
// parameter.
func CheckBadGradient(t *testing.T, opt optim.Optimizer, q *Quadratic) {
	t.Helper()
	ps := q.Params(tensor.Float64, rand.New(rand.NewPCG(3, 4)))
	q.Grad(ps)
	require.NoError(t, opt.Step(ps, q)) // allocate state
	q.Grad(ps)
	before := Flatten(ps)
	last := ps[len(ps)-1]
	g := last.Grad.Float64s()
	g[len(g)-1] = math.NaN()
	err := opt.Step(ps, q)
	require.Error(t, err)
	assert.Contains(t, err.Error(), last.Name)
	assert.Equal(t, before, Flatten(ps), "a NaN gradient changed the parameters")

	bad := append([]optim.Param(nil), ps...)
	bad[0].Grad = tensor.New(tensor.Of(tensor.Float64), tensor.WithShape(1, 1, 1, 7))
	err = opt.Step(bad, q)
	require.Error(t, err)
	assert.Contains(t, err.Error(), ps[0].Name)
	assert.Contains(t, err.Error(), "shape")
	assert.Equal(t, before, Flatten(ps), "a mis-shaped gradient changed the parameters")
}

// CheckStateMismatch requires LoadState to refuse a state made for other
// parameters (another shape, another name, another dtype) with an error
// saying what differs.
func CheckStateMismatch(t *testing.T, newOpt func() optim.Optimizer, q *Quadratic) {
	t.Helper()
	ps := q.Params(tensor.Float64, rand.New(rand.NewPCG(5, 6)))
	opt := newOpt()
	q.Grad(ps)
	require.NoError(t, opt.Step(ps, q))
	st, err := opt.State()
	require.NoError(t, err)
	require.NotEmpty(t, st.Tensors, "CheckStateMismatch needs an optimizer configuration that keeps per-parameter state")

	reshaped := append([]optim.Param(nil), ps...)
	n := reshaped[0].Value.Shape().TotalSize()
	reshaped[0].Value = tensor.New(tensor.Of(tensor.Float64), tensor.WithShape(1, n))
	reshaped[0].Grad = tensor.New(tensor.Of(tensor.Float64), tensor.WithShape(1, n))
	err = newOpt().LoadState(reshaped, st)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "shape")
	assert.Contains(t, err.Error(), ps[0].Name)

	renamed := append([]optim.Param(nil), ps...)
	renamed[0].Name = "other"
	err = newOpt().LoadState(renamed, st)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "other")

	f32 := q.Params(tensor.Float32, rand.New(rand.NewPCG(5, 6)))
	err = newOpt().LoadState(f32, st)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "dtype")

	st.Optimizer = "something-else"
	err = newOpt().LoadState(ps, st)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "something-else")
}

// CheckStateless requires an optimizer declared stateless to export no
// state tensors after a step, and LoadState to refuse another optimizer's
// state naming it.
func CheckStateless(t *testing.T, newOpt func() optim.Optimizer, q *Quadratic) {
	t.Helper()
	ps := q.Params(tensor.Float64, rand.New(rand.NewPCG(5, 6)))
	opt := newOpt()
	q.Grad(ps)
	require.NoError(t, opt.Step(ps, q))
	st, err := opt.State()
	require.NoError(t, err)
	assert.Empty(t, st.Tensors, "an optimizer declared stateless exported state tensors")
	require.NoError(t, newOpt().LoadState(ps, st))
	st.Optimizer = "something-else"
	err = newOpt().LoadState(ps, st)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "something-else")
}

// CheckFloat32 runs steps steps of the same optimizer on the quadratic in
// float64 and in float32 from the same start, and requires the float32
// parameters to agree with the float64 ones to float32 precision (relative
// tolerance tol, e.g. 1e-5).
func CheckFloat32(t *testing.T, newOpt func() optim.Optimizer, q *Quadratic, steps int, tol float64) {
	t.Helper()
	run := func(dt tensor.Dtype) []float64 {
		opt := newOpt()
		ps := q.Params(dt, rand.New(rand.NewPCG(2, 2)))
		for i := 0; i < steps; i++ {
			q.Grad(ps)
			require.NoError(t, opt.Step(ps, q))
		}
		return Flatten(ps)
	}
	a, b := run(tensor.Float64), run(tensor.Float32)
	for i := range a {
		assert.InDelta(t, a[i], b[i], tol*math.Max(1, math.Abs(a[i])), "entry %d", i)
	}
}

// CheckNoAllocs requires that, after a first step, Step allocates nothing.
func CheckNoAllocs(t *testing.T, opt optim.Optimizer, q *Quadratic) {
	t.Helper()
	ps := q.Params(tensor.Float32, rand.New(rand.NewPCG(1, 1)))
	q.Grad(ps)
	require.NoError(t, opt.Step(ps, q))
	assert.Zero(t, testing.AllocsPerRun(20, func() { _ = opt.Step(ps, q) }))
}
