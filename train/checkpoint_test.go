package train

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/curvopt/curvopt/data"
	"github.com/curvopt/curvopt/optim"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCheckpointRoundTripKeepsDtypeAndBits(t *testing.T) {
	big := make([]float32, 70000) // crosses the 64 KiB streaming chunk
	for i := range big {
		big[i] = float32(math.Sin(float64(i))) * 1e-3
	}
	c := &Checkpoint{
		Model: "m", Optimizer: "mfac", Dtype: "float32", Step: 7, EvalStep: -1, Config: []byte(`{"seed":1}`),
		Data:   data.IterState{N: 100, BatchSize: 10, Started: true, Pos: 70},
		Blobs:  map[string][]byte{"epoch_sums": encodeFloats(0, 0, 7), "last_eval": encodeFloats(0, 0)},
		Params: []optim.StateTensor{optim.SliceTensor("w", "value", []int{70000}, big)},
		Opt: &optim.State{Optimizer: "mfac", Step: 7, Tensors: []optim.StateTensor{
			optim.SliceTensor("", "gram", []int{2, 2}, []float64{1, math.SmallestNonzeroFloat64, -0.5, math.MaxFloat64}),
			optim.SliceTensor("", "empty", []int{0, 3}, []float32{}),
		}},
	}
	path := filepath.Join(t.TempDir(), checkpointFile)
	require.NoError(t, SaveCheckpoint(path, c))
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Less(t, st.Size(), int64(70000*4+4096), "float32 values take 4 bytes each")
	got, err := LoadCheckpoint(path)
	require.NoError(t, err)
	assert.Equal(t, big, got.Params[0].F32)
	assert.Nil(t, got.Params[0].F64)
	assert.Equal(t, c.Opt.Tensors[0].F64, got.Opt.Tensors[0].F64)
	assert.Equal(t, 7, got.Step)
	info, err := ReadCheckpointInfo(path)
	require.NoError(t, err)
	assert.Nil(t, info.Params[0].F32, "the info has no values")
	assert.Equal(t, []int{70000}, info.Params[0].Shape)
}

