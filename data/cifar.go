package data

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/curvopt/curvopt/internal/meminfo"
)

// CIFAR image geometry: 3 channels of 32×32, stored channel-major.
const (
	cifarC     = 3
	cifarH     = 32
	cifarW     = 32
	cifarImage = cifarC * cifarH * cifarW // 3072
)

// CIFARFormat describes a CIFAR binary record layout: LabelBytes label bytes
// followed by 3072 pixel bytes (1024 red, 1024 green, 1024 blue, each 32×32
// row-major). Label selects which label byte is used and Classes bounds it.
type CIFARFormat struct {
	LabelBytes int
	Label      int
	Classes    int
}

// The CIFAR record formats. CIFAR-100 records carry a coarse (20 classes)
// and a fine (100 classes) label, in that order.
var (
	CIFAR10Format        = CIFARFormat{LabelBytes: 1, Label: 0, Classes: 10}
	CIFAR100FineFormat   = CIFARFormat{LabelBytes: 2, Label: 1, Classes: 100}
	CIFAR100CoarseFormat = CIFARFormat{LabelBytes: 2, Label: 0, Classes: 20}
)

// ParseCIFAR parses the bytes of one CIFAR binary file in the given format.
// name is used in error messages. The size must be a whole number of
// records and every selected label must be below f.Classes.
func ParseCIFAR(b []byte, name string, f CIFARFormat) (pix []uint8, labels []int, err error) {
	if f.LabelBytes < 1 || f.Label < 0 || f.Label >= f.LabelBytes || f.Classes < 1 || f.Classes > 256 {
		return nil, nil, fmt.Errorf("data: %s: invalid CIFAR format %+v", name, f)
	}
	rec := f.LabelBytes + cifarImage
	if len(b)%rec != 0 {
		whole := len(b) / rec
		return nil, nil, formatErr(name, int64(whole*rec), io.ErrUnexpectedEOF,
			"truncated record %d: file size %d is not a multiple of the %d-byte record", whole, len(b), rec)
	}
	n := len(b) / rec
	pix = make([]uint8, n*cifarImage)
	labels = make([]int, n)
	for i := 0; i < n; i++ {
		r := b[i*rec : (i+1)*rec]
		l := int(r[f.Label])
		if l >= f.Classes {
			return nil, nil, formatErr(name, int64(i*rec+f.Label), nil, "label %d of record %d out of range [0,%d)", l, i, f.Classes)
		}
		labels[i] = l
		copy(pix[i*cifarImage:(i+1)*cifarImage], r[f.LabelBytes:])
	}
	return pix, labels, nil
}

// maxCIFARBytes bounds one CIFAR file (1 GiB: CIFAR-10's largest file has
// 30.7 MB, CIFAR-100's 154 MB).
const maxCIFARBytes = 1 << 30

// ReadCIFAR reads r (at most 1 GiB; more is an error, so an endless stream
// such as /dev/zero is refused) and parses it as CIFAR binary records.
func ReadCIFAR(r io.Reader, name string, f CIFARFormat) (pix []uint8, labels []int, err error) {
	b, err := io.ReadAll(io.LimitReader(r, maxCIFARBytes+1))
	if err != nil {
		return nil, nil, formatErr(name, int64(len(b)), err, "reading CIFAR data")
	}
	if len(b) > maxCIFARBytes {
		return nil, nil, formatErr(name, maxCIFARBytes, nil, "more than %d bytes: not a CIFAR file", maxCIFARBytes)
	}
	return ParseCIFAR(b, name, f)
}

// LoadCIFARFiles reads the given CIFAR binary files, in order, into one
// Dataset. Every file must be a regular, non-empty file of whole records;
// the sizes are checked, and the total against the available memory, before
// anything is read, and the pixels are read straight into the dataset.
func LoadCIFARFiles(name string, f CIFARFormat, paths ...string) (*Dataset, error) {
	return loadCIFARFiles(name, f, nil, paths...)
}

func loadCIFARFiles(name string, f CIFARFormat, mem meminfo.Source, paths ...string) (*Dataset, error) {
	if f.LabelBytes < 1 || f.Label < 0 || f.Label >= f.LabelBytes || f.Classes < 1 || f.Classes > 256 {
		return nil, fmt.Errorf("data: %s: invalid CIFAR format %+v", name, f)
	}
	rec := int64(f.LabelBytes + cifarImage)
	files := make([]*os.File, 0, len(paths))
	defer func() {
		for _, fh := range files {
			fh.Close()
		}
	}()
	counts := make([]int, len(paths))
	total := 0
	for i, p := range paths {
		// Opened once, checked by the opened file's real size, read from
		// the same file: no FIFO or device can be swapped in between.
		fh, size, err := openDataFile(p, maxCIFARBytes)
		if err != nil {
			return nil, err
		}
		files = append(files, fh)
		switch {
		case size == 0:
			return nil, formatErr(p, 0, io.ErrUnexpectedEOF, "empty file: want %d-byte records", rec)
		case size%rec != 0:
			whole := size / rec
			return nil, formatErr(p, whole*rec, io.ErrUnexpectedEOF,
				"truncated record %d: file size %d is not a multiple of the %d-byte record", whole, size, rec)
		}
		counts[i] = int(size / rec)
		total += counts[i]
	}
	if err := mem.Check(fmt.Sprintf("loading %d CIFAR images", total), int64(total)*(cifarImage+8), "use fewer or smaller files"); err != nil {
		return nil, fmt.Errorf("data: %s: %w", name, err)
	}
	d := &Dataset{Name: name, Classes: f.Classes, C: cifarC, H: cifarH, W: cifarW,
		Pixels: make([]uint8, total*cifarImage), Labels: make([]int, total)}
	at := 0
	for i, p := range paths {
		if err := readCIFARFile(files[i], p, f, counts[i], d.Pixels[at*cifarImage:], d.Labels[at:]); err != nil {
			return nil, err
		}
		at += counts[i]
	}
	return d, nil
}

