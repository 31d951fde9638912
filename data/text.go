package data

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/curvopt/curvopt/internal/fileio"
	"github.com/curvopt/curvopt/internal/meminfo"
	"gorgonia.org/tensor"
)

// KindText is the character-level text dataset (LoadText, DefaultCorpus).
const KindText = "text"

// MaxVocab is the largest character vocabulary: token ids are stored in
// bytes. A text with more distinct characters keeps the MaxVocab−1 most
// frequent ones and maps the others to one unknown token (shown as U+FFFD).
const MaxVocab = 256

// Text is a character-level corpus: a UTF-8 text turned into token ids (one
// per character) by a vocabulary, split into a training part and a held-out
// validation part (the last fraction of the text, so no window of one
// overlaps the other).
type Text struct {
	// Name says where the text came from.
	Name string
	// Vocab maps token ids to characters: the distinct characters sorted by
	// code point (with the unknown token, if any, last).
	Vocab []rune
	// Train and Val are the token ids of the two parts.
	Train, Val []uint8
}

// MaxTextBytes is the largest text file LoadText reads (1 GiB, ten times
// enwik8), checked against the file's real length before anything is read.
// A corpus costs about 2 bytes of memory per character once loaded and cut
// into windows (see Windows).
const MaxTextBytes = 1 << 30

// ParseText turns UTF-8 text into a corpus whose last valFrac of the
// characters is held out for validation. Empty text, text that is not
// UTF-8 (the error gives the byte offset), binary data (NUL bytes or more
// than 10% control characters other than white space), text of fewer than
// 2 distinct characters (nothing to predict) and text too short for one
// window of context+1 characters in each part are errors.
func ParseText(name string, b []byte, valFrac float64, context int) (*Text, error) {
	return parseText(name, bytes.NewReader(b), int64(len(b)), valFrac, context, textChunk)
}

// parseText reads the size bytes of src in two passes through a fixed
// buffer of chunk bytes: the first validates the text and counts its characters, so that
// every error is found before anything in proportion to the text is
// allocated; the second turns the characters into token ids, one byte
// each. A source that changes between the passes (a file being written)
// is an error.
func parseText(name string, src io.ReaderAt, size int64, valFrac float64, context, chunk int) (*Text, error) {
	if !(valFrac > 0 && valFrac < 1) {
		return nil, fmt.Errorf("data: text %s: validation fraction %v, want (0, 1)", name, valFrac)
	}
	if context < 1 {
		return nil, fmt.Errorf("data: text %s: context %d, want ≥ 1", name, context)
	}
	var counts charCounts
	// One byte more than size, so that a file that grew is detected.
	s, err := scanText(name, io.NewSectionReader(src, 0, size+1), chunk, counts.add)
	if err != nil {
		return nil, err
	}
	if s.bytes != size {
		return nil, fmt.Errorf("data: text %s: %d bytes read, %d expected: %w", name, s.bytes, size, errChanged)
	}
	if s.chars == 0 {
		return nil, fmt.Errorf("data: text %s is empty", name)
	}
	if s.ctrl*10 > s.chars {
		return nil, fmt.Errorf("data: text %s looks binary: %d of its %d characters are control characters", name, s.ctrl, s.chars)
	}
	count := counts.all()
	if len(count) < 2 {
		var only rune
		for r := range count {
			only = r
		}
		return nil, fmt.Errorf("data: text %s has a vocabulary of 1 character (%q, %d times): a model has nothing to predict, want at least 2 distinct characters", name, only, s.chars)
	}
	nVal := int64(float64(s.chars) * valFrac)
	if nTrain := s.chars - nVal; nVal < int64(context)+1 || nTrain < int64(context)+1 {
		return nil, fmt.Errorf("data: text %s is too short: %d characters give %d for training and %d for validation, each needs at least context+1 = %d",
			name, s.chars, nTrain, nVal, int64(context)+1)
	}
	t := &Text{Name: name}
	unk := t.vocabulary(count)
	ids := make([]uint8, 0, s.chars)
	cid := newCharIDs(t.Vocab, unk)
	s2, err := scanText(name, io.NewSectionReader(src, 0, size), chunk, func(r rune) error {
		v, err := cid.id(r)
		ids = append(ids, v)
		return err
	})
	if err != nil {
		return nil, err
	}
	if s2 != s {
		return nil, fmt.Errorf("data: text %s: the second pass read %d bytes and %d characters, the first %d and %d: %w", name, s2.bytes, s2.chars, s.bytes, s.chars, errChanged)
	}
	t.Train, t.Val = ids[:int64(len(ids))-nVal], ids[int64(len(ids))-nVal:]
	return t, nil
}

