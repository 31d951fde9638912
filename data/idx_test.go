package data

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReadIDXRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		dims []int
		gz   bool
	}{
		{"images raw", []int{3, 4, 5}, false},
		{"images gzip", []int{3, 4, 5}, true},
		{"labels raw", []int{7}, false},
		{"labels gzip", []int{7}, true},
		{"empty", []int{0, 28, 28}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := 1
			for _, d := range tc.dims {
				n *= d
			}
			payload := seq(n, 3)
			b := idxBytes(tc.dims, payload)
			if tc.gz {
				b = gzipBytes(t, b)
			}
			x, err := ReadIDX(bytes.NewReader(b), "f")
			require.NoError(t, err)
			assert.Equal(t, tc.dims, x.Dims)
			assert.Equal(t, payload, x.Data)
		})
	}
}

func TestReadIDXErrors(t *testing.T) {
	good := idxBytes([]int{2, 3}, seq(6, 0))
	for _, tc := range []struct {
		name   string
		in     []byte
		gz     bool
		offset int64
		msg    string
	}{
		{"empty file", nil, false, 0, "too short"},
		{"one byte", []byte{0}, false, 1, "too short"},
		{"truncated magic", []byte{0, 0, 8}, false, 3, "truncated IDX magic"},
		{"bad magic", []byte{1, 2, 8, 1, 0, 0, 0, 0}, false, 0, "bad IDX magic"},
		{"unsupported type", []byte{0, 0, 0x0d, 1, 0, 0, 0, 0}, false, 2, "element type"},
		{"zero dims", []byte{0, 0, 8, 0}, false, 3, "dimension count"},
		{"truncated header", good[:9], false, 9, "truncated IDX header"},
		{"truncated data", good[:len(good)-2], false, 12 + 4, "truncated"},
		{"trailing data", append(append([]byte{}, good...), 9), false, 12 + 6, "trailing"},
		{"huge dims", idxBytes([]int{1 << 16, 1 << 16}, nil), false, 8, "claim more"},
		{"gzip truncated data", good[:len(good)-2], true, 16, "decompressed"},
		{"gzip trailing data", append(append([]byte{}, good...), 1, 2), true, 18, "trailing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			if tc.gz {
				in = gzipBytes(t, in)
			}
			_, err := ReadIDX(bytes.NewReader(in), "some/file.idx")
			require.Error(t, err)
			var fe *FormatError
			require.True(t, errors.As(err, &fe), "%v", err)
			assert.Equal(t, "some/file.idx", fe.File)
			assert.Equal(t, tc.offset, fe.Offset, "%v", err)
			assert.Contains(t, err.Error(), tc.msg)
			assert.Contains(t, err.Error(), "some/file.idx")
		})
	}
	t.Run("corrupt gzip", func(t *testing.T) {
		z := gzipBytes(t, good)
		z[len(z)-6] ^= 0xff // CRC-32 in the trailer
		_, err := ReadIDX(bytes.NewReader(z), "z.gz")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "z.gz")
		assert.Contains(t, err.Error(), "gzip")
	})
	t.Run("bad gzip header", func(t *testing.T) {
		_, err := ReadIDX(bytes.NewReader([]byte{0x1f, 0x8b, 0, 0}), "h.gz")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "h.gz")
	})
}

func TestIDXDatasetErrors(t *testing.T) {
	img := &IDX{Dims: []int{3, 2, 2}, Data: seq(12, 0)}
	lbl := &IDX{Dims: []int{3}, Data: []byte{0, 9, 4}}
	d, err := IDXDataset("x", img, lbl, 10, "img", "lbl")
	require.NoError(t, err)
	require.NoError(t, d.Validate())
	assert.Equal(t, []int{0, 9, 4}, d.Labels)
	assert.Equal(t, [3]int{1, 2, 2}, [3]int{d.C, d.H, d.W})

	for _, tc := range []struct {
		name     string
		img, lbl *IDX
		file     string
		offset   int64
		msg      string
	}{
		{"label out of range", img, &IDX{Dims: []int{3}, Data: []byte{0, 10, 4}}, "lbl", 9, "out of range"},
		{"count mismatch", img, &IDX{Dims: []int{2}, Data: []byte{0, 1}}, "lbl", 4, "disagrees"},
		{"images not 3-d", &IDX{Dims: []int{12}, Data: seq(12, 0)}, lbl, "img", 3, "want 3"},
		{"labels not 1-d", img, &IDX{Dims: []int{3, 1}, Data: []byte{0, 1, 2}}, "lbl", 3, "want 1"},
		{"empty images", &IDX{Dims: []int{3, 0, 2}}, lbl, "img", 8, "empty image"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := IDXDataset("x", tc.img, tc.lbl, 10, "img", "lbl")
			var fe *FormatError
			require.True(t, errors.As(err, &fe), "%v", err)
			assert.Equal(t, tc.file, fe.File)
			assert.Equal(t, tc.offset, fe.Offset)
			assert.Contains(t, err.Error(), tc.msg)
		})
	}
}

