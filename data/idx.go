package data

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// IDX is the content of one IDX file (the MNIST file format): the dimension
// sizes and the unsigned-byte elements in row-major order.
type IDX struct {
	Dims []int
	Data []uint8
}

// maxIDXBytes bounds the element count an IDX header may claim (1 GiB).
const maxIDXBytes = 1 << 30

// idxUbyte is the IDX element type code for unsigned bytes, the only type
// MNIST-style datasets use.
const idxUbyte = 0x08

// ReadIDX parses an IDX stream. The stream may be raw or gzip-compressed; this
// is detected from the first two bytes (the gzip magic 0x1f 0x8b). name is
// used in error messages. Only the unsigned-byte element type (0x08) is
// supported. A header whose element count disagrees with the amount of data
// (short or trailing bytes) is an error.
func ReadIDX(r io.Reader, name string) (*IDX, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	head, err := br.Peek(2)
	if err != nil && len(head) < 2 {
		return nil, formatErr(name, int64(len(head)), err, "file too short for an IDX header")
	}
	src := io.Reader(br)
	gz := head[0] == 0x1f && head[1] == 0x8b
	if gz {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, formatErr(name, -1, err, "bad gzip stream")
		}
		defer zr.Close()
		src = zr
	}
	wrap := func(off int64, err error, format string, args ...any) error {
		e := formatErr(name, off, err, format, args...)
		if gz {
			e.Msg += " (offset in decompressed data)"
		}
		return e
	}
	var magic [4]byte
	if n, err := io.ReadFull(src, magic[:]); err != nil {
		return nil, wrap(int64(n), ioErr(err), "truncated IDX magic number")
	}
	if magic[0] != 0 || magic[1] != 0 {
		return nil, wrap(0, nil, "bad IDX magic number %#08x: first two bytes must be zero", binary.BigEndian.Uint32(magic[:]))
	}
	if magic[2] != idxUbyte {
		return nil, wrap(2, nil, "unsupported IDX element type %#02x (only unsigned byte 0x08 is supported)", magic[2])
	}
	nd := int(magic[3])
	if nd < 1 || nd > 8 {
		return nil, wrap(3, nil, "unsupported IDX dimension count %d", nd)
	}
	hdr := make([]byte, 4*nd)
	if n, err := io.ReadFull(src, hdr); err != nil {
		return nil, wrap(int64(4+n), ioErr(err), "truncated IDX header (%d dimensions)", nd)
	}
	dims := make([]int, nd)
	total := int64(1)
	for i := range dims {
		d := int64(binary.BigEndian.Uint32(hdr[4*i:]))
		dims[i] = int(d)
		total *= d
		if total > maxIDXBytes {
			return nil, wrap(int64(4+4*i), nil, "IDX dimensions %v claim more than %d elements", dims[:i+1], maxIDXBytes)
		}
	}
	hdrLen := int64(4 + 4*nd)
	// Grow the buffer as data arrives rather than trusting the header, so a
	// corrupt header cannot make us allocate a gigabyte for a tiny file.
	var buf bytes.Buffer
	buf.Grow(int(min(total, 1<<26)))
	n, err := buf.ReadFrom(io.LimitReader(src, total))
	if err != nil {
		return nil, wrap(hdrLen+n, err, "reading IDX data")
	}
	if n < total {
		return nil, wrap(hdrLen+n, io.ErrUnexpectedEOF, "IDX data truncated: header %v claims %d bytes, file has %d", dims, total, n)
	}
	var one [1]byte
	if k, _ := io.ReadFull(src, one[:]); k > 0 {
		return nil, wrap(hdrLen+total, nil, "trailing data after %d IDX elements (header %v disagrees with file size)", total, dims)
	}
	if gz {
		// Drain so that the gzip checksum is verified.
		if _, err := io.Copy(io.Discard, src); err != nil {
			return nil, wrap(-1, err, "bad gzip stream")
		}
	}
	return &IDX{Dims: dims, Data: buf.Bytes()}, nil
}