// vocabulary sets t.Vocab from the characters' counts and returns the id
// of the unknown token (−1 when every character has its own id).
func (t *Text) vocabulary(count map[rune]int64) (unk int) {
	chars := make([]rune, 0, len(count))
	for r := range count {
		chars = append(chars, r)
	}
	unknown := len(chars) > MaxVocab
	if unknown {
		sort.Slice(chars, func(i, j int) bool {
			if count[chars[i]] != count[chars[j]] {
				return count[chars[i]] > count[chars[j]]
			}
			return chars[i] < chars[j]
		})
		chars = chars[:MaxVocab-1]
	}
	sort.Slice(chars, func(i, j int) bool { return chars[i] < chars[j] })
	t.Vocab = chars
	if !unknown {
		return -1
	}
	t.Vocab = append(t.Vocab, utf8.RuneError)
	return len(chars)
}

// textMemory is what loading a text file of size bytes and cutting it into
// windows of context characters costs at most: 1 byte per character for the
// token ids, (context+1)/context for the windows' bytes and 8/context for
// their labels.
func textMemory(size int64, context int) int64 {
	return 2*size + 9*size/int64(context)
}

// LoadText reads a UTF-8 text file as a corpus (see ParseText). The file
// must be a regular file of at most MaxTextBytes (FIFOs, devices and
// directories are refused without reading them) and fit in the available
// memory; it is validated while it is streamed through a fixed buffer, so
// a file that is not text is refused after its first bad byte, before
// anything in proportion to it is allocated.
func LoadText(path string, valFrac float64, context int) (*Text, error) {
	return loadText(path, valFrac, context, nil)
}

func loadText(path string, valFrac float64, context int, mem meminfo.Source) (*Text, error) {
	if context < 1 {
		return nil, fmt.Errorf("data: text %s: context %d, want ≥ 1", path, context)
	}
	f, size, err := fileio.Open(path, MaxTextBytes)
	if err != nil {
		return nil, fmt.Errorf("data: text: %w", err)
	}
	defer f.Close()
	what := fmt.Sprintf("loading the text %s (%s)", path, meminfo.Bytes(size))
	if merr := mem.Check(what, textMemory(size, context), "use a smaller text file"); merr != nil {
		return nil, fmt.Errorf("data: %w", merr)
	}
	return parseText(path, f, size, valFrac, context, textChunk)
}

// corpusPackages are the Go standard-library packages whose sources make the
// default corpus.
var corpusPackages = []string{"bufio", "bytes", "encoding/json", "fmt", "go/ast", "go/parser", "regexp", "sort", "strconv", "strings", "text/template", "unicode/utf8"}

// corpusLimit caps the default corpus at 1 MiB.
const corpusLimit = 1 << 20

// DefaultCorpus is the built-in text corpus, which needs no download: the
// non-test .go files of a fixed list of standard-library packages (bufio,
// bytes, encoding/json, fmt, go/ast, go/parser, regexp, sort, strconv,
// strings, text/template, unicode/utf8) from the
// Go installation's GOROOT/src, in path order, up to 1 MiB. Every machine
// that builds this module has them (the Go toolchain ships its sources), so
// a fresh machine and CI need nothing else; for one Go version the corpus
// is the same everywhere. Go source is a fine character-level benchmark:
// English comments, code structure and long-range brackets.
func DefaultCorpus(valFrac float64, context int) (*Text, error) {
	root, err := goroot()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	for _, pkg := range corpusPackages {
		dir := filepath.Join(root, "src", filepath.FromSlash(pkg))
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("data: default corpus: %w", err)
		}
		for _, e := range entries { // sorted by name
			n := e.Name()
			if e.IsDir() || !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
				continue
			}
			if err := appendFile(&buf, filepath.Join(dir, n), corpusLimit-buf.Len()+utf8.UTFMax); err != nil {
				return nil, fmt.Errorf("data: default corpus: %w", err)
			}
			if buf.Len() >= corpusLimit {
				break
			}
		}
		if buf.Len() >= corpusLimit {
			break
		}
	}
	b := buf.Bytes()
	if len(b) > corpusLimit {
		b = b[:corpusLimit]
		for len(b) > 0 && !utf8.Valid(b[len(b)-min(len(b), 4):]) {
			b = b[:len(b)-1] // do not cut a character
		}
	}
	return ParseText("go-stdlib-sources", b, valFrac, context)
}

// appendFile appends at most n bytes of path, a regular file (a FIFO or
// device planted in GOROOT is refused, not waited on or read forever), to
// buf.
func appendFile(buf *bytes.Buffer, path string, n int) error {
	f, size, err := fileio.Open(path, math.MaxInt64)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.CopyN(buf, f, min(size, int64(n))); err != nil {
		return fmt.Errorf("%s: %w", path, ioErr(err))
	}
	return nil
}

