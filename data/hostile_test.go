package data

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/curvopt/curvopt/internal/fileio"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The hostile inputs of issue 19, one test each: FIFOs, devices, sparse
// files, one-character texts and gzip bombs are refused with an error naming
// the file, in memory bounded independently of what the file holds or
// claims (each test measures the bytes allocated).

// allocated returns the bytes f allocates on the heap (TotalAlloc).
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// plenty reports 1 TB of memory, so that the memory check passes and the
// test reaches the reader.
func plenty() (int64, error) { return 1e12, nil }

func mkfifo(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, syscall.Mkfifo(p, 0o600))
	return p
}

// sparse creates a file of size bytes that holds nothing on disk (reads
// give zeros): a file whose length costs nothing to fake.
func sparse(t *testing.T, dir, name string, size int64) string {
	t.Helper()
	p := filepath.Join(dir, name)
	f, err := os.Create(p)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(size))
	require.NoError(t, f.Close())
	return p
}

// fifoGuard bounds a hang: a loader that blocks on the FIFO (waiting for a
// writer) would hang the test binary until its timeout. If load has not
// returned after a minute, a writer is opened and closed to release it and
// the test fails. A loader that works returns at once; no time is asserted.
func fifoGuard(t *testing.T, fifo string, load func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- load() }()
	select {
	case err := <-done:
		return err
	case <-time.After(time.Minute):
		for {
			if w, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
				w.Close()
			}
			select {
			case <-done:
				t.Fatalf("the loader blocked on the FIFO %s until a writer opened it", fifo)
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
}

func TestLoadTextRefusesFIFO(t *testing.T) {
	p := mkfifo(t, t.TempDir(), "corpus.txt")
	err := fifoGuard(t, p, func() error {
		_, _, err := LoadSpec(Spec{Kind: KindText, File: p})
		return err
	})
	require.ErrorIs(t, err, fileio.ErrNotRegular)
	assert.EqualError(t, err, "data: text: "+p+": not a regular file (a FIFO)")
}

func TestLoadTextRefusesDevices(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "zero.txt")
	require.NoError(t, os.Symlink("/dev/zero", link))
	for _, p := range []string{"/dev/zero", link, dir} {
		var err error
		n := allocated(func() { _, _, err = LoadSpec(Spec{Kind: KindText, File: p}) })
		require.ErrorIs(t, err, fileio.ErrNotRegular, p)
		assert.Contains(t, err.Error(), p+": not a regular file (a ")
		assert.Less(t, n, uint64(1<<20), "%s: read before it was refused", p)
	}
}

// A file over MaxTextBytes is refused by its real length before a byte of
// it is read.
func TestLoadTextRefusesOverLimit(t *testing.T) {
	p := sparse(t, t.TempDir(), "big.txt", 2<<30)
	var err error
	n := allocated(func() { _, err = loadText(p, TextValFraction, 64, plenty) })
	require.ErrorIs(t, err, fileio.ErrTooLarge)
	assert.EqualError(t, err, "data: text: "+p+": file too large: 2.1 GB, more than the limit of 1.1 GB")
	assert.Less(t, n, uint64(1<<20))
}

// A file under the limit that is not text is refused at its first bad
// byte, having read it through a fixed buffer: memory does not grow with
// the file.
func TestLoadTextValidatesWhileStreaming(t *testing.T) {
	dir := t.TempDir()
	zeros := sparse(t, dir, "zeros.txt", 256<<20)
	var err error
	n := allocated(func() { _, err = loadText(zeros, TextValFraction, 64, plenty) })
	assert.EqualError(t, err, "data: text "+zeros+" looks binary: NUL byte at offset 0")
	assert.Less(t, n, uint64(1<<20), "read the whole file before validating it")

	// Bad bytes after the first chunk are reported at their offset in the
	// file, not in the buffer.
	text := bytes.Repeat([]byte("hello, wörld\n"), 3*textChunk/14)
	late := append(append([]byte{}, text...), 0xff)
	p := writeFile(t, dir, "late.txt", append(late, text...))
	_, err = LoadText(p, TextValFraction, 64)
	at := strconv.Itoa(len(text)) // 196602, in the fourth chunk
	assert.EqualError(t, err, "data: text "+p+" is not UTF-8: invalid byte 0xff at offset "+at)
	p = writeFile(t, dir, "nul.txt", append(append(append([]byte{}, text...), 0), text...))
	_, err = LoadText(p, TextValFraction, 64)
	assert.EqualError(t, err, "data: text "+p+" looks binary: NUL byte at offset "+at)
}

