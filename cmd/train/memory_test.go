package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/curvopt/curvopt/data"
	"github.com/curvopt/curvopt/nn"
	"github.com/curvopt/curvopt/optim"
	"github.com/curvopt/curvopt/train"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// padConvSpec is the hostile layer-list model of issue 19: a 3×3
// convolution padded by pad on CIFAR-sized inputs, pooled back to one
// value (48 parameters).
func padConvSpec(pad int) nn.Spec {
	side := 32 + 2*pad - 2
	return nn.Spec{InputShape: []int{3, 32, 32}, Layers: []nn.LayerSpec{
		{Type: nn.LayerConv2d, Name: "c1", In: 3, Out: 1, Kernel: 3, Stride: 1, Pad: pad},
		{Type: nn.LayerMaxPool2d, Kernel: side, Stride: side},
		{Type: nn.LayerFlatten},
		{Type: nn.LayerLinear, Name: "fc", In: 1, Out: 10},
	}}
}

// writeJSON writes v as JSON to dir/name and returns the path.
func writeJSON(t testing.TB, dir, name string, v any) string {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, b, 0o644))
	return p
}

// hostileCheckpoint writes, through the public API, a small checkpoint in
// a new folder dir whose recorded model is spec (a layer list, keyed and
// recorded as before issue 20, with zero parameters) or d (a DAG, without
// parameters) and returns dir. Everything else in it is real: a two-step
// run of a small MLP on the same data writes the checkpoint and its metric
// files, and only the model, its parameters and the step budget are
// replaced, so the checkpoint passes every check of its meaning and is
// refused for its model alone.
func hostileCheckpoint(t testing.TB, dir string, spec nn.Spec, d *nn.DAG) string {
	require.NoError(t, os.MkdirAll(dir, 0o755))
	ds := data.Spec{Kind: data.KindSynthetic, Synthetic: data.SyntheticConfig{Train: 64, Test: 16, Seed: 1}}
	_, err := train.Run(context.Background(), train.Config{Model: nn.MLP(3*32*32, []int{4}, 10), Data: ds,
		Optimizer: "sgd", Steps: 2, BatchSize: 16, EvalBatch: 16, Seed: 1, Normalize: true, OutDir: dir})
	require.NoError(t, err)
	path := filepath.Join(dir, "checkpoint.gob")
	ck, err := train.LoadCheckpoint(path)
	require.NoError(t, err)

	key, err := json.Marshal(spec)
	if d != nil {
		key, err = json.Marshal(d)
	}
	require.NoError(t, err)
	var params []optim.StateTensor
	if d == nil {
		sd, err := spec.DAG()
		require.NoError(t, err)
		info, err := sd.Check()
		require.NoError(t, err)
		for _, p := range info {
			n := 1
			for _, s := range p.Shape {
				n *= s
			}
			params = append(params, optim.StateTensor{Param: p.Name, Slot: "value", Dtype: "float32", Shape: p.Shape, F32: make([]float32, n)})
		}
	}
	rc, err := json.Marshal(train.RunConfig{Data: ds,
		Optimizer: "sgd", Hyper: train.Hyper{}, Steps: 4, BatchSize: 16, EvalBatch: 16, Seed: 1, Dtype: "float32",
		Schedule: train.Schedule{Kind: "constant"}, Normalize: true})
	require.NoError(t, err)
	var fields map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(rc, &fields))
	fields["model"] = key
	rc, err = json.Marshal(fields)
	require.NoError(t, err)
	ck.Model, ck.Config, ck.Params = string(key), rc, params
	require.NoError(t, train.SaveCheckpoint(path, ck))
	return dir
}