// TestCheckpointDetectsCorruption flips single bits at seeded random
// offsets, truncates and extends a real checkpoint: every damaged file is
// refused with an error naming it (CRC-32C detects every single-bit error).
func TestCheckpointDetectsCorruption(t *testing.T) {
	cfg := tinyConfig(t, "adam", nil)
	cfg.OutDir = t.TempDir()
	cfg.Steps = 2
	_, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	good, err := os.ReadFile(filepath.Join(cfg.OutDir, checkpointFile))
	require.NoError(t, err)
	bad := filepath.Join(t.TempDir(), "bad.gob")
	rng := rand.New(rand.NewPCG(1, 2))
	check := func(b []byte, what string, want ...string) {
		t.Helper()
		require.NoError(t, os.WriteFile(bad, b, 0o600))
		_, err := LoadCheckpoint(bad)
		require.Error(t, err, what)
		assert.Contains(t, err.Error(), bad, what)
		for _, w := range want {
			assert.Contains(t, err.Error(), w, what)
		}
	}
	for i := 0; i < 300; i++ {
		b := append([]byte(nil), good...)
		// Half the flips in the header and metadata, half in the values.
		off := rng.IntN(len(b))
		if i%2 == 0 {
			off = rng.IntN(min(len(b), 2000))
		}
		b[off] ^= 1 << rng.IntN(8)
		check(b, "bit flip at offset "+itoa(off))
	}
	b := append([]byte(nil), good...)
	b[len(b)-100] ^= 0x10
	check(b, "flip in the last tensor", "checksum mismatch in state", "bytes ")
	for _, n := range []int{0, 5, headerLen, 200, len(good) / 2, len(good) - 1} {
		check(good[:n], "truncated to "+itoa(n), "truncated")
	}
	check(append(append([]byte(nil), good...), 0), "trailing byte", "trailing")
	check([]byte("\x0e\xff\x81\x03\x01\x01\x0acheckpoint from an old build........"), "version-1 file", "not a curvopt checkpoint")
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// TestResumeRefusesNonFiniteState puts a NaN into each tensor of each
// optimizer's checkpointed state (and into a parameter): resuming is
// refused with an error naming the parameter and slot.
func TestResumeRefusesNonFiniteState(t *testing.T) {
	for _, name := range Optimizers() {
		t.Run(name, func(t *testing.T) {
			h := testHypers[name]
			if name == "sgd" {
				h = Hyper{"lr": 0.05, "momentum": 0.9} // a momentum buffer
			}
			cfg := tinyConfig(t, name, h)
			cfg.OutDir = t.TempDir()
			cfg.Steps = 3
			_, err := Run(context.Background(), cfg)
			require.NoError(t, err)
			path := filepath.Join(cfg.OutDir, checkpointFile)
			orig, err := os.ReadFile(path)
			require.NoError(t, err)
			c, err := LoadCheckpoint(path)
			require.NoError(t, err)
			n := len(c.Params) + len(c.Opt.Tensors)
			require.Greater(t, len(c.Opt.Tensors), 0, "%s exports no tensors", name)
			for i := 0; i < n; i++ {
				c, err := LoadCheckpoint(path)
				require.NoError(t, err)
				st := c.tensors()[i]
				if st.Len() == 0 {
					continue
				}
				j := st.Len() - 1
				if st.Dtype == "float32" {
					st.F32[j] = float32(math.NaN())
				} else {
					st.F64[j] = math.Inf(-1)
				}
				require.NoError(t, SaveCheckpoint(path, c))
				res := cfg
				res.Resume, res.Steps = true, 5
				_, err = Run(context.Background(), res)
				require.Error(t, err, "%s/%s", st.Param, st.Slot)
				assert.True(t, errors.Is(err, optim.ErrNonFinite), "%v", err)
				assert.Contains(t, err.Error(), `"`+st.Slot+`"`)
				if st.Param != "" {
					assert.Contains(t, err.Error(), `"`+st.Param+`"`)
				}
				require.NoError(t, os.WriteFile(path, orig, 0o600))
			}
		})
	}
}

func TestFreshRunRefusesExistingCheckpoint(t *testing.T) {
	cfg := tinyConfig(t, "adam", nil)
	cfg.OutDir = t.TempDir()
	cfg.Steps = 2
	_, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	before, err := os.ReadFile(filepath.Join(cfg.OutDir, checkpointFile))
	require.NoError(t, err)
	_, err = Run(context.Background(), cfg)
	require.Error(t, err)
	for _, w := range []string{cfg.OutDir, "step 2", "-resume", "-overwrite"} {
		assert.Contains(t, err.Error(), w)
	}
	after, err := os.ReadFile(filepath.Join(cfg.OutDir, checkpointFile))
	require.NoError(t, err)
	assert.Equal(t, before, after, "the refused run touched the checkpoint")
	cfg.Overwrite, cfg.Steps = true, 1
	_, err = Run(context.Background(), cfg)
	require.NoError(t, err)
	assert.Len(t, readLines(t, filepath.Join(cfg.OutDir, "steps.jsonl")), 1)
}

// TestResumeUsesRecordedConfig: ReadRunConfig returns the recorded run, a
// setting that may not change is refused naming both values, and a cosine
// schedule keeps its recorded horizon.
func TestResumeUsesRecordedConfig(t *testing.T) {
	cfg := tinyConfig(t, "sophiag", testHypers["sophiag"])
	cfg.OutDir = t.TempDir()
	cfg.Steps = 6
	cfg.Schedule = Schedule{Kind: "cosine", Warmup: 1}
	_, err := Run(context.Background(), cfg)
	require.NoError(t, err)

	rec, err := ReadRunConfig(cfg.OutDir)
	require.NoError(t, err)
	assert.True(t, rec.Resume)
	assert.Equal(t, 6, rec.Schedule.Total, "the horizon is recorded")
	used, err := ResolveHyper(cfg.Optimizer, cfg.Hyper, cfg.BatchSize, cfg.Seed)
	require.NoError(t, err)
	a, _ := json.Marshal(used)
	b, _ := json.Marshal(rec.Hyper)
	assert.JSONEq(t, string(a), string(b), "the record holds every value the run used")
	assert.Equal(t, cfg.Seed, rec.Seed)
	assert.Equal(t, cfg.BatchSize, rec.BatchSize)

	other := cfg
	other.Resume, other.BatchSize = true, 8
	_, err = Run(context.Background(), other)
	require.Error(t, err)
	for _, w := range []string{"batch size", "8 for this run", "16 in the checkpoint", cfg.OutDir} {
		assert.Contains(t, err.Error(), w)
	}

	// A longer budget runs past the recorded cosine horizon: refused unless
	// the horizon is given.
	longer := rec
	longer.Train, longer.Test, longer.Steps = cfg.Train, cfg.Test, 10
	for _, total := range []int{0, 6} { // left to the run, or as recorded
		longer.Schedule.Total = total
		_, err = Run(context.Background(), longer)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "ends at step 6")
	}
	longer.Schedule.Total = 10
	_, err = Run(context.Background(), longer)
	require.NoError(t, err)
	lines := readLines(t, filepath.Join(cfg.OutDir, "steps.jsonl"))
	assert.Len(t, lines, 10)
}