// A text of one character (nothing to predict) is refused after one pass,
// before its token ids are allocated.
func TestLoadTextRefusesOneCharacter(t *testing.T) {
	p := writeFile(t, t.TempDir(), "a.txt", bytes.Repeat([]byte{'a'}, 32<<20))
	var err error
	n := allocated(func() { _, _, err = LoadSpec(Spec{Kind: KindText, File: p, Memory: plenty}) })
	assert.EqualError(t, err, "data: text "+p+` has a vocabulary of 1 character ('a', 33554432 times): a model has nothing to predict, want at least 2 distinct characters`)
	assert.Less(t, n, uint64(1<<20), "allocated in proportion to the text before refusing it")
	_, err = ParseText("é", []byte(strings.Repeat("é", 100)), 0.1, 8)
	assert.ErrorContains(t, err, "vocabulary of 1 character ('é', 100 times)")
}

// A valid text costs what textMemory says (1 byte per character for the
// ids, about as much again for the windows), not the 7 bytes per byte of
// reading it whole and decoding it to runes.
func TestLoadTextMemoryWithinEstimate(t *testing.T) {
	text := bytes.Repeat([]byte("The quick brown fox jumps over the lazy dog.\n"), 4<<20/45)
	p := writeFile(t, t.TempDir(), "fox.txt", text)
	var tr, val *Dataset
	var err error
	n := allocated(func() { tr, val, err = LoadSpec(Spec{Kind: KindText, File: p, Memory: plenty}) })
	require.NoError(t, err)
	assert.Equal(t, 30, tr.Classes) // 26 letters, 'T', ' ', '.' and '\n'

	assert.Equal(t, (len(text)-len(text)/10-1)/64, tr.Len())
	assert.Equal(t, (len(text)/10-1)/64, val.Len())
	assert.LessOrEqual(t, n, uint64(textMemory(int64(len(text)), 64))+256<<10)
}

// Characters cut by the boundary between two chunks are decoded whole.
func TestParseTextAcrossChunks(t *testing.T) {
	for shift := range 4 {
		s := strings.Repeat("a", textChunk-1-shift) + strings.Repeat("é€😀b", 20)
		tx, err := ParseText("x", []byte(s), 0.1, 8)
		require.NoError(t, err, "shift %d", shift)
		assert.Equal(t, s, tx.Decode(tx.Train)+tx.Decode(tx.Val), "shift %d", shift)
	}
}

// flipping serves one text on its first pass and another on its second, as
// a file rewritten while it is read would.
type flipping struct {
	first, second []byte
	passes        int
}

