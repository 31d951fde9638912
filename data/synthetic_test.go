package data

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSyntheticDeterministic(t *testing.T) {
	a, at, err := Synthetic(SyntheticConfig{Train: 300, Test: 50, Seed: 42})
	require.NoError(t, err)
	b, bt, err := Synthetic(SyntheticConfig{Train: 300, Test: 50, Seed: 42})
	require.NoError(t, err)
	assert.Equal(t, a, b)
	assert.Equal(t, at, bt)

	c, _, err := Synthetic(SyntheticConfig{Train: 300, Test: 50, Seed: 43})
	require.NoError(t, err)
	assert.NotEqual(t, a.Pixels, c.Pixels)
	assert.NotEqual(t, a.Pixels[:at.Len()*a.ImageSize()], at.Pixels, "train and test must differ")

	// Image i does not depend on the split size.
	s, _, err := Synthetic(SyntheticConfig{Train: 37, Test: 1, Seed: 42})
	require.NoError(t, err)
	assert.Equal(t, a.Pixels[:len(s.Pixels)], s.Pixels)
	assert.Equal(t, a.Labels[:37], s.Labels)
}

func TestSyntheticShapeAndBalance(t *testing.T) {
	for _, tc := range []struct {
		train, test int
	}{{0, 0}, {1000, 200}, {1003, 7}} {
		start := time.Now()
		tr, te, err := Synthetic(SyntheticConfig{Train: tc.train, Test: tc.test, Seed: 1})
		elapsed := time.Since(start)
		require.NoError(t, err)
		wantTrain, wantTest := tc.train, tc.test
		if wantTrain == 0 {
			wantTrain, wantTest = 5000, 1000
			t.Logf("default 5000+1000 generated in %v", elapsed)
		}
		for _, d := range []*Dataset{tr, te} {
			require.NoError(t, d.Validate())
			assert.Equal(t, [4]int{3, 32, 32, 10}, [4]int{d.C, d.H, d.W, d.Classes})
			for _, c := range d.ClassCounts() {
				assert.InDelta(t, float64(d.Len())/10, float64(c), 1)
			}
		}
		assert.Equal(t, wantTrain, tr.Len())
		assert.Equal(t, wantTest, te.Len())
	}
}

func TestSyntheticNotDegenerate(t *testing.T) {
	tr, _, err := Synthetic(SyntheticConfig{Train: 500, Test: 1})
	require.NoError(t, err)
	st := tr.Stats()
	for c := range 3 {
		assert.InDelta(t, 0.5, st.Mean[c], 0.1)
		assert.Greater(t, st.Std[c], 0.2)
	}
	// Per-class mean images should be similar (colour and position are not
	// class cues): the mean pixel of each class stays near the global mean.
	n := tr.ImageSize()
	for cl := range 10 {
		var s, k float64
		for i, l := range tr.Labels {
			if l == cl {
				for _, v := range tr.Pixels[i*n : (i+1)*n] {
					s += float64(v) / 255
				}
				k += float64(n)
			}
		}
		assert.InDelta(t, 0.5, s/k, 0.08, "class %d", cl)
	}
	noiseless, _, err := Synthetic(SyntheticConfig{Train: 20, Test: 1, Noise: -1})
	require.NoError(t, err)
	assert.NotEqual(t, tr.Pixels[:20*n], noiseless.Pixels)
}

func TestSyntheticErrors(t *testing.T) {
	_, _, err := Synthetic(SyntheticConfig{Train: -1})
	assert.ErrorContains(t, err, "negative")
	_, _, err = Synthetic(SyntheticConfig{Noise: math.NaN()})
	assert.ErrorContains(t, err, "invalid noise")
}
