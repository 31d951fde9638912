package train

import (
	"bytes"
	"encoding/binary"
	"encoding/gob"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"math"

	"github.com/curvopt/curvopt/data"
	"github.com/curvopt/curvopt/internal/fileio"
	"github.com/curvopt/curvopt/optim"
)

// checkpointVersion is bumped when the checkpoint layout changes.
const checkpointVersion = 2

// checkpointMagic opens every checkpoint file.
const checkpointMagic = "CURVCKPT"

// headerLen is the fixed header: magic, version (uint32), meta length
// (uint64), CRC-32C of those 20 bytes (uint32).
const headerLen = 8 + 4 + 8 + 4

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Checkpoint is everything needed to resume a run bit-identically: the
// model's parameters and buffers, the optimizer's state (with its random
// state), the data order, the training loop's own random state and the
// run's configuration.
//
// On disk (SaveCheckpoint) it is, little-endian:
//
//	header  "CURVCKPT", version uint32, meta length uint64, CRC-32C uint32
//	meta    gob of the Checkpoint without tensor values, CRC-32C uint32
//	values  for each tensor of Params then Opt.Tensors: its values in its
//	        own dtype (4 or 8 bytes each), CRC-32C uint32
//
// so a flipped bit or a truncation is detected and located, sizes are
// checked against the file (and checksums verified) before anything is
// allocated, and the values are streamed (M-FAC's window is written without
// a copy). LoadCheckpoint also checks what the fields mean (see check).
type Checkpoint struct {
	Version int
	// Model identifies the architecture (its DAG as JSON; a layer list's
	// JSON in checkpoints before issue 20, converted on reading: see
	// modelKey); a checkpoint is refused for another model.
	Model string
	// Optimizer is the optimizer's name; a checkpoint is refused for another.
	Optimizer string
	Dtype     string
	// Step and Epoch are the completed steps and epochs.
	Step, Epoch int
	// Evals is the number of evaluation records (epochs.jsonl rows) written
	// up to this checkpoint; EvalStep the step of the last one (-1: none).
	Evals, EvalStep int
	// Config is the run's configuration (JSON of RunConfig), with the
	// schedule's horizon resolved.
	Config []byte
	// Params holds the parameter values (Slot "value") and model buffers
	// such as batch-norm running statistics (other slots).
	Params []optim.StateTensor
	// Opt is the optimizer's exported state.
	Opt *optim.State
	// Data is the training iterator's position.
	Data data.IterState
	// Blobs holds other random state (the sampled-label generator, ...).
	Blobs map[string][]byte
	// Best is the best test accuracy seen so far; Wall the training time so
	// far in seconds.
	Best, Wall float64
}

// tensors returns pointers to every state tensor, in file order.
func (c *Checkpoint) tensors() []*optim.StateTensor {
	var ts []*optim.StateTensor
	for i := range c.Params {
		ts = append(ts, &c.Params[i])
	}
	if c.Opt != nil {
		for i := range c.Opt.Tensors {
			ts = append(ts, &c.Opt.Tensors[i])
		}
	}
	return ts
}

// meta returns a shallow copy of c whose tensors carry no values.
func (c *Checkpoint) meta() *Checkpoint {
	m := *c
	strip := func(ts []optim.StateTensor) []optim.StateTensor {
		out := make([]optim.StateTensor, len(ts))
		for i, t := range ts {
			out[i] = optim.StateTensor{Param: t.Param, Slot: t.Slot, Dtype: t.Dtype, Shape: t.Shape}
		}
		return out
	}
	m.Params = strip(c.Params)
	if c.Opt != nil {
		o := *c.Opt
		o.Tensors = strip(c.Opt.Tensors)
		m.Opt = &o
	}
	return &m
}

// SaveCheckpoint writes c to path atomically: it is streamed into a
// temporary file in the same directory, synced, renamed over path, and the
// directory is synced, so an interrupted write leaves the previous
// checkpoint intact and a completed one survives a crash.
//
// Its fields are written as they are: their meaning (counters in range,
// finite values) is checked when it is read (LoadCheckpoint).
func SaveCheckpoint(path string, c *Checkpoint) error {
	switch {
	case c == nil:
		return fmt.Errorf("checkpoint %s: nil checkpoint", path)
	case c.Opt == nil:
		return fmt.Errorf("checkpoint %s: no optimizer state (Opt is nil)", path)
	}
	c.Version = checkpointVersion
	return fileio.WriteAtomic(path, 0o600, func(w io.Writer) error { return encodeCheckpoint(w, c) })
}

