package train

import (
	"bytes"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"

	"github.com/curvopt/curvopt/internal/fileio"
	"github.com/curvopt/curvopt/internal/meminfo"
	"github.com/curvopt/curvopt/optim"
)

// maxMetaBytes caps a checkpoint's metadata: everything but the tensor
// values (configuration, tensor names and shapes, the epoch's data order).
// The data order is the largest part, at most 5 bytes an image: 60,000
// images take about 200 KB, and this cap allows some 50 million.
const maxMetaBytes = 256 << 20

// sumChunk is the buffer that a section streams through to be checksummed
// before anything is allocated for it.
const sumChunk = 256 << 10

// LoadCheckpoint reads a checkpoint written by SaveCheckpoint, verifying its
// checksums and its meaning (counters in range and consistent, every value
// finite). A damaged file is an error naming the file and the byte range (or
// offset) that is wrong.
//
// Memory is bounded by what the file really holds: declared sizes are
// checked against the file's length (and the metadata's against a cap of
// 256 MiB) before anything is allocated, each section's checksum is
// verified by streaming it through a small buffer before the section is
// allocated (a sparse file declaring gigabytes of zeros costs a read, not
// the memory), and the values' total is checked against the memory
// available (MemAvailable) first.
func LoadCheckpoint(path string) (*Checkpoint, error) {
	return readCheckpoint(path, true, nil, nil)
}

// ReadCheckpointInfo reads a checkpoint's header and metadata (step, epoch,
// configuration, tensor names and shapes) without the tensor values, after
// checking the header's and metadata's checksums, the file's size and the
// metadata's meaning, in memory bounded by the metadata's size.
func ReadCheckpointInfo(path string) (*Checkpoint, error) {
	return readCheckpoint(path, false, nil, nil)
}

// readCheckpoint reads path's header and metadata, and with values the
// tensor values too, after checking their total against mem. The total is
// what the file holds (M-FAC's window: the rows written). reserve, if not
// nil, says how many values to make room for in each tensor of the
// optimizer's state (a larger capacity than it holds: M-FAC's whole window,
// whose pages past the values read are not touched; see mfac.MFAC.Reserve).
func readCheckpoint(path string, values bool, mem meminfo.Source, reserve func(*optim.StateTensor) int) (*Checkpoint, error) {
	f, size, err := fileio.Open(path, math.MaxInt64)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	defer f.Close()
	bad := func(format string, a ...any) error {
		return fmt.Errorf("checkpoint %s: "+format, append([]any{path}, a...)...)
	}
	hdr := make([]byte, headerLen)
	if n, err := f.ReadAt(hdr, 0); err != nil {
		return nil, bad("truncated: %d bytes, shorter than the %d-byte header", n, headerLen)
	}
	if string(hdr[:8]) != checkpointMagic {
		return nil, bad("not a curvopt checkpoint (bytes 0-7 are %q, want %q; checkpoints of version 1 are not readable)", hdr[:8], checkpointMagic)
	}
	if got, want := binary.LittleEndian.Uint32(hdr[20:]), crc32.Checksum(hdr[:20], castagnoli); got != want {
		return nil, bad("header checksum mismatch (bytes 0-%d): the file is corrupt", headerLen-1)
	}
	if v := binary.LittleEndian.Uint32(hdr[8:]); v != checkpointVersion {
		return nil, bad("version %d, this build reads version %d", v, checkpointVersion)
	}
	metaLen := binary.LittleEndian.Uint64(hdr[12:])
	if metaLen > maxMetaBytes {
		return nil, bad("the header (bytes 12-19) declares %d bytes (%s) of metadata, more than the %s a checkpoint's metadata may take: the file is corrupt or not a checkpoint",
			metaLen, meminfo.Bytes(int64(metaLen)), meminfo.Bytes(maxMetaBytes))
	}
	if int64(metaLen)+headerLen+4 > size {
		return nil, bad("truncated: the header declares %d bytes of metadata but the file has %d bytes", metaLen, size)
	}
	buf := make([]byte, sumChunk)
	meta, err := readSummed(f, headerLen, int64(metaLen), buf)
	if err != nil {
		if errors.Is(err, errCorrupt) {
			return nil, bad("metadata checksum mismatch (bytes %d-%d): the file is corrupt", headerLen, headerLen+int64(metaLen)-1)
		}
		return nil, bad("reading the metadata (bytes %d-%d): %w", headerLen, headerLen+int64(metaLen)-1, err)
	}
	if err := checkMetaShape(meta, mem, path); err != nil {
		return nil, bad("%w", err)
	}
	var c Checkpoint
	if err := gob.NewDecoder(bytes.NewReader(meta)).Decode(&c); err != nil {
		return nil, bad("undecodable metadata: %v", err)
	}
	meta = nil
	if c.Version != checkpointVersion {
		return nil, bad("version %d, this build reads version %d", c.Version, checkpointVersion)
	}
	if c.Opt == nil {
		return nil, bad("no optimizer state")
	}
	if err := c.check(); err != nil {
		return nil, bad("%w", err)
	}
	// Check every tensor's declared size against the file before allocating.
	start := headerLen + int64(metaLen) + 4
	off, total := start, int64(0)
	ts := c.tensors()
	spans := make([]int64, len(ts))
	for i, t := range ts {
		n, err := valueBytes(t)
		if err != nil {
			return nil, bad("state %q of param %q: %v", t.Slot, t.Param, err)
		}
		spans[i] = n
		if off+n+4 > size || off+n+4 < off {
			return nil, bad("truncated: state %q of param %q (%s %v) needs bytes %d-%d but the file has %d bytes", t.Slot, t.Param, t.Dtype, t.Shape, off, off+n+3, size)
		}
		off += n + 4
		total += n
	}
	if off != size {
		return nil, bad("%d bytes of trailing data after offset %d", size-off, off)
	}
	if !values {
		return &c, nil
	}
	what := fmt.Sprintf("the values of the %d tensors in checkpoint %s", len(ts), path)
	if err := mem.Check(what, total, "free memory, or resume on a machine with more"); err != nil {
		return nil, err
	}
	off = start
	for i, t := range ts {
		room := 0
		if reserve != nil && i >= len(c.Params) {
			room = reserve(t)
		}
		if err := readTensor(f, off, spans[i], buf, t, room); err != nil {
			if errors.Is(err, errCorrupt) {
				return nil, bad("checksum mismatch in state %q of param %q (bytes %d-%d): the file is corrupt", t.Slot, t.Param, off, off+spans[i]-1)
			}
			if errors.Is(err, optim.ErrNonFinite) {
				return nil, bad("%w (bytes %d-%d)", err, off, off+spans[i]-1)
			}
			return nil, bad("reading state %q of param %q (bytes %d-%d): %w", t.Slot, t.Param, off, off+spans[i]-1, err)
		}
		off += spans[i] + 4
	}
	return &c, nil
}

