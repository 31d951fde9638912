package train

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/curvopt/curvopt/data"
	"github.com/curvopt/curvopt/hessian"
	"github.com/curvopt/curvopt/optim"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

// stubOracle is a non-nil Oracle whose methods are never reached.
type stubOracle struct{ Oracle }

// TestNilArgumentsAreErrors: the exported functions return an error, not a
// panic, for nil arguments (typed nil pointers included).
func TestNilArgumentsAreErrors(t *testing.T) {
	opt, err := NewOptimizer("sgd", nil, 16, 1)
	require.NoError(t, err)
	for _, tc := range []struct {
		eng  Oracle
		opt  optim.Optimizer
		clip float64
		want string
	}{
		{nil, opt, 0, "train: step: nil oracle (engine)"},
		{(*hessian.Engine)(nil), opt, 0, "train: step: nil oracle (engine)"},
		{stubOracle{}, nil, 0, "train: step: nil optimizer"},
		{stubOracle{}, opt, math.NaN(), "train: step: clip norm NaN"},
	} {
		_, err := Step(tc.eng, tc.opt, tc.clip)
		require.Error(t, err, tc.want)
		assert.Contains(t, err.Error(), tc.want)
	}

	var ctx context.Context // nil
	_, err = Run(ctx, tinyConfig(t, "sgd", nil))
	require.EqualError(t, err, "train: run: nil context (use context.Background())")

	path := filepath.Join(t.TempDir(), checkpointFile)
	require.EqualError(t, SaveCheckpoint(path, nil), "checkpoint "+path+": nil checkpoint")
	require.EqualError(t, SaveCheckpoint(path, &Checkpoint{}), "checkpoint "+path+": no optimizer state (Opt is nil)")
	_, err = os.Stat(path)
	assert.True(t, os.IsNotExist(err), "nothing is written")

	tr, _ := tinyData(t)
	_, _, err = Evaluate(nil, tr, 8, tensor.Float64, nil)
	require.EqualError(t, err, "train: evaluate: nil engine")
	_, _, err = Evaluate(new(hessian.Engine), nil, 8, tensor.Float64, nil)
	require.EqualError(t, err, "train: evaluate: nil dataset")
	_, _, err = EvaluateText(nil, &data.Dataset{}, 8, tensor.Float64)
	require.EqualError(t, err, "train: evaluate text: nil engine")
	assert.Equal(t, int64(0), StateBytes(nil))
}
