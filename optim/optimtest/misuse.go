package optimtest

import (
	"errors"
	"github.com/curvopt/curvopt/internal/num"
	"github.com/curvopt/curvopt/optim/internal/kernel"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"

	"github.com/curvopt/curvopt/optim"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

// guarded is implemented by optimizers that embed optim.Hyper: the suite
// holds the guard to check refusals of concurrent use deterministically.
type guarded interface {
	Begin(method string) error
	End()
}

// snapshot is what a refused call must leave unchanged: the parameter
// values and the exported state (tensors, step, scalars, groups; not the
// probe generator's state, which a drawn and kept probe has advanced).
type snapshot struct {
	values []float64
	state  *optim.State
}

func snap(t *testing.T, opt optim.Optimizer, ps []optim.Param) snapshot {
	t.Helper()
	st, err := opt.State()
	require.NoError(t, err)
	st.Blobs = nil
	return snapshot{values: Flatten(ps), state: st}
}

func (s snapshot) unchanged(t *testing.T, opt optim.Optimizer, ps []optim.Param, msg string) {
	t.Helper()
	after := snap(t, opt, ps)
	assert.Equal(t, s.values, after.values, "%s: the parameters changed", msg)
	assert.Equal(t, s.state, after.state, "%s: the optimizer state changed", msg)
}

// CheckAliases requires Step to refuse parameter lists whose tensors share
// memory (two parameters with one value or one gradient, a value that is
// its own gradient, a value that is another parameter's gradient, values
// over overlapping parts of one backing array) and two parameters with one
// name, with an error naming the parameters and nothing changed; values
// over disjoint parts of one backing array are accepted.
func CheckAliases(t *testing.T, newOpt func() optim.Optimizer) {
	t.Helper()
	q := NewQuadratic(rand.New(rand.NewPCG(13, 1)), 0.1, []int{3}, []int{3}, []int{2})
	opt := newOpt()
	ps := q.Params(tensor.Float64, rand.New(rand.NewPCG(1, 2)))
	q.Grad(ps)
	require.NoError(t, opt.Step(ps, q))
	q.Grad(ps)
	before := snap(t, opt, ps)
	over := []float64{1, 2, 3, 4, 5}
	overAt := func(lo, hi int) *tensor.Dense {
		return tensor.New(tensor.WithShape(hi-lo), tensor.WithBacking(over[lo:hi]))
	}
	for _, c := range []struct {
		name  string
		names []string // the parameters the error must name
		set   func(b []optim.Param)
	}{
		{"shared value", []string{"p0", "p1"}, func(b []optim.Param) { b[1].Value = b[0].Value }},
		{"value is its own gradient", []string{"p1"}, func(b []optim.Param) { b[1].Grad = b[1].Value }},
		{"value is another's gradient", []string{"p0", "p1"}, func(b []optim.Param) { b[1].Grad = b[0].Value }},
		{"shared gradient", []string{"p0", "p1"}, func(b []optim.Param) { b[1].Grad = b[0].Grad }},
		{"overlapping values", []string{"p0", "p1"}, func(b []optim.Param) { b[0].Value, b[1].Value = overAt(0, 3), overAt(2, 5) }},
		{"gradient over part of a value", []string{"p1", "p2"}, func(b []optim.Param) {
			b[1].Value = overAt(0, 3)
			b[2].Grad = overAt(1, 3)
		}},
	} {
		b := append([]optim.Param(nil), ps...)
		c.set(b)
		kept := append([]float64(nil), over...)
		err := opt.Step(b, q)
		require.Error(t, err, c.name)
		assert.Contains(t, err.Error(), "share memory", c.name)
		for _, n := range c.names {
			assert.Contains(t, err.Error(), `"`+n+`"`, c.name)
		}
		before.unchanged(t, opt, ps, c.name)
		assert.Equal(t, kept, over, "%s: the aliased tensors changed", c.name)
	}

	b := append([]optim.Param(nil), ps...)
	b[1].Name = "p0"
	err := opt.Step(b, q)
	require.Error(t, err, "duplicate names")
	assert.Contains(t, err.Error(), `"p0"`)
	assert.Contains(t, err.Error(), "unique")
	before.unchanged(t, opt, ps, "duplicate names")

	// Disjoint parts of one backing array are separate parameters.
	disjoint := make([]float64, 6)
	b = append([]optim.Param(nil), ps...)
	b[0].Value = tensor.New(tensor.WithShape(3), tensor.WithBacking(disjoint[:3]))
	b[1].Value = tensor.New(tensor.WithShape(3), tensor.WithBacking(disjoint[3:]))
	require.NoError(t, opt.Step(b, q), "values over disjoint parts of one array")
	require.NoError(t, opt.Step(ps, q), "the original list after refused ones")
}

// CheckNilArguments requires Step, LoadState and (for an optim.Requester)
// Request to refuse an empty or nil parameter list, a nil value or
// gradient (naming the parameter) and a nil state with an error, never a
// panic, and with nothing changed.
func CheckNilArguments(t *testing.T, newOpt func() optim.Optimizer) {
	t.Helper()
	q := NewQuadratic(rand.New(rand.NewPCG(14, 1)), 0.1, []int{2, 3}, []int{3})
	opt := newOpt()
	ps := q.Params(tensor.Float64, rand.New(rand.NewPCG(1, 2)))
	q.Grad(ps)
	require.NoError(t, opt.Step(ps, q))
	st, err := opt.State()
	require.NoError(t, err)
	q.Grad(ps)
	before := snap(t, opt, ps)
	noValue := append([]optim.Param(nil), ps...)
	noValue[1].Value = nil
	noGrad := append([]optim.Param(nil), ps...)
	noGrad[1].Grad = nil
	calls := []struct {
		name  string
		param bool // the error must name p1
		call  func() error
	}{
		{"Step(nil)", false, func() error { return opt.Step(nil, q) }},
		{"Step(empty)", false, func() error { return opt.Step([]optim.Param{}, q) }},
		{"Step(nil value)", true, func() error { return opt.Step(noValue, q) }},
		{"Step(nil gradient)", true, func() error { return opt.Step(noGrad, q) }},
		{"LoadState(nil params)", false, func() error { return opt.LoadState(nil, st) }},
		{"LoadState(nil value)", true, func() error { return opt.LoadState(noValue, st) }},
		{"LoadState(nil state)", false, func() error { return opt.LoadState(ps, nil) }},
	}
	if r, ok := opt.(optim.Requester); ok {
		calls = append(calls,
			struct {
				name  string
				param bool
				call  func() error
			}{"Request(nil)", false, func() error { _, err := r.Request(nil); return err }},
			struct {
				name  string
				param bool
				call  func() error
			}{"Request(nil value)", true, func() error { _, err := r.Request(noValue); return err }})
	}
	for _, c := range calls {
		var err error
		require.NotPanics(t, func() { err = c.call() }, c.name)
		require.Error(t, err, c.name)
		if c.param {
			assert.Contains(t, err.Error(), `"p1"`, c.name)
		}
		before.unchanged(t, opt, ps, c.name)
	}
}

// CheckClose requires Close to succeed on a fresh and on a used optimizer
// and a second time, and every later Step, State, LoadState, SetLR,
// SetGroups (and Request) to return an error wrapping optim.ErrClosed with
// nothing changed.
func CheckClose(t *testing.T, newOpt func() optim.Optimizer) {
	t.Helper()
	require.NoError(t, newOpt().Close(), "closing an optimizer that never stepped")
	q := NewQuadratic(rand.New(rand.NewPCG(15, 1)), 0.1, []int{2, 3}, []int{3})
	opt := newOpt()
	ps := q.Params(tensor.Float64, rand.New(rand.NewPCG(1, 2)))
	q.Grad(ps)
	require.NoError(t, opt.Step(ps, q))
	st, err := opt.State()
	require.NoError(t, err)
	lr, groups := opt.LR(), opt.Groups()
	require.NoError(t, opt.Close())
	require.NoError(t, opt.Close(), "closing twice")
	q.Grad(ps)
	values := Flatten(ps)
	closed := func(what string, err error) {
		t.Helper()
		require.Error(t, err, "%s after Close", what)
		assert.True(t, errors.Is(err, optim.ErrClosed), "%s after Close: %v", what, err)
	}
	closed("Step", opt.Step(ps, q))
	_, err = opt.State()
	closed("State", err)
	closed("LoadState", opt.LoadState(ps, st))
	closed("SetLR", opt.SetLR(lr/2))
	closed("SetGroups", opt.SetGroups([]optim.Group{{Name: "all", Params: []string{"p0", "p1"}, LRScale: 1}}))
	if r, ok := opt.(optim.Requester); ok {
		_, err := r.Request(ps)
		closed("Request", err)
	}
	assert.Equal(t, values, Flatten(ps), "a refused call after Close changed the parameters")
	assert.Equal(t, lr, opt.LR())
	assert.Equal(t, groups, opt.Groups())
}

// CheckConcurrent requires a call made while another runs to be refused
// with an error wrapping optim.ErrConcurrentUse (checked deterministically
// by holding the guard of an optimizer that embeds optim.Hyper), and two
// goroutines calling Step, State, SetLR (and Request) on one optimizer to
// get answers or that error, never anything else. Run it under -race: a
// data race is then a failure.
func CheckConcurrent(t *testing.T, newOpt func() optim.Optimizer) {
	t.Helper()
	q := NewQuadratic(rand.New(rand.NewPCG(16, 1)), 0.1, []int{4, 3}, []int{3})
	opt := newOpt()
	ps := q.Params(tensor.Float64, rand.New(rand.NewPCG(1, 2)))
	q.Grad(ps)
	require.NoError(t, opt.Step(ps, q))
	st, err := opt.State()
	require.NoError(t, err)
	lr := opt.LR()
	r, requester := opt.(optim.Requester)
	if g, ok := opt.(guarded); ok {
		require.NoError(t, g.Begin("conformance test"))
		before := Flatten(ps)
		busy := func(what string, err error) {
			t.Helper()
			require.Error(t, err, "%s during another call", what)
			assert.True(t, errors.Is(err, optim.ErrConcurrentUse), "%s during another call: %v", what, err)
		}
		busy("Step", opt.Step(ps, q))
		_, err := opt.State()
		busy("State", err)
		busy("LoadState", opt.LoadState(ps, st))
		busy("SetLR", opt.SetLR(lr/2))
		busy("SetGroups", opt.SetGroups(nil))
		busy("Close", opt.Close())
		if requester {
			_, err := r.Request(ps)
			busy("Request", err)
		}
		assert.Equal(t, before, Flatten(ps))
		assert.Equal(t, lr, opt.LR())
		g.End()
	}
	require.NoError(t, opt.Step(ps, q), "Step after the other call ended")

	const workers, calls = 2, 150
	errs := make(chan error, workers*calls)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < calls; i++ {
				var err error
				switch (w + i) % 4 {
				case 0:
					err = opt.Step(ps, q)
				case 1:
					_, err = opt.State()
				case 2:
					err = opt.SetLR(lr)
				case 3:
					if requester {
						_, err = r.Request(ps)
					} else {
						err = opt.Step(ps, q)
					}
				}
				errs <- err
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	answered := 0
	for err := range errs {
		if err == nil {
			answered++
			continue
		}
		require.True(t, errors.Is(err, optim.ErrConcurrentUse), "concurrent calls: unexpected error %v", err)
	}
	assert.Positive(t, answered)
	require.NoError(t, opt.Step(ps, q), "Step after concurrent use")
	for i, x := range Flatten(ps) {
		require.False(t, math.IsNaN(x) || math.IsInf(x, 0), "entry %d is %v after concurrent use", i, x)
	}
}

// CheckRequestNoAllocs requires, for an optim.Requester, that a step made
// of Request, answering it and Step allocates nothing after the first.
func CheckRequestNoAllocs(t *testing.T, opt optim.Optimizer, q *Quadratic) {
	t.Helper()
	r, ok := opt.(optim.Requester)
	if !ok {
		return
	}
	ps := q.Params(tensor.Float32, rand.New(rand.NewPCG(1, 1)))
	step := func() {
		req, err := r.Request(ps)
		require.NoError(t, err)
		if req != nil {
			req.Answer()
		}
		q.Grad(ps)
		require.NoError(t, opt.Step(ps, q))
	}
	step()
	assert.Zero(t, testing.AllocsPerRun(20, func() {
		req, _ := r.Request(ps)
		if req != nil {
			req.Answer()
		}
		_ = opt.Step(ps, q)
	}))
}

// unitOracle answers H·v = v and a sampled gradient of ones: curvature that
// is always finite, so that a non-finite step can come only from the
// update itself.
type unitOracle struct{}

func (unitOracle) HVP(v, out []*tensor.Dense) error {
	for i := range v {
		num.CopyInto(out[i], v[i])
	}
	return nil
}

func (unitOracle) SampledGrad(out []*tensor.Dense) error {
	for _, o := range out {
		switch d := kernel.Backing(o).(type) {
		case []float64:
			for j := range d {
				d[j] = 1
			}
		case []float32:
			for j := range d {
				d[j] = 1
			}
		}
	}
	return nil
}

// CheckNonFiniteUpdate drives the optimizer, in float64 and float32, from
// parameters, gradients and learning rates up to a quarter of the dtype's
// largest value, and requires of every Step: either it succeeds and every
// parameter and state entry is finite, or it fails and changes nothing;
// and at least one step must be refused with an error wrapping
// optim.ErrNonFinite.
func CheckNonFiniteUpdate(t *testing.T, newOpt func() optim.Optimizer) {
	t.Helper()
	refused := 0
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		top := math.MaxFloat64
		if dt == tensor.Float32 {
			top = math.MaxFloat32
		}
		scales := []float64{1, math.Sqrt(top), top / 4}
		for _, th := range scales {
			for _, gs := range scales {
				for _, lr := range []float64{0, top / 4} {
					refused += nonFiniteRun(t, newOpt, dt, th, gs, lr)
				}
			}
		}
	}
	assert.Positive(t, refused, "no step was refused with optim.ErrNonFinite")
}

// nonFiniteRun takes up to three steps from θ = ±th, g = ±gs (with the
// learning rate lr when it is not 0) and returns 1 if a step was refused
// with optim.ErrNonFinite.
func nonFiniteRun(t *testing.T, newOpt func() optim.Optimizer, dt tensor.Dtype, th, gs, lr float64) int {
	t.Helper()
	opt := newOpt()
	if lr > 0 {
		require.NoError(t, opt.SetLR(lr))
	}
	ps := make([]optim.Param, 2)
	for i, shape := range [][]int{{3}, {2, 2}} {
		v := tensor.New(tensor.Of(dt), tensor.WithShape(shape...))
		g := tensor.New(tensor.Of(dt), tensor.WithShape(shape...))
		n := v.Shape().TotalSize()
		vals, grads := make([]float64, n), make([]float64, n)
		for j := range vals {
			vals[j] = th * float64(1-2*(j%2))
			grads[j] = gs * float64(1-2*((j/2)%2))
		}
		Unflatten([]*tensor.Dense{v, g}, append(vals, grads...))
		ps[i] = optim.Param{Name: "p" + string(rune('0'+i)), Value: v, Grad: g}
	}
	what := func() string { return dt.String() + " θ " + ftoa(th) + " g " + ftoa(gs) + " lr " + ftoa(lr) }
	for step := 0; step < 3; step++ {
		before := snap(t, opt, ps)
		err := opt.Step(ps, unitOracle{})
		if err == nil {
			for i, x := range Flatten(ps) {
				require.False(t, math.IsNaN(x) || math.IsInf(x, 0), "%s: step %d succeeded with parameter entry %d = %v", what(), step, i, x)
			}
			st, err := opt.State()
			require.NoError(t, err)
			for _, s := range st.Tensors {
				require.NoError(t, s.CheckFinite(), "%s: step %d succeeded with a non-finite state", what(), step)
			}
			continue
		}
		before.unchanged(t, opt, ps, what()+": refused step")
		if errors.Is(err, optim.ErrNonFinite) {
			return 1
		}
		t.Logf("%s: step %d refused: %v", what(), step, err)
		return 0
	}
	return 0
}

func ftoa(x float64) string { return strconv.FormatFloat(x, 'g', 3, 64) }
