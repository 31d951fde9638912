package main

import (
	"math"
	"os"
	"testing"

	"github.com/curvopt/curvopt/data"
	"github.com/curvopt/curvopt/train"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
		t.Skipf("NOT TESTED: the stock MLP on Fashion-MNIST: %v; apt-get install dataset-fashion-mnist, or set CURVOPT_REQUIRE_DATA=1 to make its absence a failure", err)
	}
}

// TestEveryOptimizer: the stock MLP trains on Fashion-MNIST with each of
// curvopt's seven optimizers through the solver: finite costs, a lower
// cost at the end than at the start, and a test accuracy well above chance
// (10%).
func TestEveryOptimizer(t *testing.T) {
	needFashionMNIST(t)
	lr := map[string]float64{"sgd": 0.05, "adam": 0.001, "adamw": 0.001, "mfac": 0.0005, "adahessian": 0.05, "sophiah": 0.001, "sophiag": 0.0005}
	for _, name := range train.Optimizers() {
		t.Run(name, func(t *testing.T) {
			r, err := run(config{optimizer: name, lr: lr[name], steps: 60, batch: 32, hidden: 32, seed: 1,
				data: "fashion-mnist"})
			require.NoError(t, err)
			for i, c := range r.costs {
				require.False(t, math.IsNaN(c) || math.IsInf(c, 0), "step %d: cost %v", i, c)
			}
			first, last := mean(r.costs[:10]), mean(r.costs[len(r.costs)-10:])
			t.Logf("%s: mean cost of the first 10 steps %.4f, of the last 10 %.4f, test accuracy %.1f%%", name, first, last, 100*r.accuracy)
			assert.Less(t, last, first)
			assert.Greater(t, r.accuracy, 0.5)
		})
	}
}

func mean(xs []float64) float64 {
	s := 0.0
	for _, v := range xs {
		s += v
	}
	return s / float64(len(xs))
}
