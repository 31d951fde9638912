package data

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseSpec(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Spec
		err  string
	}{
		{"", Spec{Kind: KindSynthetic}, ""},
		{"synthetic", Spec{Kind: KindSynthetic}, ""},
		{"Synthetic train=10 test=5 seed=3 noise=0.1", Spec{Kind: KindSynthetic, Synthetic: SyntheticConfig{Train: 10, Test: 5, Seed: 3, Noise: 0.1}}, ""},
		{"cifar10 /d", Spec{Kind: KindCIFAR10, Dir: "/d"}, ""},
		{"cifar100 /d", Spec{Kind: KindCIFAR100, Dir: "/d"}, ""},
		{"cifar100 /d coarse", Spec{Kind: KindCIFAR100, Dir: "/d", Coarse: true}, ""},
		{"cifar100-coarse /d", Spec{Kind: KindCIFAR100, Dir: "/d", Coarse: true}, ""},
		{"fashion-mnist", Spec{Kind: KindFashionMNIST}, ""},
		{"fashion-mnist /f", Spec{Kind: KindFashionMNIST, Dir: "/f"}, ""},
		{"mnist /m", Spec{Kind: KindMNIST, Dir: "/m"}, ""},
		{"text", Spec{Kind: KindText}, ""},
		{"text /t.txt context=32", Spec{Kind: KindText, File: "/t.txt", Context: 32}, ""},
		{"text context=16", Spec{Kind: KindText, Context: 16}, ""},
		{"text a b", Spec{}, "want text [FILE]"},
		{"text context=0", Spec{}, "context"},
		{"mnist", Spec{}, "want mnist DIR"},
		{"cifar10", Spec{}, "want cifar10 DIR"},
		{"cifar100 /d fine", Spec{}, "want cifar100 DIR [coarse]"},
		{"cifar100-coarse", Spec{}, "want cifar100-coarse DIR"},
		{"fashion-mnist a b", Spec{}, "want fashion-mnist"},
		{"synthetic train", Spec{}, "key=value"},
		{"synthetic train=x", Spec{}, "option train"},
		{"synthetic size=3", Spec{}, "unknown synthetic option"},
		{"imagenet /x", Spec{}, "unknown dataset"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseSpec(tc.in)
			if tc.err != "" {
				assert.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestLoad(t *testing.T) {
	train, test, err := Load("synthetic train=30 test=10 seed=4")
	require.NoError(t, err)
	assert.Equal(t, 30, train.Len())
	assert.Equal(t, 10, test.Len())

	missing := filepath.Join(t.TempDir(), "missing")
	for _, spec := range []string{"cifar10 " + missing, "cifar100 " + missing, "mnist " + missing, "fashion-mnist " + missing} {
		_, _, err := Load(spec)
		assert.ErrorIs(t, err, os.ErrNotExist, spec)
		assert.ErrorContains(t, err, missing, spec)
	}
	_, _, err = LoadSpec(Spec{Kind: KindMNIST})
	assert.ErrorContains(t, err, "directory")
	_, _, err = LoadSpec(Spec{Kind: "bogus"})
	assert.ErrorContains(t, err, "unknown")
	_, _, err = Load("synthetic train=-2")
	assert.ErrorContains(t, err, "negative")
}
