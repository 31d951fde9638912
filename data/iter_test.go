package data

import (
	"bytes"
	"encoding/gob"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

// collect runs the iterator for the given number of batches (crossing epoch
// ends) and returns copies of the values, labels and indices.
type snap struct {
	x       []float64
	labels  []int
	indices []int
	shape   []int
}

func take(t *testing.T, it *Iterator, batches int) []snap {
	var out []snap
	for len(out) < batches {
		if !it.Next() {
			continue
		}
		b := it.Batch()
		s := snap{labels: append([]int(nil), b.Labels...), indices: append([]int(nil), b.Indices...), shape: append([]int(nil), b.X.Shape()...)}
		switch v := b.X.Data().(type) {
		case []float32:
			for _, f := range v {
				s.x = append(s.x, float64(f))
			}
		case []float64:
			s.x = append(s.x, v...)
		default:
			t.Fatalf("unexpected data type %T", v)
		}
		out = append(out, s)
	}
	return out
}

func TestStats(t *testing.T) {
	d := &Dataset{Name: "s", Classes: 2, C: 2, H: 1, W: 2, Labels: []int{0, 1},
		// image 0: ch0 {0, 255}, ch1 {51, 51}; image 1: ch0 {255, 255}, ch1 {51, 51}
		Pixels: []uint8{0, 255, 51, 51, 255, 255, 51, 51}}
	st := d.Stats()
	assert.InDelta(t, 0.75, st.Mean[0], 1e-12)
	assert.InDelta(t, math.Sqrt(0.1875), st.Std[0], 1e-12)
	assert.InDelta(t, 0.2, st.Mean[1], 1e-12)
	assert.Equal(t, 1.0, st.Std[1], "zero variance gives std 1")

	// Normalised training data has mean 0 and std 1 per channel.
	tr, te, err := Synthetic(SyntheticConfig{Train: 200, Test: 50, Seed: 3})
	require.NoError(t, err)
	st = tr.Stats()
	for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
		it, err := NewIterator(tr, IterConfig{BatchSize: 200, Norm: &st, Dtype: dt})
		require.NoError(t, err)
		x := take(t, it, 1)[0].x
		plane := 32 * 32
		for c := range 3 {
			var s, ss float64
			for i := 0; i < 200; i++ {
				for _, v := range x[(i*3+c)*plane : (i*3+c+1)*plane] {
					s += v
					ss += v * v
				}
			}
			n := float64(200 * plane)
			assert.InDelta(t, 0, s/n, 1e-5)
			assert.InDelta(t, 1, ss/n-(s/n)*(s/n), 1e-4)
		}
		// The test split uses the same statistics, so it is close but not exact.
		it, err = NewIterator(te, IterConfig{BatchSize: 50, Norm: &st, Dtype: dt})
		require.NoError(t, err)
		y := take(t, it, 1)[0]
		want := (float64(te.Pixels[5])/255 - st.Mean[0]) / st.Std[0]
		assert.InDelta(t, want, y.x[5], 1e-6)
	}
}

func TestIteratorBatching(t *testing.T) {
	d := smallDataset(10, 2, 3, 4, 3)
	for _, tc := range []struct {
		name     string
		bs       int
		dropLast bool
		sizes    []int
	}{
		{"exact", 5, false, []int{5, 5}},
		{"partial last", 4, false, []int{4, 4, 2}},
		{"drop last", 4, true, []int{4, 4}},
		{"one batch", 10, true, []int{10}},
		{"bigger than data", 16, false, []int{10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			it, err := NewIterator(d, IterConfig{BatchSize: tc.bs, DropLast: tc.dropLast, Dtype: tensor.Float64})
			require.NoError(t, err)
			assert.Equal(t, len(tc.sizes), it.BatchesPerEpoch())
			for epoch := 0; epoch < 2; epoch++ {
				var sizes, idx []int
				for it.Next() {
					b := it.Batch()
					sizes = append(sizes, b.Size())
					assert.Equal(t, []int{b.Size(), 2, 3, 4}, []int(b.X.Shape()))
					assert.Equal(t, []int{b.Size(), 24}, []int(b.Flat.Shape()))
					x := b.X.Data().([]float64)
					assert.Len(t, x, b.Size()*24)
					assert.Equal(t, &x[0], &b.Flat.Data().([]float64)[0], "X and Flat share memory")
					for k, i := range b.Indices {
						assert.Equal(t, d.Labels[i], b.Labels[k])
						assert.InDelta(t, float64(d.Image(i)[7])/255, x[k*24+7], 1e-15)
					}
					idx = append(idx, b.Indices...)
				}
				assert.Equal(t, tc.sizes, sizes)
				assert.Equal(t, epoch+1, it.Epoch())
				if !tc.dropLast {
					assert.Equal(t, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, idx)
				}
			}
		})
	}
}