// memoryCases are the crafted models of issue 19 whose memory no input
// bounded: convolutions padded by 20,000 and 3,000, the CNN at a batch of
// 100,000, the same padded convolution recorded in a checkpoint (-resume,
// -analyze), and shapes whose element counts overflow int64 (a layer-list
// file; a DAG in a checkpoint).
func memoryCases(t testing.TB, root string) []hostileCase {
	const huge = 4611686018427388672 // 2⁶² + 768: times 4 wraps to 3072, times 3 below zero
	big := func(graph string, batch int) string {
		return "the largest part is node 0 (conv2d \"c1\") in the " + graph + " graph of the training batch of " + strconv.Itoa(batch) + ", "
	}
	lower := "lower the batch size (-batch, -eval-batch) or use a smaller model"
	var cs []hostileCase
	for _, pad := range []int{20000, 3000} {
		name := "conv-pad-" + strconv.Itoa(pad)
		spec := writeJSON(t, root, name+".json", padConvSpec(pad))
		cs = append(cs, hostileCase{name, []string{"-model", spec, "-optimizer", "sgd", "-steps", "2", "-out", filepath.Join(root, name+"-out")}, 1,
			[]string{big("gradient", 64), "more than the memory available (MemAvailable), 2.0 GB", lower}})
	}
	cs = append(cs, hostileCase{"cnn-batch-100000", []string{"-model", "cnn", "-batch", "100000", "-synthetic-train", "100000", "-steps", "1", "-out", filepath.Join(root, "cnn-batch-out")}, 1,
		[]string{"training batch 100000 (gradient and H·v) ", "the largest part is node 0 (conv2d \"conv1\") in the gradient and H·v graph of the training batch of 100000, ", lower}})
	ck := hostileCheckpoint(t, filepath.Join(root, "ckpt-conv-pad-20000"), padConvSpec(20000), nil)
	cs = append(cs,
		hostileCase{"ckpt-conv-pad-20000-resume", []string{"-resume", "-out", ck}, 1, []string{big("gradient", 16), lower}},
		hostileCase{"ckpt-conv-pad-20000-analyze", []string{"-analyze", "-out", ck}, 1, []string{big("gradient and H·v", 16), lower}})

	flat := nn.Spec{InputShape: []int{huge, 4}, Layers: []nn.LayerSpec{{Type: nn.LayerFlatten}, {Type: nn.LayerLinear, Name: "fc", In: 3072, Out: 10}}}
	cs = append(cs, hostileCase{"input-shape-overflow", []string{"-model", writeJSON(t, root, "input-shape-overflow.json", flat), "-steps", "1", "-out", filepath.Join(root, "overflow-out")}, 2,
		[]string{"nn: spec: input_shape [4611686018427388672 4]: want dimensions ≥ 1 and at most 1099511627776 elements"}})
	dag := &nn.DAG{InputShape: []int{huge, 3}, Nodes: []nn.DAGNode{{Name: "f", Op: nn.OpFlatten, Inputs: []string{nn.DAGInput}},
		{Name: "fc", Op: nn.OpLinear, Inputs: []string{"f"}, Out: 10}}, Output: "fc"}
	ck = hostileCheckpoint(t, filepath.Join(root, "ckpt-dag-overflow"), nn.Spec{}, dag)
	cs = append(cs,
		hostileCase{"ckpt-dag-overflow-resume", []string{"-resume", "-out", ck}, 1, []string{"nn: DAG: input_shape [4611686018427388672 3]"}},
		hostileCase{"ckpt-dag-overflow-analyze", []string{"-analyze", "-out", ck}, 1, []string{"nn: DAG: input_shape [4611686018427388672 3]"}})
	return cs
}

// TestMemoryLimitFlag: -memory-limit takes sizes with units, refuses
// others as a usage error naming the flag, and replaces the available
// memory as the model's budget (in a fresh run, -resume and -analyze).
func TestMemoryLimitFlag(t *testing.T) {
	root := t.TempDir()
	mem := func() (int64, error) { return 2e9, nil }
	runArgs := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := runWith(append(args, "-quiet"), &out, &errb, mem)
		return code, errb.String()
	}
	code, msg := runArgs("-memory-limit", "2XB", "-steps", "1", "-out", filepath.Join(root, "a"))
	assert.Equal(t, 2, code)
	assert.Contains(t, msg, `invalid value "2XB" for flag -memory-limit: memory size "2XB": want a number of bytes`)

	small := []string{"-model", "mlp", "-hidden", "8", "-synthetic-train", "64", "-synthetic-test", "16", "-batch", "16", "-optimizer", "sgd", "-steps", "2"}
	out := filepath.Join(root, "run")
	code, msg = runArgs(append(small, "-memory-limit", "1MB", "-out", out)...)
	assert.Equal(t, 1, code)
	assert.Contains(t, msg, "more than the memory limit (-memory-limit), 1.0 MB")
	code, msg = runArgs(append(small, "-memory-limit", "512MB", "-out", out)...)
	require.Equal(t, 0, code, msg)
	for _, mode := range []string{"-resume", "-analyze"} {
		code, msg = runArgs(mode, "-out", out, "-memory-limit", "1kB")
		assert.Equal(t, 1, code, mode)
		assert.Contains(t, msg, "more than the memory limit (-memory-limit), 1.0 kB", mode)
	}
}
