package train

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/curvopt/curvopt/data"
	"github.com/curvopt/curvopt/nn"
	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/optim/adahessian"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

// shardCNN is a CNN whose 5×5 convolution weight (25,600 of its 28,682
// values) holds every cut of Share for 2 and 3 ranks, none of them on a
// kernel window's boundary: a slice that split a window would average
// AdaHessian's curvature over part of it.
func shardCNN(t *testing.T) nn.DAG {
	t.Helper()
	d, err := nn.Spec{
		InputShape: []int{3, 32, 32},
		Layers: []nn.LayerSpec{
			{Type: nn.LayerConv2d, Name: "conv1", In: 3, Out: 16, Kernel: 3, Stride: 1, Pad: 1},
			{Type: nn.LayerReLU},
			{Type: nn.LayerMaxPool2d, Kernel: 2, Stride: 2},
			{Type: nn.LayerMaxPool2d, Kernel: 2, Stride: 2},
			{Type: nn.LayerMaxPool2d, Kernel: 2, Stride: 2},
			{Type: nn.LayerConv2d, Name: "conv2", In: 16, Out: 64, Kernel: 5, Stride: 1, Pad: 2},
			{Type: nn.LayerReLU},
			{Type: nn.LayerMaxPool2d, Kernel: 2, Stride: 2},
			{Type: nn.LayerFlatten},
			{Type: nn.LayerLinear, Name: "fc", In: 64 * 2 * 2, Out: 10},
		},
		Loss: "cross_entropy",
	}.DAG()
	require.NoError(t, err)
	return d
}

// mfacShardTol bounds a sharded M-FAC run's distance from the unsharded
// one in float64. The ranks add the inner products c = G·g of their
// columns and the all-reduce adds the ranks' sums, where one process adds
// two fixed column halves: the same terms in another order, about 1e-16
// relative. F⁻¹·g = (g − Gᵀ·M⁻¹·c)/λ cancels about log₁₀(‖g‖²/(m·λ))
// digits (about 4 here: m = 4, λ = 1e-5), and ten steps feed each step's
// parameters into the next gradients, so the parameters (of size ~0.05)
// may differ by ~1e-12; measured 2.5e-13 (see the test's log).
const mfacShardTol = 1e-10

// mfacShardStateTol bounds the state's difference (relative where a value
// exceeds 1): the Gram matrix's off-diagonal entries are sums of d products
// that cancel (an entry of 1.03 from gradients of norm² 13), so the
// gradients' 1e-13 differences (through the parameters) reach them at
// ~1e-11; measured 6e-11.
const mfacShardStateTol = 1e-9