func TestIteratorConfigErrors(t *testing.T) {
	d := smallDataset(10, 2, 3, 4, 3)
	for _, tc := range []struct {
		name string
		ds   *Dataset
		cfg  IterConfig
		msg  string
	}{
		{"zero batch", d, IterConfig{}, "batch size 0"},
		{"drop last too big", d, IterConfig{BatchSize: 11, DropLast: true}, "no batches"},
		{"empty", smallDataset(0, 1, 1, 1, 1), IterConfig{BatchSize: 1}, "empty"},
		{"bad dtype", d, IterConfig{BatchSize: 1, Dtype: tensor.Int}, "dtype"},
		{"stats channels", d, IterConfig{BatchSize: 1, Norm: &Stats{Mean: []float64{0}, Std: []float64{1}}}, "channels"},
		{"zero std", d, IterConfig{BatchSize: 1, Norm: &Stats{Mean: []float64{0, 0}, Std: []float64{1, 0}}}, "positive"},
		{"negative pad", d, IterConfig{BatchSize: 1, Augment: Augment{Pad: -1}}, "padding"},
		{"invalid dataset", &Dataset{Name: "bad", Classes: 2, C: 1, H: 1, W: 1, Pixels: []uint8{0}, Labels: []int{2}}, IterConfig{BatchSize: 1}, "out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewIterator(tc.ds, tc.cfg)
			assert.ErrorContains(t, err, tc.msg)
		})
	}
}

func TestShuffleDeterminism(t *testing.T) {
	d := smallDataset(50, 1, 2, 2, 5)
	run := func(cfg IterConfig) [][]int {
		it, err := NewIterator(d, cfg)
		require.NoError(t, err)
		var perms [][]int
		for range 3 {
			var p []int
			for it.Next() {
				p = append(p, it.Batch().Indices...)
			}
			perms = append(perms, p)
		}
		return perms
	}
	a := run(IterConfig{BatchSize: 8, Shuffle: true, Seed: 1})
	assert.Equal(t, a, run(IterConfig{BatchSize: 8, Shuffle: true, Seed: 1}))
	assert.Equal(t, a, run(IterConfig{BatchSize: 8, Shuffle: true, Seed: 1, Augment: Augment{Pad: 2, Flip: true}}),
		"augmentation must not change the order")
	assert.NotEqual(t, a, run(IterConfig{BatchSize: 8, Shuffle: true, Seed: 2}))
	assert.NotEqual(t, a[0], a[1], "each epoch is reshuffled")
	for _, p := range a {
		assert.ElementsMatch(t, identity(50), p)
	}
	// An injected source is used and advanced.
	src := rand.NewPCG(5, 6)
	b := run(IterConfig{BatchSize: 8, Shuffle: true, ShuffleRNG: src})
	assert.Equal(t, b, run(IterConfig{BatchSize: 8, Shuffle: true, ShuffleRNG: rand.NewPCG(5, 6)}))
	assert.NotEqual(t, *rand.NewPCG(5, 6), *src)
}

func identity(n int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	return p
}

func TestAugmentation(t *testing.T) {
	d := smallDataset(6, 2, 5, 4, 2)
	cfg := IterConfig{BatchSize: 6, Dtype: tensor.Float64, Seed: 9, Augment: Augment{Pad: 2, Flip: true}}
	it1, err := NewIterator(d, cfg)
	require.NoError(t, err)
	it2, err := NewIterator(d, cfg)
	require.NoError(t, err)
	a, b := take(t, it1, 4), take(t, it2, 4)
	assert.Equal(t, a, b, "same seed, same augmentation")
	assert.NotEqual(t, a[0].x, a[1].x, "augmentation is redrawn each epoch")

	// Every augmented image is a flipped/shifted copy of its source, padded
	// with the value of raw 0.
	for _, s := range a {
		for k, i := range s.indices {
			img := d.Image(i)
			got := s.x[k*40 : (k+1)*40]
			found := false
			for dy := -2; dy <= 2 && !found; dy++ {
				for dx := -2; dx <= 2 && !found; dx++ {
					for _, flip := range []bool{false, true} {
						if equalShifted(got, img, 2, 5, 4, dx, dy, flip) {
							found = true
							break
						}
					}
				}
			}
			assert.True(t, found, "image %d is not a crop/flip of its source", i)
		}
	}

	// Flip only: pixel (y, x) = source (y, w-1-x) or unchanged.
	it, err := NewIterator(d, IterConfig{BatchSize: 6, Dtype: tensor.Float64, Augment: Augment{Flip: true}})
	require.NoError(t, err)
	flips := 0
	for _, s := range take(t, it, 20) {
		for k, i := range s.indices {
			if equalShifted(s.x[k*40:(k+1)*40], d.Image(i), 2, 5, 4, 0, 0, true) {
				flips++
			} else {
				assert.True(t, equalShifted(s.x[k*40:(k+1)*40], d.Image(i), 2, 5, 4, 0, 0, false))
			}
		}
	}
	assert.InDelta(t, 60, flips, 20, "about half the images are flipped")
}

// equalShifted reports whether got is src cropped at offset (dx, dy) from the
// centre, optionally mirrored, on the x/255 scale with zero padding.
func equalShifted(got []float64, src []uint8, c, h, w, dx, dy int, flip bool) bool {
	for ch := range c {
		for y := range h {
			for x := range w {
				xx := x
				if flip {
					xx = w - 1 - x
				}
				sy, sx := y+dy, xx+dx
				want := 0.0
				if sy >= 0 && sy < h && sx >= 0 && sx < w {
					want = float64(src[ch*h*w+sy*w+sx]) / 255
				}
				if got[ch*h*w+y*w+x] != want {
					return false
				}
			}
		}
	}
	return true
}