// Decoding gob metadata can take far more memory than its bytes: an empty
// element of a slice of structs is one byte on disk and a StateTensor of
// 120 bytes in memory (a crafted 8 MB of metadata, checksums valid, took
// 3.1 GB). checkMetaShape therefore counts the tensors and parameter groups
// first, without allocating them, caps those counts, and checks the memory
// the decoding can take against what is available.
const (
	// maxStateTensors and maxGroups cap the tensors (parameter values,
	// buffers and optimizer state: a few per parameter, some 600 for a
	// GPT-2) and the optimizer's parameter groups (two by default).
	maxStateTensors = 1 << 16
	maxGroups       = 1 << 16
	// structBytes bounds the memory a tensor or group takes while it is
	// decoded: 120 bytes, 270 while its slice grows.
	structBytes = 272
	// metaExpansion bounds the memory the rest of the metadata takes per
	// byte: a string of a []string takes 16 bytes per encoded byte, 36
	// while the slice grows (an []int 8 and 18, a map entry fewer).
	metaExpansion = 40
)

// metaShape is the outline of a checkpoint's metadata: decoding into it
// counts the tensors and the parameter groups without allocating them (gob
// skips the fields an empty struct lacks; its elements take no memory).
// The two element types must differ: gob reuses the decoder of a local
// type within a struct, whatever the remote type.
type metaShape struct {
	Params []tensorShape
	Opt    *struct {
		Tensors []tensorShape
		Groups  []groupShape
		Params  []paramShape // the parameter list the state records
	}
}

type (
	tensorShape struct{}
	groupShape  struct{}
	paramShape  struct{}
)

