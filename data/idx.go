package data

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/curvopt/curvopt/internal/meminfo"
)

// IDX is the content of one IDX file (the MNIST file format): the dimension
// sizes and the unsigned-byte elements in row-major order.
type IDX struct {
	Dims []int
	Data []uint8
}

// maxIDXBytes bounds the element count an IDX header may claim (1 GiB).
const maxIDXBytes = 1 << 30

// maxDeflateRatio bounds how many bytes DEFLATE can expand one compressed
// byte into (1032:1, reached by long runs of one byte), so a gzip file of n
// bytes cannot hold more than maxDeflateRatio·n bytes of data.
const maxDeflateRatio = 1032

// idxUbyte is the IDX element type code for unsigned bytes, the only type
// MNIST-style datasets use.
const idxUbyte = 0x08

// idxStream is an IDX stream whose header has been read: src is positioned
// at the first element.
type idxStream struct {
	name   string
	src    io.Reader
	gz     *gzip.Reader
	dims   []int
	total  int64 // elements (= bytes) the header claims
	hdrLen int64
}

// wrap builds a FormatError at offset off of the (decompressed) stream.
func (s *idxStream) wrap(off int64, err error, format string, args ...any) *FormatError {
	e := formatErr(s.name, off, err, format, args...)
	if s.gz != nil && off >= 0 {
		e.Msg += " (offset in decompressed data)"
	}
	return e
}

func (s *idxStream) close() {
	if s.gz != nil {
		s.gz.Close()
	}
}

// openIDX reads the magic number and the dimensions of an IDX stream, raw
// or gzip-compressed (detected from the gzip magic 0x1f 0x8b). It reads no
// element and allocates nothing in proportion to what the header claims.
func openIDX(r io.Reader, name string) (*idxStream, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	head, err := br.Peek(2)
	if err != nil && len(head) < 2 {
		return nil, formatErr(name, int64(len(head)), err, "file too short for an IDX header")
	}
	s := &idxStream{name: name, src: br}
	if head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, formatErr(name, -1, err, "bad gzip stream")
		}
		s.gz, s.src = zr, zr
	}
	fail := func(e error) (*idxStream, error) {
		s.close()
		return nil, e
	}
	var magic [4]byte
	if n, err := io.ReadFull(s.src, magic[:]); err != nil {
		return fail(s.wrap(int64(n), ioErr(err), "truncated IDX magic number"))
	}
	if magic[0] != 0 || magic[1] != 0 {
		return fail(s.wrap(0, nil, "bad IDX magic number %#08x: first two bytes must be zero", binary.BigEndian.Uint32(magic[:])))
	}
	if magic[2] != idxUbyte {
		return fail(s.wrap(2, nil, "unsupported IDX element type %#02x (only unsigned byte 0x08 is supported)", magic[2]))
	}
	nd := int(magic[3])
	if nd < 1 || nd > 8 {
		return fail(s.wrap(3, nil, "unsupported IDX dimension count %d", nd))
	}
	hdr := make([]byte, 4*nd)
	if n, err := io.ReadFull(s.src, hdr); err != nil {
		return fail(s.wrap(int64(4+n), ioErr(err), "truncated IDX header (%d dimensions)", nd))
	}
	s.dims = make([]int, nd)
	s.total = 1
	for i := range s.dims {
		d := int64(binary.BigEndian.Uint32(hdr[4*i:]))
		s.dims[i] = int(d)
		s.total *= d
		if s.total > maxIDXBytes {
			return fail(s.wrap(int64(4+4*i), nil, "IDX dimensions %v claim more than %d elements", s.dims[:i+1], maxIDXBytes))
		}
	}
	s.hdrLen = int64(4 + 4*nd)
	return s, nil
}

// checkFileSize compares the header's claim with the size of the file on
// disk, before any element is read: a raw file must hold exactly the header
// and the claimed elements; a gzip file cannot expand beyond
// maxDeflateRatio times its size.
func (s *idxStream) checkFileSize(size int64) error {
	want := s.hdrLen + s.total
	if s.gz == nil {
		if size != want {
			return formatErr(s.name, 4, nil, "header %v claims %d bytes of data after the %d-byte header (%d in all), but the file has %d bytes",
				s.dims, s.total, s.hdrLen, want, size)
		}
		return nil
	}
	if want > maxDeflateRatio*size {
		return formatErr(s.name, 4, nil, "header %v claims %d bytes of data (offset in decompressed data), more than a %d-byte gzip file can hold (DEFLATE expands at most %d:1)",
			s.dims, s.total, size, maxDeflateRatio)
	}
	return nil
}

