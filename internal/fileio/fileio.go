// Package fileio reads input files in bounded memory and writes output files
// atomically, so that every reader in curvopt refuses what it cannot hold
// before it allocates, and no writer leaves a half-written file behind.
//
// A reader checks a file's real length (Stat of the opened file, then the
// bytes actually read, never a length the file declares about itself)
// against a limit, and refuses anything that is not a regular file: a FIFO
// would block forever and a device such as /dev/zero never ends.
package fileio

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/curvopt/curvopt/internal/meminfo"
)

// ErrTooLarge is wrapped by the errors of files over their size limit.
var ErrTooLarge = errors.New("file too large")

// ErrNotRegular is wrapped by the errors of paths that are not regular files
// (directories, FIFOs, sockets, devices).
var ErrNotRegular = errors.New("not a regular file")

// Open opens path for reading after checking that it is a regular file of at
// most limit bytes, and returns the file with its size. The file is opened
// without blocking (O_NONBLOCK), so a FIFO is refused instead of waiting for
// a writer; the size is that of the opened file, not of a path that may have
// changed since. The caller closes the file and must not read past size
// (LimitReader), since a file can grow while it is read.
func Open(path string, limit int64) (*os.File, int64, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("%s: %w (%s)", path, ErrNotRegular, kind(fi.Mode()))
	}
	if fi.Size() > limit {
		f.Close()
		return nil, 0, fmt.Errorf("%s: %w: %s, more than the limit of %s", path, ErrTooLarge, meminfo.Bytes(fi.Size()), meminfo.Bytes(limit))
	}
	return f, fi.Size(), nil
}

// ReadFile reads the whole of path, a regular file of at most limit bytes
// (see Open). At most min(size, limit) bytes are allocated, whatever the
// file claims or becomes while it is read.
func ReadFile(path string, limit int64) ([]byte, error) {
	f, size, err := Open(path, limit)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, 0, size+1)
	// One byte more than the size, so that a file that grew while it was
	// read is detected instead of cut.
	b, err = readAll(io.LimitReader(f, size+1), b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if int64(len(b)) > size {
		return nil, fmt.Errorf("%s: the file grew while it was read (more than the %d bytes it had)", path, size)
	}
	return b, nil
}

// readAll appends r's bytes to b, growing it only when a read fills it.
func readAll(r io.Reader, b []byte) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

func kind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeNamedPipe != 0:
		return "a FIFO"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m&os.ModeCharDevice != 0:
		return "a character device"
	case m&os.ModeDevice != 0:
		return "a device"
	case m&os.ModeSymlink != 0:
		return "a symbolic link"
	default:
		return "mode " + m.String()
	}
}

// TmpInfix marks the temporary files of WriteAtomic: NAME.tmp-RANDOM, so
// that a directory's leftovers from a killed write can be found and removed.
const TmpInfix = ".tmp-"

// WriteAtomic writes a file through fill into a temporary file beside path
// (buffered), syncs it, gives it permissions perm, renames it over path and
// syncs the directory: readers see the old file or the whole new one, never
// a part, and a completed write survives a crash. On any error the temporary
// file is removed and path is left as it was.
func WriteAtomic(path string, perm os.FileMode, fill func(io.Writer) error) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+TmpInfix+"*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	bw := bufio.NewWriterSize(tmp, 1<<20)
	fail := func(err error) error {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := fill(bw); err != nil {
		return fail(err)
	}
	if err := bw.Flush(); err != nil {
		return fail(err)
	}
	if err := tmp.Chmod(perm); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return SyncDir(dir)
}

// RemoveTemps removes from dir the temporary files that WriteAtomic calls
// killed midway left behind: NAME+TmpInfix+RANDOM for each NAME in bases,
// or every file whose name holds TmpInfix when no bases are given. Only
// files directly in dir are removed (never a directory); a missing dir has
// none. Names are matched literally, so a dir or base holding glob
// characters ('*', '?', '[') is safe.
func RemoveTemps(dir string, bases ...string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("looking for leftover temporary files: %w", err)
	}
	removed := false
	for _, e := range entries {
		if e.IsDir() || !isTemp(e.Name(), bases) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("removing the leftover %s: %w", p, err)
		}
		removed = true
	}
	if removed {
		return SyncDir(dir)
	}
	return nil
}

// isTemp reports whether name is a temporary file of WriteAtomic for one of
// bases (for any name when bases is empty).
func isTemp(name string, bases []string) bool {
	if len(bases) == 0 {
		return strings.Contains(name, TmpInfix)
	}
	for _, b := range bases {
		if strings.HasPrefix(name, b+TmpInfix) {
			return true
		}
	}
	return false
}

// SyncDir makes a rename or a removal in dir durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}