func (f *flipping) ReadAt(p []byte, off int64) (int, error) {
	if off == 0 {
		f.passes++
	}
	b := f.first
	if f.passes > 1 {
		b = f.second
	}
	if off >= int64(len(b)) {
		return 0, io.EOF
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func TestParseTextDetectsChange(t *testing.T) {
	a := []byte(strings.Repeat("abcd", 100))
	for _, tc := range []struct {
		second []byte
		want   string
	}{
		{[]byte(strings.Repeat("abce", 100)), "offset 3: character 'e' is not in the vocabulary of the first pass"},
		{[]byte(strings.Repeat("abcd", 99)), "the second pass read 396 bytes and 396 characters, the first 400 and 400"},
		{[]byte(strings.Repeat("abcd", 99) + "\xffbcd"), "not UTF-8: invalid byte 0xff at offset 396"},
	} {
		_, err := parseText("t", &flipping{first: a, second: tc.second}, int64(len(a)), 0.1, 8, textChunk)
		assert.ErrorContains(t, err, tc.want)
		if !strings.Contains(tc.want, "UTF-8") {
			assert.ErrorIs(t, err, errChanged)
		}
	}
	_, err := parseText("t", &flipping{first: append(a, 'a'), second: a}, int64(len(a)), 0.1, 8, textChunk)
	assert.ErrorIs(t, err, errChanged, "grown between Stat and the first pass")
	assert.ErrorContains(t, err, "text t: 401 bytes read, 400 expected")
}

func TestLoadMNISTRefusesFIFOAndDevices(t *testing.T) {
	dir := writeMNISTDir(t, false)
	img := filepath.Join(dir, "train-images-idx3-ubyte")
	require.NoError(t, os.Remove(img))
	mkfifo(t, dir, "train-images-idx3-ubyte")
	err := fifoGuard(t, img, func() error {
		_, _, err := LoadMNIST("mnist", dir)
		return err
	})
	assert.EqualError(t, err, "data: "+img+": a named pipe, not a regular file of records")
	assert.ErrorIs(t, err, fileio.ErrNotRegular)
	var fe *FormatError
	assert.ErrorAs(t, err, &fe)

	dir = writeMNISTDir(t, false)
	lbl := filepath.Join(dir, "t10k-labels-idx1-ubyte")
	require.NoError(t, os.Remove(lbl))
	require.NoError(t, os.Symlink("/dev/zero", lbl+".gz"))
	var n uint64
	n = allocated(func() { _, _, err = LoadMNIST("mnist", dir) })
	assert.EqualError(t, err, "data: "+lbl+".gz: a character device (such as /dev/zero), not a regular file of records")
	assert.ErrorIs(t, err, fileio.ErrNotRegular)
	assert.Less(t, n, uint64(1<<20))
	_, err = ReadIDXFile("/dev/zero")
	assert.ErrorContains(t, err, "a character device")
}

// A sparse IDX file over the limit is refused by its real length, before
// its header is read.
func TestIDXRefusesOverLimit(t *testing.T) {
	dir := t.TempDir()
	p := sparse(t, dir, "big", 2<<30)
	var err error
	n := allocated(func() { _, err = ReadIDXFile(p) })
	require.ErrorIs(t, err, fileio.ErrTooLarge)
	assert.EqualError(t, err, "data: "+p+": file too large: 2.1 GB, more than the limit of 1.1 GB")
	assert.Less(t, n, uint64(1<<20))
}

// A gzip bomb costs the memory its header declares, never what it
// decompresses to: data beyond the declared elements is refused at the
// first byte, and a declaration beyond the limit, or beyond what DEFLATE
// can expand the file to, is refused before any element is read.
func TestIDXGzipBombBounded(t *testing.T) {
	dir := t.TempDir()
	// A 64 KB file that decompresses to 64 MB: 10 images, then zeros.
	bomb := gzipBytes(t, idxBytes([]int{10, 28, 28}, make([]byte, 64<<20)))
	p := writeFile(t, dir, "bomb.gz", bomb)
	var err error
	n := allocated(func() { _, err = ReadIDXFile(p) })
	assert.EqualError(t, err, "data: "+p+": offset 7856: trailing data after 7840 IDX elements (header [10 28 28] disagrees with file size) (offset in decompressed data)")
	assert.Less(t, n, uint64(1<<20), "decompressed beyond the declared size")

	// A second gzip member after a complete first one is data too.
	two := append(gzipBytes(t, idxBytes([]int{10, 28, 28}, make([]byte, 7840))), gzipBytes(t, make([]byte, 64<<20))...)
	p = writeFile(t, dir, "two.gz", two)
	n = allocated(func() { _, err = ReadIDXFile(p) })
	assert.ErrorContains(t, err, "offset 7856: trailing data after 7840 IDX elements")
	assert.Less(t, n, uint64(1<<20))

	// The header's claim is checked against the limit, and against the
	// most a file of this size can decompress to.
	p = writeFile(t, dir, "huge.gz", gzipBytes(t, idxBytes([]int{1 << 15, 1 << 15, 2}, nil)))
	_, err = ReadIDXFile(p)
	assert.ErrorContains(t, err, "IDX dimensions [32768 32768 2] claim more than 1073741824 elements")
	p = writeFile(t, dir, "claim.gz", gzipBytes(t, idxBytes([]int{1 << 14, 1 << 14}, nil)))
	_, err = ReadIDXFile(p)
	assert.ErrorContains(t, err, "header [16384 16384] claims 268435456 bytes of data (offset in decompressed data), more than a")
}

func TestLoadCIFARRefusesFIFOAndLimits(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good.bin", cifarRecords(3, 1, func(i int) byte { return byte(i) }))
	fifo := mkfifo(t, dir, "fifo.bin")
	err := fifoGuard(t, fifo, func() error {
		_, err := LoadCIFARFiles("c", CIFAR10Format, good, fifo)
		return err
	})
	assert.EqualError(t, err, "data: "+fifo+": a named pipe, not a regular file of records")
	assert.ErrorIs(t, err, fileio.ErrNotRegular)

	big := sparse(t, dir, "big.bin", 3073<<19) // whole records, 1.6 GB
	var n uint64
	n = allocated(func() { _, err = loadCIFARFiles("c", CIFAR10Format, plenty, good, big) })
	require.ErrorIs(t, err, fileio.ErrTooLarge)
	assert.EqualError(t, err, "data: "+big+": file too large: 1.6 GB, more than the limit of 1.1 GB")
	assert.Less(t, n, uint64(1<<20))
}

// Synthetic split sizes are checked before anything is allocated, through
// the function itself and not only through LoadSpec.
func TestSyntheticRefusesHugeSplits(t *testing.T) {
	for _, cfg := range []SyntheticConfig{{Train: 1e12}, {Test: 1 << 62}, {Train: MaxSyntheticImages + 1}} {
		_, _, err := Synthetic(cfg)
		assert.ErrorContains(t, err, "data: synthetic: split sizes", "%+v", cfg)
		assert.ErrorContains(t, err, "at most 16777216 images each", "%+v", cfg)
	}
	tiny := func() (int64, error) { return 1 << 20, nil }
	_, _, err := synthetic(SyntheticConfig{Train: 1000, Test: 10}, tiny)
	assert.EqualError(t, err, "data: generating 1010 synthetic images needs 3.1 MB but 1.0 MB is available (MemAvailable): lower the split sizes")
	_, _, err = synthetic(SyntheticConfig{Train: MaxSyntheticImages}, tiny)
	assert.ErrorContains(t, err, "generating 16778216 synthetic images needs 51.7 GB")
	assert.False(t, errors.Is(err, fileio.ErrTooLarge))
}

// Values built by hand, not read from files, are checked as strictly: no
// public constructor panics or allocates for a shape it has not checked.
func TestConstructorsRefuseHandBuiltShapes(t *testing.T) {
	for _, d := range []*Dataset{
		{Name: "wrap", Classes: 2, C: 1 << 32, H: 1 << 32, W: 1, Labels: []int{0}}, // C·H·W wraps to 0
		{Name: "channels", Classes: 2, C: 2000, H: 1, W: 1, Pixels: make([]byte, 2000), Labels: []int{0}},
		{Name: "values", Classes: 2, C: 1, H: 1 << 16, W: 1<<14 + 1, Labels: nil},
	} {
		assert.ErrorContains(t, d.Validate(), "at most 1024 channels and 1073741824 values per image", d.Name)
		_, err := NewIterator(d, IterConfig{BatchSize: 1})
		assert.ErrorContains(t, err, `dataset "`+d.Name+`": image shape`)
	}
	_, _, err := (&Text{Name: "t", Vocab: []rune("ab"), Train: []uint8{0, 1, 0}, Val: []uint8{0, 1, 0}}).Windows(0)
	assert.EqualError(t, err, "data: text t: windows of context 0, want ≥ 1")
	_, err = IDXDataset("x", nil, &IDX{Dims: []int{1}, Data: []byte{0}}, 10, "img", "lbl")
	assert.EqualError(t, err, "data: x: IDX dataset needs both an image and a label IDX (img, lbl)")
	n := 1 << 31
	_, err = IDXDataset("x", &IDX{Dims: []int{n, n, 4}}, &IDX{Dims: []int{n}}, 10, "img", "lbl")
	assert.EqualError(t, err, "data: img: offset 4: image IDX dimensions [2147483648 2147483648 4] out of range [0, 1073741824]")
	n = 1 << 20
	_, err = IDXDataset("x", &IDX{Dims: []int{n, n, 4}}, &IDX{Dims: []int{n}}, 10, "img", "lbl")
	assert.EqualError(t, err, "data: img: offset 4: image IDX dimensions [1048576 1048576 4] claim more than 1073741824 elements")
}

// The default corpus reads GOROOT's files through appendFile: at most the
// bytes it still needs of each, and never a FIFO or device planted there.
func TestAppendFileBounded(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "big.go", bytes.Repeat([]byte("x"), 1<<20))
	var buf bytes.Buffer
	require.NoError(t, appendFile(&buf, p, 10))
	assert.Equal(t, 10, buf.Len())
	fifo := mkfifo(t, dir, "fifo.go")
	err := fifoGuard(t, fifo, func() error { return appendFile(&buf, fifo, 10) })
	require.ErrorIs(t, err, fileio.ErrNotRegular)
	require.ErrorIs(t, appendFile(&buf, "/dev/zero", 10), fileio.ErrNotRegular)
	assert.Equal(t, 10, buf.Len())
}
