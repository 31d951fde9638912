package data

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

func TestParseTextErrors(t *testing.T) {
	long := strings.Repeat("hello, world\n", 20)
	cases := []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "is empty"},
		{"nul", []byte("abc\x00def"), "NUL byte at offset 3"},
		{"latin1", append([]byte(long[:40]), 0xe9, 'x'), "invalid byte 0xe9 at offset 40"},
		{"control", []byte(strings.Repeat("a\x01\x02", 50)), "control characters"},
		{"short", []byte("abcdefghij"), "too short"},
	}
	for _, c := range cases {
		_, err := ParseText(c.name, c.b, 0.1, 8)
		require.Error(t, err, c.name)
		assert.Contains(t, err.Error(), c.want, c.name)
		assert.Contains(t, err.Error(), c.name, "the error names the text")
	}
	_, err := ParseText("x", []byte(long), 1.5, 8)
	assert.ErrorContains(t, err, "validation fraction")
	_, err = LoadText(filepath.Join(t.TempDir(), "missing.txt"), 0.1, 8)
	assert.ErrorContains(t, err, "missing.txt")
}

// TestTextWindowsAndBatch checks the vocabulary, the held-out split, the
// windows and the input/label layout of a batch on a small text.
func TestTextWindowsAndBatch(t *testing.T) {
	text := "abcabcabcabcabcabcabcabcabcabcabcabcabcabcaccbé" // 47 characters
	path := filepath.Join(t.TempDir(), "t.txt")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
	tx, err := LoadText(path, 0.25, 4)
	require.NoError(t, err)
	assert.Equal(t, []rune{'a', 'b', 'c', 'é'}, tx.Vocab)
	assert.Equal(t, 36, len(tx.Train))
	assert.Equal(t, 11, len(tx.Val))
	assert.Equal(t, text, tx.Decode(tx.Train)+tx.Decode(tx.Val))
	tr, val, err := tx.Windows(4)
	require.NoError(t, err)
	assert.Equal(t, 8, tr.Len()) // (36−1)/4
	assert.Equal(t, 2, val.Len())
	assert.Equal(t, 4, tr.Classes)
	x := tensor.New(tensor.Of(tensor.Float64), tensor.WithShape(2, 4))
	labels := make([]int, 8)
	require.NoError(t, TextBatch(tr, []int{0, 1}, x, labels))
	// Window 0 is "abca" → "bcab"; window 1 starts at character 4: "bcab" → "cabc".
	assert.Equal(t, []float64{0, 1, 2, 0, 1, 2, 0, 1}, x.Float64s())
	assert.Equal(t, []int{1, 2, 0, 1, 2, 0, 1, 2}, labels)
	assert.Error(t, TextBatch(tr, []int{0}, x, labels))
}

// TestTextVocabularyCap checks that a text with more than MaxVocab distinct
// characters keeps the most frequent ones and maps the rest to U+FFFD.
func TestTextVocabularyCap(t *testing.T) {
	var sb strings.Builder
	for i := 0; i < 300; i++ {
		sb.WriteRune(rune(0x4e00 + i)) // 300 distinct CJK characters, once each
	}
	sb.WriteString(strings.Repeat("ab", 200))
	tx, err := ParseText("cjk", []byte(sb.String()), 0.1, 8)
	require.NoError(t, err)
	assert.Len(t, tx.Vocab, MaxVocab)
	assert.Equal(t, '\uFFFD', tx.Vocab[MaxVocab-1])
	assert.Contains(t, tx.Vocab, 'a')
}

// TestDefaultCorpus checks that the built-in corpus loads from the Go
// installation, is deterministic and large enough for gpt-tiny.
func TestDefaultCorpus(t *testing.T) {
	a, err := DefaultCorpus(TextValFraction, 64)
	require.NoError(t, err)
	b, err := DefaultCorpus(TextValFraction, 64)
	require.NoError(t, err)
	assert.Equal(t, a.Train, b.Train)
	assert.Greater(t, len(a.Train), 500_000)
	assert.Less(t, len(a.Vocab), 200)
	assert.Contains(t, a.Decode(a.Train[:2000]), "package ")
	tr, val, err := LoadSpec(Spec{Kind: KindText})
	require.NoError(t, err)
	assert.Equal(t, 65, tr.W)
	assert.Greater(t, val.Len(), 100)
}