func ioErr(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// ReadIDXFile reads and parses the IDX file at path (raw or gzip'd).
func ReadIDXFile(path string) (*IDX, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	defer f.Close()
	return ReadIDX(f, path)
}

// IDXDataset builds a Dataset from an image IDX (dimensions N×H×W, one
// channel) and a label IDX (dimension N). Labels must be below classes.
// imgName and lblName are used in error messages.
func IDXDataset(name string, images, labels *IDX, classes int, imgName, lblName string) (*Dataset, error) {
	if len(images.Dims) != 3 {
		return nil, formatErr(imgName, 3, nil, "image IDX has %d dimensions, want 3 (N, rows, cols)", len(images.Dims))
	}
	if len(labels.Dims) != 1 {
		return nil, formatErr(lblName, 3, nil, "label IDX has %d dimensions, want 1", len(labels.Dims))
	}
	n := images.Dims[0]
	if labels.Dims[0] != n {
		return nil, formatErr(lblName, 4, nil, "label count %d disagrees with image count %d in %s", labels.Dims[0], n, imgName)
	}
	if images.Dims[1] == 0 || images.Dims[2] == 0 {
		return nil, formatErr(imgName, 8, nil, "empty image size %dx%d", images.Dims[1], images.Dims[2])
	}
	lab := make([]int, n)
	for i, b := range labels.Data {
		if int(b) >= classes {
			return nil, formatErr(lblName, int64(8+i), nil, "label %d of item %d out of range [0,%d)", b, i, classes)
		}
		lab[i] = int(b)
	}
	return &Dataset{Name: name, Classes: classes, C: 1, H: images.Dims[1], W: images.Dims[2], Pixels: images.Data, Labels: lab}, nil
}

// LoadIDX reads an image IDX file and a label IDX file (each raw or gzip'd)
// into a Dataset with the given class count.
func LoadIDX(name, imagesPath, labelsPath string, classes int) (*Dataset, error) {
	img, err := ReadIDXFile(imagesPath)
	if err != nil {
		return nil, err
	}
	lbl, err := ReadIDXFile(labelsPath)
	if err != nil {
		return nil, err
	}
	return IDXDataset(name, img, lbl, classes, imagesPath, labelsPath)
}

// FashionMNISTDir is where the Debian/Ubuntu package dataset-fashion-mnist
// installs Fashion-MNIST; LoadMNIST uses it when dir is empty.
const FashionMNISTDir = "/usr/share/datasets/fashion-mnist"

// LoadMNIST loads an MNIST-layout directory (MNIST or Fashion-MNIST):
// train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and
// t10k-labels-idx1-ubyte, each optionally with a .gz suffix. An empty dir
// means FashionMNISTDir. name prefixes the datasets' names ("mnist",
// "fashion-mnist"). Both have 10 classes and 1×28×28 images.
func LoadMNIST(name, dir string) (train, test *Dataset, err error) {
	if dir == "" {
		dir = FashionMNISTDir
	}
	if fi, err := os.Stat(dir); err != nil {
		return nil, nil, fmt.Errorf("data: %s directory: %w", name, err)
	} else if !fi.IsDir() {
		return nil, nil, fmt.Errorf("data: %s: %s is not a directory", name, dir)
	}
	load := func(split, prefix string) (*Dataset, error) {
		img, err := findFile(dir, prefix+"-images-idx3-ubyte")
		if err != nil {
			return nil, err
		}
		lbl, err := findFile(dir, prefix+"-labels-idx1-ubyte")
		if err != nil {
			return nil, err
		}
		return LoadIDX(name+"/"+split, img, lbl, 10)
	}
	if train, err = load("train", "train"); err != nil {
		return nil, nil, err
	}
	if test, err = load("test", "t10k"); err != nil {
		return nil, nil, err
	}
	return train, test, nil
}

// findFile returns dir/base or dir/base.gz, whichever exists.
func findFile(dir, base string) (string, error) {
	for _, p := range []string{filepath.Join(dir, base), filepath.Join(dir, base+".gz")} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("data: %s: neither %s nor %s.gz found: %w", dir, base, base, os.ErrNotExist)
}
