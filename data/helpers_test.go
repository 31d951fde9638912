package data

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/curvopt/curvopt/internal/idxtest"
	"github.com/stretchr/testify/require"
)

// idxBytes and gzipBytes build IDX test files (shared with cmd/train's
// hostile-input tests).
var idxBytes, gzipBytes = idxtest.Encode, idxtest.Gzip

func writeFile(t testing.TB, dir, name string, b []byte) string {
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, b, 0o644))
	return p
}

// seq returns n bytes with a deterministic pattern starting at start.
func seq(n int, start byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i*7)
	}
	return b
}

// cifarRecords encodes n CIFAR records with labelBytes label bytes; record i
// has every label byte set to labels(i) and pixels seq(3072, i).
func cifarRecords(n, labelBytes int, label func(i int) byte) []byte {
	var b bytes.Buffer
	for i := 0; i < n; i++ {
		for range labelBytes {
			b.WriteByte(label(i))
		}
		b.Write(seq(cifarImage, byte(i)))
	}
	return b.Bytes()
}

// smallDataset returns a deterministic dataset of n images of c×h×w.
func smallDataset(n, c, h, w, classes int) *Dataset {
	d := &Dataset{Name: "small", Classes: classes, C: c, H: h, W: w,
		Pixels: make([]uint8, n*c*h*w), Labels: make([]int, n)}
	for i := range d.Pixels {
		d.Pixels[i] = byte(i*31 + i/7)
	}
	for i := range d.Labels {
		d.Labels[i] = i % classes
	}
	return d
}
