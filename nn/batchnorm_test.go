package nn

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// bnInput is a batch of N = 2 examples of [C = 2, H = 2, W = 2] whose
// per-channel statistics are worked out by hand:
//
//	channel 0: 1 2 3 4 | 2 4 6 8    sum 30, Σx² 150: mean 3.75, biased variance 150/8 − 3.75² = 4.6875, unbiased 4.6875·8/7 = 37.5/7
//	channel 1: 5 6 7 8 | -1 -2 -3 -4  sum 16, Σx² 204: mean 2, biased variance 204/8 − 2² = 21.5, unbiased 21.5·8/7 = 172/7
var bnInput = []float64{1, 2, 3, 4, 5, 6, 7, 8, 2, 4, 6, 8, -1, -2, -3, -4}

var (
	bnBatchMean = [2]float64{3.75, 2}
	bnBatchVar  = [2]float64{4.6875, 21.5}        // biased: what training mode normalises with
	bnUnbiased  = [2]float64{37.5 / 7, 172.0 / 7} // what the running variance takes in
	bnGamma     = [2]float64{1.5, -2}
	bnBeta      = [2]float64{0.5, 3}
	bnRunMean0  = [2]float64{0.25, -1}
	bnRunVar0   = [2]float64{4, 0.5}
)

// bnModels returns a batch-norm-then-flatten model as a layer list and as
// a DAG, with the default (unset) eps and momentum, or with eps and mom.
func bnModels(t *testing.T, eps, mom float64) map[string]*Model {
	spec := Spec{InputShape: []int{2, 2, 2}, Layers: []LayerSpec{{Type: LayerBatchNorm2d, Name: "bn", Channels: 2, Eps: eps, Momentum: mom}, {Type: LayerFlatten}}}
	dag := DAG{InputShape: []int{2, 2, 2}, Nodes: []DAGNode{
		{Name: "bn", Op: OpBatchNorm2d, Inputs: []string{DAGInput}, Eps: eps, Momentum: mom},
		{Name: "flat", Op: OpFlatten, Inputs: []string{"bn"}}}, Output: "flat"}
	ms := map[string]*Model{}
	var err error
	ms["layer list"], err = newSpec(spec, tensor.Float64, nil)
	require.NoError(t, err)
	ms["DAG"], err = New(dag, tensor.Float64, nil, 1)
	require.NoError(t, err)
	for _, m := range ms {
		copy(m.Params()[0].Value.Float64s(), bnGamma[:])
		copy(m.Params()[1].Value.Float64s(), bnBeta[:])
		rm, rv, err := m.RunningStats("bn")
		require.NoError(t, err)
		copy(rm.Float64s(), bnRunMean0[:])
		copy(rv.Float64s(), bnRunVar0[:])
	}
	return ms
}

// bnForward runs m on bnInput in training or evaluation mode.
func bnForward(t *testing.T, m *Model, train bool) ([]float64, *Net) {
	g := gorgonia.NewGraph()
	net, err := m.Build(g, 2, train)
	require.NoError(t, err)
	require.NoError(t, gorgonia.Let(net.X, tensor.New(tensor.WithShape(2, 2, 2, 2), tensor.WithBacking(append([]float64{}, bnInput...)))))
	vm := gorgonia.NewTapeMachine(g)
	defer vm.Close()
	require.NoError(t, vm.RunAll())
	return floats(net.Logits), net
}

// TestBatchNormModes checks both model kinds, with the defaults unset
// (eps 1e-5, momentum 0.1) and with both set: evaluation normalises with
// the running statistics, training with the batch's (biased variance), and
// UpdateRunningStats folds in the batch mean and the unbiased variance.
func TestBatchNormModes(t *testing.T) {
	for _, c := range []struct {
		name               string
		eps, mom           float64 // as given in the spec (0: unset)
		wantEps, wantMom   float64
		runMean, runVarNew [2]float64 // running statistics after one update, by hand
	}{
		{"defaults", 0, 0, 1e-5, 0.1,
			[2]float64{0.9*0.25 + 0.1*3.75, 0.9*-1 + 0.1*2}, [2]float64{0.9*4 + 0.1*37.5/7, 0.9*0.5 + 0.1*172/7}},
		{"set", 1e-2, 0.5, 1e-2, 0.5,
			[2]float64{0.5*0.25 + 0.5*3.75, 0.5*-1 + 0.5*2}, [2]float64{0.5*4 + 0.5*37.5/7, 0.5*0.5 + 0.5*172/7}},
	} {
		for kind, m := range bnModels(t, c.eps, c.mom) {
			t.Run(c.name+"/"+kind, func(t *testing.T) {
				// Evaluation: running statistics, whatever the batch.
				got, _ := bnForward(t, m, false)
				for i, v := range bnInput {
					ch := (i / 4) % 2
					want := (v-bnRunMean0[ch])/math.Sqrt(bnRunVar0[ch]+c.wantEps)*bnGamma[ch] + bnBeta[ch]
					assert.InDelta(t, want, got[i], 1e-12, "evaluation, entry %d", i)
				}
				// Training: the batch's mean and biased variance.
				got, net := bnForward(t, m, true)
				for i, v := range bnInput {
					ch := (i / 4) % 2
					want := (v-bnBatchMean[ch])/math.Sqrt(bnBatchVar[ch]+c.wantEps)*bnGamma[ch] + bnBeta[ch]
					assert.InDelta(t, want, got[i], 1e-12, "training, entry %d", i)
				}
				require.NoError(t, m.UpdateRunningStats(net))
				rm, rv, err := m.RunningStats("bn")
				require.NoError(t, err)
				for ch := 0; ch < 2; ch++ {
					assert.InDelta(t, c.runMean[ch], rm.Float64s()[ch], 1e-12, "running mean %d", ch)
					assert.InDelta(t, c.runVarNew[ch], rv.Float64s()[ch], 1e-12, "running variance %d", ch)
					// The same, from the statistics named above.
					assert.InDelta(t, (1-c.wantMom)*bnRunVar0[ch]+c.wantMom*bnUnbiased[ch], rv.Float64s()[ch], 1e-12)
				}
			})
		}
	}
}