// writeMNISTDir writes a small MNIST-layout directory (train: 12 images,
// test: 5 images, 28×28 pixels), gzip'd or raw.
func writeMNISTDir(t *testing.T, gz bool) string {
	dir := t.TempDir()
	for _, s := range []struct {
		prefix string
		n      int
	}{{"train", 12}, {"t10k", 5}} {
		img := idxBytes([]int{s.n, 28, 28}, seq(s.n*784, byte(s.n)))
		lab := make([]byte, s.n)
		for i := range lab {
			lab[i] = byte(i % 10)
		}
		lbl := idxBytes([]int{s.n}, lab)
		suffix := ""
		if gz {
			img, lbl, suffix = gzipBytes(t, img), gzipBytes(t, lbl), ".gz"
		}
		writeFile(t, dir, s.prefix+"-images-idx3-ubyte"+suffix, img)
		writeFile(t, dir, s.prefix+"-labels-idx1-ubyte"+suffix, lbl)
	}
	return dir
}

func TestLoadMNIST(t *testing.T) {
	for _, gz := range []bool{false, true} {
		dir := writeMNISTDir(t, gz)
		train, test, err := LoadMNIST("mnist", dir)
		require.NoError(t, err)
		assert.Equal(t, 12, train.Len())
		assert.Equal(t, 5, test.Len())
		assert.Equal(t, [4]int{1, 28, 28, 10}, [4]int{train.C, train.H, train.W, train.Classes})
		assert.Equal(t, seq(12*784, 12), train.Pixels)
		assert.Equal(t, "mnist/test", test.Name)

		tr2, _, err := Load("mnist " + dir)
		require.NoError(t, err)
		assert.Equal(t, train, tr2)
	}
}

func TestLoadMNISTErrors(t *testing.T) {
	t.Run("missing dir", func(t *testing.T) {
		_, _, err := LoadMNIST("mnist", filepath.Join(t.TempDir(), "nope"))
		require.ErrorIs(t, err, os.ErrNotExist)
		assert.Contains(t, err.Error(), "nope")
	})
	t.Run("missing file", func(t *testing.T) {
		dir := writeMNISTDir(t, false)
		require.NoError(t, os.Remove(filepath.Join(dir, "t10k-labels-idx1-ubyte")))
		_, _, err := LoadMNIST("mnist", dir)
		require.ErrorIs(t, err, os.ErrNotExist)
		assert.Contains(t, err.Error(), "t10k-labels-idx1-ubyte")
	})
	t.Run("truncated file", func(t *testing.T) {
		dir := writeMNISTDir(t, false)
		p := filepath.Join(dir, "train-images-idx3-ubyte")
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(p, b[:len(b)-5], 0o644))
		_, _, err = LoadMNIST("mnist", dir)
		require.Error(t, err)
		assert.Contains(t, err.Error(), p+": offset 4: header [12 28 28] claims 9408 bytes of data after the 16-byte header (9424 in all), but the file has 9419 bytes")
	})
	t.Run("label out of range", func(t *testing.T) {
		dir := writeMNISTDir(t, false)
		lab := make([]byte, 5)
		lab[3] = 200
		p := writeFile(t, dir, "t10k-labels-idx1-ubyte", idxBytes([]int{5}, lab))
		_, _, err := LoadMNIST("mnist", dir)
		require.Error(t, err)
		assert.Contains(t, err.Error(), p+": offset 11: label 200")
	})
}

// requireDataEnv, set to 1, makes the tests on real datasets fail instead
// of skipping when a dataset is missing (.ci/run sets it; CI=true does the
// same, as CI services set it).
const requireDataEnv = "CURVOPT_REQUIRE_DATA"

// dataRequired says whether a missing dataset fails the test, and why.
func dataRequired(getenv func(string) string) (bool, string) {
	if getenv(requireDataEnv) == "1" {
		return true, requireDataEnv + "=1"
	}
	if getenv("CI") == "true" {
		return true, "CI=true"
	}
	return false, ""
}

func TestDataRequired(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	for _, tc := range []struct {
		env  func(string) string
		want bool
	}{
		{env(), false},
		{env("CI", "true"), true},
		{env("CI", "false"), false},
		{env(requireDataEnv, "1"), true},
		{env(requireDataEnv, "0"), false},
	} {
		got, why := dataRequired(tc.env)
		assert.Equal(t, tc.want, got)
		assert.Equal(t, tc.want, why != "")
	}
}

// TestFashionMNISTReal loads the real Fashion-MNIST that Debian's
// dataset-fashion-mnist installs. Where it is missing the test fails on CI
// (see dataRequired), which installs it, and elsewhere skips saying loudly
// that the real-data loader went untested.
func TestFashionMNISTReal(t *testing.T) {
	if _, err := os.Stat(FashionMNISTDir); err != nil {
		if must, why := dataRequired(os.Getenv); must {
			t.Fatalf("Fashion-MNIST is missing from %s but %s requires it (apt-get install dataset-fashion-mnist): %v", FashionMNISTDir, why, err)
		}
		t.Skipf("NOT TESTED: the loader on real Fashion-MNIST: %v; install it with apt-get install dataset-fashion-mnist, "+
			"or set %s=1 (or CI=true) to make its absence a failure", err, requireDataEnv)
	}
	train, test, err := Load("fashion-mnist")
	require.NoError(t, err)
	assert.Equal(t, 60000, train.Len())
	assert.Equal(t, 10000, test.Len())
	assert.Equal(t, [4]int{1, 28, 28, 10}, [4]int{train.C, train.H, train.W, train.Classes})
	for _, c := range train.ClassCounts() {
		assert.Equal(t, 6000, c)
	}
	for _, c := range test.ClassCounts() {
		assert.Equal(t, 1000, c)
	}
	st := train.Stats()
	assert.InDelta(t, 0.2860, st.Mean[0], 1e-3)
	assert.InDelta(t, 0.3530, st.Std[0], 1e-3)
}
