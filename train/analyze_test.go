package train

import (
	"bytes"
	"context"
	"github.com/curvopt/curvopt/internal/num"
	"path/filepath"
	"strings"
	"testing"

	"github.com/curvopt/curvopt/nn"
	"github.com/curvopt/curvopt/optim"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The analysis reports each quantity as it finishes: plain lines, or on a
// terminal lines that first clear the running count; and a rerun gives the
// same numbers.
func TestAnalyzeProgress(t *testing.T) {
	cfg := tinyConfig(t, "mfac", Hyper{"ngrads": 4})
	cfg.OutDir = t.TempDir()
	cfg.Steps = 3
	_, err := Run(context.Background(), cfg)
	require.NoError(t, err)

	ac := AnalyzeConfig{Batches: 1, Top: 1, SLQSteps: 5, Probes: 1, PerLayer: true}
	var plain, term bytes.Buffer
	a, err := Analyze(context.Background(), cfg, ac, &plain)
	require.NoError(t, err)
	cfg.Terminal = true
	b, err := Analyze(context.Background(), cfg, ac, &term)
	require.NoError(t, err)
	assert.Equal(t, a.Blocks[0].TopEigenvalues, b.Blocks[0].TopEigenvalues)
	assert.Equal(t, a.Blocks[1].Trace, b.Blocks[1].Trace)

	for _, want := range []string{"model: top eigenvalues", "model: smallest eigenvalue", "model: trace", "model: density (SLQ)",
		"fc1.weight: top eigenvalues", "fc1.bias: dense block", "fc2.bias: dense block"} {
		assert.Contains(t, plain.String(), want)
		assert.Contains(t, term.String(), "\r\033[K  "+want)
	}
	assert.Contains(t, plain.String(), "wrote spectrum.json")
	assert.NotContains(t, plain.String(), "\r")
	assert.Equal(t, "dense", a.Blocks[2].Method)   // fc1.bias, 12 values
	assert.Equal(t, "lanczos", a.Blocks[3].Method) // fc2.weight, 120 values
	assert.Equal(t, a.Blocks[2].Size, a.Blocks[2].Products)
}

// loadWeights puts the checkpoint's parameters and batch-norm statistics
// into a freshly initialised model (another seed), and refuses a
// checkpoint of another architecture naming the parameter.
func TestLoadWeights(t *testing.T) {
	spec := nn.Spec{InputShape: []int{3, 32, 32}, Loss: "cross_entropy", Layers: []nn.LayerSpec{
		{Type: nn.LayerConv2d, Name: "conv", In: 3, Out: 2, Kernel: 3, Stride: 2, Pad: 1},
		{Type: nn.LayerBatchNorm2d, Name: "bn", Channels: 2},
		{Type: nn.LayerReLU}, {Type: nn.LayerFlatten},
		{Type: nn.LayerLinear, Name: "fc", In: 512, Out: 10}}}
	cfg := tinyConfig(t, "adam", nil)
	var err error
	cfg.Model, err = spec.DAG()
	require.NoError(t, err)
	cfg.OutDir, cfg.Steps = t.TempDir(), 3
	_, err = Run(context.Background(), cfg)
	require.NoError(t, err)
	ck, err := LoadCheckpoint(filepath.Join(cfg.OutDir, checkpointFile))
	require.NoError(t, err)

	fresh := cfg
	fresh.Seed, fresh.Optimizer, fresh.Hyper = 99, "sgd", nil
	r, err := setup(fresh, false)
	require.NoError(t, err)
	defer r.close()
	require.NoError(t, loadWeights(r, ck, "ck"))
	var got []float64
	for _, p := range r.eng.Params() {
		got = append(got, num.ToFloat64(p.Value)...)
	}
	assert.Equal(t, checkpointParams(t, cfg.OutDir), got)
	mean, vari, err := r.model.RunningStats("bn")
	require.NoError(t, err)
	st := optim.State{Tensors: ck.Params}
	assert.Equal(t, st.Find("bn", "running_mean").Float64s(), num.ToFloat64(mean))
	assert.Equal(t, st.Find("bn", "running_var").Float64s(), num.ToFloat64(vari))
	assert.NotEqual(t, []float64{0, 0}, num.ToFloat64(mean), "three steps moved the running mean")

	other := fresh
	other.Model = nn.MLP(3072, []int{5}, 10)
	r2, err := setup(other, false)
	require.NoError(t, err)
	defer r2.close()
	assert.ErrorContains(t, loadWeights(r2, ck, "ck"), `train: analyze: ck: state has no "value" for param "fc1.weight"`)
}

// cancelOn is a progress writer that cancels a context once the output
// holds a given text.
type cancelOn struct {
	bytes.Buffer
	text   string
	cancel context.CancelFunc
}

func (c *cancelOn) Write(p []byte) (int, error) {
	n, err := c.Buffer.Write(p)
	if strings.Contains(c.String(), c.text) {
		c.cancel()
	}
	return n, err
}

// A cancelled analysis stops at its next product, or before writing
// spectrum.json, with an error wrapping context.Canceled and nothing
// written (no spectrum.json, no temporary file of it).
func TestAnalyzeStopsWhenCancelled(t *testing.T) {
	cfg := tinyConfig(t, "sgd", nil)
	cfg.OutDir = t.TempDir()
	cfg.Steps = 3
	_, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	ac := AnalyzeConfig{Batches: 2, Top: 1, SLQSteps: 5, Probes: 1, PerLayer: true}
	nothingWritten := func(t *testing.T) {
		t.Helper()
		left, err := filepath.Glob(filepath.Join(cfg.OutDir, "spectrum.json*"))
		require.NoError(t, err)
		assert.Empty(t, left)
	}

	for _, tc := range []struct {
		name, at, notAfter string
	}{
		{"after the top eigenvalues", "model: top eigenvalues", "model: smallest eigenvalue"},
		{"in a dense block", "fc1.weight: trace", "fc1.bias: dense block"},
		{"before writing", "model          d=", "wrote spectrum.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			w := &cancelOn{text: tc.at, cancel: cancel}
			a, err := Analyze(ctx, cfg, ac, w)
			require.ErrorIs(t, err, context.Canceled)
			assert.ErrorContains(t, err, "train: analyze: stopped before the end, nothing written: context canceled")
			assert.Nil(t, a)
			assert.Contains(t, w.String(), tc.at)
			assert.NotContains(t, w.String(), tc.notAfter, "the analysis went on after the cancellation")
			assert.NotContains(t, w.String(), "Lanczos instead", "a cancellation is no failure to fall back from")
			nothingWritten(t)
		})
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out bytes.Buffer
	_, err = Analyze(ctx, cfg, ac, &out)
	require.ErrorIs(t, err, context.Canceled)
	assert.Empty(t, out.String())
	nothingWritten(t)
	_, err = Analyze(nil, cfg, ac, nil) //nolint:staticcheck // a nil context is the misuse under test
	assert.EqualError(t, err, "train: analyze: nil context")

	a, err := Analyze(context.Background(), cfg, ac, nil)
	require.NoError(t, err)
	assert.NotEmpty(t, a.Blocks)
}