// checkMetaShape counts meta's tensors and parameter groups (metaShape),
// refuses counts over their caps, and checks the memory that decoding meta
// can take against mem.
func checkMetaShape(meta []byte, mem meminfo.Source, path string) error {
	var sh metaShape
	if err := gob.NewDecoder(bytes.NewReader(meta)).Decode(&sh); err != nil {
		return fmt.Errorf("undecodable metadata: %v", err)
	}
	tensors, groups := len(sh.Params), 0
	if sh.Opt != nil {
		// A parameter record decodes into less memory than a tensor: it
		// counts as one.
		tensors += len(sh.Opt.Tensors) + len(sh.Opt.Params)
		groups = len(sh.Opt.Groups)
	}
	if tensors > maxStateTensors || groups > maxGroups {
		return fmt.Errorf("the metadata lists %d tensors and %d parameter groups, more than the %d and %d a checkpoint may hold",
			tensors, groups, maxStateTensors, maxGroups)
	}
	need := int64(len(meta))*metaExpansion + int64(tensors+groups)*structBytes
	what := fmt.Sprintf("decoding the metadata of checkpoint %s (%s, %d tensors)", path, meminfo.Bytes(int64(len(meta))), tensors)
	return mem.Check(what, need, "free memory, or resume on a machine with more")
}

// errCorrupt is wrapped by checksum mismatches.
var errCorrupt = errors.New("checksum mismatch: the file is corrupt")

// verifySum streams the n bytes at off through buf and checks them against
// the CRC-32C stored after them, allocating nothing.
func verifySum(r io.ReaderAt, off, n int64, buf []byte) error {
	h := crc32.New(castagnoli)
	if _, err := io.CopyBuffer(h, io.NewSectionReader(r, off, n), buf); err != nil {
		return err
	}
	want, err := storedSum(r, off+n)
	if err != nil {
		return err
	}
	if h.Sum32() != want {
		return errCorrupt
	}
	return nil
}

// storedSum reads the CRC-32C at off.
func storedSum(r io.ReaderAt, off int64) (uint32, error) {
	var b [4]byte
	if _, err := r.ReadAt(b[:], off); err != nil {
		return 0, fmt.Errorf("reading the checksum at offset %d: %w", off, err)
	}
	return binary.LittleEndian.Uint32(b[:]), nil
}

// readSummed returns the n bytes at off once their checksum is verified
// (verifySum), and checks it again on the bytes read, which a file changed
// in between would fail.
func readSummed(r io.ReaderAt, off, n int64, buf []byte) ([]byte, error) {
	if err := verifySum(r, off, n, buf); err != nil {
		return nil, err
	}
	b := make([]byte, n)
	if _, err := r.ReadAt(b, off); err != nil {
		return nil, err
	}
	if want, err := storedSum(r, off+n); err != nil || crc32.Checksum(b, castagnoli) != want {
		return nil, errCorrupt
	}
	return b, nil
}

// readTensor fills t's values from the span bytes at off once their
// checksum is verified, and refuses a non-finite value (wrapping
// optim.ErrNonFinite). The values get room for room of them when that is
// more than they are.
func readTensor(r io.ReaderAt, off, span int64, buf []byte, t *optim.StateTensor, room int) error {
	if err := verifySum(r, off, span, buf); err != nil {
		return err
	}
	h := crc32.New(castagnoli)
	if err := readValues(io.TeeReader(io.NewSectionReader(r, off, span), h), buf, t, room); err != nil {
		return err
	}
	if want, err := storedSum(r, off+span); err != nil || h.Sum32() != want {
		return errCorrupt
	}
	return t.CheckFinite()
}

// readValues allocates t's values (their size and checksum already checked
// against the file), with room for room values if that is more, and fills
// them from r. The room past them is not touched.
func readValues(r io.Reader, buf []byte, t *optim.StateTensor, room int) error {
	n := prod(t.Shape)
	room = max(room, n)
	if t.Dtype == "float32" {
		t.F32 = make([]float32, n, room)
		return fillValues(r, buf, t.F32, 4, func(b []byte) float32 { return math.Float32frombits(binary.LittleEndian.Uint32(b)) })
	}
	t.F64 = make([]float64, n, room)
	return fillValues(r, buf, t.F64, 8, func(b []byte) float64 { return math.Float64frombits(binary.LittleEndian.Uint64(b)) })
}

func fillValues[T optim.Float](r io.Reader, buf []byte, xs []T, size int, get func([]byte) T) error {
	per := len(buf) / size
	for len(xs) > 0 {
		n := min(per, len(xs))
		if _, err := io.ReadFull(r, buf[:n*size]); err != nil {
			return err
		}
		for i := range xs[:n] {
			xs[i] = get(buf[i*size:])
		}
		xs = xs[n:]
	}
	return nil
}
