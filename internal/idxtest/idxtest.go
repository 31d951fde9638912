// Package idxtest builds IDX files (the MNIST container format) for tests:
// the data loaders' own tests and the CLI's hostile-input tests share it.
package idxtest

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"testing"
)

// Encode returns an unsigned-byte IDX file (type code 0x08) with the given
// dimensions, big-endian, followed by payload as it is.
func Encode(dims []int, payload []byte) []byte {
	var b bytes.Buffer
	b.Write([]byte{0, 0, 0x08, byte(len(dims))})
	for _, d := range dims {
		_ = binary.Write(&b, binary.BigEndian, uint32(d))
	}
	b.Write(payload)
	return b.Bytes()
}

// Gzip returns b gzip-compressed; a failure fails the test.
func Gzip(t testing.TB, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}
