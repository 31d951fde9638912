package optimtest

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/curvopt/curvopt/optim"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

// Spec describes an optimizer to the conformance suite.
type Spec struct {
	// New returns a fresh optimizer with the configuration under test.
	New func() optim.Optimizer
	// WeightDecay is the weight decay New's configuration uses (the default
	// group's).
	WeightDecay float64
	// Float32Tol is the relative tolerance of the float32-against-float64
	// check (0: 1e-4).
	Float32Tol float64
	// Shift is the quadratic's Hessian shift (see NewQuadratic; 0: 0.1).
	Shift float64
	// Mixes says that one parameter's step depends on the other parameters'
	// gradients (M-FAC's preconditioner mixes all coordinates), so that a
	// group's weight decay changes every group's step; the groups check
	// then does not require the other group to be unaffected.
	Mixes bool
	// Stateless declares that New's configuration keeps no per-parameter
	// state (plain SGD without momentum): state_mismatch then requires its
	// State to hold no tensors and LoadState to refuse another optimizer's
	// state, instead of the per-parameter mismatches it cannot have.
	Stateless bool
}

// Run runs every conformance check on the optimizer, each as a subtest:
//
//   - resume: k steps, State, LoadState into a fresh optimizer, the rest:
//     bit-identical to an uninterrupted run (float64 and float32);
//   - bad_gradient: a NaN or mis-shaped gradient is an error naming the
//     parameter, and nothing changes;
//   - state_mismatch: LoadState refuses a state for other names, dtypes or
//     another optimizer, saying what differs;
//   - float32: float32 parameters follow the float64 run to Float32Tol;
//   - no_allocs: Step allocates nothing after the first step;
//   - scalar_and_zero_size: 0-d and zero-size parameters train and resume;
//   - views: a parameter or gradient that is a view of another tensor is an
//     error naming the parameter, and nothing changes;
//   - set_lr: SetLR refuses non-positive and non-finite values and LR
//     reports the value set;
//   - groups: parameter groups scale the learning rate and set the weight
//     decay per group, a parameter in no group is an error naming it, one
//     explicit group equal to the default is bit-identical to no groups, and
//     the groups travel with the state;
//   - oracle: an optimizer that needs curvature refuses a nil oracle before
//     anything changes;
//   - request: for an optim.Requester, an answered request is used as data
//     (no oracle query) and gives bit-identical results to an unanswered one;
//   - request_no_allocs: for an optim.Requester, Request, Answer and Step
//     allocate nothing after the first step (CheckRequestNoAllocs);
//   - aliases: parameters whose tensors share memory, or two with one name,
//     are refused naming them, and nothing changes (CheckAliases);
//   - nil_arguments: nil or empty parameter lists, nil values, gradients and
//     states are errors, never panics (CheckNilArguments);
//   - closed: every call after Close returns optim.ErrClosed (CheckClose);
//   - concurrent: a call during another returns optim.ErrConcurrentUse, and
//     two goroutines on one optimizer race on nothing (CheckConcurrent; run
//     it with go test -race);
//   - non_finite_update: a step either succeeds with finite parameters and
//     state or is refused, wrapping optim.ErrNonFinite, with nothing changed
//     (CheckNonFiniteUpdate).
//
// An optimizer written outside this module can run it from its tests:
//
//	func TestConformance(t *testing.T) {
//		optimtest.Run(t, optimtest.Spec{New: func() optim.Optimizer { o, _ := mine.New(mine.Default()); return o }})
//	}
func Run(t *testing.T, s Spec) {
	t.Helper()
	if s.Float32Tol == 0 {
		s.Float32Tol = 1e-4
	}
	if s.Shift == 0 {
		s.Shift = 0.1
	}
	q := func(seed uint64, shapes ...[]int) *Quadratic {
		return NewQuadratic(rand.New(rand.NewPCG(seed, 1)), s.Shift, shapes...)
	}
	t.Run("resume", func(t *testing.T) {
		for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
			CheckResume(t, s.New, q(3, []int{2, 3}, []int{3}), dt, 9, 4)
		}
	})
	t.Run("bad_gradient", func(t *testing.T) { CheckBadGradient(t, s.New(), q(4, []int{2, 3}, []int{3})) })
	t.Run("state_mismatch", func(t *testing.T) {
		if s.Stateless {
			CheckStateless(t, s.New, q(5, []int{2, 3}, []int{3}))
			return
		}
		CheckStateMismatch(t, s.New, q(5, []int{2, 3}, []int{3}))
	})
	t.Run("float32", func(t *testing.T) { CheckFloat32(t, s.New, q(6, []int{3, 4}, []int{4}), 5, s.Float32Tol) })
	t.Run("no_allocs", func(t *testing.T) { CheckNoAllocs(t, s.New(), q(7, []int{8, 8}, []int{8})) })
	t.Run("scalar_and_zero_size", func(t *testing.T) { CheckOddShapes(t, s.New) })
	t.Run("views", func(t *testing.T) { CheckViews(t, s.New(), q(8, []int{4, 3}, []int{3})) })
	t.Run("set_lr", func(t *testing.T) { CheckSetLR(t, s.New()) })
	t.Run("groups", func(t *testing.T) { CheckGroups(t, s.New, s.WeightDecay, s.Mixes) })
	t.Run("oracle", func(t *testing.T) { CheckNilOracle(t, s.New(), q(9, []int{2, 2})) })
	t.Run("request", func(t *testing.T) { CheckRequest(t, s.New, q(10, []int{3, 2}, []int{2})) })
	t.Run("request_no_allocs", func(t *testing.T) { CheckRequestNoAllocs(t, s.New(), q(7, []int{8, 8}, []int{8})) })
	t.Run("aliases", func(t *testing.T) { CheckAliases(t, s.New) })
	t.Run("nil_arguments", func(t *testing.T) { CheckNilArguments(t, s.New) })
	t.Run("closed", func(t *testing.T) { CheckClose(t, s.New) })
	t.Run("concurrent", func(t *testing.T) { CheckConcurrent(t, s.New) })
	t.Run("non_finite_update", func(t *testing.T) { CheckNonFiniteUpdate(t, s.New) })
}

