package data

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
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

// ReadCIFAR reads all of r and parses it as CIFAR binary records.
func ReadCIFAR(r io.Reader, name string, f CIFARFormat) (pix []uint8, labels []int, err error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, nil, formatErr(name, int64(len(b)), err, "reading CIFAR data")
	}
	return ParseCIFAR(b, name, f)
}

// LoadCIFARFiles reads the given CIFAR binary files, in order, into one
// Dataset.
func LoadCIFARFiles(name string, f CIFARFormat, paths ...string) (*Dataset, error) {
	d := &Dataset{Name: name, Classes: f.Classes, C: cifarC, H: cifarH, W: cifarW}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("data: %w", err)
		}
		pix, lab, err := ParseCIFAR(b, p, f)
		if err != nil {
			return nil, err
		}
		if d.Pixels == nil {
			d.Pixels, d.Labels = pix, lab
		} else {
			d.Pixels = append(d.Pixels, pix...)
			d.Labels = append(d.Labels, lab...)
		}
	}
	if d.Pixels == nil {
		d.Pixels, d.Labels = []uint8{}, []int{}
	}
	return d, nil
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
	d, err := cifarDir(dir, "cifar-10-batches-bin", "test_batch.bin")
	if err != nil {
		return nil, nil, err
	}
	var paths []string
	for i := 1; i <= 5; i++ {
		paths = append(paths, filepath.Join(d, fmt.Sprintf("data_batch_%d.bin", i)))
	}
	if train, err = LoadCIFARFiles("cifar10/train", CIFAR10Format, paths...); err != nil {
		return nil, nil, err
	}
	if test, err = LoadCIFARFiles("cifar10/test", CIFAR10Format, filepath.Join(d, "test_batch.bin")); err != nil {
		return nil, nil, err
	}
	return train, test, nil
}

// LoadCIFAR100 loads CIFAR-100 from dir (or dir/cifar-100-binary): train.bin
// and test.bin. Labels are the 100 fine classes, or the 20 coarse
// superclasses when coarse is set.
func LoadCIFAR100(dir string, coarse bool) (train, test *Dataset, err error) {
	d, err := cifarDir(dir, "cifar-100-binary", "test.bin")
	if err != nil {
		return nil, nil, err
	}
	f, tag := CIFAR100FineFormat, "cifar100"
	if coarse {
		f, tag = CIFAR100CoarseFormat, "cifar100-coarse"
	}
	if train, err = LoadCIFARFiles(tag+"/train", f, filepath.Join(d, "train.bin")); err != nil {
		return nil, nil, err
	}
	if test, err = LoadCIFARFiles(tag+"/test", f, filepath.Join(d, "test.bin")); err != nil {
		return nil, nil, err
	}
	return train, test, nil
}