// writeJSONAtomic writes v as indented JSON to path atomically (see
// writeAtomic).
func writeJSONAtomic(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return fileio.WriteAtomic(path, 0o644, func(w io.Writer) error {
		_, err := w.Write(append(b, '\n'))
		return err
	})
}

// outputFiles are the files Run writes atomically into its OutDir; resume
// and a fresh start remove their leftover temporary files
// (fileio.RemoveTemps).
var outputFiles = []string{checkpointFile, "config.json", "steps.jsonl", "steps.csv", "epochs.jsonl", "epochs.csv"}

func encodeCheckpoint(w io.Writer, c *Checkpoint) error {
	if err := encodeHeaderMeta(w, c); err != nil {
		return err
	}
	return encodeValues(w, c)
}

// encodeHeaderMeta writes the header and the metadata with their checksums.
func encodeHeaderMeta(w io.Writer, c *Checkpoint) error {
	var meta bytes.Buffer
	if err := gob.NewEncoder(&meta).Encode(c.meta()); err != nil {
		return fmt.Errorf("encoding the checkpoint: %w", err)
	}
	hdr := make([]byte, headerLen)
	copy(hdr, checkpointMagic)
	binary.LittleEndian.PutUint32(hdr[8:], checkpointVersion)
	binary.LittleEndian.PutUint64(hdr[12:], uint64(meta.Len()))
	binary.LittleEndian.PutUint32(hdr[20:], crc32.Checksum(hdr[:20], castagnoli))
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	return writeSum(w, meta.Bytes())
}

// encodeValues writes every tensor's values, each followed by its checksum.
func encodeValues(w io.Writer, c *Checkpoint) error {
	buf := make([]byte, 64<<10)
	for _, t := range c.tensors() {
		if _, err := valueBytes(t); err != nil {
			return fmt.Errorf("state %q of param %q: %w", t.Slot, t.Param, err)
		}
		if t.Len() != prod(t.Shape) {
			return fmt.Errorf("state %q of param %q: %d values for shape %v", t.Slot, t.Param, t.Len(), t.Shape)
		}
		h := crc32.New(castagnoli)
		mw := io.MultiWriter(w, h)
		if t.Dtype == "float32" {
			err := streamValues(mw, buf, t.F32, 4, func(b []byte, v float32) { binary.LittleEndian.PutUint32(b, math.Float32bits(v)) })
			if err != nil {
				return err
			}
		} else if err := streamValues(mw, buf, t.F64, 8, func(b []byte, v float64) { binary.LittleEndian.PutUint64(b, math.Float64bits(v)) }); err != nil {
			return err
		}
		if err := binary.Write(w, binary.LittleEndian, h.Sum32()); err != nil {
			return err
		}
	}
	return nil
}

// streamValues writes xs in chunks of buf (no copy of the whole slice).
func streamValues[T optim.Float](w io.Writer, buf []byte, xs []T, size int, put func([]byte, T)) error {
	per := len(buf) / size
	for len(xs) > 0 {
		n := min(per, len(xs))
		for i, v := range xs[:n] {
			put(buf[i*size:], v)
		}
		if _, err := w.Write(buf[:n*size]); err != nil {
			return err
		}
		xs = xs[n:]
	}
	return nil
}

func writeSum(w io.Writer, b []byte) error {
	if _, err := w.Write(b); err != nil {
		return err
	}
	return binary.Write(w, binary.LittleEndian, crc32.Checksum(b, castagnoli))
}

// valueBytes checks a tensor's declared dtype and shape and returns the
// size of its values on disk.
func valueBytes(t *optim.StateTensor) (int64, error) {
	var size int64
	switch t.Dtype {
	case "float32":
		size = 4
	case "float64":
		size = 8
	default:
		return 0, fmt.Errorf("unknown dtype %q", t.Dtype)
	}
	n := size
	for _, d := range t.Shape {
		if d < 0 || (d > 0 && n > math.MaxInt64/8/int64(d)) {
			return 0, fmt.Errorf("invalid shape %v", t.Shape)
		}
		n *= int64(d)
	}
	return n, nil
}