// TestShardConvAndMFAC: AdaHessian on convolutions and M-FAC, sharded over
// 2 and 3 ranks, equal the unsharded data-parallel run: AdaHessian bit for
// bit (no slice splits a kernel window), M-FAC within mfacShardTol (its
// inner products are summed in another order), the ranks bit for bit
// among themselves; the checkpoint holds the unsharded run's state in its
// format, and a run saved sharded on n ranks resumes unsharded on 5-n (or
// alone), and one saved unsharded resumes sharded, as an uninterrupted
// run goes on.
func TestShardConvAndMFAC(t *testing.T) {
	tr, te, err := data.Synthetic(data.SyntheticConfig{Train: 250, Test: 40, Seed: 5})
	require.NoError(t, err)
	for _, c := range []struct {
		name, opt string
		model     nn.DAG
		tol       float64 // 0: bit for bit
	}{
		{"adahessian-cnn", "adahessian", shardCNN(t), 0},
		{"adahessian-cnn32", "adahessian", nn.CNN(3, 32, 10), 0},
		{"mfac-mlp", "mfac", nn.MLP(3*32*32, []int{16}, 10), mfacShardTol},
		{"mfac-cnn", "mfac", shardCNN(t), mfacShardTol},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := Hyper{}
			for k, v := range distHypers[c.opt] {
				h[k] = v
			}
			if c.opt == "mfac" {
				h["momentum"] = 0.5 // a per-parameter slot too
			}
			base := Config{Model: c.model, Train: tr, Test: te, Optimizer: c.opt,
				Hyper: h, Steps: 10, BatchSize: 32, Seed: 3, Normalize: true, Dtype: tensor.Float64}
			for _, n := range []int{2, 3} {
				plain := base
				plain.OutDir = t.TempDir()
				want := runRanks(t, plain, n)
				sharded := plain
				sharded.OutDir, sharded.Shard = t.TempDir(), true
				got := runRanks(t, sharded, n)
				for r := 1; r < n; r++ {
					require.Equal(t, got[0].ParamsDigest, got[r].ParamsDigest, "%d ranks: rank %d's parameters differ from rank 0's", n, r)
				}
				a, err := LoadCheckpoint(filepath.Join(plain.OutDir, checkpointFile))
				require.NoError(t, err)
				b, err := LoadCheckpoint(filepath.Join(sharded.OutDir, checkpointFile))
				require.NoError(t, err)
				if c.tol == 0 {
					require.Equal(t, want[0].ParamsDigest, got[0].ParamsDigest, "%d ranks: sharded parameters differ", n)
					for i := range want[0].StepLog {
						require.Equal(t, want[0].StepLog[i].Loss, got[0].StepLog[i].Loss, "%d ranks, step %d", n, i+1)
					}
					requireSameState(t, a, b)
				} else {
					dp, ds := maxParamDiff(t, a, b), maxStateDiff(t, a, b)
					t.Logf("%s, %d ranks: sharded against unsharded: parameters %.2g, state %.2g", c.name, n, dp, ds)
					require.Less(t, dp, c.tol, "%d ranks: parameters", n)
					require.Less(t, ds, max(c.tol, mfacShardStateTol), "%d ranks: state", n)
					for i := range want[0].StepLog {
						require.InDelta(t, want[0].StepLog[i].Loss, got[0].StepLog[i].Loss, c.tol, "%d ranks, step %d", n, i+1)
					}
				}
				tol, stol := max(c.tol, dist64Tol), dist64Tol
				if c.tol > 0 {
					stol = mfacShardStateTol
				}

				// Sharded to step 5 on n ranks, unsharded on 5-n to 10.
				d := base
				d.OutDir, d.Shard, d.Steps = t.TempDir(), true, 5
				runRanks(t, d, n)
				d.Shard, d.Steps, d.Resume = false, 10, true
				runRanksOrOne(t, d, 5-n)
				e, err := LoadCheckpoint(filepath.Join(d.OutDir, checkpointFile))
				require.NoError(t, err)
				require.Less(t, maxParamDiff(t, a, e), tol, "sharded on %d ranks, resumed unsharded on %d", n, 5-n)
				require.Less(t, maxStateDiff(t, a, e), stol, "sharded on %d ranks, resumed unsharded on %d", n, 5-n)
				// Unsharded to 5, sharded on 5-n to 10 (a rank count whose
				// cuts differ from n's).
				d = base
				d.OutDir, d.Steps = t.TempDir(), 5
				runRanks(t, d, n)
				d.Shard, d.Steps, d.Resume = true, 10, true
				if 5-n > 1 {
					runRanks(t, d, 5-n)
				} else {
					runRanks(t, d, 2)
				}
				f, err := LoadCheckpoint(filepath.Join(d.OutDir, checkpointFile))
				require.NoError(t, err)
				require.Less(t, maxParamDiff(t, a, f), tol, "unsharded on %d ranks, resumed sharded", n)
				require.Less(t, maxStateDiff(t, a, f), stol, "unsharded on %d ranks, resumed sharded", n)
			}
		})
	}
}

// maxStateDiff is the largest difference between two checkpoints'
// optimizer state values, relative to the value where it exceeds 1 (M-FAC's
// Gram matrix holds ‖g‖² of order 1e3); the checkpoints must hold the same
// tensors of the same shapes (the format does not change with -shard).
func maxStateDiff(t *testing.T, a, b *Checkpoint) float64 {
	t.Helper()
	require.Equal(t, a.Opt.Step, b.Opt.Step)
	require.Equal(t, a.Opt.Scalars, b.Opt.Scalars)
	require.Equal(t, len(a.Opt.Tensors), len(b.Opt.Tensors))
	want := map[[2]string]optim.StateTensor{}
	for _, st := range a.Opt.Tensors {
		want[[2]string{st.Param, st.Slot}] = st
	}
	worst := 0.0
	for _, st := range b.Opt.Tensors {
		w, ok := want[[2]string{st.Param, st.Slot}]
		require.True(t, ok, "%s of %s", st.Slot, st.Param)
		require.Equal(t, w.Shape, st.Shape, "%s of %s", st.Slot, st.Param)
		require.Equal(t, w.Dtype, st.Dtype, "%s of %s", st.Slot, st.Param)
		x, y := stateValues(w), stateValues(st)
		require.Equal(t, len(x), len(y), "%s of %s", st.Slot, st.Param)
		for i := range x {
			worst = max(worst, math.Abs(x[i]-y[i])/max(1, math.Abs(x[i])))
		}
	}
	return worst
}

