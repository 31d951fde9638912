package hessian

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/curvopt/curvopt/nn"
	"github.com/curvopt/curvopt/optim"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

// TestClosed: every graph-running method returns ErrClosed after Close.
func TestClosed(t *testing.T) {
	e, x, labels := newEngine(t, nn.MLPSpec(6, []int{5}, 3), tensor.Float64, 1, 4, optim.Needs{HVP: true, SampledGrad: true})
	v, out := optim.Like(e.Params()), optim.Like(e.Params())
	require.NoError(t, e.Close())
	require.NoError(t, e.Close(), "closing twice is not an error")
	flat := make([]float64, e.Dim())
	for name, call := range map[string]func() error{
		"SetBatch":    func() error { return e.SetBatch(x, labels) },
		"LossGrad":    func() error { _, err := e.LossGrad(); return err },
		"LossGradHVP": func() error { _, err := e.LossGradHVP(v, out); return err },
		"HVP":         func() error { return e.HVP(v, out) },
		"SampledGrad": func() error { return e.SampledGrad(out) },
		"Hutchinson":  func() error { return e.Hutchinson(out) },
		"HVPFlat":     func() error { return e.HVPFlat(flat, flat) },
		"Loss":        func() error { _, err := e.Loss(); return err },
		"EvalLogits":  func() error { _, err := e.EvalLogits(x); return err },
		"EvalLoss":    func() error { _, _, err := e.EvalLoss(x, labels); return err },
	} {
		err := call()
		assert.ErrorIs(t, err, ErrClosed, name)
		assert.ErrorIs(t, err, optim.ErrClosed, "%s: the engine and the optimizers share one sentinel", name)
	}
}

// TestConcurrentUse: a call while another runs is refused with
// ErrConcurrentUse (checked deterministically by holding the guard), and two
// goroutines hammering one engine get correct answers or that error, never
// a crash.
func TestConcurrentUse(t *testing.T) {
	e, _, _ := newEngine(t, nn.MLPSpec(6, []int{5}, 3), tensor.Float64, 2, 4, optim.Needs{HVP: true})
	defer e.Close()
	v := optim.Like(e.Params())
	require.NoError(t, optim.NewRandomProbes(optim.Gaussian, 1).Fill(v))
	want := optim.Like(e.Params())
	require.NoError(t, e.HVP(v, want))

	require.NoError(t, e.enter())
	assert.ErrorIs(t, e.HVP(v, optim.Like(e.Params())), ErrConcurrentUse)
	assert.ErrorIs(t, e.HVP(v, optim.Like(e.Params())), optim.ErrConcurrentUse, "the engine and the optimizers share one sentinel")
	_, err := e.LossGrad()
	assert.ErrorIs(t, err, ErrConcurrentUse)
	assert.ErrorIs(t, e.Close(), ErrConcurrentUse)
	e.exit()

	var wg sync.WaitGroup
	errs := make(chan error, 400)
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := optim.Like(e.Params())
			for i := 0; i < 200; i++ {
				err := e.HVP(v, out)
				if err == nil {
					for j := range out {
						if !assert.Equal(t, want[j].Float64s(), out[j].Float64s()) {
							return
						}
					}
				}
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	ok, refused := 0, 0
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, ErrConcurrentUse):
			refused++
		default:
			t.Fatalf("unexpected error: %v", err)
		}
	}
	t.Logf("%d answered, %d refused", ok, refused)
	assert.Positive(t, ok)
}

// TestGraphCacheBounded: with WithGraphCache(2), a third batch size evicts
// the least recently used graph; a batch size that comes back is compiled
// again and gives the same loss.
func TestGraphCacheBounded(t *testing.T) {
	m, err := nn.New(nn.MLP(6, []int{5}, 3), tensor.Float64, rand.New(rand.NewPCG(3, 7)), 0)
	require.NoError(t, err)
	e, err := New(m, optim.Needs{}, WithGraphCache(2))
	require.NoError(t, err)
	defer e.Close()
	_, err = New(m, optim.Needs{}, WithGraphCache(0))
	assert.Error(t, err)
	rng := rand.New(rand.NewPCG(3, 8))
	x, labels := randomBatch(t, m, 5, rng)
	loss := func(n int) float64 {
		xs := rowsOf(x, n)
		require.NoError(t, e.SetBatch(xs, labels[:n]))
		l, err := e.LossGrad()
		require.NoError(t, err)
		return l
	}
	l1 := loss(1)
	loss(2)
	loss(3)
	assert.Equal(t, 2, e.progs.len())
	_, ok := e.progs.get(1)
	assert.False(t, ok, "batch size 1 was evicted")
	assert.Equal(t, l1, loss(1), "a recompiled graph gives the same loss")
	assert.Equal(t, 2, e.progs.len())
	for n := 1; n <= 5; n++ {
		_, err := e.EvalLogits(rowsOf(x, n))
		require.NoError(t, err)
	}
	assert.Equal(t, 2, e.evals.len())
}