// readCIFARFile reads the n records of fh (named path) into pix and labels,
// through a fixed buffer of records, and checks that the file has not grown.
func readCIFARFile(fh *os.File, path string, f CIFARFormat, n int, pix []uint8, labels []int) error {
	rec := f.LabelBytes + cifarImage
	buf := make([]byte, min(n, 256)*rec)
	for i := 0; i < n; {
		k := min(n-i, len(buf)/rec)
		if got, err := io.ReadFull(fh, buf[:k*rec]); err != nil {
			return formatErr(path, int64(i*rec+got), ioErr(err), "reading record %d", i+got/rec)
		}
		for j := range k {
			r := buf[j*rec : (j+1)*rec]
			l := int(r[f.Label])
			if l >= f.Classes {
				return formatErr(path, int64((i+j)*rec+f.Label), nil, "label %d of record %d out of range [0,%d)", l, i+j, f.Classes)
			}
			labels[i+j] = l
			copy(pix[(i+j)*cifarImage:(i+j+1)*cifarImage], r[f.LabelBytes:])
		}
		i += k
	}
	var one [1]byte
	if k, _ := fh.Read(one[:]); k > 0 {
		return formatErr(path, int64(n*rec), nil, "the file grew while it was read (more than %d records)", n)
	}
	return nil
}

// cifarDir returns dir, or dir/sub when dir does not hold want but dir/sub
// does (the layout the CIFAR tarballs unpack to).
func cifarDir(dir, sub, want string) (string, error) {
	if fi, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("data: CIFAR directory: %w", err)
	} else if !fi.IsDir() {
		return "", fmt.Errorf("data: %s is not a directory", dir)
	}
	if _, err := os.Stat(filepath.Join(dir, want)); err == nil {
		return dir, nil
	}
	if _, err := os.Stat(filepath.Join(dir, sub, want)); err == nil {
		return filepath.Join(dir, sub), nil
	}
	return "", fmt.Errorf("data: %s: %s not found (nor in %s/): %w", dir, want, sub, os.ErrNotExist)
}

// LoadCIFAR10 loads CIFAR-10 from dir (or dir/cifar-10-batches-bin): the
// training split from data_batch_1.bin … data_batch_5.bin, the test split
// from test_batch.bin.
func LoadCIFAR10(dir string) (train, test *Dataset, err error) {
	return loadCIFAR10(dir, nil)
}

func loadCIFAR10(dir string, mem meminfo.Source) (train, test *Dataset, err error) {
	d, err := cifarDir(dir, "cifar-10-batches-bin", "test_batch.bin")
	if err != nil {
		return nil, nil, err
	}
	var paths []string
	for i := 1; i <= 5; i++ {
		paths = append(paths, filepath.Join(d, fmt.Sprintf("data_batch_%d.bin", i)))
	}
	if train, err = loadCIFARFiles("cifar10/train", CIFAR10Format, mem, paths...); err != nil {
		return nil, nil, err
	}
	if test, err = loadCIFARFiles("cifar10/test", CIFAR10Format, mem, filepath.Join(d, "test_batch.bin")); err != nil {
		return nil, nil, err
	}
	return train, test, nil
}

// LoadCIFAR100 loads CIFAR-100 from dir (or dir/cifar-100-binary): train.bin
// and test.bin. Labels are the 100 fine classes, or the 20 coarse
// superclasses when coarse is set.
func LoadCIFAR100(dir string, coarse bool) (train, test *Dataset, err error) {
	return loadCIFAR100(dir, coarse, nil)
}

func loadCIFAR100(dir string, coarse bool, mem meminfo.Source) (train, test *Dataset, err error) {
	d, err := cifarDir(dir, "cifar-100-binary", "test.bin")
	if err != nil {
		return nil, nil, err
	}
	f, tag := CIFAR100FineFormat, "cifar100"
	if coarse {
		f, tag = CIFAR100CoarseFormat, "cifar100-coarse"
	}
	if train, err = loadCIFARFiles(tag+"/train", f, mem, filepath.Join(d, "train.bin")); err != nil {
		return nil, nil, err
	}
	if test, err = loadCIFARFiles(tag+"/test", f, mem, filepath.Join(d, "test.bin")); err != nil {
		return nil, nil, err
	}
	return train, test, nil
}
