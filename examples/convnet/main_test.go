package main

import (
	"math"
	"os"
	"testing"

	"github.com/curvopt/curvopt/data"
	"github.com/curvopt/curvopt/train"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

// needFashionMNIST skips the test where Fashion-MNIST is missing, unless
// CURVOPT_REQUIRE_DATA=1 or CI=true make that a failure (as the data
// package's real-data tests do).
func needFashionMNIST(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(data.FashionMNISTDir); err != nil {
		if os.Getenv("CURVOPT_REQUIRE_DATA") == "1" || os.Getenv("CI") == "true" {
			t.Fatalf("Fashion-MNIST is missing from %s but CURVOPT_REQUIRE_DATA=1 or CI=true requires it (apt-get install dataset-fashion-mnist): %v", data.FashionMNISTDir, err)
		}
		t.Skipf("NOT TESTED: Gorgonia's convnet on Fashion-MNIST: %v; apt-get install dataset-fashion-mnist, or set CURVOPT_REQUIRE_DATA=1 to make its absence a failure", err)
	}
}

// small is a short run at batch 8. M-FAC gets an 8-row window: its
// default 1024 rows of the convnet's 0.83M float64 parameters would be
// 6.8 GB, and a few steps write a few rows.
func small(name string, steps int) config {
	return config{optimizer: name, steps: steps, batch: 8, seed: 3, dtype: tensor.Float64, data: "fashion-mnist", loss: "nll", ngrads: 8}
}

// TestEveryOptimizer: the stock convnet takes a few steps with Gorgonia's
// RMSProp and with each of curvopt's seven optimizers, with finite costs.
func TestEveryOptimizer(t *testing.T) {
	needFashionMNIST(t)
	for _, name := range append([]string{"rmsprop"}, train.Optimizers()...) {
		t.Run(name, func(t *testing.T) {
			r, err := run(small(name, 3))
			require.NoError(t, err)
			require.Len(t, r.costs, 3)
			for i, c := range r.costs {
				assert.False(t, math.IsNaN(c) || math.IsInf(c, 0), "step %d: cost %v", i, c)
			}
		})
	}
}

// TestLearns: a few dozen steps lower the cost and give a test accuracy
// above chance (10%), for Adam and for the two curvature optimizers the
// example is about.
func TestLearns(t *testing.T) {
	needFashionMNIST(t)
	if testing.Short() {
		t.Skip("-short: the convnet trains for a few dozen steps")
	}
	for _, name := range []string{"adam", "adahessian", "sophiah"} {
		t.Run(name, func(t *testing.T) {
			c := small(name, 40)
			c.batch, c.eval = 16, 200
			if name == "adahessian" {
				c.lr = 0.01 // its default, 0.15, diverges on this network (the cost reaches 44 at step 2)
			}
			r, err := run(c)
			require.NoError(t, err)
			first, last := headMean(r.costs, 10), tailMean(r.costs, 10)
			t.Logf("%s: mean cost of the first 10 steps %.4f, of the last 10 %.4f; accuracy %.1f%% on 200 test images", name, first, last, 100*r.accuracy)
			assert.Less(t, last, first)
			assert.Greater(t, r.accuracy, 0.2) // chance is 0.1; the stock dropout masks are seeded by the clock
		})
	}
}

// TestGorgoniaLoss: the loss Gorgonia's example runs is +Inf (its
// stabilisation turns Log(HadamardProd(SoftMax(z), y)) into
// LogSoftMax(z) + Log(y)), which is why the example uses the one Gorgonia
// marks as correct.
func TestGorgoniaLoss(t *testing.T) {
	needFashionMNIST(t)
	c := small("sgd", 1)
	c.loss = "gorgonia"
	r, err := run(c)
	require.NoError(t, err)
	assert.True(t, math.IsInf(r.costs[0], 1), "cost %v", r.costs[0])
}

func headMean(xs []float64, k int) float64 {
	k = min(k, len(xs))
	s := 0.0
	for _, v := range xs[:k] {
		s += v
	}
	return s / float64(k)
}
