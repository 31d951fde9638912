package data

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/curvopt/curvopt/internal/fileio"
	"github.com/curvopt/curvopt/internal/meminfo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A header that claims a gigabyte over a few bytes of data costs memory in
// proportion to the data, not to the claim.
func TestReadIDXAllocatesWithTheData(t *testing.T) {
	in := gzipBytes(t, idxBytes([]int{1 << 14, 1 << 15}, seq(10, 0))) // claims 512 MiB
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := ReadIDX(bytes.NewReader(in), "claim.gz")
	runtime.ReadMemStats(&after)
	require.ErrorContains(t, err, "claim.gz: offset 22: IDX data truncated")
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(8<<20), "allocated for the claim, not the data")
}

// The headers of both files are compared before any image is read: the
// image file's body here is not even valid gzip, yet the error is the
// label count.
func TestLoadIDXChecksHeadersFirst(t *testing.T) {
	dir := t.TempDir()
	z := gzipBytes(t, idxBytes([]int{1000, 28, 28}, make([]byte, 1000*784)))
	head := gzipBytes(t, idxBytes([]int{1000, 28, 28}, nil)) // same header, then garbage
	img := writeFile(t, dir, "img.gz", append(head[:len(head)-8], z[len(head):]...))
	lbl := writeFile(t, dir, "lbl", idxBytes([]int{999}, make([]byte, 999)))
	_, err := LoadIDX("x", img, lbl, 10)
	require.ErrorContains(t, err, lbl+": offset 4: label count 999 disagrees with image count 1000")
}

func TestLoadersCheckMemory(t *testing.T) {
	tiny := func() (int64, error) { return 1 << 20, nil }
	_, _, err := LoadSpec(Spec{Kind: KindSynthetic, Memory: tiny})
	var me *meminfo.Error
	require.ErrorAs(t, err, &me)
	assert.EqualError(t, err, "data: generating 6000 synthetic images needs 18.5 MB but 1.0 MB is available (MemAvailable): lower the split sizes")

	dir := writeMNISTDir(t, false)
	_, _, err = LoadSpec(Spec{Kind: KindMNIST, Dir: dir, Memory: func() (int64, error) { return 4096, nil }})
	require.ErrorAs(t, err, &me)
	assert.Contains(t, err.Error(), filepath.Join(dir, "train-images-idx3-ubyte")+": offset 4: header [12 28 28]: loading 12 images of 28x28 needs")
	_, _, err = LoadSpec(Spec{Kind: KindMNIST, Dir: dir, Memory: func() (int64, error) { return 0, errors.New("unknown") }})
	require.NoError(t, err, "an unknown amount of memory skips the check")

	cdir := t.TempDir()
	p := writeFile(t, cdir, "a.bin", cifarRecords(400, 1, func(i int) byte { return 1 }))
	_, err = loadCIFARFiles("c", CIFAR10Format, tiny, p)
	require.ErrorAs(t, err, &me)
	assert.Contains(t, err.Error(), "loading 400 CIFAR images needs 1.2 MB but 1.0 MB is available")
}

func TestLoadCIFARFilesRefusesNonFiles(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good.bin", cifarRecords(3, 1, func(i int) byte { return byte(i) }))
	empty := writeFile(t, dir, "empty.bin", nil)
	zero := filepath.Join(dir, "zero.bin")
	require.NoError(t, os.Symlink("/dev/zero", zero))
	for _, tc := range []struct{ path, msg string }{
		{empty, empty + ": offset 0: empty file"},
		{zero, zero + ": a character device (such as /dev/zero), not a regular file"},
		{dir, dir + ": a directory"},
	} {
		_, err := LoadCIFARFiles("c", CIFAR10Format, good, tc.path)
		require.ErrorContains(t, err, tc.msg)
		assert.Equal(t, tc.path != empty, errors.Is(err, fileio.ErrNotRegular), "%v wraps fileio.ErrNotRegular", err)
	}
	d, err := LoadCIFARFiles("c", CIFAR10Format, good, good)
	require.NoError(t, err)
	assert.Equal(t, []int{0, 1, 2, 0, 1, 2}, d.Labels)
	require.NoError(t, d.Validate())
	pix, lab, err := ReadCIFAR(bytes.NewReader(cifarRecords(3, 1, func(i int) byte { return byte(i) })), "r", CIFAR10Format)
	require.NoError(t, err)
	assert.Equal(t, d.Pixels[:len(pix)], pix)
	assert.Equal(t, []int{0, 1, 2}, lab)
}

func TestCheckSplits(t *testing.T) {
	tr := smallDataset(6, 1, 4, 3, 10)
	require.NoError(t, CheckSplits(tr, smallDataset(2, 1, 4, 3, 10)))
	assert.ErrorContains(t, CheckSplits(tr, smallDataset(2, 1, 3, 4, 10)), `the test split "small" has 1x3x4 images but the training split "small" has 1x4x3`)
	empty := smallDataset(0, 1, 4, 3, 10)
	empty.Name = "small/test"
	assert.ErrorContains(t, CheckSplits(tr, empty), `dataset "small/test" is empty`)
}

// A batch size beyond the dataset allocates for the dataset only and
// yields one short batch per epoch.
func TestIteratorBatchBeyondDataset(t *testing.T) {
	d := smallDataset(5, 1, 2, 2, 3)
	it, err := NewIterator(d, IterConfig{BatchSize: 1 << 40})
	require.NoError(t, err)
	require.True(t, it.Next())
	assert.Equal(t, 5, it.Batch().Size())
	assert.Equal(t, []int{5, 1, 2, 2}, []int(it.Batch().X.Shape()))
	assert.False(t, it.Next())
	assert.Equal(t, 1, it.BatchesPerEpoch())
}

// A text file is measured against the available memory before it is read.
func TestLoadTextChecksMemory(t *testing.T) {
	p := writeFile(t, t.TempDir(), "t.txt", bytes.Repeat([]byte("hello, world\n"), 20000)) // 260 kB
	// 2 bytes per character, and 9/8 for the windows of 8: 812.5 kB.
	_, _, err := LoadSpec(Spec{Kind: KindText, File: p, Context: 8, Memory: func() (int64, error) { return 800e3, nil }})
	var me *meminfo.Error
	require.ErrorAs(t, err, &me)
	assert.EqualError(t, err, "data: loading the text "+p+" (260.0 kB) needs 812.5 kB but 800.0 kB is available (MemAvailable): use a smaller text file")
	_, _, err = LoadSpec(Spec{Kind: KindText, File: p, Context: 8, Memory: func() (int64, error) { return 813e3, nil }})
	require.NoError(t, err)
}
