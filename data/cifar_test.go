package data

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseCIFARRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name   string
		f      CIFARFormat
		label  func(int) byte
		labels []int
	}{
		{"cifar10", CIFAR10Format, func(i int) byte { return byte(9 - i) }, []int{9, 8, 7}},
		{"cifar100 fine", CIFAR100FineFormat, func(i int) byte { return byte(19 - i) }, []int{19, 18, 17}},
		{"cifar100 coarse", CIFAR100CoarseFormat, func(i int) byte { return byte(19 - i) }, []int{19, 18, 17}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := cifarRecords(3, tc.f.LabelBytes, tc.label)
			pix, lab, err := ParseCIFAR(b, "f", tc.f)
			require.NoError(t, err)
			assert.Equal(t, tc.labels, lab)
			for i := 0; i < 3; i++ {
				assert.Equal(t, seq(cifarImage, byte(i)), pix[i*cifarImage:(i+1)*cifarImage])
			}
		})
	}
	t.Run("fine and coarse differ", func(t *testing.T) {
		b := cifarRecords(1, 2, func(int) byte { return 0 })
		b[0], b[1] = 3, 77
		_, fine, err := ParseCIFAR(b, "f", CIFAR100FineFormat)
		require.NoError(t, err)
		_, coarse, err := ParseCIFAR(b, "f", CIFAR100CoarseFormat)
		require.NoError(t, err)
		assert.Equal(t, []int{77}, fine)
		assert.Equal(t, []int{3}, coarse)
	})
}

func TestParseCIFARErrors(t *testing.T) {
	rec10 := 1 + cifarImage
	rec100 := 2 + cifarImage
	for _, tc := range []struct {
		name   string
		in     []byte
		f      CIFARFormat
		offset int64
		msg    string
	}{
		{"truncated first record", cifarRecords(1, 1, func(int) byte { return 0 })[:100], CIFAR10Format, 0, "truncated record 0"},
		{"truncated later record", cifarRecords(3, 1, func(int) byte { return 0 })[:2*rec10+5], CIFAR10Format, int64(2 * rec10), "truncated record 2"},
		{"cifar10 label", cifarRecords(3, 1, func(i int) byte { return byte(i * 5) }), CIFAR10Format, int64(2 * rec10), "label 10 of record 2"},
		{"cifar100 fine label", cifarRecords(2, 2, func(i int) byte { return byte(i * 100) }), CIFAR100FineFormat, int64(rec100 + 1), "label 100 of record 1"},
		{"cifar100 coarse label", cifarRecords(2, 2, func(i int) byte { return byte(i * 20) }), CIFAR100CoarseFormat, int64(rec100), "label 20 of record 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ParseCIFAR(tc.in, "dir/x.bin", tc.f)
			var fe *FormatError
			require.True(t, errors.As(err, &fe), "%v", err)
			assert.Equal(t, "dir/x.bin", fe.File)
			assert.Equal(t, tc.offset, fe.Offset)
			assert.Contains(t, err.Error(), tc.msg)
		})
	}
	_, _, err := ParseCIFAR(nil, "x", CIFARFormat{LabelBytes: 1, Label: 1, Classes: 10})
	assert.ErrorContains(t, err, "invalid CIFAR format")
}

// writeCIFAR10Dir writes data_batch_1..5.bin (i+1 records each) and
// test_batch.bin (2 records) into dir.
func writeCIFAR10Dir(t *testing.T, dir string) {
	require.NoError(t, os.MkdirAll(dir, 0o755))
	for i := 1; i <= 5; i++ {
		writeFile(t, dir, "data_batch_"+string(rune('0'+i))+".bin", cifarRecords(i, 1, func(j int) byte { return byte((i + j) % 10) }))
	}
	writeFile(t, dir, "test_batch.bin", cifarRecords(2, 1, func(j int) byte { return byte(j) }))
}

func TestLoadCIFAR10(t *testing.T) {
	for _, sub := range []string{"", "cifar-10-batches-bin"} {
		t.Run("sub="+sub, func(t *testing.T) {
			root := t.TempDir()
			writeCIFAR10Dir(t, filepath.Join(root, sub))
			train, test, err := Load("cifar10 " + root)
			require.NoError(t, err)
			assert.Equal(t, 15, train.Len())
			assert.Equal(t, 2, test.Len())
			assert.Equal(t, []int{0, 1}, test.Labels)
			assert.Equal(t, []int{1, 2, 3, 3}, train.Labels[:4]) // batch 1: 1+0; batch 2: 2+0, 2+1; batch 3: 3+0
			assert.Equal(t, [4]int{3, 32, 32, 10}, [4]int{train.C, train.H, train.W, train.Classes})
			assert.Equal(t, seq(cifarImage, 1), train.Image(2))
		})
	}
}

func TestLoadCIFAR100(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "cifar-100-binary")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	rec := func(n int) []byte {
		b := cifarRecords(n, 2, func(int) byte { return 0 })
		for i := 0; i < n; i++ {
			b[i*(2+cifarImage)] = byte(i % 20)
			b[i*(2+cifarImage)+1] = byte(99 - i)
		}
		return b
	}
	writeFile(t, dir, "train.bin", rec(4))
	writeFile(t, dir, "test.bin", rec(3))
	train, test, err := Load("cifar100 " + root)
	require.NoError(t, err)
	assert.Equal(t, 100, train.Classes)
	assert.Equal(t, []int{99, 98, 97, 96}, train.Labels)
	assert.Equal(t, 3, test.Len())
	for _, spec := range []string{"cifar100 " + root + " coarse", "cifar100-coarse " + dir} {
		train, _, err = Load(spec)
		require.NoError(t, err)
		assert.Equal(t, 20, train.Classes)
		assert.Equal(t, []int{0, 1, 2, 3}, train.Labels)
	}
}

func TestLoadCIFARErrors(t *testing.T) {
	t.Run("missing dir", func(t *testing.T) {
		_, _, err := LoadCIFAR10(filepath.Join(t.TempDir(), "absent"))
		require.ErrorIs(t, err, os.ErrNotExist)
		assert.Contains(t, err.Error(), "absent")
	})
	t.Run("dir is a file", func(t *testing.T) {
		p := writeFile(t, t.TempDir(), "f", []byte{1})
		_, _, err := LoadCIFAR100(p, false)
		assert.ErrorContains(t, err, "not a directory")
	})
	t.Run("no test file", func(t *testing.T) {
		_, _, err := LoadCIFAR100(t.TempDir(), false)
		require.ErrorIs(t, err, os.ErrNotExist)
		assert.Contains(t, err.Error(), "test.bin")
	})
	t.Run("missing batch", func(t *testing.T) {
		dir := t.TempDir()
		writeCIFAR10Dir(t, dir)
		require.NoError(t, os.Remove(filepath.Join(dir, "data_batch_4.bin")))
		_, _, err := LoadCIFAR10(dir)
		require.ErrorIs(t, err, os.ErrNotExist)
		assert.Contains(t, err.Error(), "data_batch_4.bin")
	})
	t.Run("truncated batch", func(t *testing.T) {
		dir := t.TempDir()
		writeCIFAR10Dir(t, dir)
		p := filepath.Join(dir, "data_batch_3.bin")
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(p, b[:len(b)-1], 0o644))
		_, _, err = LoadCIFAR10(dir)
		require.ErrorIs(t, err, io.ErrUnexpectedEOF)
		assert.Contains(t, err.Error(), p+": offset 6146: truncated record 2")
	})
}