// CheckOddShapes trains and resumes on a 0-d parameter, a zero-size one and
// an ordinary one, and requires the 0-d parameter to move.
func CheckOddShapes(t *testing.T, newOpt func() optim.Optimizer) {
	t.Helper()
	q := NewQuadratic(rand.New(rand.NewPCG(11, 1)), 0.1, []int{}, []int{0, 3}, []int{2, 2})
	ps := q.Params(tensor.Float64, rand.New(rand.NewPCG(1, 2)))
	before := Flatten(ps)
	opt := newOpt()
	for i := 0; i < 3; i++ {
		q.Grad(ps)
		require.NoError(t, opt.Step(ps, q))
	}
	after := Flatten(ps)
	assert.NotEqual(t, before[0], after[0], "the 0-d parameter did not move")
	CheckResume(t, newOpt, q, tensor.Float64, 5, 2)
	CheckResume(t, newOpt, q, tensor.Float32, 5, 2)
}

// CheckViews requires Step to refuse a parameter value or gradient that is
// a view of another tensor (a slice or a transpose), naming the parameter,
// with nothing changed.
func CheckViews(t *testing.T, opt optim.Optimizer, q *Quadratic) {
	t.Helper()
	ps := q.Params(tensor.Float64, rand.New(rand.NewPCG(3, 4)))
	q.Grad(ps)
	require.NoError(t, opt.Step(ps, q))
	q.Grad(ps)
	before := Flatten(ps)
	big := tensor.New(tensor.WithShape(8, 3), tensor.WithBacking(make([]float64, 24)))
	sl, err := big.Slice(tensor.S(2, 6))
	require.NoError(t, err)
	tr := ps[0].Grad.Clone().(*tensor.Dense)
	tr.T()
	for _, bad := range []struct {
		what string
		set  func([]optim.Param)
	}{
		{"sliced value", func(b []optim.Param) { b[0].Value = sl.(*tensor.Dense) }},
		{"sliced gradient", func(b []optim.Param) { b[0].Grad = sl.(*tensor.Dense) }},
		{"transposed gradient", func(b []optim.Param) {
			b[0].Grad = tr
			b[0].Value = tensor.New(tensor.Of(tensor.Float64), tensor.WithShape(tr.Shape().Clone()...))
		}},
	} {
		b := append([]optim.Param(nil), ps...)
		bad.set(b)
		err := opt.Step(b, q)
		require.Error(t, err, bad.what)
		assert.Contains(t, err.Error(), ps[0].Name, bad.what)
		assert.Contains(t, err.Error(), "view", bad.what)
		assert.Equal(t, before, Flatten(ps), "%s changed the parameters", bad.what)
	}
}

