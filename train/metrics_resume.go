package train

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/curvopt/curvopt/internal/fileio"
)

// maxRecordLine caps a metrics file's line: a record takes a few hundred
// bytes.
const maxRecordLine = 1 << 20

// logVerify says which records of a metrics file a resumed run keeps: the
// first n, which the checkpoint counted, each checked by check(i, r) (its
// place in the sequence: no gap, duplicate or disorder). The lines after
// them were written after the checkpoint: they are dropped.
type logVerify[R any] struct {
	n     int
	check func(i int, r R) error
}

// resumeRecords verifies the first v.n records of the JSON-lines file path
// and returns the number of bytes they take, with a note saying what is
// dropped after them (empty when nothing is). It refuses, changing nothing,
// a file whose first v.n lines are missing, unreadable or out of sequence
// (records up to the checkpoint are corrupt: nothing can tell which to
// keep), naming the file and line; it repairs a file with lines beyond them
// (written after the checkpoint, a torn last one included) by dropping
// those. Memory is bounded by one line.
func resumeRecords[R any](path string, v *logVerify[R]) (end int64, note string, err error) {
	refuse := func(format string, a ...any) error {
		return fmt.Errorf("train: resume: refused: %s: %s; the records up to the checkpoint are damaged, so the run cannot continue this file (nothing was changed)",
			path, fmt.Sprintf(format, a...))
	}
	f, size, err := fileio.Open(path, math.MaxInt64)
	if errors.Is(err, os.ErrNotExist) {
		if v.n == 0 {
			return 0, "", nil
		}
		return 0, "", refuse("missing, but the checkpoint counts %d records in it", v.n)
	}
	if err != nil {
		return 0, "", fmt.Errorf("train: resume: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(io.LimitReader(f, size), maxRecordLine)
	for i := 0; i < v.n; i++ {
		line, err := br.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			return 0, "", refuse("line %d (offset %d) is longer than %d bytes: not a record", i+1, end, maxRecordLine)
		case errors.Is(err, io.EOF):
			return 0, "", refuse("%d complete lines, but the checkpoint counts %d records", i, v.n)
		case err != nil:
			return 0, "", fmt.Errorf("train: resume: reading %s: %w", path, err)
		}
		var r R
		if err := json.Unmarshal(line, &r); err != nil {
			return 0, "", refuse("line %d (offset %d): %v", i+1, end, err)
		}
		if err := v.check(i, r); err != nil {
			return 0, "", refuse("line %d: %v", i+1, err)
		}
		end += int64(len(line))
	}
	if end < size {
		// Count the lines dropped, in bounded memory.
		lines, torn := 0, false
		buf := make([]byte, 64<<10)
		for {
			n, err := br.Read(buf)
			lines += bytes.Count(buf[:n], []byte{'\n'})
			if n > 0 {
				torn = buf[n-1] != '\n'
			}
			if err != nil {
				break
			}
		}
		what := fmt.Sprintf("%d line", lines)
		if lines != 1 {
			what += "s"
		}
		if torn {
			what += " and a torn last line"
		}
		note = fmt.Sprintf("resume: repaired %s: kept the %d records up to the checkpoint, dropped %s written after it (bytes %d-%d)",
			path, v.n, what, end, size-1)
	}
	return end, note, nil
}

// eachRecord calls fn with each record of the first end bytes of the
// JSON-lines file path (verified by resumeRecords; nothing when end is 0).
func eachRecord[R any](path string, end int64, fn func(R) error) error {
	if end == 0 {
		return nil
	}
	f, _, err := fileio.Open(path, math.MaxInt64)
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReaderSize(io.LimitReader(f, end), maxRecordLine)
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, io.EOF) && len(line) == 0 {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", path, err)
		}
		var r R
		if err := json.Unmarshal(line, &r); err != nil {
			return fmt.Errorf("reading %s: %w", path, err)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
}
