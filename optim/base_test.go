package optim_test

import (
	"github.com/curvopt/curvopt/internal/num"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/optim/adam"
	"github.com/curvopt/curvopt/optim/mfac"
	"github.com/curvopt/curvopt/optim/optimtest"
	"github.com/curvopt/curvopt/optim/sophia"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

// stepped takes two steps of opt on a quadratic over the float64
// parameters p0 [2 3] and p1 [3], and returns the quadratic and them.
func stepped(t *testing.T, opt optim.Optimizer) (*optimtest.Quadratic, []optim.Param) {
	t.Helper()
	q := optimtest.NewQuadratic(rand.New(rand.NewPCG(31, 1)), 0.1, []int{2, 3}, []int{3})
	ps := q.Params(tensor.Float64, rand.New(rand.NewPCG(1, 2)))
	for i := 0; i < 2; i++ {
		q.Grad(ps)
		require.NoError(t, opt.Step(ps, q))
	}
	return q, ps
}

// TestStateRecordsParamList: the state records the parameters' names,
// dtypes and shapes in order, and LoadState refuses another list (here the
// same parameters in another order, which per-slot checks by name would
// accept) naming the difference, with nothing changed.
func TestStateRecordsParamList(t *testing.T) {
	a, _ := adam.New(adam.Default())
	_, ps := stepped(t, a)
	st, err := a.State()
	require.NoError(t, err)
	assert.Equal(t, []optim.ParamInfo{{Name: "p0", Dtype: "float64", Shape: []int{2, 3}}, {Name: "p1", Dtype: "float64", Shape: []int{3}}}, st.Params)

	b, _ := adam.New(adam.Default())
	_, other := stepped(t, b)
	before, err := b.State()
	require.NoError(t, err)
	swapped := []optim.Param{ps[1], ps[0]}
	err = b.LoadState(swapped, st)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `adam: load state: parameter 0 is "p1", but the state is for "p0"`)
	after, err := b.State()
	require.NoError(t, err)
	assert.Equal(t, before, after, "a refused LoadState changed the state")
	require.NoError(t, b.LoadState(other, st))
}

// TestLoadStateRefusesUndeclaredBlob: a blob the optimizer does not keep
// (a probe generator's state given to SophiaG or Adam) is refused by name.
func TestLoadStateRefusesUndeclaredBlob(t *testing.T) {
	h, _ := sophia.New(sophia.DefaultH())
	_, ps := stepped(t, h)
	st, err := h.State()
	require.NoError(t, err)
	require.Contains(t, st.Blobs, optim.BlobProbes)
	st.Optimizer = "sophiag"
	g, _ := sophia.New(sophia.DefaultG())
	err = g.LoadState(ps, st)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `sophiag: load state: the state holds a "probes" state, which sophiag does not keep`)

	a, _ := adam.New(adam.Default())
	_, ps = stepped(t, a)
	st, err = a.State()
	require.NoError(t, err)
	st.Blobs = map[string][]byte{"rng": {1}}
	assert.ErrorContains(t, a.LoadState(ps, st), `the state holds a "rng" state, which adam does not keep`)
}

// TestLoadStateBadBlobChangesNothing: a probe-generator state that does
// not decode is an error naming it, after which the optimizer's state and
// its probes are those of before.
func TestLoadStateBadBlobChangesNothing(t *testing.T) {
	h, _ := sophia.New(sophia.DefaultH())
	q, ps := stepped(t, h)
	before, err := h.State()
	require.NoError(t, err)
	bad, err := h.State()
	require.NoError(t, err)
	bad.Step = 7
	bad.Blobs[optim.BlobProbes] = []byte("not a generator state")
	err = h.LoadState(ps, bad)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "probe source state")
	after, err := h.State()
	require.NoError(t, err)
	assert.Equal(t, before, after)
	q.Grad(ps)
	require.NoError(t, h.Step(ps, q))
}

// TestStateViewAndTakeState: every optimizer's StateView holds what State
// holds (M-FAC's used to leave out the groups), and TakeState of a view
// resumes bit-identically.
func TestStateViewAndTakeState(t *testing.T) {
	type viewer interface {
		optim.Optimizer
		StateView() (*optim.State, error)
		TakeState([]optim.Param, *optim.State) error
	}
	for _, c := range oldStateCases(t) {
		t.Run(c.name, func(t *testing.T) {
			opt := c.New().(viewer)
			q := oldStateQuadratic()
			ps := q.Params(c.dt, rand.New(rand.NewPCG(1, 2)))
			require.NoError(t, opt.SetGroups([]optim.Group{{Name: "a", Params: []string{"p0"}, LRScale: 1}, {Name: "b", Params: []string{"p1"}, LRScale: 0.5}}))
			for i := 0; i < 3; i++ {
				q.Grad(ps)
				require.NoError(t, opt.Step(ps, q))
			}
			st, err := opt.State()
			require.NoError(t, err)
			view, err := opt.StateView()
			require.NoError(t, err)
			require.Len(t, view.Groups, 2)
			assert.Equal(t, st, view)

			resumed := q.Params(c.dt, rand.New(rand.NewPCG(1, 2)))
			for i := range ps {
				num.CopyInto(resumed[i].Value, ps[i].Value)
			}
			taker := c.New().(viewer)
			require.NoError(t, taker.TakeState(resumed, st))
			for i := 0; i < 3; i++ {
				q.Use(ps)
				q.Grad(ps)
				require.NoError(t, opt.Step(ps, q))
				q.Use(resumed)
				q.Grad(resumed)
				require.NoError(t, taker.Step(resumed, q))
			}
			a, b := optimtest.Flatten(ps), optimtest.Flatten(resumed)
			for i := range a {
				require.Equal(t, math.Float64bits(a[i]), math.Float64bits(b[i]), "entry %d after TakeState", i)
			}
		})
	}
	var _ viewer = (*mfac.MFAC)(nil)
}