// CheckSetLR requires SetLR to refuse 0, negative, NaN and infinite rates
// and LR to report an accepted one.
func CheckSetLR(t *testing.T, opt optim.Optimizer) {
	t.Helper()
	lr := opt.LR()
	for _, bad := range []float64{0, -1, math.NaN(), math.Inf(1)} {
		err := opt.SetLR(bad)
		require.Error(t, err, "SetLR(%v)", bad)
		assert.Contains(t, err.Error(), "lr")
		assert.Equal(t, lr, opt.LR(), "a refused SetLR(%v) changed the rate", bad)
	}
	require.NoError(t, opt.SetLR(lr/4))
	assert.Equal(t, lr/4, opt.LR())
}

// CheckGroups checks parameter groups (see Run).
func CheckGroups(t *testing.T, newOpt func() optim.Optimizer, wd float64, mixes bool) {
	t.Helper()
	q := NewQuadratic(rand.New(rand.NewPCG(12, 1)), 0.1, []int{3, 2}, []int{2}, []int{2, 2})
	run := func(opt optim.Optimizer, steps int) []float64 {
		ps := q.Params(tensor.Float64, rand.New(rand.NewPCG(1, 2)))
		q.Use(ps)
		for i := 0; i < steps; i++ {
			q.Grad(ps)
			require.NoError(t, opt.Step(ps, q))
		}
		return Flatten(ps)
	}
	bitsEqual := func(a, b []float64, msg string) {
		t.Helper()
		require.Equal(t, len(a), len(b))
		for i := range a {
			require.Equal(t, math.Float64bits(a[i]), math.Float64bits(b[i]), "%s: entry %d: %v vs %v", msg, i, a[i], b[i])
		}
	}
	all := []string{"p0", "p1", "p2"}
	with := func(gs ...optim.Group) optim.Optimizer {
		o := newOpt()
		require.NoError(t, o.SetGroups(gs))
		return o
	}
	def := run(newOpt(), 4)
	bitsEqual(def, run(with(optim.Group{Name: "all", Params: all, LRScale: 1, WeightDecay: wd}), 4), "one explicit group vs the default")

	// LRScale multiplies the learning rate: lr/2 with scale 2 is lr.
	half := with(optim.Group{Name: "all", Params: all, LRScale: 2, WeightDecay: wd})
	require.NoError(t, half.SetLR(half.LR()/2))
	bitsEqual(def, run(half, 4), "lr/2 with LRScale 2 vs lr")

	// A group with LRScale 0 and no weight decay does not move; the other does.
	ps0 := q.Params(tensor.Float64, rand.New(rand.NewPCG(1, 2)))
	start := Flatten(ps0)
	frozen := run(with(optim.Group{Name: "frozen", Params: []string{"p1"}, LRScale: 0},
		optim.Group{Name: "rest", Params: []string{"p0", "p2"}, LRScale: 1, WeightDecay: wd}), 4)
	assert.Equal(t, start[6:8], frozen[6:8], "p1 (LRScale 0) moved")
	assert.NotEqual(t, start[:6], frozen[:6], "p0 did not move")

	// A different weight decay in one group changes that group only.
	other := run(with(optim.Group{Name: "a", Params: []string{"p0", "p1"}, LRScale: 1, WeightDecay: wd},
		optim.Group{Name: "b", Params: []string{"p2"}, LRScale: 1, WeightDecay: wd + 0.5}), 1)
	one := run(newOpt(), 1)
	if !mixes {
		assert.Equal(t, one[:8], other[:8], "group a's parameters changed with group b's weight decay")
	}
	assert.NotEqual(t, one[8:], other[8:], "group b's weight decay had no effect")

	// A parameter in no group is an error naming it; nothing changes.
	o := with(optim.Group{Name: "a", Params: []string{"p0", "p1"}, LRScale: 1})
	ps := q.Params(tensor.Float64, rand.New(rand.NewPCG(1, 2)))
	q.Grad(ps)
	err := o.Step(ps, q)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "p2")
	assert.Equal(t, start, Flatten(ps))
	// Invalid groups are refused.
	assert.Error(t, newOpt().SetGroups([]optim.Group{{Name: "x", Params: all, LRScale: -1}}))
	assert.Error(t, newOpt().SetGroups([]optim.Group{{Name: "x", Params: all, LRScale: 1, WeightDecay: math.NaN()}}))
	assert.Error(t, newOpt().SetGroups([]optim.Group{{Name: "x", Params: all, LRScale: 1}, {Name: "y", Params: []string{"p0"}, LRScale: 1}}))

	// The groups travel with the state, and resuming with them is exact.
	gs := []optim.Group{{Name: "a", Params: []string{"p0", "p2"}, LRScale: 1, WeightDecay: wd}, {Name: "b", Params: []string{"p1"}, LRScale: 0.5, WeightDecay: 0}}
	g := with(gs...)
	run(g, 2)
	st, err := g.State()
	require.NoError(t, err)
	assert.Equal(t, gs, st.Groups)
	fresh := newOpt()
	require.NoError(t, fresh.LoadState(q.Params(tensor.Float64, rand.New(rand.NewPCG(1, 2))), st))
	assert.Equal(t, gs, fresh.Groups())
	CheckResume(t, func() optim.Optimizer { return with(gs...) }, q, tensor.Float64, 6, 3)
}

