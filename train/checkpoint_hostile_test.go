package train

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"

	"github.com/curvopt/curvopt/internal/fileio"
	"github.com/curvopt/curvopt/optim"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// allocated returns the bytes f allocates on the heap (all of them, freed or
// not: the cumulative count of the runtime).
func allocated(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

// sparse writes head to path and extends the file to size bytes without
// writing them (a sparse file: its length is size, its disk use a block).
func sparse(t *testing.T, path string, head []byte, size int64) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, head, 0o600))
	require.NoError(t, os.Truncate(path, size))
}

// hostileDir returns a directory for a hostile run: under
// $TRAIN_HOSTILE_OUT when set (kept for cmd/train/hostile_rss.sh, which
// measures the CLI's peak memory on it), else a temporary one.
func hostileDir(t *testing.T, name string) string {
	out := os.Getenv("TRAIN_HOSTILE_OUT")
	if out == "" {
		return t.TempDir()
	}
	dir := filepath.Join(out, name)
	require.NoError(t, os.RemoveAll(dir))
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return dir
}

// header returns a checkpoint header with a valid checksum declaring
// metaLen bytes of metadata.
func header(metaLen uint64) []byte {
	hdr := make([]byte, headerLen)
	copy(hdr, checkpointMagic)
	binary.LittleEndian.PutUint32(hdr[8:], checkpointVersion)
	binary.LittleEndian.PutUint64(hdr[12:], metaLen)
	binary.LittleEndian.PutUint32(hdr[20:], crc32.Checksum(hdr[:20], castagnoli))
	return hdr
}

// TestCheckpointSparseHugeMeta: a 3.1 GB sparse file whose header declares
// 3 GB of metadata is refused before anything is read or allocated, by
// LoadCheckpoint, by a resume and by a fresh run refusing to overwrite it.
func TestCheckpointSparseHugeMeta(t *testing.T) {
	cfg := tinyConfig(t, "adam", nil)
	cfg.OutDir = hostileDir(t, "meta-3GB")
	path := filepath.Join(cfg.OutDir, checkpointFile)
	sparse(t, path, header(3e9), 3.1e9)
	for _, read := range []func(string) (*Checkpoint, error){LoadCheckpoint, ReadCheckpointInfo} {
		var err error
		n := allocated(func() { _, err = read(path) })
		require.Error(t, err)
		for _, w := range []string{path, "the header (bytes 12-19) declares 3000000000 bytes (3.0 GB) of metadata, more than the 268.4 MB"} {
			assert.Contains(t, err.Error(), w)
		}
		assert.Less(t, n, uint64(64<<10), "bytes allocated to refuse it")
	}
	cfg.Steps, cfg.Resume = 2, true
	_, err := Run(context.Background(), cfg)
	require.ErrorContains(t, err, "declares 3000000000 bytes (3.0 GB) of metadata")
	cfg.Resume = false
	_, err = Run(context.Background(), cfg)
	require.ErrorContains(t, err, "holds a run's checkpoint")
}

// TestCheckpointSparseMetaBoundedMemory: a sparse file whose header declares
// 200 MiB of metadata (under the cap, within the file) is refused on its
// checksum, streamed through a small buffer: the 200 MiB are read, never
// allocated.
func TestCheckpointSparseMetaBoundedMemory(t *testing.T) {
	path := filepath.Join(hostileDir(t, "meta-200MiB"), checkpointFile)
	const meta = 200 << 20
	sparse(t, path, header(meta), headerLen+meta+4)
	var err error
	n := allocated(func() { _, err = ReadCheckpointInfo(path) })
	require.Error(t, err)
	assert.Contains(t, err.Error(), path+": metadata checksum mismatch (bytes 24-209715223): the file is corrupt")
	assert.Less(t, n, uint64(2<<20), "bytes allocated to refuse it")
}

