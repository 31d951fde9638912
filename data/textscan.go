package data

import (
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// textChunk is the size of the fixed buffer through which a text is read:
// validating a text costs this much memory, whatever its length.
const textChunk = 64 << 10

// textScan is what one pass over a text found.
type textScan struct {
	bytes int64 // bytes read
	chars int64 // characters decoded
	ctrl  int64 // control characters other than white space
}

// scanText reads r to its end through a fixed buffer of chunk bytes
// (textChunk; at least utf8.UTFMax, tests use small ones),
// decoding UTF-8 and calling visit for every character. It stops at the
// first NUL byte (binary data) or invalid UTF-8 sequence with an error
// naming the text and the byte offset, so a file of zeros or of binary data
// is refused after its first bytes, in bounded memory, whatever its length.
func scanText(name string, r io.Reader, chunk int, visit func(rune) error) (textScan, error) {
	var s textScan
	buf := make([]byte, max(chunk, utf8.UTFMax))
	held := 0 // bytes of an incomplete character carried over from the last chunk
	for {
		k, rerr := io.ReadFull(r, buf[held:])
		end := held + k
		atEOF := errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF)
		if rerr != nil && !atEOF {
			return s, fmt.Errorf("data: text %s: reading at offset %d: %w", name, s.bytes+int64(end), rerr)
		}
		i := 0
		for i < end {
			c := buf[i]
			r, size := rune(c), 1
			if c == 0 {
				return s, fmt.Errorf("data: text %s looks binary: NUL byte at offset %d", name, s.bytes+int64(i))
			}
			if c >= utf8.RuneSelf {
				if !atEOF && !utf8.FullRune(buf[i:end]) {
					break // the rest of this character is in the next chunk
				}
				r, size = utf8.DecodeRune(buf[i:end])
				if r == utf8.RuneError && size <= 1 {
					return s, fmt.Errorf("data: text %s is not UTF-8: invalid byte 0x%02x at offset %d", name, c, s.bytes+int64(i))
				}
			}
			if r < 0x20 && r != '\n' && r != '\t' && r != '\r' && r != '\f' && r != '\v' {
				s.ctrl++
			}
			s.chars++
			if err := visit(r); err != nil {
				return s, fmt.Errorf("data: text %s: offset %d: %w", name, s.bytes+int64(i), err)
			}
			i += size
		}
		s.bytes += int64(i)
		if atEOF {
			return s, nil
		}
		held = copy(buf, buf[i:end])
	}
}

// charCounts counts the occurrences of every character of a text: an array
// for ASCII, a map for the rest (at most the 1,114,112 code points, so its
// size is bounded whatever the text's length).
type charCounts struct {
	ascii [utf8.RuneSelf]int64
	other map[rune]int64
}

func (c *charCounts) add(r rune) error {
	if r < utf8.RuneSelf {
		c.ascii[r]++
		return nil
	}
	if c.other == nil {
		c.other = map[rune]int64{}
	}
	c.other[r]++
	return nil
}

// all returns the counts of the characters that occur.
func (c *charCounts) all() map[rune]int64 {
	m := make(map[rune]int64, len(c.other)+utf8.RuneSelf)
	for r, n := range c.ascii {
		if n > 0 {
			m[rune(r)] = n
		}
	}
	for r, n := range c.other {
		m[r] = n
	}
	return m
}

// charIDs maps characters to token ids: an array for ASCII, a map for the
// rest; unk ≥ 0 is the id of characters outside the vocabulary (−1: there is
// none, and such a character is an error).
type charIDs struct {
	ascii [utf8.RuneSelf]int16
	other map[rune]uint8
	unk   int
}

func newCharIDs(vocab []rune, unk int) *charIDs {
	c := &charIDs{other: map[rune]uint8{}, unk: unk}
	for i := range c.ascii {
		c.ascii[i] = -1
	}
	for i, r := range vocab {
		if r == utf8.RuneError && i == unk {
			continue // the unknown token, not a character of the text
		}
		if r < utf8.RuneSelf {
			c.ascii[r] = int16(i)
		} else {
			c.other[r] = uint8(i)
		}
	}
	return c
}

// errChanged is returned when the second pass over a file finds what the
// first did not: the file changed while it was read.
var errChanged = errors.New("the file changed while it was read")

func (c *charIDs) id(r rune) (uint8, error) {
	if r < utf8.RuneSelf && c.ascii[r] >= 0 {
		return uint8(c.ascii[r]), nil
	}
	if v, ok := c.other[r]; ok {
		return v, nil
	}
	if c.unk >= 0 {
		return uint8(c.unk), nil
	}
	return 0, fmt.Errorf("character %q is not in the vocabulary of the first pass: %w", r, errChanged)
}