// CheckNilOracle requires an optimizer that needs curvature to refuse a nil
// oracle with an error wrapping optim.ErrNotProvided, changing nothing.
func CheckNilOracle(t *testing.T, opt optim.Optimizer, q *Quadratic) {
	t.Helper()
	n := opt.Needs()
	if !n.HVP && !n.SampledGrad {
		return
	}
	ps := q.Params(tensor.Float64, rand.New(rand.NewPCG(1, 2)))
	q.Grad(ps)
	before := Flatten(ps)
	err := opt.Step(ps, nil)
	require.Error(t, err)
	assert.True(t, errors.Is(err, optim.ErrNotProvided), "%v", err)
	assert.Equal(t, before, Flatten(ps))
}

// counting is an oracle that counts its HVP queries.
type counting struct {
	*Quadratic
	hvps int
}

func (c *counting) HVP(v, out []*tensor.Dense) error {
	c.hvps++
	return c.Quadratic.HVP(v, out)
}

// CheckRequest: for an optim.Requester, answering each request with H·V
// (here A·V of the quadratic) gives bit-identical parameters to leaving it
// unanswered, and an answered request makes Step query no HVP.
func CheckRequest(t *testing.T, newOpt func() optim.Optimizer, q *Quadratic) {
	t.Helper()
	if _, ok := newOpt().(optim.Requester); !ok {
		return
	}
	requests := 0
	run := func(answer bool) ([]float64, int) {
		opt := newOpt()
		r := opt.(optim.Requester)
		ps := q.Params(tensor.Float64, rand.New(rand.NewPCG(1, 2)))
		q.Use(ps)
		o := &counting{Quadratic: q}
		for i := 0; i < 5; i++ {
			req, err := r.Request(ps)
			require.NoError(t, err)
			if req != nil {
				requests++
			}
			if req != nil && answer {
				require.NoError(t, q.HVP(req.V, req.Out))
				req.Answer()
			}
			q.Grad(ps)
			require.NoError(t, opt.Step(ps, o))
		}
		return Flatten(ps), o.hvps
	}
	a, queried := run(false)
	b, answered := run(true)
	assert.Equal(t, a, b, "answered and unanswered requests must give the same steps")
	assert.Zero(t, answered, "Step queried HVP although its request was answered")
	if requests > 0 {
		assert.Positive(t, queried, "without answers Step must query HVP")
	}
}