// goroot finds the Go installation: $GOROOT, `go env GOROOT`, or the
// GOROOT this binary was built with.
func goroot() (string, error) {
	cands := []string{os.Getenv("GOROOT")}
	if out, err := exec.Command("go", "env", "GOROOT").Output(); err == nil {
		cands = append(cands, strings.TrimSpace(string(out)))
	}
	cands = append(cands, runtime.GOROOT()) //nolint:staticcheck // a fallback only
	for _, c := range cands {
		if c == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(c, "src", "fmt")); err == nil {
			return c, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("data: default corpus: %w", err)
		}
	}
	return "", errors.New("data: default corpus: no Go installation with sources found (set GOROOT, or use a text file)")
}

// Windows cuts the corpus into datasets of non-overlapping windows of
// context+1 token ids (each window's first context ids are the input, its
// last context ids the next-token labels), stored as 1×1×(context+1)
// "images" so that the Iterator shuffles, batches and checkpoints them
// like any dataset. Classes is the vocabulary size; use TextBatch to turn
// a batch into model input and labels.
func (t *Text) Windows(context int) (train, val *Dataset, err error) {
	if context < 1 {
		return nil, nil, fmt.Errorf("data: text %s: windows of context %d, want ≥ 1", t.Name, context)
	}
	mk := func(part string, ids []uint8) (*Dataset, error) {
		n := (len(ids) - 1) / context
		if n < 1 {
			return nil, fmt.Errorf("data: text %s: %s part has %d characters, fewer than context+1 = %d", t.Name, part, len(ids), context+1)
		}
		d := &Dataset{Name: t.Name + "/" + part, Classes: len(t.Vocab), C: 1, H: 1, W: context + 1,
			Pixels: make([]uint8, 0, n*(context+1)), Labels: make([]int, n)}
		for i := 0; i < n; i++ {
			w := ids[i*context : i*context+context+1]
			d.Pixels = append(d.Pixels, w...)
			d.Labels[i] = int(w[context])
		}
		return d, d.Validate()
	}
	if train, err = mk("train", t.Train); err != nil {
		return nil, nil, err
	}
	if val, err = mk("val", t.Val); err != nil {
		return nil, nil, err
	}
	return train, val, nil
}

// TextBatch fills x [B, T] with the input token ids (as floats) and labels
// (B·T entries) with the next-token ids of the windows ds[indices] made by
// Windows (T = ds.W − 1). x must be float32 or float64 of that shape.
func TextBatch(ds *Dataset, indices []int, x *tensor.Dense, labels []int) error {
	t := ds.W - 1
	if ds.C != 1 || ds.H != 1 || t < 1 {
		return fmt.Errorf("data: %s is not a text window dataset", ds.Name)
	}
	if x.Shape().TotalSize() != len(indices)*t || len(labels) != len(indices)*t {
		return fmt.Errorf("data: text batch of %d windows of %d: input %v, %d labels", len(indices), t, x.Shape(), len(labels))
	}
	for r, i := range indices {
		w := ds.Image(i)
		for j := 0; j < t; j++ {
			labels[r*t+j] = int(w[j+1])
		}
		switch d := x.Data().(type) {
		case []float32:
			for j := 0; j < t; j++ {
				d[r*t+j] = float32(w[j])
			}
		case []float64:
			for j := 0; j < t; j++ {
				d[r*t+j] = float64(w[j])
			}
		default:
			return fmt.Errorf("data: text batch: input dtype %v", x.Dtype())
		}
	}
	return nil
}

// Decode returns the characters of token ids.
func (t *Text) Decode(ids []uint8) string {
	var sb strings.Builder
	for _, id := range ids {
		if int(id) < len(t.Vocab) {
			sb.WriteRune(t.Vocab[id])
		}
	}
	return sb.String()
}

// TextValFraction is the share of a text held out for validation.
const TextValFraction = 0.1

// loadTextSpec loads KindText: sp.File (or DefaultCorpus) cut into windows
// of sp.Context (default 64) characters, the last 10% held out.
func loadTextSpec(sp Spec) (train, val *Dataset, err error) {
	ctx := sp.Context
	if ctx == 0 {
		ctx = 64
	}
	var t *Text
	if sp.File == "" {
		t, err = DefaultCorpus(TextValFraction, ctx)
	} else {
		t, err = loadText(sp.File, TextValFraction, ctx, sp.Memory)
	}
	if err != nil {
		return nil, nil, err
	}
	return t.Windows(ctx)
}
