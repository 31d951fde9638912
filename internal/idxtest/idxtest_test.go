package idxtest

import (
	"bytes"
	"compress/gzip"
	"io"
	"testing"
)

func TestEncodeAndGzip(t *testing.T) {
	b := Encode([]int{2, 3}, []byte{1, 2, 3, 4, 5, 6})
	want := []byte{0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6}
	if !bytes.Equal(b, want) {
		t.Fatalf("Encode = %v, want %v", b, want)
	}
	zr, err := gzip.NewReader(bytes.NewReader(Gzip(t, b)))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("Gzip round trip = %v, %v", got, err)
	}
}
