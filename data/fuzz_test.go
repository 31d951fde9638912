package data

import (
	"bytes"
	"testing"
	"unicode/utf8"
)

// FuzzIDX checks that ReadIDX never panics and that what it accepts is
// self-consistent.
func FuzzIDX(f *testing.F) {
	f.Add(idxBytes([]int{2, 2, 3}, seq(12, 1)))
	f.Add(idxBytes([]int{4}, []byte{0, 1, 9, 3}))
	f.Add(gzipBytes(f, idxBytes([]int{1, 2, 2}, seq(4, 5))))
	f.Add([]byte{0, 0, 8, 1, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0x1f, 0x8b})
	f.Fuzz(func(t *testing.T, b []byte) {
		x, err := ReadIDX(bytes.NewReader(b), "fuzz")
		if err != nil {
			return
		}
		n := 1
		for _, d := range x.Dims {
			n *= d
		}
		if n != len(x.Data) {
			t.Fatalf("dims %v but %d bytes", x.Dims, len(x.Data))
		}
		if len(x.Dims) == 3 {
			lbl := &IDX{Dims: x.Dims[:1], Data: x.Data[:min(x.Dims[0], len(x.Data))]}
			if d, err := IDXDataset("fuzz", x, lbl, 10, "img", "lbl"); err == nil {
				if err := d.Validate(); err != nil {
					t.Fatalf("accepted invalid dataset: %v", err)
				}
			}
		}
	})
}

// FuzzCIFAR checks that ParseCIFAR never panics and that what it accepts is
// valid.
func FuzzCIFAR(f *testing.F) {
	f.Add(cifarRecords(2, 1, func(i int) byte { return byte(i) }), uint8(0))
	f.Add(cifarRecords(1, 2, func(i int) byte { return 7 }), uint8(1))
	f.Add(cifarRecords(1, 2, func(i int) byte { return 30 }), uint8(2))
	f.Add([]byte{3, 4, 5}, uint8(0))
	f.Fuzz(func(t *testing.T, b []byte, which uint8) {
		formats := []CIFARFormat{CIFAR10Format, CIFAR100FineFormat, CIFAR100CoarseFormat}
		fm := formats[int(which)%len(formats)]
		pix, lab, err := ParseCIFAR(b, "fuzz", fm)
		if err != nil {
			return
		}
		d := &Dataset{Name: "fuzz", Classes: fm.Classes, C: 3, H: 32, W: 32, Pixels: pix, Labels: lab}
		if err := d.Validate(); err != nil {
			t.Fatalf("accepted invalid dataset: %v", err)
		}
	})
}

// FuzzRestore checks that restoring arbitrary states never panics and that an
// accepted state yields valid batches.
func FuzzRestore(f *testing.F) {
	f.Add(3, 2, true, 5, []byte{1, 0, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Fuzz(func(t *testing.T, epoch, pos int, started bool, permSeed int, permBytes []byte) {
		d := smallDataset(10, 1, 2, 2, 3)
		it, err := NewIterator(d, IterConfig{BatchSize: 3, Shuffle: true})
		if err != nil {
			t.Fatal(err)
		}
		st, err := it.State()
		if err != nil {
			t.Fatal(err)
		}
		st.Epoch, st.Pos, st.Started = epoch, pos, started
		st.Perm = nil
		for _, p := range permBytes {
			st.Perm = append(st.Perm, int(p)-permSeed%3)
		}
		if err := it.Restore(st); err != nil {
			return
		}
		for range 8 {
			if it.Next() {
				for _, i := range it.Batch().Indices {
					if i < 0 || i >= 10 {
						t.Fatalf("index %d out of range", i)
					}
				}
			}
		}
	})
}

// FuzzParseText checks the streaming text reader against the definition:
// whatever it accepts is UTF-8 without NUL bytes, of at least 2 distinct
// characters, and decodes back to itself (when no character was mapped to
// the unknown token); errors name the offset of the first bad byte. The
// read buffer is a few bytes (chunk), so characters straddle its
// boundaries everywhere.
func FuzzParseText(f *testing.F) {
	f.Add([]byte("héllo, wörld 😀\n"), uint8(1))
	f.Add([]byte("ab\x00cd"), uint8(0))
	f.Add([]byte("abcdefg\xe2\x82"), uint8(3))
	f.Add([]byte("\xf0\x9f\x98\x80xyzabcdef"), uint8(2))
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		c := utf8.UTFMax + int(chunk%16)
		tx, err := parseText("fuzz", bytes.NewReader(in), int64(len(in)), 0.25, 1, c)
		want, werr := ParseText("fuzz", in, 0.25, 1) // the whole-buffer reader
		if (err == nil) != (werr == nil) || (err != nil && err.Error() != werr.Error()) {
			t.Fatalf("chunk %d: %v; chunk %d: %v", c, err, textChunk, werr)
		}
		if err != nil {
			return
		}
		if !utf8.Valid(in) || bytes.IndexByte(in, 0) >= 0 || len(tx.Vocab) < 2 {
			t.Fatalf("accepted %q", in)
		}
		if n := utf8.RuneCount(in); len(tx.Train)+len(tx.Val) != n {
			t.Fatalf("%d ids for %d characters", len(tx.Train)+len(tx.Val), n)
		}
		if !bytes.Equal(tx.Train, want.Train) || !bytes.Equal(tx.Val, want.Val) {
			t.Fatalf("chunk %d gives other ids than chunk %d", c, textChunk)
		}
		if len(tx.Vocab) < MaxVocab {
			if got := tx.Decode(tx.Train) + tx.Decode(tx.Val); got != string(in) {
				t.Fatalf("decodes to %q, want %q", got, in)
			}
		}
	})
}