// TestEvalLoss: the evaluation graph's cross-entropy and correct count
// equal those computed from EvalLogits, for a model with batch norm
// (evaluation mode), at batch sizes other than the training one. The labels
// are chosen from the logits so that the correct count is known and not 0
// (1 of 1 rows, 2 of 3); a non-finite loss is an error wrapping
// optim.ErrNonFinite.
func TestEvalLoss(t *testing.T) {
	e, x, labels := newEngine(t, fdModels[3].spec, tensor.Float64, 5, 3, optim.Needs{})
	defer e.Close()
	_, err := e.LossGrad() // update the running statistics once
	require.NoError(t, err)
	for n, wantOK := range map[int]int{1: 1, 3: 2} {
		xs := rowsOf(x, n)
		z, err := e.EvalLogits(xs)
		require.NoError(t, err)
		c := z.Shape()[1]
		ls := make([]int, n)
		want := 0.0
		for r := 0; r < n; r++ {
			row := z.Float64s()[r*c : (r+1)*c]
			mx, arg := row[0], 0
			for j, v := range row {
				if v > mx {
					mx, arg = v, j
				}
			}
			ls[r] = arg // right for all rows but the third
			if r == 2 {
				ls[r] = (arg + 1) % c
			}
			s := 0.0
			for _, v := range row {
				s += math.Exp(v - mx)
			}
			want += (math.Log(s) + mx - row[ls[r]]) / float64(n)
		}
		loss, correct, err := e.EvalLoss(xs, ls)
		require.NoError(t, err)
		assert.InDelta(t, want, loss, 1e-12, "n=%d", n)
		assert.Equal(t, wantOK, correct, "n=%d", n)
	}
	_, _, err = e.EvalLoss(x, labels[:1])
	assert.ErrorContains(t, err, "labels")

	ps := e.Params()
	for _, bad := range []float64{math.Inf(1), math.NaN()} {
		w := ps[len(ps)-2].Value.Float64s() // the last layer's weight: nothing saturates it
		require.Equal(t, "fc.weight", ps[len(ps)-2].Name)
		w0 := w[0]
		w[0] = bad
		loss, _, err := e.EvalLoss(x, labels)
		w[0] = w0
		assert.ErrorIs(t, err, optim.ErrNonFinite, "weight %v: loss %v", bad, loss)
		assert.ErrorContains(t, err, "evaluation loss is")
	}
	_, _, err = e.EvalLoss(x, labels)
	require.NoError(t, err, "the model restored")
}

// TestLabelRange: a label equal to the number of classes (or negative) is
// refused by SetBatch and EvalLoss, naming the label and its row; the
// largest class is accepted.
func TestLabelRange(t *testing.T) {
	e, x, labels := newEngine(t, nn.MLPSpec(6, []int{5}, 3), tensor.Float64, 1, 4, optim.Needs{})
	defer e.Close()
	ls := append([]int{}, labels...)
	ls[1] = 2
	require.NoError(t, e.SetBatch(x, ls))
	_, _, err := e.EvalLoss(x, ls)
	require.NoError(t, err)
	for _, l := range []int{3, -1} {
		ls[1] = l
		assert.EqualError(t, e.SetBatch(x, ls), fmt.Sprintf("hessian: SetBatch: label %d at row 1 out of range [0, 3)", l))
		_, _, err = e.EvalLoss(x, ls)
		assert.EqualError(t, err, fmt.Sprintf("hessian: EvalLoss: label %d at row 1 out of range [0, 3)", l))
	}
}