// TestCheckpointSparseValuesBoundedMemory: a checkpoint whose header and
// metadata are valid but whose 256 MiB tensor is a hole (a sparse file) is
// refused on the tensor's checksum without allocating the tensor; and a
// checkpoint whose values exceed the memory available is refused before
// reading them.
func TestCheckpointSparseValuesBoundedMemory(t *testing.T) {
	cfg := tinyConfig(t, "adam", nil)
	cfg.OutDir = hostileDir(t, "values-hole")
	cfg.Epochs, cfg.EvalEvery = 2, 4
	interrupted(t, cfg, 10)
	path := filepath.Join(cfg.OutDir, checkpointFile)
	c, err := LoadCheckpoint(path)
	require.NoError(t, err)
	huge := optim.StateTensor{Param: "huge", Slot: "value", Dtype: "float32", Shape: []int{1 << 26}}
	c.Params = append([]optim.StateTensor{huge}, c.Params...)
	var head bytes.Buffer
	c.Version = checkpointVersion
	require.NoError(t, encodeHeaderMeta(&head, c))
	size := int64(head.Len())
	for _, ts := range c.tensors() {
		n, err := valueBytes(ts)
		require.NoError(t, err)
		size += n + 4
	}
	sparse(t, path, head.Bytes(), size)

	n := allocated(func() { _, err = LoadCheckpoint(path) })
	require.Error(t, err)
	assert.Contains(t, err.Error(), path+`: checksum mismatch in state "value" of param "huge" (bytes `)
	assert.Less(t, n, uint64(2<<20), "bytes allocated to refuse it")

	_, err = readCheckpoint(path, true, func() (int64, error) { return 100 << 20, nil }, nil)
	require.Error(t, err)
	for _, w := range []string{"the values of the", "tensors in checkpoint " + path, "needs 269.3 MB but 104.9 MB is available"} {
		assert.Contains(t, err.Error(), w)
	}
	cfg.Resume, cfg.Memory = true, func() (int64, error) { return 100 << 20, nil }
	_, err = Run(context.Background(), cfg)
	require.ErrorContains(t, err, "tensors in checkpoint "+path)
}

// TestCheckpointNotRegular: a FIFO or a directory in the checkpoint's place
// is refused without blocking.
func TestCheckpointNotRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	for _, p := range []string{fifo, dir} {
		_, err := LoadCheckpoint(p)
		require.ErrorIs(t, err, fileio.ErrNotRegular)
		assert.Contains(t, err.Error(), p)
	}
}

// TestCheckpointSparseMetaDecodingBounded: metadata whose checksums are valid
// (SaveCheckpoint) but whose decoding would take far more memory than its
// bytes is refused before it is decoded: too many tensors by their count,
// a million empty strings (1 MB on disk, 16 MB and more decoded) by the
// memory available.
func TestCheckpointSparseMetaDecodingBounded(t *testing.T) {
	path := filepath.Join(hostileDir(t, "meta-65537-tensors"), checkpointFile)
	c := &Checkpoint{EvalStep: -1, Opt: &optim.State{}}
	c.Params = make([]optim.StateTensor, maxStateTensors+1)
	for i := range c.Params {
		c.Params[i] = optim.StateTensor{Dtype: "float32", Shape: []int{0}, F32: []float32{}}
	}
	require.NoError(t, SaveCheckpoint(path, c))
	var err error
	n := allocated(func() { _, err = ReadCheckpointInfo(path) })
	require.Error(t, err)
	assert.Contains(t, err.Error(), path+": the metadata lists 65537 tensors and 0 parameter groups, more than the 65536 and 65536 a checkpoint may hold")
	assert.Less(t, n, uint64(8<<20), "bytes allocated to refuse it")

	// The optimizer state's parameter list counts as tensors.
	c = &Checkpoint{EvalStep: -1, Opt: &optim.State{Params: make([]optim.ParamInfo, maxStateTensors+1)}}
	path = filepath.Join(t.TempDir(), checkpointFile)
	require.NoError(t, SaveCheckpoint(path, c))
	n = allocated(func() { _, err = ReadCheckpointInfo(path) })
	require.Error(t, err)
	assert.Contains(t, err.Error(), path+": the metadata lists 65537 tensors and 0 parameter groups")
	assert.Less(t, n, uint64(8<<20), "bytes allocated to refuse it")

	c = &Checkpoint{EvalStep: -1, Opt: &optim.State{Groups: []optim.Group{{Name: "g", Params: make([]string, 1<<20)}}}}
	path = filepath.Join(t.TempDir(), checkpointFile)
	require.NoError(t, SaveCheckpoint(path, c))
	n = allocated(func() { _, err = readCheckpoint(path, false, func() (int64, error) { return 10 << 20, nil }, nil) })
	require.Error(t, err)
	for _, w := range []string{"decoding the metadata of checkpoint " + path, "0 tensors) needs 42.", "but 10.5 MB is available"} {
		assert.Contains(t, err.Error(), w)
	}
	assert.Less(t, n, uint64(4<<20), "bytes allocated to refuse it")
}