// readData reads the claimed elements and checks that nothing follows them.
// The buffer grows with the data actually read (doubling, capped at the
// claim) unless exact says the claim was already checked against the file,
// so a header that lies costs memory in proportion to the data there is.
func (s *idxStream) readData(exact bool) ([]byte, error) {
	var buf []byte
	if exact {
		buf = make([]byte, 0, s.total)
	} else {
		buf = make([]byte, 0, min(s.total, 1<<20))
	}
	for int64(len(buf)) < s.total {
		if len(buf) == cap(buf) {
			nb := make([]byte, len(buf), min(s.total, 2*int64(cap(buf))))
			copy(nb, buf)
			buf = nb
		}
		k, err := s.src.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+k]
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, s.wrap(s.hdrLen+int64(len(buf)), err, "reading IDX data")
		}
	}
	if n := int64(len(buf)); n < s.total {
		return nil, s.wrap(s.hdrLen+n, io.ErrUnexpectedEOF, "IDX data truncated: header %v claims %d bytes, file has %d", s.dims, s.total, n)
	}
	var one [1]byte
	if k, _ := io.ReadFull(s.src, one[:]); k > 0 {
		return nil, s.wrap(s.hdrLen+s.total, nil, "trailing data after %d IDX elements (header %v disagrees with file size)", s.total, s.dims)
	}
	if s.gz != nil {
		// Drain so that the gzip checksum is verified.
		if _, err := io.Copy(io.Discard, s.src); err != nil {
			return nil, s.wrap(-1, err, "bad gzip stream")
		}
	}
	return buf, nil
}

// ReadIDX parses an IDX stream. The stream may be raw or gzip-compressed; this
// is detected from the first two bytes (the gzip magic 0x1f 0x8b). name is
// used in error messages. Only the unsigned-byte element type (0x08) is
// supported. A header whose element count disagrees with the amount of data
// (short or trailing bytes) is an error; memory grows with the data read,
// not with the header's claim.
func ReadIDX(r io.Reader, name string) (*IDX, error) {
	s, err := openIDX(r, name)
	if err != nil {
		return nil, err
	}
	defer s.close()
	b, err := s.readData(false)
	if err != nil {
		return nil, err
	}
	return &IDX{Dims: s.dims, Data: b}, nil
}

