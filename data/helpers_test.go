package data

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// idxBytes encodes an unsigned-byte IDX file.
func idxBytes(dims []int, payload []byte) []byte {
	var b bytes.Buffer
	b.Write([]byte{0, 0, idxUbyte, byte(len(dims))})
	for _, d := range dims {
		_ = binary.Write(&b, binary.BigEndian, uint32(d))
	}
	b.Write(payload)
	return b.Bytes()
}

func gzipBytes(t testing.TB, b []byte) []byte {
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	_, err := zw.Write(b)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return out.Bytes()
}

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
