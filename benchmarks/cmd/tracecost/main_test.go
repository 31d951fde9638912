package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRunGoldenModels(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run([]string{"-reps", "1", "-pilot", "4", "-k", "3,5", "-target", "0.1"}, &out))
	s := out.String()
	assert.Contains(t, s, "| curv_cnn | 762 |")
	assert.Contains(t, s, "| curv_mlp_tanh | 421 |")
	assert.Contains(t, s, "Hutch++ k=5")
	assert.Equal(t, 4, strings.Count(s, "\n|"), "header, separator and two rows")

	for _, bad := range [][]string{{"-k", "0"}, {"-reps", "0"}, {"-target", "-1"}, {"-run", t.TempDir()}} {
		require.Error(t, run(bad, &out), "%v", bad)
	}
}