func TestResume(t *testing.T) {
	tr, _, err := Synthetic(SyntheticConfig{Train: 70, Test: 1, Seed: 5})
	require.NoError(t, err)
	st := tr.Stats()
	for _, tc := range []struct {
		name string
		cfg  IterConfig
		k    int
	}{
		{"fresh", IterConfig{BatchSize: 16, Shuffle: true, Seed: 1}, 0},
		{"mid epoch", IterConfig{BatchSize: 16, Shuffle: true, Seed: 1}, 3},
		{"epoch end", IterConfig{BatchSize: 16, Shuffle: true, Seed: 1}, 5},
		{"second epoch", IterConfig{BatchSize: 16, Shuffle: true, Seed: 1, Norm: &st}, 7},
		{"augment f64 drop-last", IterConfig{BatchSize: 16, Shuffle: true, DropLast: true, Seed: 2, Dtype: tensor.Float64, Augment: Augment{Pad: 4, Flip: true}}, 6},
		{"no shuffle", IterConfig{BatchSize: 32, Augment: Augment{Flip: true}}, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const total = 14
			ref, err := NewIterator(tr, tc.cfg)
			require.NoError(t, err)
			want := take(t, ref, total)

			it, err := NewIterator(tr, tc.cfg)
			require.NoError(t, err)
			got := take(t, it, tc.k)
			s, err := it.State()
			require.NoError(t, err)
			// Gob round trip, as a checkpoint would do.
			var buf bytes.Buffer
			require.NoError(t, gob.NewEncoder(&buf).Encode(s))
			var s2 IterState
			require.NoError(t, gob.NewDecoder(&buf).Decode(&s2))

			// Advance the original further to show Restore does not depend on it.
			take(t, it, 2)
			fresh, err := NewIterator(tr, tc.cfg)
			require.NoError(t, err)
			take(t, fresh, 1) // a used iterator is fully overwritten by Restore
			require.NoError(t, fresh.Restore(s2))
			got = append(got, take(t, fresh, total-tc.k)...)
			assert.Equal(t, want, got)
			require.Equal(t, len(want), len(got))
		})
	}
}

func TestRestoreErrors(t *testing.T) {
	d := smallDataset(20, 1, 2, 2, 2)
	cfg := IterConfig{BatchSize: 4, Shuffle: true}
	it, err := NewIterator(d, cfg)
	require.NoError(t, err)
	it.Next()
	good, err := it.State()
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		mod  func(s *IterState)
		msg  string
	}{
		{"size", func(s *IterState) { s.N = 21 }, "dataset size"},
		{"batch", func(s *IterState) { s.BatchSize = 5 }, "configuration"},
		{"augment", func(s *IterState) { s.Aug.Flip = true }, "configuration"},
		{"position", func(s *IterState) { s.Pos = 99 }, "invalid position"},
		{"perm length", func(s *IterState) { s.Perm = s.Perm[:3] }, "permutation has"},
		{"perm dup", func(s *IterState) { s.Perm = append([]int(nil), s.Perm...); s.Perm[0] = s.Perm[1] }, "not a permutation"},
		{"not started", func(s *IterState) { s.Started = false }, "not yet started"},
		{"rng", func(s *IterState) { s.ShuffleRNG = []byte("junk") }, "shuffle generator"},
		{"aug rng", func(s *IterState) { s.AugmentRNG = nil }, "augmentation generator"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := good
			tc.mod(&s)
			before, err := it.State()
			require.NoError(t, err)
			assert.ErrorContains(t, it.Restore(s), tc.msg)
			after, err := it.State()
			require.NoError(t, err)
			assert.Equal(t, before, after, "failed Restore leaves the iterator unchanged")
		})
	}
}

func TestIteratorNoAllocs(t *testing.T) {
	tr, _, err := Synthetic(SyntheticConfig{Train: 100, Test: 1})
	require.NoError(t, err)
	st := tr.Stats()
	for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
		it, err := NewIterator(tr, IterConfig{BatchSize: 16, Shuffle: true, Norm: &st, Dtype: dt, Augment: Augment{Pad: 4, Flip: true}})
		require.NoError(t, err)
		take(t, it, 10) // creates the short-batch tensors too
		allocs := testing.AllocsPerRun(200, func() { it.Next() })
		assert.Zero(t, allocs, "dtype %v", dt)
	}
}

func BenchmarkIteratorCIFARBatch(b *testing.B) {
	tr, _, err := Synthetic(SyntheticConfig{Train: 1024, Test: 1})
	require.NoError(b, err)
	st := tr.Stats()
	it, err := NewIterator(tr, IterConfig{BatchSize: 128, Shuffle: true, DropLast: true, Norm: &st, Augment: Augment{Pad: 4, Flip: true}})
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		if !it.Next() {
			it.Next()
		}
	}
}