// TestShardCutsKeepKernelWindows: the cuts of shardCNN's vector over 2 and
// 3 ranks fall inside its 5×5 convolution weight, where Share's would
// split a kernel window: each is moved to the nearest window boundary, and
// the pieces of the weight are shaped [windows, 1, 5, 5], so that
// AdaHessian's BlockSize of a piece is the weight's (25).
func TestShardCutsKeepKernelWindows(t *testing.T) {
	shapes := [][]int{{16, 3, 3, 3}, {16}, {64, 16, 5, 5}, {64}, {10, 256}, {10}}
	var params []optim.Param
	for i, s := range shapes {
		v := tensor.New(tensor.Of(tensor.Float64), tensor.WithShape(s...))
		g := tensor.New(tensor.Of(tensor.Float64), tensor.WithShape(s...))
		params = append(params, optim.Param{Name: string(rune('a' + i)), Value: v, Grad: g})
	}
	const convStart, convEnd = 432 + 16, 432 + 16 + 25600
	for _, n := range []int{2, 3} {
		h := newHub(n)
		for r := range n {
			lay, err := newShardLayout(params, fakeComm{h, r})
			require.NoError(t, err)
			for k := 1; k < n; k++ {
				share, _ := Share(lay.size, n, k)
				require.True(t, share > convStart && share < convEnd && (share-convStart)%25 != 0, "the test's premise: Share's cut %d splits a window", share)
				c := lay.cuts[k]
				require.Zero(t, (c-convStart)%25, "%d ranks: cut %d", n, c)
				require.LessOrEqual(t, math.Abs(float64(c-share)), 12.5, "%d ranks: cut %d moved from %d", n, c, share)
			}
			for j, pc := range lay.pieces {
				if pc.i == 2 {
					require.Equal(t, []int{(pc.b - pc.a) / 25, 1, 5, 5}, []int(lay.shard[j].Value.Shape()))
					require.Equal(t, 25, adahessian.BlockSize(lay.shard[j].Value.Shape()))
					require.Equal(t, lay.shard[j].Value.Shape(), lay.shard[j].Grad.Shape())
				}
			}
		}
	}
	// A vector of one window cannot be cut for 2 ranks.
	one := []optim.Param{{Name: "w", Value: tensor.New(tensor.Of(tensor.Float64), tensor.WithShape(1, 1, 3, 3)),
		Grad: tensor.New(tensor.Of(tensor.Float64), tensor.WithShape(1, 1, 3, 3))}}
	_, err := newShardLayout(one, fakeComm{newHub(2), 0})
	require.ErrorContains(t, err, "would hold no parameter values")
}

// TestShardMFACMemoryCheck: with -shard, the check of M-FAC's memory before
// a run counts a rank's columns of the window (d/N, and at most a kernel
// window more), and on rank 0 also the whole window it gathers for a
// checkpoint: a window of 688 MB that does not fit in 500 MB passes on rank
// 1 of 2 and is refused on rank 0.
func TestShardMFACMemoryCheck(t *testing.T) {
	cfg := tinyConfig(t, "mfac", Hyper{"ngrads": 2000})
	cfg.Memory = func() (int64, error) { return 500e6, nil }
	cfg.Shard = true
	model, err := nn.New(cfg.Model, tensor.Float64, rand.New(rand.NewPCG(1, 2)), 1)
	require.NoError(t, err)
	check := func(rank int) error {
		c := cfg
		c.Comm = fakeComm{newHub(2), rank}
		return checkInputs(c, model, false, optim.Needs{}, cfg.Train, cfg.Test)
	}
	// d = 37006: rank 1 holds 18503 + 1 columns, 2000·18504·8 + 3·2000²·8.
	require.NoError(t, check(1))
	require.ErrorContains(t, check(0), "this rank's slice of M-FAC's window (-shard: m = 2000 gradients of 18504 of the d = 37006 parameters; float64: 392.1 MB, and 752.1 MB more for a checkpoint)")
	cfg.Shard = false
	require.ErrorContains(t, check(1), "M-FAC's window of m = 2000 gradients of d = 37006 parameters")
}