// TestResumeRecordsEachStepAndEpochOnce simulates a kill after a checkpoint:
// records past it (one torn), a leftover temporary checkpoint. The resumed
// run's records equal an uninterrupted run's, each once, and resuming the
// finished run again (or with a longer budget) adds no duplicate row.
func TestResumeRecordsEachStepAndEpochOnce(t *testing.T) {
	straight := tinyConfig(t, "adam", nil)
	straight.OutDir = t.TempDir()
	straight.Epochs = 2 // 12 steps
	_, err := Run(context.Background(), straight)
	require.NoError(t, err)

	cfg := tinyConfig(t, "adam", nil)
	cfg.OutDir = t.TempDir()
	cfg.Steps = 6 // a checkpoint at the epoch's end, after its evaluation
	_, err = Run(context.Background(), cfg)
	require.NoError(t, err)
	appendFile(t, filepath.Join(cfg.OutDir, "steps.jsonl"), `{"step":7,"epoch":2,"loss":9}`+"\n"+`{"step":8,"ep`)
	appendFile(t, filepath.Join(cfg.OutDir, "epochs.jsonl"), `{"epoch":2,"step":6,"train_loss":0}`+"\n")
	require.NoError(t, os.WriteFile(filepath.Join(cfg.OutDir, checkpointFile+".tmp-123"), []byte("partial"), 0o600))

	cfg.Resume, cfg.Steps, cfg.Epochs = true, 0, 2
	_, err = Run(context.Background(), cfg)
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(cfg.OutDir, checkpointFile+".tmp-123"))
	assert.True(t, os.IsNotExist(err), "the leftover temporary file is removed")
	sameRecords(t, straight.OutDir, cfg.OutDir)

	for _, epochs := range []int{2, 3} {
		cfg.Epochs = epochs
		_, err = Run(context.Background(), cfg)
		require.NoError(t, err)
	}
	straight.Resume, straight.Epochs = true, 3
	_, err = Run(context.Background(), straight)
	require.NoError(t, err)
	sameRecords(t, straight.OutDir, cfg.OutDir)
	assert.Len(t, readLines(t, filepath.Join(cfg.OutDir, "epochs.jsonl")), 3)
	assert.NotContains(t, strings.Join(readLines(t, filepath.Join(cfg.OutDir, "epochs.jsonl")), "\n"), `"train_loss":0,`)
}

func appendFile(t *testing.T, path, s string) {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString(s)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

// sameRecords requires two runs' metrics files to agree but for wall times.
func sameRecords(t *testing.T, a, b string) {
	t.Helper()
	for _, f := range []string{"steps.jsonl", "epochs.jsonl", "steps.csv", "epochs.csv"} {
		la, lb := readLines(t, filepath.Join(a, f)), readLines(t, filepath.Join(b, f))
		require.Len(t, lb, len(la), f)
		for i := range la {
			assert.Equal(t, dropTimes(la[i]), dropTimes(lb[i]), "%s line %d", f, i+1)
		}
	}
}

// dropTimes blanks the wall-time fields of a JSON or CSV record.
func dropTimes(line string) string {
	if strings.HasPrefix(line, "{") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			delete(m, "step_ms")
			delete(m, "wall_s")
			b, _ := json.Marshal(m)
			return string(b)
		}
	}
	f := strings.Split(line, ",")
	if len(f) == len(stepColumns) {
		f[5] = ""
	} else if len(f) == len(epochColumns) {
		f[6] = ""
	}
	return strings.Join(f, ",")
}
