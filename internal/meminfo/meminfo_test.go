package meminfo

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	n, err := Parse(strings.NewReader("MemTotal:       24000000 kB\nMemFree:  100 kB\nMemAvailable:   1234567 kB\n"))
	require.NoError(t, err)
	require.Equal(t, int64(1234567*1024), n)

	for _, in := range []string{"MemTotal: 5 kB\n", "MemAvailable: x kB\n", "MemAvailable: 5 MB\n", "MemAvailable: -5 kB\n"} {
		_, err := Parse(strings.NewReader(in))
		require.ErrorIs(t, err, ErrUnknown, in)
	}
}

func TestCheck(t *testing.T) {
	src := Source(func() (int64, error) { return 2e9, nil })
	require.NoError(t, src.Check("x", 2e9, "lower -m"))
	err := src.Check("a window of 20000 gradients", 3_900_000_000, "lower -m")
	var me *Error
	require.ErrorAs(t, err, &me)
	require.Equal(t, "a window of 20000 gradients needs 3.9 GB but 2.0 GB is available (MemAvailable): lower -m", err.Error())

	unknown := Source(func() (int64, error) { return 0, ErrUnknown })
	require.NoError(t, unknown.Check("x", 1<<60, ""))
	require.NoError(t, Source(func() (int64, error) { return 0, errors.New("boom") }).Check("x", 1<<60, ""))
}

func TestAvailableOnThisMachine(t *testing.T) {
	n, err := Available()
	if errors.Is(err, ErrUnknown) {
		t.Skip("no /proc/meminfo here")
	}
	require.NoError(t, err)
	require.Greater(t, n, int64(0))
}

func TestParseBytes(t *testing.T) {
	for s, want := range map[string]int64{"2GB": 2e9, "512MB": 512e6, "512mb": 512e6, "1.5GiB": 3 << 29, "4 kB": 4000,
		"1000000": 1e6, "0": 0, "1KiB": 1024, "2TB": 2e12, "7B": 7, "1e9": 1e9} {
		got, err := ParseBytes(s)
		require.NoError(t, err, s)
		assert.Equal(t, want, got, s)
	}
	for _, s := range []string{"", "GB", "-1GB", "2XB", "NaN", "Inf", "0x10", "1_000", "1e30TB", "two"} {
		_, err := ParseBytes(s)
		assert.Error(t, err, s)
	}
	_, err := ParseBytes("2XB")
	assert.EqualError(t, err, `memory size "2XB": want a number of bytes with an optional unit (kB, MB, GB, TB, KiB, MiB, GiB, TiB), e.g. 2GB`)
}