func ioErr(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// idxFile is an open IDX file whose header has been read and checked
// against the file's size.
type idxFile struct {
	*idxStream
	f *os.File
}

// maxIDXFileBytes bounds the size of an IDX file on disk: the largest data
// an IDX header may claim (maxIDXBytes), its header, and room for gzip's
// framing of incompressible data (5 bytes per 64 KiB stored block).
const maxIDXFileBytes = maxIDXBytes + 1<<20

// openIDXFile opens path (a regular file of at most maxIDXFileBytes: FIFOs
// and devices are refused without blocking or reading) and reads its
// header, checked against the file's real size. The elements are read from
// a reader bounded by that size, so a file that grows is not followed.
func openIDXFile(path string) (*idxFile, error) {
	f, size, err := openDataFile(path, maxIDXFileBytes)
	if err != nil {
		return nil, err
	}
	s, err := openIDX(io.LimitReader(f, size), path)
	if err != nil {
		f.Close()
		return nil, err
	}
	if err := s.checkFileSize(size); err != nil {
		s.close()
		f.Close()
		return nil, err
	}
	return &idxFile{idxStream: s, f: f}, nil
}

func (x *idxFile) close() {
	x.idxStream.close()
	x.f.Close()
}

// read reads the elements (the claim was checked against the file's size;
// a raw file's buffer is allocated once at its exact size).
func (x *idxFile) read() (*IDX, error) {
	b, err := x.readData(x.gz == nil)
	if err != nil {
		return nil, err
	}
	return &IDX{Dims: x.dims, Data: b}, nil
}

// ReadIDXFile reads and parses the IDX file at path (raw or gzip'd). The
// header's claim is checked against the file's size before any element is
// read.
func ReadIDXFile(path string) (*IDX, error) {
	x, err := openIDXFile(path)
	if err != nil {
		return nil, err
	}
	defer x.close()
	return x.read()
}

// IDXDataset builds a Dataset from an image IDX (dimensions N×H×W, one
// channel) and a label IDX (dimension N). Labels must be below classes.
// imgName and lblName are used in error messages.
func IDXDataset(name string, images, labels *IDX, classes int, imgName, lblName string) (*Dataset, error) {
	if images == nil || labels == nil {
		return nil, fmt.Errorf("data: %s: IDX dataset needs both an image and a label IDX (%s, %s)", name, imgName, lblName)
	}
	if err := checkIDXPair(images.Dims, labels.Dims, imgName, lblName); err != nil {
		return nil, err
	}
	n := images.Dims[0]
	if len(labels.Data) != n || len(images.Data) != n*images.Dims[1]*images.Dims[2] {
		return nil, formatErr(imgName, -1, nil, "%d image bytes and %d labels disagree with the headers %v and %v",
			len(images.Data), len(labels.Data), images.Dims, labels.Dims)
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

// checkIDXPair checks the headers of an image IDX (N×H×W) and a label IDX
// (N) against each other.
func checkIDXPair(img, lbl []int, imgName, lblName string) error {
	if len(img) != 3 {
		return formatErr(imgName, 3, nil, "image IDX has %d dimensions, want 3 (N, rows, cols)", len(img))
	}
	if len(lbl) != 1 {
		return formatErr(lblName, 3, nil, "label IDX has %d dimensions, want 1", len(lbl))
	}
	if lbl[0] != img[0] {
		return formatErr(lblName, 4, nil, "label count %d disagrees with image count %d in %s", lbl[0], img[0], imgName)
	}
	if img[1] == 0 || img[2] == 0 {
		return formatErr(imgName, 8, nil, "empty image size %dx%d", img[1], img[2])
	}
	// Headers read from files meet this already; IDX values built by hand
	// must too, so that no size computed from them overflows.
	for _, d := range img {
		if d < 0 || d > maxIDXBytes {
			return formatErr(imgName, 4, nil, "image IDX dimensions %v out of range [0, %d]", img, maxIDXBytes)
		}
	}
	if hw := int64(img[1]) * int64(img[2]); int64(img[0]) > maxIDXBytes/hw {
		return formatErr(imgName, 4, nil, "image IDX dimensions %v claim more than %d elements", img, maxIDXBytes)
	}
	return nil
}

// idxLoad says how to load an image/label IDX pair.
type idxLoad struct {
	// rows, cols > 0 require that image geometry (the model is built for it).
	rows, cols int
	// mem reports the available memory (nil: /proc/meminfo).
	mem meminfo.Source
}

// LoadIDX reads an image IDX file and a label IDX file (each raw or gzip'd)
// into a Dataset with the given class count. Both headers are read and
// checked against each other, against the files' sizes and against the
// available memory before any element is read.
func LoadIDX(name, imagesPath, labelsPath string, classes int) (*Dataset, error) {
	return loadIDX(name, imagesPath, labelsPath, classes, idxLoad{})
}

func loadIDX(name, imagesPath, labelsPath string, classes int, o idxLoad) (*Dataset, error) {
	img, err := openIDXFile(imagesPath)
	if err != nil {
		return nil, err
	}
	defer img.close()
	lbl, err := openIDXFile(labelsPath)
	if err != nil {
		return nil, err
	}
	defer lbl.close()
	if err := checkIDXPair(img.dims, lbl.dims, imagesPath, labelsPath); err != nil {
		return nil, err
	}
	n := img.dims[0]
	if n == 0 {
		return nil, formatErr(imagesPath, 4, nil, "no images (the header's count is 0)")
	}
	if o.rows > 0 && (img.dims[1] != o.rows || img.dims[2] != o.cols) {
		return nil, formatErr(imagesPath, 8, nil, "images are %dx%d, want %dx%d", img.dims[1], img.dims[2], o.rows, o.cols)
	}
	need := img.total + int64(n)*9 // pixels, label bytes, labels as ints
	if err := o.mem.Check(fmt.Sprintf("loading %d images of %dx%d", n, img.dims[1], img.dims[2]), need, "use a smaller dataset"); err != nil {
		return nil, formatErr(imagesPath, 4, err, "header %v", img.dims)
	}
	labels, err := lbl.read()
	if err != nil {
		return nil, err
	}
	for i, b := range labels.Data {
		if int(b) >= classes {
			return nil, formatErr(labelsPath, int64(8+i), nil, "label %d of item %d out of range [0,%d)", b, i, classes)
		}
	}
	images, err := img.read()
	if err != nil {
		return nil, err
	}
	return IDXDataset(name, images, labels, classes, imagesPath, labelsPath)
}

// FashionMNISTDir is where the Debian/Ubuntu package dataset-fashion-mnist
// installs Fashion-MNIST; LoadMNIST uses it when dir is empty.
const FashionMNISTDir = "/usr/share/datasets/fashion-mnist"

// MNIST image geometry: every MNIST-layout dataset has 28×28 images.
const mnistRows, mnistCols = 28, 28

// LoadMNIST loads an MNIST-layout directory (MNIST or Fashion-MNIST):
// train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and
// t10k-labels-idx1-ubyte, each optionally with a .gz suffix. An empty dir
// means FashionMNISTDir. name prefixes the datasets' names ("mnist",
// "fashion-mnist"). Both have 10 classes and 1×28×28 images: other
// geometries, and empty splits, are errors naming the file.
func LoadMNIST(name, dir string) (train, test *Dataset, err error) {
	return loadMNIST(name, dir, nil)
}

func loadMNIST(name, dir string, mem meminfo.Source) (train, test *Dataset, err error) {
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
		return loadIDX(name+"/"+split, img, lbl, 10, idxLoad{rows: mnistRows, cols: mnistCols, mem: mem})
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
