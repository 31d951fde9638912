package data

import (
	"errors"
	"fmt"
	"math"
	"os"

	"github.com/curvopt/curvopt/internal/fileio"
)

// Dataset is an in-memory labelled image dataset. Images are stored as raw
// 8-bit pixels, image after image, each image in channel-major (C, H, W)
// order; they are converted to floats only when a batch is filled, which keeps
// the resident size at one byte per pixel.
type Dataset struct {
	// Name says where the data came from, e.g. "cifar10/train".
	Name string
	// Classes is the number of classes; every label is in [0, Classes).
	Classes int
	// C, H and W are the channels, height and width of every image.
	C, H, W int
	// Pixels holds Len()*C*H*W bytes: image i is
	// Pixels[i*C*H*W : (i+1)*C*H*W] in (C, H, W) order.
	Pixels []uint8
	// Labels holds one class index per image.
	Labels []int
}

// Bounds on a Dataset's image shape, checked by Validate (and so by
// NewIterator), which keep every size computed from it, and every buffer
// an Iterator allocates for it, finite and in range.
const (
	// MaxChannels bounds C (an Iterator keeps a lookup table per channel).
	MaxChannels = 1024
	// MaxImageValues bounds C·H·W.
	MaxImageValues = 1 << 30
)

// Len returns the number of images.
func (d *Dataset) Len() int { return len(d.Labels) }

// ImageSize returns C*H*W, the number of values in one image.
func (d *Dataset) ImageSize() int { return d.C * d.H * d.W }

// Image returns the raw pixels of image i in (C, H, W) order. The slice
// aliases d.Pixels.
func (d *Dataset) Image(i int) []uint8 {
	n := d.ImageSize()
	return d.Pixels[i*n : (i+1)*n : (i+1)*n]
}

// Validate checks that the shape, pixel count and labels are consistent.
func (d *Dataset) Validate() error {
	if d == nil {
		return fmt.Errorf("data: nil dataset")
	}
	if d.C <= 0 || d.H <= 0 || d.W <= 0 {
		return fmt.Errorf("data: dataset %q: invalid image shape %dx%dx%d", d.Name, d.C, d.H, d.W)
	}
	if d.C > MaxChannels || int64(d.H)*int64(d.W) > MaxImageValues/int64(d.C) {
		return fmt.Errorf("data: dataset %q: image shape %dx%dx%d: at most %d channels and %d values per image",
			d.Name, d.C, d.H, d.W, MaxChannels, MaxImageValues)
	}
	if d.Classes <= 0 {
		return fmt.Errorf("data: dataset %q: invalid class count %d", d.Name, d.Classes)
	}
	if want := len(d.Labels) * d.ImageSize(); len(d.Pixels) != want {
		return fmt.Errorf("data: dataset %q: %d pixel bytes, want %d for %d images of %dx%dx%d",
			d.Name, len(d.Pixels), want, len(d.Labels), d.C, d.H, d.W)
	}
	for i, l := range d.Labels {
		if l < 0 || l >= d.Classes {
			return fmt.Errorf("data: dataset %q: label %d of image %d out of range [0,%d)", d.Name, l, i, d.Classes)
		}
	}
	return nil
}

// ClassCounts returns how many images each class has.
func (d *Dataset) ClassCounts() []int {
	counts := make([]int, d.Classes)
	for _, l := range d.Labels {
		if l >= 0 && l < d.Classes {
			counts[l]++
		}
	}
	return counts
}

// Stats holds per-channel normalisation statistics on the [0, 1] pixel scale
// (raw byte / 255). Normalised value = (byte/255 - Mean[c]) / Std[c].
type Stats struct {
	Mean []float64
	Std  []float64
}

// Stats computes the per-channel mean and (population) standard deviation of
// the dataset's pixels on the [0, 1] scale. Compute it on the training split
// and pass it to the iterators of both splits. A channel with zero variance
// gets Std 1 so that normalisation stays finite.
func (d *Dataset) Stats() Stats {
	c := max(d.C, 0)
	hist := make([][256]int64, c)
	plane := d.H * d.W
	if c > 0 && plane > 0 {
		pix := d.Pixels
		for off := 0; off+c*plane <= len(pix); off += c * plane {
			for ch := 0; ch < c; ch++ {
				h := &hist[ch]
				for _, v := range pix[off+ch*plane : off+(ch+1)*plane] {
					h[v]++
				}
			}
		}
	}
	st := Stats{Mean: make([]float64, c), Std: make([]float64, c)}
	for ch := range hist {
		var n, s float64
		for v, k := range hist[ch] {
			n += float64(k)
			s += float64(k) * float64(v) / 255
		}
		if n == 0 {
			st.Std[ch] = 1
			continue
		}
		mean := s / n
		var ss float64
		for v, k := range hist[ch] {
			dv := float64(v)/255 - mean
			ss += float64(k) * dv * dv
		}
		std := math.Sqrt(ss / n)
		if std == 0 {
			std = 1
		}
		st.Mean[ch], st.Std[ch] = mean, std
	}
	return st
}

// FormatError reports malformed input: the file (or stream name), the byte
// offset where the problem was found (-1 when no single offset applies; for
// gzip'd files offsets count decompressed bytes) and what was wrong.
type FormatError struct {
	File   string
	Offset int64
	Msg    string
	Err    error

	// class is a sentinel that errors.Is matches without it being printed
	// (fileio.ErrNotRegular for a FIFO or device, whose Msg says so).
	class error
}

// Error implements error.
func (e *FormatError) Error() string {
	s := "data: " + e.File
	if e.Offset >= 0 {
		s += fmt.Sprintf(": offset %d", e.Offset)
	}
	s += ": " + e.Msg
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying error, if any.
func (e *FormatError) Unwrap() error { return e.Err }

// Is reports whether target is the error's class: fileio.ErrNotRegular for
// a path that is not a regular file.
func (e *FormatError) Is(target error) bool { return e.class != nil && target == e.class }

func formatErr(file string, off int64, err error, format string, args ...any) *FormatError {
	return &FormatError{File: file, Offset: off, Msg: fmt.Sprintf(format, args...), Err: err}
}

// openDataFile opens a dataset file through fileio.Open: a regular file of
// at most limit bytes by its real length, a FIFO or device refused without
// blocking or reading it. It returns the file and its size; the caller
// reads no more than size bytes from it.
func openDataFile(path string, limit int64) (*os.File, int64, error) {
	f, size, err := fileio.Open(path, limit)
	if err == nil {
		return f, size, nil
	}
	if errors.Is(err, fileio.ErrNotRegular) {
		if fi, serr := os.Stat(path); serr == nil && !fi.Mode().IsRegular() {
			return nil, 0, notRegular(path, fi.Mode())
		}
	}
	return nil, 0, fmt.Errorf("data: %w", err)
}

// notRegular describes why a file that is not a regular file cannot be
// read as a dataset file; the error wraps fileio.ErrNotRegular.
func notRegular(path string, m os.FileMode) *FormatError {
	kind := "not a regular file"
	switch {
	case m&os.ModeDir != 0:
		kind = "a directory"
	case m&os.ModeCharDevice != 0:
		kind = "a character device (such as /dev/zero)"
	case m&os.ModeDevice != 0:
		kind = "a device"
	case m&os.ModeNamedPipe != 0:
		kind = "a named pipe"
	case m&os.ModeSocket != 0:
		kind = "a socket"
	}
	e := formatErr(path, -1, nil, "%s, not a regular file of records", kind)
	e.class = fileio.ErrNotRegular
	return e
}
